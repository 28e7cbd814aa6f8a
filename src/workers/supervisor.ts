/**
 * The supervisor: by default Portico serves from a worker process under this small supervising one, as
 * nginx's workers serve under its master. The supervisor binds every listening socket for the life of
 * the service and never serves a request itself: every worker listens on the same sockets and accepts
 * its own connections (the admin listener: worker 1 only; see shared-listener.ts). It logs "listening"
 * once the workers serve.
 *
 * A worker that dies — a fatal error is a bug, but never an outage — is replaced at once by the
 * *spare*: one more process that has already loaded Portico and waits, serving nothing, to be given
 * a worker's place (loading takes most of a second; taking over, a few milliseconds). A new spare is
 * started once the replacement serves. With no spare at hand a new process is started (with a growing
 * delay if workers keep dying). Meanwhile the connections that arrive wait, paused: nothing is refused.
 *
 * It also passes SIGHUP (reload), SIGUSR1 (reopen the access log) and SIGTERM/SIGINT (drain, then
 * stop) on to every worker, and relays the admin commands that must reach all of them (among them the
 * purge of a URL that an unsafe request invalidated in one worker's cache).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';
import type { AdminCommand } from '../admin/admin-commands.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../core/log.js';
import type { ListenerName, ListenerSpec, ListeningAddresses } from '../listener-specs.js';
import { isPorticoMessage, PRELOAD_ENV, WORKER_ENV, type Answer, type PrimaryMessage, type WorkerMessage } from './messages.js';
import { bindShared, type SharedHandle } from './shared-listener.js';

/** How many workers `workers: N | "auto"` means: "auto" is one per CPU core. */
export function workerCount(setting: number | 'auto'): number {
  return setting === 'auto' ? availableParallelism() : setting;
}

export interface SupervisorOptions {
  /** The validated config the workers start with. */
  readonly config: Config;
  readonly count: number;
  readonly log: Logger;
  /** shutdown.drain_timeout: how long workers may take to stop before they are killed. */
  readonly drainMs: number;
  readonly listeners: readonly ListenerSpec[];
  /** What SIGHUP means: re-read the config file, or (started without one: the terminal closed) stop. */
  readonly hangup: 'reload' | 'stop';
  /** Called once, when every worker serves for the first time (the start-up block is printed then). */
  readonly onServing?: (addresses: ListeningAddresses) => void;
  /** The worker's script and arguments (the same command line as the supervisor's). */
  readonly script: string;
  readonly args: readonly string[];
}

/** A worker that does not answer an admin command within this long is left out of the answer. */
const ASK_TIMEOUT_MS = 10_000;
/** A worker that dies sooner than this after its start is restarted with a growing delay. */
const CRASH_LOOP_MS = 5_000;
const RESTART_DELAY_MS = 0;
const RESTART_DELAY_FIRST_LOOP_MS = 100;
const RESTART_DELAY_MAX_MS = 10_000;
/** A spare that dies before it is needed is started again after this long (doubling, up to a minute). */
const SPARE_DELAY_MS = 1_000;
const SPARE_DELAY_MAX_MS = 60_000;

interface Slot {
  readonly number: number;
  worker: ChildProcess | null;
  ready: boolean;
  /** Started successfully at least once: a later death is a crash to recover from, not a bad config. */
  everReady: boolean;
  startedAt: number;
  restartDelayMs: number;
}

interface PendingAsk {
  readonly command: AdminCommand;
  /** The worker that asked and its id for the question; null for the supervisor's own (SIGHUP). */
  readonly asker: ChildProcess | null;
  readonly askerId: number;
  readonly targets: ChildProcess[];
  readonly answers: Map<ChildProcess, unknown>;
  readonly timer: NodeJS.Timeout;
}

/**
 * Binds the listeners (rejects with ConfigError when one cannot be bound), starts the workers, and
 * resolves with the process exit status once every worker has stopped.
 */
export async function runSupervisor(options: SupervisorOptions): Promise<number> {
  const sockets = new Map<ListenerName, SharedHandle>();
  const addresses: ListeningAddresses = {};
  try {
    for (const spec of options.listeners) {
      const { handle, address } = await bindShared(spec);
      sockets.set(spec.name, handle);
      addresses[spec.name] = address;
    }
  } catch (err) {
    for (const handle of sockets.values()) handle.close();
    throw err;
  }
  return new Promise((resolve) => new Supervisor(options, sockets, addresses, resolve).start());
}

class Supervisor {
  private readonly slots: Slot[];
  private readonly pendingAsks = new Map<number, PendingAsk>();
  /** A process that has loaded Portico and waits to take a dead worker's place (see the top). */
  private spare: ChildProcess | null = null;
  private spareDelayMs = SPARE_DELAY_MS;
  private nextAskId = 1;
  private stopping = false;
  private exitStatus = 0;
  private announced = false;
  /** A SIGHUP that came while a worker was starting: asked again once every worker serves. */
  private reloadWanted = false;
  /** The config workers serve: replacements start with it. */
  private servedConfig: Config;

  constructor(
    private readonly options: SupervisorOptions,
    private readonly sockets: ReadonlyMap<ListenerName, SharedHandle>,
    private readonly addresses: ListeningAddresses,
    private readonly done: (status: number) => void,
  ) {
    this.slots = Array.from({ length: options.count }, (_, i) => ({
      number: i + 1,
      worker: null,
      ready: false,
      everReady: false,
      startedAt: 0,
      restartDelayMs: RESTART_DELAY_FIRST_LOOP_MS,
    }));
    this.servedConfig = options.config;
  }

  start(): void {
    this.options.log.info({ workers: this.options.count, pid: process.pid }, 'starting workers');
    for (const slot of this.slots) this.assign(slot, this.startProcess());
    process.on('SIGHUP', () => {
      if (this.options.hangup === 'stop') {
        this.options.log.info('SIGHUP without --config (terminal closed?): shutting down, letting in-flight requests finish');
        this.stop('SIGHUP');
        return;
      }
      this.options.log.info('SIGHUP: every worker re-reads the config');
      if (this.slots.some((s) => !s.ready)) this.reloadWanted = true;
      this.ask(null, 0, { op: 'reload' });
    });
    // logrotate's "reopen your log files": every worker reopens its access-log file.
    process.on('SIGUSR1', () => {
      for (const slot of this.slots) slot.worker?.kill('SIGUSR1');
    });
    process.on('SIGTERM', () => this.stop('SIGTERM'));
    process.on('SIGINT', () => this.stop('SIGINT'));
  }

  // --- connections ---

  // --- workers ---

  /** A new worker process: it loads Portico, then waits for its Start (see assign). */
  private startProcess(): ChildProcess {
    const preload = this.servedConfig.cache.enabled && this.servedConfig.cache.redis !== undefined ? 'redis' : '';
    const env = { ...process.env, [WORKER_ENV]: '1', [PRELOAD_ENV]: preload };
    const child = fork(this.options.script, this.options.args as string[], { env, stdio: 'inherit' });
    child.on('message', (message: unknown) => this.onMessage(child, message));
    // The IPC channel of a worker that was killed fails; its 'exit' follows and takes care of it.
    child.on('error', (err) => this.options.log.debug({ pid: child.pid, err }, 'worker channel error'));
    child.once('exit', (code, signal) => this.onExit(child, code, signal));
    return child;
  }

  /** `child` serves as `slot`'s worker from now on, with the config the workers serve, on the shared sockets. */
  private assign(slot: Slot, child: ChildProcess): void {
    slot.worker = child;
    slot.ready = false;
    slot.startedAt = Date.now();
    // The admin API runs in worker 1 only.
    const listeners = [...this.sockets.keys()].filter((name) => name !== 'admin' || slot.number === 1);
    send(child, { portico: 'start', slot: slot.number, count: this.options.count, addresses: this.addresses, listeners, config: this.servedConfig });
    for (const listener of listeners) send(child, { portico: 'listen', listener }, this.sockets.get(listener));
  }

  /** Every worker serves and no spare waits: one is started (it loads while nothing else needs to). */
  private keepSpare(): void {
    if (this.spare === null && !this.stopping && this.slots.every((s) => s.ready)) this.spare = this.startProcess();
  }

  private onMessage(worker: ChildProcess, message: unknown): void {
    const slot = this.slots.find((s) => s.worker === worker);
    if (slot === undefined || !isPorticoMessage<WorkerMessage>(message)) return;
    switch (message.portico) {
      case 'ready':
        slot.ready = true;
        slot.everReady = true;
        this.spareDelayMs = SPARE_DELAY_MS;
        if (!this.announced && this.slots.every((s) => s.ready)) {
          for (const [name, address] of Object.entries(this.addresses)) this.options.log.info({ listener: name, address }, 'listening');
        }
        if (this.reloadWanted && this.slots.every((s) => s.ready)) {
          this.reloadWanted = false;
          this.ask(null, 0, { op: 'reload' });
        }
        if (!this.announced && this.slots.every((s) => s.ready)) {
          this.announced = true;
          this.options.log.info({ workers: this.slots.map((s) => s.worker?.pid) }, 'all workers serving');
          this.options.onServing?.(this.addresses);
        }
        this.keepSpare();
        return;
      case 'serving':
        // A worker's Serving message carries the config it checked and serves (messages.ts).
        this.servedConfig = message.config as Config;
        return;
      case 'ask':
        this.ask(worker, message.id, message.command);
        return;
      case 'answer':
        this.onAnswer(worker, message);
        return;
    }
  }

  /** The workers that serve now, in slot order. */
  private serving(): ChildProcess[] {
    return this.slots.filter((s) => s.ready && s.worker !== null).map((s) => s.worker!);
  }

  /** Runs `command` in every serving worker, the asker's answer first. */
  private ask(asker: ChildProcess | null, askerId: number, command: AdminCommand): void {
    const serving = this.serving();
    const targets = asker === null ? serving : [asker, ...serving.filter((w) => w !== asker)];
    const id = this.nextAskId++;
    const timer = setTimeout(() => this.finishAsk(id), ASK_TIMEOUT_MS);
    this.pendingAsks.set(id, { command, asker, askerId, targets, answers: new Map(), timer });
    for (const worker of targets) send(worker, { portico: 'ask', id, command });
    this.finishIfAnswered(id);
  }

  private onAnswer(worker: ChildProcess, message: Answer): void {
    const ask = this.pendingAsks.get(message.id);
    if (ask === undefined) return;
    if (message.error !== undefined) {
      this.options.log.error({ pid: worker.pid, error: message.error }, 'a worker failed an admin command');
      ask.targets.splice(ask.targets.indexOf(worker), 1);
    } else ask.answers.set(worker, message.answer);
    this.finishIfAnswered(message.id);
  }

  private finishIfAnswered(id: number): void {
    const ask = this.pendingAsks.get(id);
    if (ask !== undefined && ask.targets.every((w) => ask.answers.has(w))) this.finishAsk(id);
  }

  private finishAsk(id: number): void {
    const ask = this.pendingAsks.get(id);
    if (ask === undefined) return;
    this.pendingAsks.delete(id);
    clearTimeout(ask.timer);
    const answers = ask.targets.filter((w) => ask.answers.has(w)).map((w) => ask.answers.get(w));
    if (ask.asker === null) {
      if (ask.command.op === 'reload') this.reportReload(answers);
      return;
    }
    if (ask.asker.connected) send(ask.asker, { portico: 'answers', id: ask.askerId, answers });
  }

  /** A SIGHUP's outcome: every worker took the file, or all kept their config and why. */
  private reportReload(answers: readonly unknown[]): void {
    const rejected = answers.find((a) => (a as { reloaded?: boolean }).reloaded === false) as { problems?: readonly string[] } | undefined;
    if (rejected !== undefined) this.options.log.error({ problems: rejected.problems ?? [] }, 'reload rejected; the previous config keeps running');
  }

  private onExit(worker: ChildProcess, code: number | null, signal: string | null): void {
    if (worker === this.spare) {
      this.onSpareExit(code, signal);
      return;
    }
    const slot = this.slots.find((s) => s.worker === worker);
    if (slot === undefined) return;
    slot.worker = null;
    slot.ready = false;
    // Questions waiting for this worker are answered without it.
    for (const [id, ask] of this.pendingAsks) {
      const at = ask.targets.indexOf(worker);
      if (at >= 0 && !ask.answers.has(worker)) {
        ask.targets.splice(at, 1);
        this.finishIfAnswered(id);
      }
    }
    const log = this.options.log;
    if (this.stopping) {
      if (this.slots.every((s) => s.worker === null) && this.spare === null) this.finish();
      return;
    }
    if (!slot.everReady) {
      // It never served: a bad config or a certificate it cannot read, which another try would not change.
      log.error({ worker: slot.number, code, signal }, 'a worker could not start; stopping');
      this.exitStatus = code || 1;
      this.stop('a worker could not start');
      return;
    }
    if (this.spare !== null) {
      // Loaded already: it takes the place at once (a new spare is started once it serves).
      const spare = this.spare;
      this.spare = null;
      log.error({ worker: slot.number, pid: worker.pid, code, signal, replacement: spare.pid }, 'a worker stopped; the spare takes its place (connections wait for it)');
      this.assign(slot, spare);
      return;
    }
    const crashLoop = Date.now() - slot.startedAt < CRASH_LOOP_MS;
    const delay = crashLoop ? slot.restartDelayMs : RESTART_DELAY_MS;
    slot.restartDelayMs = crashLoop ? Math.min(slot.restartDelayMs * 2, RESTART_DELAY_MAX_MS) : RESTART_DELAY_FIRST_LOOP_MS;
    log.error({ worker: slot.number, pid: worker.pid, code, signal, restartInMs: delay }, 'a worker stopped; starting a new one (connections wait for it)');
    setTimeout(() => {
      if (!this.stopping) this.assign(slot, this.startProcess());
    }, delay).unref();
  }

  /** The spare died before it was needed: another is started, later each time it happens again. */
  private onSpareExit(code: number | null, signal: string | null): void {
    this.spare = null;
    if (this.stopping) {
      if (this.slots.every((s) => s.worker === null)) this.finish();
      return;
    }
    this.options.log.warn({ code, signal, restartInMs: this.spareDelayMs }, 'the spare worker stopped; starting another later');
    setTimeout(() => this.keepSpare(), this.spareDelayMs).unref();
    this.spareDelayMs = Math.min(this.spareDelayMs * 2, SPARE_DELAY_MAX_MS);
  }

  private stop(reason: string): void {
    if (this.stopping) return;
    this.stopping = true;
    for (const handle of this.sockets.values()) handle.close();
    const live = this.slots.filter((s) => s.worker !== null).map((s) => s.worker!);
    this.options.log.info({ reason, workers: live.length }, 'stopping every worker');
    if (this.spare !== null) live.push(this.spare);
    if (live.length === 0) {
      this.finish();
      return;
    }
    for (const worker of live) worker.kill('SIGTERM');
    // A worker that outlives its own drain timeout by far is stuck: it is killed.
    setTimeout(() => {
      for (const worker of live) worker.kill('SIGKILL');
    }, this.options.drainMs + 5_000).unref();
  }

  private finish(): void {
    this.done(this.exitStatus);
  }
}

/** Sends unless the worker is gone; a worker that dies as the message leaves is handled by its 'exit'. */
function send(worker: ChildProcess, message: PrimaryMessage, socket?: SharedHandle): void {
  // keepOpen: the supervisor keeps its own copy of a listening socket.
  if (worker.connected) worker.send(message, socket as never, { keepOpen: true }, ignore);
}

function ignore(): void {}
