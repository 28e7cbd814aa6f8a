/**
 * Latency histograms with fixed, preallocated buckets: recording is a couple of arithmetic operations
 * and one array increment, with no allocation. Two kinds:
 *
 * - `RecentLatency`: fine geometric buckets (≈12% wide) over a sliding window of the last minute, for
 *   percentiles on the dashboard (p50, p99 "right now", not since start).
 * - `CumulativeHistogram`: the coarse, cumulative buckets Prometheus wants (seconds, never reset).
 */

/** Smallest bucket bound (ms): everything faster lands in bucket 0. */
const MIN_MS = 0.05;
const GROWTH = 1.125;
const INV_LOG_GROWTH = 1 / Math.log(GROWTH);
/** Bucket count: 0.05 ms … ≈ 8 minutes. */
const BUCKETS = 140;
/** Upper bound (ms) of each bucket. */
const UPPER_MS: Float64Array = (() => {
  const out = new Float64Array(BUCKETS);
  for (let i = 0; i < BUCKETS; i++) out[i] = MIN_MS * GROWTH ** i;
  return out;
})();

function bucketOf(ms: number): number {
  if (!(ms > MIN_MS)) return 0;
  const i = Math.ceil(Math.log(ms / MIN_MS) * INV_LOG_GROWTH);
  return i < BUCKETS ? i : BUCKETS - 1;
}

/** A sliding-window histogram: `slices` slices of `sliceMs`, the oldest one recycled as time moves. */
export class RecentLatency {
  private readonly counts: Uint32Array;
  private readonly sliceIds: Float64Array;
  private readonly sliceMs: number;
  private readonly slices: number;

  constructor(windowMs = 60_000, slices = 6) {
    this.slices = slices;
    this.sliceMs = Math.max(1, Math.floor(windowMs / slices));
    this.counts = new Uint32Array(slices * BUCKETS);
    this.sliceIds = new Float64Array(slices).fill(-1);
  }

  record(ms: number, now: number): void {
    const id = Math.floor(now / this.sliceMs);
    const slot = id % this.slices;
    if (this.sliceIds[slot] !== id) {
      this.counts.fill(0, slot * BUCKETS, (slot + 1) * BUCKETS);
      this.sliceIds[slot] = id;
    }
    this.counts[slot * BUCKETS + bucketOf(ms)]!++;
  }

  /** Samples in the window. */
  count(now: number): number {
    let n = 0;
    this.eachLiveSlot(now, (base) => {
      for (let b = 0; b < BUCKETS; b++) n += this.counts[base + b]!;
    });
    return n;
  }

  /**
   * The q-quantile (0 < q ≤ 1) of the samples in the window, in ms, as the upper bound of the bucket
   * that holds it (so within ≈12% above the true value); null when the window is empty.
   */
  quantile(q: number, now: number): number | null {
    const merged = new Float64Array(BUCKETS);
    let total = 0;
    this.eachLiveSlot(now, (base) => {
      for (let b = 0; b < BUCKETS; b++) {
        const c = this.counts[base + b]!;
        merged[b]! += c;
        total += c;
      }
    });
    if (total === 0) return null;
    const rank = Math.max(1, Math.ceil(q * total));
    let seen = 0;
    for (let b = 0; b < BUCKETS; b++) {
      seen += merged[b]!;
      if (seen >= rank) return UPPER_MS[b]!;
    }
    return UPPER_MS[BUCKETS - 1]!;
  }

  private eachLiveSlot(now: number, fn: (base: number) => void): void {
    const current = Math.floor(now / this.sliceMs);
    for (let s = 0; s < this.slices; s++) {
      const id = this.sliceIds[s]!;
      if (id > current - this.slices && id <= current) fn(s * BUCKETS);
    }
  }
}

/** Prometheus-style bucket bounds, in seconds. */
const PROMETHEUS_BUCKETS_SECONDS: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** A cumulative histogram in seconds with fixed bounds (the last slot is +Inf). Never reset. */
export class CumulativeHistogram {
  readonly bounds: readonly number[];
  /** Per-bucket (not cumulative) counts; index bounds.length is the +Inf overflow. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(bounds: readonly number[] = PROMETHEUS_BUCKETS_SECONDS) {
    this.bounds = bounds;
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(seconds: number): void {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && seconds > bounds[i]!) i++;
    this.counts[i]!++;
    this.sum += seconds;
    this.count++;
  }
}
