/**
 * `--workers N`: the primary process. It forks N workers that each run a whole Portico on the same
 * listeners (node:cluster's primary accepts each connection and hands it to the next worker in turn),
 * starts a new worker when one dies, passes SIGHUP (reload), SIGUSR1 (reopen the access log) and
 * SIGTERM/SIGINT (drain, then stop) on to every worker, and relays what the workers tell each other:
 * admin commands that must reach all of them, and the URLs that an unsafe request invalidated in one
 * worker's cache.
 */
import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import type { AdminCommand } from '../admin/admin-commands.js';
import type { Logger } from '../log.js';
import { COUNT_ENV, isPorticoMessage, SLOT_ENV, type Answer, type PrimaryMessage, type WorkerMessage } from './messages.js';

/** How many workers `workers: N | "auto"` means: "auto" is one per CPU core. */
export function workerCount(setting: number | 'auto'): number {
  return setting === 'auto' ? availableParallelism() : setting;
}

export interface PrimaryOptions {
  readonly count: number;
  readonly log: Logger;
  /** shutdown.drain_timeout: how long workers may take to stop before they are killed. */
  readonly drainMs: number;
  /** What SIGHUP means: re-read the config file, or (started without one: the terminal closed) stop. */
  readonly hangup?: 'reload' | 'stop';
}

/** A worker that does not answer an admin command within this long is left out of the answer. */
const ASK_TIMEOUT_MS = 10_000;
/** A worker that dies sooner than this after its start is restarted with a growing delay. */
const CRASH_LOOP_MS = 5_000;
const RESTART_DELAY_MS = 100;
const RESTART_DELAY_MAX_MS = 10_000;

interface Slot {
  readonly number: number;
  worker: Worker | null;
  ready: boolean;
  /** Started successfully at least once: a later death is a crash to recover from, not a bad config. */
  everReady: boolean;
  startedAt: number;
  restartDelayMs: number;
}

interface PendingAsk {
  /** The worker that asked and its id for the question; null for the primary's own (SIGHUP). */
  readonly asker: Worker | null;
  readonly askerId: number;
  readonly targets: Worker[];
  readonly answers: Map<Worker, unknown>;
  readonly timer: NodeJS.Timeout;
}

/** Runs the primary until every worker has stopped; resolves with the process exit status. */
export function runPrimary(options: PrimaryOptions): Promise<number> {
  return new Promise((resolve) => new Primary(options, resolve).start());
}

class Primary {
  private readonly slots: Slot[];
  private readonly pending = new Map<number, PendingAsk>();
  private nextAskId = 1;
  private stopping = false;
  private exitStatus = 0;
  private announced = false;

  constructor(
    private readonly options: PrimaryOptions,
    private readonly done: (status: number) => void,
  ) {
    this.slots = Array.from({ length: options.count }, (_, i) => ({
      number: i + 1,
      worker: null,
      ready: false,
      everReady: false,
      startedAt: 0,
      restartDelayMs: RESTART_DELAY_MS,
    }));
  }

  start(): void {
    this.options.log.info({ workers: this.options.count, pid: process.pid }, 'starting workers');
    for (const slot of this.slots) this.fork(slot);
    process.on('SIGHUP', () => {
      if (this.options.hangup === 'stop') {
        this.stop('SIGHUP');
        return;
      }
      this.options.log.info('SIGHUP: every worker re-reads the config');
      this.ask(null, 0, { op: 'reload' });
    });
    // logrotate's "reopen your log files": every worker reopens its access-log file.
    process.on('SIGUSR1', () => {
      for (const slot of this.slots) slot.worker?.process.kill('SIGUSR1');
    });
    process.on('SIGTERM', () => this.stop('SIGTERM'));
    process.on('SIGINT', () => this.stop('SIGINT'));
  }

  private fork(slot: Slot): void {
    const worker = cluster.fork({ [SLOT_ENV]: String(slot.number), [COUNT_ENV]: String(this.options.count) });
    slot.worker = worker;
    slot.ready = false;
    slot.startedAt = Date.now();
    worker.on('message', (message: unknown) => this.onMessage(slot, worker, message));
    // The IPC channel of a worker that was killed fails; its 'exit' follows and takes care of it.
    worker.on('error', (err) => this.options.log.debug({ worker: slot.number, err }, 'worker channel error'));
    worker.once('exit', (code, signal) => this.onExit(slot, worker, code, signal));
  }

  private onMessage(slot: Slot, worker: Worker, message: unknown): void {
    if (!isPorticoMessage<WorkerMessage>(message)) return;
    switch (message.portico) {
      case 'ready':
        slot.ready = true;
        slot.everReady = true;
        if (!this.announced && this.slots.every((s) => s.ready)) {
          this.announced = true;
          this.options.log.info({ workers: this.slots.map((s) => s.worker?.process.pid) }, 'all workers serving');
        }
        return;
      case 'ask':
        this.ask(worker, message.id, message.command);
        return;
      case 'answer':
        this.onAnswer(worker, message);
        return;
      case 'invalidate':
        for (const other of this.serving()) if (other !== worker) send(other, message);
        return;
    }
  }

  /** The workers that serve now, in slot order. */
  private serving(): Worker[] {
    return this.slots.filter((s) => s.ready && s.worker !== null).map((s) => s.worker!);
  }

  /** Runs `command` in every serving worker, the asker's answer first. */
  private ask(asker: Worker | null, askerId: number, command: AdminCommand): void {
    const serving = this.serving();
    const targets = asker === null ? serving : [asker, ...serving.filter((w) => w !== asker)];
    const id = this.nextAskId++;
    const timer = setTimeout(() => this.finishAsk(id), ASK_TIMEOUT_MS);
    this.pending.set(id, { asker, askerId, targets, answers: new Map(), timer });
    for (const worker of targets) send(worker, { portico: 'ask', id, command });
    this.finishIfAnswered(id);
  }

  private onAnswer(worker: Worker, message: Answer): void {
    const ask = this.pending.get(message.id);
    if (ask === undefined) return;
    if (message.error !== undefined) {
      this.options.log.error({ pid: worker.process.pid, error: message.error }, 'a worker failed an admin command');
      ask.targets.splice(ask.targets.indexOf(worker), 1);
    } else ask.answers.set(worker, message.answer);
    this.finishIfAnswered(message.id);
  }

  private finishIfAnswered(id: number): void {
    const ask = this.pending.get(id);
    if (ask !== undefined && ask.targets.every((w) => ask.answers.has(w))) this.finishAsk(id);
  }

  private finishAsk(id: number): void {
    const ask = this.pending.get(id);
    if (ask === undefined) return;
    this.pending.delete(id);
    clearTimeout(ask.timer);
    if (ask.asker === null || !ask.asker.isConnected()) return;
    const answers = ask.targets.filter((w) => ask.answers.has(w)).map((w) => ask.answers.get(w));
    send(ask.asker, { portico: 'answers', id: ask.askerId, answers });
  }

  private onExit(slot: Slot, worker: Worker, code: number | null, signal: string | null): void {
    if (slot.worker === worker) {
      slot.worker = null;
      slot.ready = false;
    }
    // Questions waiting for this worker are answered without it.
    for (const [id, ask] of this.pending) {
      const at = ask.targets.indexOf(worker);
      if (at >= 0 && !ask.answers.has(worker)) {
        ask.targets.splice(at, 1);
        this.finishIfAnswered(id);
      }
    }
    const log = this.options.log;
    if (this.stopping) {
      if (this.slots.every((s) => s.worker === null)) this.done(this.exitStatus);
      return;
    }
    if (!slot.everReady) {
      // It never served: a bad config or an address in use, which another try would not change.
      log.error({ worker: slot.number, code, signal }, 'a worker could not start; stopping');
      this.exitStatus = code || 1;
      this.stop('a worker could not start');
      return;
    }
    const crashLoop = Date.now() - slot.startedAt < CRASH_LOOP_MS;
    const delay = crashLoop ? slot.restartDelayMs : RESTART_DELAY_MS;
    slot.restartDelayMs = crashLoop ? Math.min(slot.restartDelayMs * 2, RESTART_DELAY_MAX_MS) : RESTART_DELAY_MS;
    log.error({ worker: slot.number, pid: worker.process.pid, code, signal, restartInMs: delay }, 'a worker stopped; starting a new one');
    setTimeout(() => {
      if (!this.stopping) this.fork(slot);
    }, delay).unref();
  }

  private stop(reason: string): void {
    if (this.stopping) return;
    this.stopping = true;
    const live = this.slots.filter((s) => s.worker !== null).map((s) => s.worker!);
    this.options.log.info({ reason, workers: live.length }, 'stopping every worker');
    if (live.length === 0) {
      this.done(this.exitStatus);
      return;
    }
    for (const worker of live) worker.process.kill('SIGTERM');
    // A worker that outlives its own drain timeout by far is stuck: it is killed.
    setTimeout(() => {
      for (const slot of this.slots) slot.worker?.process.kill('SIGKILL');
    }, this.options.drainMs + 5_000).unref();
  }
}

/** Sends unless the worker is gone; a worker that dies as the message leaves is handled by its 'exit'. */
function send(worker: Worker, message: PrimaryMessage): void {
  if (worker.isConnected()) worker.send(message, undefined, ignore);
}

function ignore(): void {}
