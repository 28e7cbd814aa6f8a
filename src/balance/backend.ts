/** One server of one pool: its address, opaque id, counters, and a view of its shared health state. */
import { createHash, createHmac } from 'node:crypto';
import type { Logger } from '../core/log.js';
import type { BackendHealth, HealthRegistry, HealthReporter } from './health-registry.js';
import type { ServerSpec } from './types.js';

/** Weight of the newest sample in the latency EWMA. */
const LATENCY_EWMA_ALPHA = 0.3;
/** Slow start never drops a backend's weight below this share of its nominal weight. */
const SLOW_START_MIN_SHARE = 0.01;

export interface BackendOptions {
  readonly pool: string;
  readonly spec: ServerSpec;
  readonly registry: HealthRegistry;
  readonly log: Logger;
  /** Time over which a recovered backend ramps up to its weight; 0 disables slow start. */
  readonly slowStartMs?: number;
  /** When set, ids are an HMAC under this secret (addresses cannot be guessed back from them). */
  readonly idSecret?: string | undefined;
}

/**
 * The opaque, stable id of a backend (used in the sticky cookie and the admin API): 16 hex chars of
 * sha256(pool NUL address), or of an HMAC when a secret is given. It never contains the address.
 */
function backendId(pool: string, address: string, secret?: string): string {
  const input = `${pool}\0${address}`;
  const digest = secret ? createHmac('sha256', secret).update(input) : createHash('sha256').update(input);
  return digest.digest('hex').slice(0, 16);
}

export class Backend {
  readonly id: string;
  readonly url: URL;
  /** The normalized URL: the key of this backend's health in the registry. */
  readonly address: string;
  readonly spec: ServerSpec;
  readonly pool: string;
  readonly health: BackendHealth;
  /** Labels for state-change logs. */
  readonly reporter: HealthReporter;
  readonly slowStartMs: number;

  inflight = 0;
  requests = 0;
  errors = 0;
  /** Exponentially weighted moving average of response time; 0 until the first sample. */
  latencyEwmaMs = 0;
  latencySamples = 0;

  constructor(options: BackendOptions) {
    this.spec = options.spec;
    this.pool = options.pool;
    this.url = new URL(options.spec.url);
    this.address = this.url.href;
    this.id = backendId(options.pool, this.address, options.idSecret);
    this.health = options.registry.get(this.address);
    this.reporter = { log: options.log, pool: options.pool, backend: options.spec.url };
    this.slowStartMs = options.slowStartMs ?? 0;
  }

  /** Up by active checks, not drained, and not taken out by passive health. */
  get usable(): boolean {
    const h = this.health;
    return h.activeUp && !h.drained && (h.passiveDownUntil === 0 || h.passiveDownUntil <= Date.now());
  }

  /** Below `max_conns` (0 means unlimited). */
  get hasCapacity(): boolean {
    return this.spec.maxConns === 0 || this.inflight < this.spec.maxConns;
  }

  get state(): 'up' | 'down' | 'drained' {
    const h = this.health;
    if (h.drained) return 'drained';
    return h.activeUp && !h.isPassivelyOut(Date.now()) ? 'up' : 'down';
  }

  /** The weight pickers use: the configured weight, ramped up linearly during slow start. */
  effectiveWeight(now: number): number {
    const weight = this.spec.weight;
    const since = this.health.recoveredAt;
    if (this.slowStartMs <= 0 || since === 0) return weight;
    const elapsed = now - since;
    if (elapsed >= this.slowStartMs) return weight;
    return weight * Math.max(SLOW_START_MIN_SHARE, elapsed / this.slowStartMs);
  }

  recordLatency(elapsedMs: number): void {
    this.latencyEwmaMs =
      this.latencySamples === 0 ? elapsedMs : this.latencyEwmaMs + LATENCY_EWMA_ALPHA * (elapsedMs - this.latencyEwmaMs);
    this.latencySamples++;
  }
}
