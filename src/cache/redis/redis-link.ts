/**
 * The Redis tier's connections and their health: one connection for commands, one for pub/sub, and
 * the status the tier answers by ('connecting' | 'up' | 'down').
 *
 * - Every command is bounded: node-redis's per-command `timeout` with `rejectInFlight` rejects a
 *   command that has not been answered within `commandTimeoutMs`, whether it is still waiting to be
 *   sent or already sent (its late reply is discarded). The queue is capped, so a stalled server
 *   never collects an unbounded backlog.
 * - No offline queue: while the connection is down a command fails at once (and the tier does not
 *   even try: callers check `isUp()` first). Reconnection runs in the background with capped,
 *   jittered exponential backoff.
 * - A server that is connected but slow (e.g. `DEBUG SLEEP`, a long script, swapping) opens a
 *   breaker after `TIMEOUTS_TO_OPEN` commands in a row time out: the status goes 'down' and calls
 *   return at once, until a PING probe (retried with backoff) is answered in time.
 * - Each status change is logged once, with its reason; the errors node-redis reports on every
 *   reconnect attempt only update `lastError`.
 */
import { createClient, ErrorReply, RESP_TYPES, TimeoutError, TimeoutReadError, type RedisArgument } from '@redis/client';
import type { Logger } from '../../core/log.js';
import { redactUrl } from './redis-url.js';
import { ALL_SCRIPTS, type Script } from './scripts.js';

export type LinkStatus = 'connecting' | 'up' | 'down';

/** What Redis answers, as this link reads it (RESP2; bulk strings as Buffers). */
export type Reply = null | number | string | Buffer | Reply[];

export interface LinkOptions {
  readonly url: string;
  readonly commandTimeoutMs: number;
  readonly reconnectMaxDelayMs: number;
  readonly log: Logger;
  readonly now: () => number;
  /** CLIENT SETNAME for both connections (shows in CLIENT LIST). */
  readonly clientName: string;
}

/** Consecutive command timeouts that make a connected server count as down. */
const TIMEOUTS_TO_OPEN = 3;
const RECONNECT_BASE_MS = 50;
const PROBE_BASE_MS = 100;
/** Commands waiting to be sent or answered, beyond which new ones fail at once. */
const QUEUE_LIMIT = 10_000;
const CONNECT_TIMEOUT_MS = 2_000;
const CLOSE_TIMEOUT_MS = 1_000;

function makeClient(options: LinkOptions) {
  return createClient({
    url: options.url,
    RESP: 2,
    name: options.clientName,
    disableOfflineQueue: true,
    commandsQueueMaxLength: QUEUE_LIMIT,
    commandOptions: {
      timeout: options.commandTimeoutMs,
      rejectInFlight: true,
      typeMapping: { [RESP_TYPES.BLOB_STRING]: Buffer },
    },
    socket: {
      connectTimeout: CONNECT_TIMEOUT_MS,
      reconnectStrategy: (retries: number) => jitter(Math.min(RECONNECT_BASE_MS * 2 ** Math.min(retries, 16), options.reconnectMaxDelayMs)),
    },
  });
}

type Client = ReturnType<typeof makeClient>;

export type MessageHandler = (channel: string, message: Buffer) => void;

export class RedisLink {
  private readonly client: Client;
  private readonly sub: Client;
  private readonly log: Logger;
  private readonly safeUrl: string;
  private status: LinkStatus = 'connecting';
  private since: number;
  private lastError: string | undefined;
  private breakerOpen = false;
  private consecutiveTimeouts = 0;
  private probeDelayMs = PROBE_BASE_MS;
  private probeTimer: NodeJS.Timeout | null = null;
  private closed = false;
  private busUp = false;
  private subscribed = false;
  /** The bus was up and went down: purges may have been missed meanwhile. */
  private busGap = false;
  private statusListeners: ((status: LinkStatus) => void)[] = [];
  private busListeners: ((up: boolean, afterGap: boolean) => void)[] = [];
  /** Counters for state(). */
  errors = 0;
  timeouts = 0;

  constructor(
    private readonly options: LinkOptions,
    private readonly channels: readonly string[],
    private readonly onMessage: MessageHandler,
  ) {
    this.log = options.log;
    this.since = options.now();
    this.safeUrl = redactUrl(options.url);
    this.client = makeClient(options);
    this.sub = this.client.duplicate();

    this.client.on('ready', this.onReady);
    this.client.on('error', this.onError);
    this.sub.on('ready', this.onSubReady);
    this.sub.on('error', this.onSubError);
    // connect() resolves once connected and retries by itself until then; failures arrive as 'error'.
    this.client.connect().catch(ignore);
    this.sub.connect().catch(ignore);
  }

  isUp(): boolean {
    return this.status === 'up';
  }

  isBusUp(): boolean {
    return this.busUp;
  }

  snapshot(): { status: LinkStatus; since: number; lastError: string | undefined } {
    return { status: this.status, since: this.since, lastError: this.lastError };
  }

  onStatus(listener: (status: LinkStatus) => void): void {
    this.statusListeners.push(listener);
  }

  /** Told when the bus is subscribed (`afterGap`: it had been before, and was lost) and when it is lost. */
  onBus(listener: (up: boolean, afterGap: boolean) => void): void {
    this.busListeners.push(listener);
  }

  /** One command, bounded by the command timeout; rejects when the link is not up. */
  async call(args: readonly RedisArgument[]): Promise<Reply> {
    if (this.status !== 'up') throw new NotUpError(this.status);
    try {
      const reply = await this.client.sendCommand<Reply>(args);
      this.consecutiveTimeouts = 0;
      return reply;
    } catch (err) {
      this.failed(err);
      throw err;
    }
  }

  /** Runs a script by its SHA1, sending its source when the server does not have it (NOSCRIPT). */
  async script(s: Script, keys: readonly RedisArgument[], args: readonly RedisArgument[]): Promise<Reply> {
    const tail = [String(keys.length), ...keys, ...args];
    try {
      return await this.call(['EVALSHA', s.sha, ...tail]);
    } catch (err) {
      if (!(err instanceof ErrorReply) || !err.message.startsWith('NOSCRIPT')) throw err;
      return this.call(['EVAL', s.source, ...tail]);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.probeTimer) clearTimeout(this.probeTimer);
    this.setStatus('down', 'closed', true);
    await Promise.all([closeClient(this.client), closeClient(this.sub)]);
  }

  // ---------------------------------------------------------------------------------------------

  private readonly onReady = (): void => {
    if (this.closed) return;
    // Scripts are loaded on every connect (a restarted server has none); EVALSHA falls back anyway.
    for (const s of ALL_SCRIPTS) this.client.sendCommand(['SCRIPT', 'LOAD', s.source]).catch(ignore);
    if (this.breakerOpen) this.probe();
    else this.setStatus('up');
  };

  private readonly onError = (err: Error): void => {
    this.lastError = describe(err);
    if (this.closed || this.client.isReady) return;
    this.setStatus('down', this.lastError);
  };

  private readonly onSubReady = (): void => {
    if (this.closed) return;
    if (this.subscribed) {
      // node-redis subscribed again before 'ready'.
      this.busIsUp();
      return;
    }
    const channels = [...this.channels];
    this.sub
      .subscribe(channels, (message: Buffer, channel: Buffer) => this.onMessage(channel.toString(), message), true)
      .then(() => {
        this.subscribed = true;
        this.busIsUp();
      })
      .catch((err: unknown) => {
        this.lastError = describe(err);
        if (this.closed) return;
        // Tried again a little later while the connection lasts (a new connection tries on 'ready').
        setTimeout(() => {
          if (this.sub.isReady && !this.subscribed) this.onSubReady();
        }, jitter(PROBE_BASE_MS)).unref();
      });
  };

  private readonly onSubError = (): void => {
    if (this.sub.isReady || !this.busUp) return;
    this.busGap = true;
    this.busUp = false;
    for (const l of this.busListeners) l(false, false);
  };

  private busIsUp(): void {
    if (this.busUp) return;
    this.busUp = true;
    const afterGap = this.busGap;
    this.busGap = false;
    for (const l of this.busListeners) l(true, afterGap);
  }

  private failed(err: unknown): void {
    this.errors++;
    if (!(err instanceof TimeoutReadError || err instanceof TimeoutError)) return;
    this.timeouts++;
    if (++this.consecutiveTimeouts >= TIMEOUTS_TO_OPEN && !this.breakerOpen) {
      this.breakerOpen = true;
      this.probeDelayMs = PROBE_BASE_MS;
      this.setStatus('down', `slow: ${this.consecutiveTimeouts} commands in a row took longer than ${this.options.commandTimeoutMs} ms`);
      this.scheduleProbe();
    }
  }

  private scheduleProbe(): void {
    if (this.closed || this.probeTimer) return;
    this.probeTimer = setTimeout(() => {
      this.probeTimer = null;
      this.probe();
    }, jitter(this.probeDelayMs));
    this.probeTimer.unref();
    this.probeDelayMs = Math.min(this.probeDelayMs * 2, this.options.reconnectMaxDelayMs);
  }

  /** A PING answered in time closes the breaker; otherwise another probe follows, later. */
  private probe(): void {
    if (this.closed || !this.breakerOpen) return;
    if (!this.client.isReady) return; // 'ready' probes again
    this.client.sendCommand(['PING']).then(
      () => {
        if (this.closed || !this.breakerOpen) return;
        this.breakerOpen = false;
        this.consecutiveTimeouts = 0;
        if (this.client.isReady) this.setStatus('up');
      },
      (err: unknown) => {
        this.lastError = describe(err);
        this.scheduleProbe();
      },
    );
  }

  private setStatus(next: LinkStatus, reason?: string, quiet = false): void {
    if (next === this.status) return;
    const now = this.options.now();
    const was = this.status;
    const lastedMs = now - this.since;
    this.status = next;
    this.since = now;
    if (reason !== undefined) this.lastError = reason;
    if (!quiet) {
      if (next === 'up') this.log.info({ redis: this.safeUrl, ...(was === 'down' ? { downForMs: lastedMs } : {}) }, 'redis cache tier up');
      else this.log.warn({ redis: this.safeUrl, reason: this.lastError }, 'redis cache tier down: serving from the local tier and the origin');
    }
    for (const l of this.statusListeners) l(next);
  }
}

/** Thrown by call() while the link is not up (never sent). */
export class NotUpError extends Error {
  constructor(status: LinkStatus) {
    super(`redis tier is ${status}`);
  }
}

export function isOutOfMemory(err: unknown): boolean {
  return err instanceof ErrorReply && err.message.startsWith('OOM');
}

function describe(err: unknown): string {
  if (err instanceof Error) return err.message || err.constructor.name;
  return String(err);
}

function jitter(ms: number): number {
  return Math.round(ms * (0.8 + Math.random() * 0.4));
}

async function closeClient(client: Client): Promise<void> {
  if (!client.isReady) {
    try {
      client.destroy();
    } catch {
      // already closed
    }
    return;
  }
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([client.close(), new Promise((resolve) => (timer = setTimeout(resolve, CLOSE_TIMEOUT_MS)))]);
  } catch {
    // closing a connection that failed is done
  } finally {
    clearTimeout(timer);
    try {
      if (client.isOpen) client.destroy();
    } catch {
      // already closed
    }
  }
}

function ignore(): void {}
