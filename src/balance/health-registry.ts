/**
 * Health state of backends, keyed by backend address (the normalized URL) so that it survives a config
 * reload: the server keeps one registry for its whole life and builds every new Pool against it.
 */
import type { Logger } from '../core/log.js';
import type { PassiveSpec } from './types.js';

/** Where a state change is logged, and under which labels. Built once per Backend. */
export interface HealthReporter {
  readonly log: Logger;
  readonly pool: string;
  readonly backend: string;
}

/**
 * One backend's health. Active checks (rise/fall) and the passive failure window (nginx `max_fails`
 * within `fail_timeout`) are tracked separately; the backend is usable only when both say so and it is
 * not drained. Mutate it only through the methods: each one logs a state change exactly once.
 */
export class BackendHealth {
  readonly address: string;
  /** Active checks: backends start up (as in nginx) until checks say otherwise. */
  activeUp = true;
  consecutiveSuccesses = 0;
  consecutiveFailures = 0;
  /** Drained by an operator: no new requests, sticky clients are moved. */
  drained = false;
  /** Failures counted in the current passive window. */
  passiveFailures = 0;
  passiveWindowStart = 0;
  /**
   * 0 when passive health has nothing against the backend. Otherwise the backend failed `max_fails`
   * times within `fail_timeout`: it is out until this time, then on probation (one failure takes it out
   * again, one success clears it).
   */
  passiveDownUntil = 0;
  /** When passive health last took the backend out (0: never). */
  passiveDownSince = 0;
  /** When the backend last became usable again after being down (0: never down). For slow start. */
  recoveredAt = 0;
  /** Why the backend was last taken out (shown by the dashboard while it is down); cleared when it comes back. */
  downReason: string | undefined = undefined;

  constructor(address: string) {
    this.address = address;
  }

  /** True while a passive failure keeps the backend out. */
  isPassivelyOut(now: number): boolean {
    return this.passiveDownUntil > now;
  }

  /** Records one active check. Returns 'up' or 'down' when the state changed, else null. */
  recordCheck(ok: boolean, reason: string, rise: number, fall: number, now: number, reporter: HealthReporter): 'up' | 'down' | null {
    if (ok) {
      this.consecutiveFailures = 0;
      this.consecutiveSuccesses++;
      if (!this.activeUp && this.consecutiveSuccesses >= rise) {
        this.activeUp = true;
        this.recoveredAt = now;
        if (this.passiveDownUntil === 0) this.downReason = undefined;
        reporter.log.info(
          { pool: reporter.pool, backend: reporter.backend, reason: `${this.consecutiveSuccesses} health checks passed (${reason})` },
          'backend up',
        );
        return 'up';
      }
      return null;
    }
    this.consecutiveSuccesses = 0;
    this.consecutiveFailures++;
    if (this.activeUp && this.consecutiveFailures >= fall) {
      this.activeUp = false;
      this.downReason = `${this.consecutiveFailures} health checks failed (${reason})`;
      reporter.log.warn({ pool: reporter.pool, backend: reporter.backend, reason: this.downReason }, 'backend down');
      return 'down';
    }
    return null;
  }

  /**
   * Records a request that got a response, sent at `startedAt`. Clears a passive failure whose
   * fail_timeout is over, or one that a request sent while the backend was out (its pool had no other
   * backend to send it to) has just disproved.
   */
  recordSuccess(now: number, reporter: HealthReporter, startedAt = now): void {
    if (this.passiveDownUntil === 0) return;
    const over = this.passiveDownUntil <= now;
    if (!over && startedAt < this.passiveDownSince) return;
    this.passiveDownUntil = 0;
    this.passiveFailures = 0;
    if (this.activeUp) this.downReason = undefined;
    const reason = over ? 'a request succeeded after fail_timeout' : 'a request sent while it was out succeeded';
    reporter.log.info({ pool: reporter.pool, backend: reporter.backend, reason }, 'backend up');
  }

  /** Records a failed request (nginx semantics; `max_fails: 0` disables passive health). */
  recordFailure(now: number, passive: PassiveSpec, reason: string, reporter: HealthReporter): void {
    if (passive.maxFails <= 0) return;
    if (this.passiveDownUntil !== 0) {
      // Already out: a request that was in flight when it went out changes nothing. On probation
      // (fail_timeout over, no success yet) one failure takes it out again; it was never reported up.
      if (this.passiveDownUntil <= now) {
        this.passiveDownSince = now;
        this.passiveDownUntil = now + passive.failTimeoutMs;
        this.recoveredAt = this.passiveDownUntil;
      }
      return;
    }
    if (this.passiveFailures === 0 || now - this.passiveWindowStart >= passive.failTimeoutMs) {
      this.passiveWindowStart = now;
      this.passiveFailures = 0;
    }
    this.passiveFailures++;
    if (this.passiveFailures >= passive.maxFails) {
      this.passiveDownSince = now;
      this.passiveDownUntil = now + passive.failTimeoutMs;
      this.recoveredAt = this.passiveDownUntil;
      this.downReason = `${this.passiveFailures} failed request${this.passiveFailures === 1 ? '' : 's'} within ${formatMs(passive.failTimeoutMs)} (last: ${reason}); out for ${formatMs(passive.failTimeoutMs)}`;
      reporter.log.warn({ pool: reporter.pool, backend: reporter.backend, reason: this.downReason }, 'backend down');
      this.passiveFailures = 0;
    }
  }

  /** Drains (true) or re-enables (false). Returns whether anything changed. */
  setDrained(drained: boolean, reporter: HealthReporter): boolean {
    if (this.drained === drained) return false;
    this.drained = drained;
    reporter.log.info({ pool: reporter.pool, backend: reporter.backend }, drained ? 'backend drained' : 'backend enabled');
    return true;
  }
}

/** `30s`, `1m`, `500ms`: how a person reads a fail_timeout. */
function formatMs(ms: number): string {
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

export class HealthRegistry {
  private readonly states = new Map<string, BackendHealth>();

  /** The health of the backend at `address` (a normalized URL), created up and healthy on first use. */
  get(address: string): BackendHealth {
    let state = this.states.get(address);
    if (state === undefined) {
      state = new BackendHealth(address);
      this.states.set(address, state);
    }
    return state;
  }

  has(address: string): boolean {
    return this.states.has(address);
  }

  get size(): number {
    return this.states.size;
  }

  /** Forgets every address not in `addresses` (after a reload removed servers). */
  retainOnly(addresses: Iterable<string>): void {
    const keep = new Set(addresses);
    for (const address of this.states.keys()) if (!keep.has(address)) this.states.delete(address);
  }
}
