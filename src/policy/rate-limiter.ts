/**
 * Per-client rate limiting: a token bucket per client address (`rate` requests per second, up to
 * `burst` at once). Buckets of clients that have gone quiet are dropped by a periodic sweep, so the
 * table stays as small as the set of active clients.
 */

export interface RateLimitSpec {
  /** Sustained requests per second. */
  readonly rate: number;
  /** Requests allowed in a burst (bucket size). */
  readonly burst: number;
}

interface Bucket {
  tokens: number;
  /** Last refill, in ms (monotonic clock). */
  at: number;
}

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly perMs: number;
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly spec: RateLimitSpec,
    private readonly now: () => number = performance.now.bind(performance),
  ) {
    this.perMs = spec.rate / 1000;
    // A bucket idle for long enough to be full again carries no state worth keeping.
    const refillMs = Math.max(1000, (spec.burst / spec.rate) * 1000);
    this.sweeper = setInterval(() => this.sweep(refillMs), refillMs);
    this.sweeper.unref();
  }

  /** Takes one token for `key`: 0 when allowed, else the whole seconds to wait (for Retry-After). */
  take(key: string): number {
    const now = this.now();
    let bucket = this.buckets.get(key);
    if (bucket === undefined) {
      bucket = { tokens: this.spec.burst, at: now };
      this.buckets.set(key, bucket);
    } else {
      bucket.tokens = Math.min(this.spec.burst, bucket.tokens + (now - bucket.at) * this.perMs);
      bucket.at = now;
    }
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - bucket.tokens) / this.perMs / 1000));
  }

  get size(): number {
    return this.buckets.size;
  }

  stop(): void {
    clearInterval(this.sweeper);
  }

  private sweep(idleMs: number): void {
    const cutoff = this.now() - idleMs;
    for (const [key, bucket] of this.buckets) if (bucket.at < cutoff) this.buckets.delete(key);
  }
}
