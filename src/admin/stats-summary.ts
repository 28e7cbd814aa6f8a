/**
 * The periodic one-line summary at info level (`log.stats_interval`; 0 turns it off): requests and
 * RPS over the interval, status mix, cache hit ratio, p99, and the backends that failed or are down.
 */
import type { Logger } from '../core/log.js';
import type { AdminTarget, CacheView } from './sources.js';

/** What the summary reads: the traffic, the pools and the cache's counters. */
type SummarySource = Pick<AdminTarget, 'traffic' | 'pools'> & { readonly cache: Pick<CacheView, 'stats'> | null };

export class StatsSummary {
  private timer: NodeJS.Timeout | null = null;
  private intervalMs = 0;
  private lastAt = Date.now();
  private lastTotal = 0;
  private lastStatus: Record<string, number> = {};
  private lastHits = 0;
  private lastMisses = 0;
  private readonly lastFailures = new Map<string, number>();

  constructor(
    private readonly source: SummarySource,
    private readonly log: Logger,
  ) {}

  /** (Re)starts the timer with `intervalMs`; a no-op when it is unchanged. */
  start(intervalMs: number): void {
    if (intervalMs === this.intervalMs && (this.timer !== null || intervalMs <= 0)) return;
    this.stop();
    this.intervalMs = intervalMs;
    if (intervalMs > 0) {
      this.timer = setInterval(this.emit, intervalMs);
      this.timer.unref();
    }
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** Logs one summary line covering the time since the previous one. */
  readonly emit = (): void => {
    const { traffic, cache, pools } = this.source;
    const now = Date.now();
    const seconds = Math.max(0.001, (now - this.lastAt) / 1000);
    const requests = traffic.total - this.lastTotal;
    const byStatus = traffic.totals().byStatus;
    const status: Record<string, number> = {};
    for (const [k, v] of Object.entries(byStatus)) {
      const d = v - (this.lastStatus[k] ?? 0);
      if (d > 0) status[k] = d;
    }
    let hitRatio: number | undefined;
    const stats = cache?.stats();
    if (stats) {
      const hits = stats.hits - this.lastHits;
      const misses = stats.misses - this.lastMisses;
      if (hits + misses > 0) hitRatio = Math.round((hits / (hits + misses)) * 1000) / 1000;
      this.lastHits = stats.hits;
      this.lastMisses = stats.misses;
    }
    const backendErrors: Record<string, number> = {};
    for (const b of traffic.allBackends()) {
      const key = `${b.pool} ${b.url}`;
      const d = b.failures - (this.lastFailures.get(key) ?? 0);
      if (d > 0) backendErrors[key] = d;
      this.lastFailures.set(key, b.failures);
    }
    const down: string[] = [];
    for (const [name, pool] of pools) for (const s of pool.snapshot()) if (s.state !== 'up') down.push(`${name} ${s.url} (${s.state})`);
    const p99 = traffic.latencyQuantile(0.99);
    this.log.info(
      {
        requests,
        rps: Math.round((requests / seconds) * 100) / 100,
        total: traffic.total,
        inflight: traffic.inflight.reduce((a, b) => a + b, 0),
        status,
        hitRatio,
        p99Ms: p99 === null ? undefined : Math.round(p99 * 10) / 10,
        backendErrors: Object.keys(backendErrors).length > 0 ? backendErrors : undefined,
        backendsNotUp: down.length > 0 ? down : undefined,
      },
      'stats',
    );
    this.lastAt = now;
    this.lastTotal = traffic.total;
    this.lastStatus = byStatus;
  };
}
