/** The JSON shapes of GET /api/stats and GET /api/pools, built from what the admin target exposes. */
import type { AdminTarget, PoolView } from './sources.js';
import { DOORS } from './traffic-stats.js';

const round = (n: number, digits = 2): number => {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
};
const roundOrNull = (n: number | null): number | null => (n === null ? null : round(n));

export interface BackendJson {
  readonly id: string;
  readonly url: string;
  readonly weight: number;
  readonly backup: boolean;
  readonly state: 'up' | 'down' | 'drained';
  /** Why it is down or drained; null while up. */
  readonly reason: string | null;
  readonly drained: boolean;
  readonly inflight: number;
  /** Finished attempts against this backend since start (survives reloads). */
  readonly requests: number;
  readonly errors: number;
  /** errors / requests, 0 … 1. */
  readonly errorRate: number;
  readonly latencyEwmaMs: number;
  /** p99 of attempts over the last minute; null without traffic. */
  readonly latencyP99Ms: number | null;
}

export interface PoolJson {
  readonly name: string;
  readonly balance: string;
  readonly sticky: { readonly cookie: string } | null;
  readonly health: { readonly path: string; readonly intervalMs: number; readonly timeoutMs: number } | null;
  readonly queued: number;
  readonly servers: readonly BackendJson[];
}

function poolView(target: AdminTarget, name: string, pool: PoolView): PoolJson {
  const traffic = target.traffic;
  const servers = pool.snapshot().map((s): BackendJson => {
    const t = traffic.backend(name, new URL(s.url).href);
    const requests = t ? t.attempts : s.requests;
    const errors = t ? t.failures : s.errors;
    return {
      id: s.id,
      url: s.url,
      weight: s.weight,
      backup: s.backup,
      state: s.state,
      reason: s.reason ?? null,
      drained: s.state === 'drained',
      inflight: s.inflight,
      requests,
      errors,
      errorRate: requests > 0 ? round(errors / requests, 4) : 0,
      latencyEwmaMs: round(s.latencyEwmaMs),
      latencyP99Ms: t ? roundOrNull(t.recent.quantile(0.99, Date.now())) : null,
    };
  });
  const spec = pool.spec;
  return {
    name,
    balance: spec.balance,
    sticky: spec.sticky ? { cookie: spec.sticky.cookie } : null,
    health: spec.health ? { path: spec.health.path, intervalMs: spec.health.intervalMs, timeoutMs: spec.health.timeoutMs } : null,
    queued: pool.queued,
    servers,
  };
}

export function poolsView(target: AdminTarget): PoolJson[] {
  return [...target.pools].map(([name, pool]) => poolView(target, name, pool));
}

export function statsView(target: AdminTarget, version: string): Record<string, unknown> {
  const traffic = target.traffic;
  const now = Date.now();
  const totals = traffic.totals();
  const byDoor: Record<string, unknown> = {};
  DOORS.forEach((door, i) => {
    byDoor[door] = {
      total: totals.byDoor[door],
      inflight: traffic.inflight[i]!,
      bytes: traffic.bytes[i]!,
      p99Ms: roundOrNull(traffic.latencyQuantile(0.99, door)),
    };
  });
  const cache = target.cache?.stats();
  const lookups = cache ? cache.hits + cache.misses : 0;
  const tunnels = traffic.tunnels;
  return {
    version,
    pid: process.pid,
    startedAt: new Date(target.startedAt).toISOString(),
    uptimeSeconds: Math.floor((now - target.startedAt) / 1000),
    listeners: target.addresses(),
    requests: {
      total: traffic.total,
      inflight: traffic.inflight.reduce((a, b) => a + b, 0),
      rps: round(traffic.rate(10)),
      rps1m: round(traffic.rate(60)),
      p50Ms: roundOrNull(traffic.latencyQuantile(0.5)),
      p99Ms: roundOrNull(traffic.latencyQuantile(0.99)),
      bytes: traffic.bytes.reduce((a, b) => a + b, 0),
      byDoor,
      byStatus: totals.byStatus,
      byCache: totals.byCache,
      byMethod: totals.byMethod,
      byProtocol: { ...traffic.byProtocol },
    },
    http2: { ...traffic.http2 },
    history: traffic.history(),
    cache: cache
      ? {
          enabled: true,
          entries: cache.entries,
          bytes: cache.bytes,
          maxBytes: cache.maxBytes,
          hits: cache.hits,
          misses: cache.misses,
          stores: cache.stores,
          evictions: cache.evictions,
          hitRatio: lookups > 0 ? round(cache.hits / lookups, 4) : null,
          shared: cache.shared === null ? null : { ...cache.shared, since: new Date(cache.shared.since).toISOString() },
        }
      : { enabled: false },
    tunnels: {
      connect: { ...tunnels.connect },
      upgrade: { ...tunnels.upgrade },
    },
    pools: poolsView(target),
    blocked: {
      total: target.blocked.total,
      byRule: Object.fromEntries(target.blocked.byRule),
      recent: target.blocked.recent(20).map((b) => ({ ...b, at: new Date(b.at).toISOString() })),
    },
    reloads: {
      succeeded: target.reloads.succeeded,
      failed: target.reloads.failed,
      lastSuccessAt: target.reloads.lastSuccessAt ? new Date(target.reloads.lastSuccessAt).toISOString() : null,
      lastFailureAt: target.reloads.lastFailureAt ? new Date(target.reloads.lastFailureAt).toISOString() : null,
      lastProblems: target.reloads.lastProblems,
    },
  };
}
