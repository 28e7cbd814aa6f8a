/**
 * A pool of backends: the one thing the reverse gateway talks to. It chooses a backend per attempt
 * (sticky cookie, then the picker over primaries, then backups), keeps the per-backend counters, feeds
 * passive and active health, and queues requests while every usable backend is at max_conns.
 */
import type { Logger } from '../core/log.js';
import { ProxyError } from '../core/errors.js';
import { Backend } from './backend.js';
import { ActiveHealthChecker } from './health-active.js';
import type { HealthRegistry } from './health-registry.js';
import type { Picker } from './picker.js';
import { createPicker } from './pickers.js';
import { RequestQueue } from './request-queue.js';
import { StickyCookie } from './sticky.js';
import type { AttemptOutcome, BackendSnapshot, BalanceRequest, PoolSpec } from './types.js';

export interface PoolDeps {
  /** Health state shared by every Pool the server builds (it survives reloads). */
  readonly registry: HealthRegistry;
  readonly log: Logger;
  /** Optional secret for backend ids (sticky cookies): without it, ids are a plain hash of pool and address. */
  readonly idSecret?: string | undefined;
  /** Told about every finished attempt (for statistics): called from release(). */
  readonly onAttempt?: ((backend: Backend, outcome: Exclude<AttemptOutcome, 'retried'>, elapsedMs: number) => void) | undefined;
}

export class Pool {
  readonly name: string;
  readonly spec: PoolSpec;
  readonly backends: readonly Backend[];
  private readonly primaries: readonly Backend[];
  private readonly backups: readonly Backend[];
  private readonly primaryPicker: Picker;
  private readonly backupPicker: Picker;
  private readonly sticky: StickyCookie | null;
  private readonly queue: RequestQueue;
  private readonly checker: ActiveHealthChecker | null;
  private readonly byId: ReadonlyMap<string, Backend>;
  private readonly onAttempt: PoolDeps['onAttempt'];
  /** Where the next panic pick starts (see panicPick). */
  private panicCursor = 0;

  constructor(spec: PoolSpec, deps: PoolDeps) {
    this.name = spec.name;
    this.spec = spec;
    this.onAttempt = deps.onAttempt;
    const backends = spec.servers.map(
      (server) =>
        new Backend({ pool: spec.name, spec: server, registry: deps.registry, log: deps.log, slowStartMs: spec.slowStartMs, idSecret: deps.idSecret }),
    );
    const seen = new Set<string>();
    for (const backend of backends) {
      if (seen.has(backend.address)) throw new Error(`pools.${spec.name}.servers: ${backend.address} is listed twice`);
      seen.add(backend.address);
    }
    this.backends = backends;
    this.byId = new Map(backends.map((b) => [b.id, b]));
    this.primaries = backends.filter((b) => !b.spec.backup);
    this.backups = backends.filter((b) => b.spec.backup);
    const options = { hashKey: spec.hashKey };
    this.primaryPicker = createPicker(spec.balance, this.primaries, options);
    this.backupPicker = createPicker(spec.balance, this.backups, options);
    this.sticky = spec.sticky ? new StickyCookie(spec.sticky.cookie, backends) : null;
    this.queue = new RequestQueue(spec.queue, spec.name);
    this.checker = spec.health ? new ActiveHealthChecker(backends, spec.health, this.onHealthCheck) : null;
  }

  /**
   * Chooses a backend (sticky, then picker on primaries, then backups only when no primary is usable
   * or has capacity), increments its inflight and requests. Returns synchronously when it can; a
   * Promise when queued. Throws/rejects ProxyError('no_backend') when every backend (incl. backups) is
   * down or already tried, ProxyError('queue_full') on overflow/timeout. `signal` (optional) takes a
   * queued request out of the queue when the client goes away; the promise then rejects with its reason.
   */
  acquire(req: BalanceRequest, tried: readonly Backend[] | null, signal?: AbortSignal): Backend | Promise<Backend> {
    const backend = this.choose(req, tried);
    if (backend !== null) return this.take(backend);
    if (!this.anyBusy(tried)) throw this.noBackend(tried);
    return this.queue.enqueue(req, tried, signal);
  }

  /**
   * Reports the end of one attempt: decrements inflight, updates latency EWMA and errors, feeds passive
   * health (with `reason`, what went wrong, for the log), wakes a queued request.
   */
  release(backend: Backend, outcome: AttemptOutcome, elapsedMs: number, reason = 'request failed'): void {
    if (backend.inflight > 0) backend.inflight--;
    if (outcome === 'retried') {
      if (this.queue.length > 0) this.queue.serveWaiting(this.serveQueued);
      return;
    }
    const now = Date.now();
    if (outcome === 'ok') {
      backend.recordLatency(elapsedMs);
      backend.health.recordSuccess(now, backend.reporter, now - elapsedMs);
    } else {
      backend.errors++;
      backend.health.recordFailure(now, this.spec.passive, reason, backend.reporter);
    }
    this.onAttempt?.(backend, outcome, elapsedMs);
    if (this.queue.length > 0) this.queue.serveWaiting(this.serveQueued);
  }

  /** Takes `backend` again for the same request (after a 'retried' release), whatever the picker would say. */
  reacquire(backend: Backend): Backend {
    return this.take(backend);
  }

  /** The Set-Cookie value pinning the client to `backend`, or undefined (no sticky sessions, or already pinned there). */
  stickyCookie(req: BalanceRequest, backend: Backend): string | undefined {
    return this.sticky?.setCookie(req, backend);
  }

  /** Starts active health checks (when the pool has `health`). */
  start(): void {
    this.checker?.start();
  }

  /** Stops active health checks. Requests in flight and in the queue are still served. */
  stop(): void {
    this.checker?.stop();
  }

  /** Requests waiting for a backend with capacity. */
  get queued(): number {
    return this.queue.length;
  }

  /** Takes a backend out of rotation: no new requests, sticky clients are moved. False for an unknown id. */
  drain(id: string): boolean {
    const backend = this.byId.get(id);
    if (backend === undefined) return false;
    if (backend.health.setDrained(true, backend.reporter) && this.queue.length > 0) this.queue.serveWaiting(this.serveQueued);
    return true;
  }

  /** Puts a drained backend back into rotation. False for an unknown id. */
  enable(id: string): boolean {
    const backend = this.byId.get(id);
    if (backend === undefined) return false;
    if (backend.health.setDrained(false, backend.reporter) && this.queue.length > 0) this.queue.serveWaiting(this.serveQueued);
    return true;
  }

  snapshot(): BackendSnapshot[] {
    return this.backends.map((b) => ({
      id: b.id,
      url: b.spec.url,
      weight: b.spec.weight,
      backup: b.spec.backup,
      state: b.state,
      reason: b.state === 'down' ? b.health.downReason : b.state === 'drained' ? 'drained by an operator' : undefined,
      inflight: b.inflight,
      requests: b.requests,
      errors: b.errors,
      latencyEwmaMs: b.latencyEwmaMs,
    }));
  }

  /** Sticky backend, else a primary, else a backup, else (panic) one passive health took out; null when none is eligible. */
  private choose(req: BalanceRequest, tried: readonly Backend[] | null): Backend | null {
    if (this.sticky !== null) {
      const pinned = this.sticky.find(req, tried);
      if (pinned !== null) return pinned;
    }
    return this.primaryPicker.pick(req, tried) ?? this.backupPicker.pick(req, tried) ?? this.panicPick(tried);
  }

  /**
   * Passive health never turns a pool into guaranteed 503s while a backend might answer (nginx never
   * marks the only server of a group unavailable; Envoy balances over every host below its panic
   * threshold): when no backend is usable at all, the request goes — in turn — to one that only
   * passive health took out. Active health checks and drains are still obeyed.
   */
  private panicPick(tried: readonly Backend[] | null): Backend | null {
    const backends = this.backends;
    const n = backends.length;
    for (let i = 0; i < n; i++) if (backends[i]!.usable) return null;
    for (let k = 0; k < n; k++) {
      const i = (this.panicCursor + k) % n;
      const backend = backends[i]!;
      const h = backend.health;
      if (h.activeUp && !h.drained && backend.hasCapacity && (tried === null || !tried.includes(backend))) {
        this.panicCursor = i + 1;
        return backend;
      }
    }
    return null;
  }

  private take(backend: Backend): Backend {
    backend.inflight++;
    backend.requests++;
    return backend;
  }

  /** Whether some backend the request may still use is usable but at max_conns (worth waiting for). */
  private anyBusy(tried: readonly Backend[] | null): boolean {
    for (let i = 0; i < this.backends.length; i++) {
      const backend = this.backends[i]!;
      if (backend.usable && !backend.hasCapacity && (tried === null || !tried.includes(backend))) return true;
    }
    return false;
  }

  private noBackend(tried: readonly Backend[] | null): ProxyError {
    return new ProxyError(
      'no_backend',
      tried !== null && tried.length > 0
        ? `pool "${this.name}": no other backend is available`
        : `pool "${this.name}": no backend is available (all down or drained)`,
    );
  }

  private readonly serveQueued = (req: BalanceRequest, tried: readonly Backend[] | null): Backend | ProxyError | null => {
    const backend = this.choose(req, tried);
    if (backend !== null) return this.take(backend);
    return this.anyBusy(tried) ? null : this.noBackend(tried);
  };

  private readonly onHealthCheck = (backend: Backend, ok: boolean, reason: string): void => {
    const health = this.spec.health;
    if (health === undefined) return;
    const change = backend.health.recordCheck(ok, `health check: ${reason}`, health.rise, health.fall, Date.now(), backend.reporter);
    if (change !== null && this.queue.length > 0) this.queue.serveWaiting(this.serveQueued);
  };
}
