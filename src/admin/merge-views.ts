/**
 * One admin view (GET /api/stats, /api/pools) out of every worker's: counters and gauges add up,
 * latencies take the slowest worker's (a quantile of quantiles would be made up), ratios are computed
 * again from the summed counts, settings and labels come from the first worker.
 */

/** Numbers that are settings or timestamps, not counts: the first worker's value. */
const FIRST: ReadonlySet<string> = new Set(['pid', 'weight', 'intervalMs', 'timeoutMs', 'end']);
/** Latencies, uptime and reload counts (every worker reloads together): the largest value. */
const LARGEST: ReadonlySet<string> = new Set(['p50Ms', 'p99Ms', 'latencyP99Ms', 'latencyEwmaMs', 'uptimeSeconds', 'succeeded', 'failed']);
/** Lists of recent events: merged newest first, as long as the longest list. */
const RECENT: ReadonlySet<string> = new Set(['recent']);

export function mergeViews<T>(views: readonly T[]): T {
  return views.length === 1 ? views[0]! : (merge(views as readonly unknown[], '') as T);
}

function merge(values: readonly unknown[], key: string): unknown {
  const first = values[0];
  if (typeof first === 'number') {
    const numbers = values.filter((v): v is number => typeof v === 'number');
    if (FIRST.has(key)) return first;
    if (LARGEST.has(key)) return Math.max(...numbers);
    return numbers.reduce((a, b) => a + b, 0);
  }
  if (Array.isArray(first)) {
    const lists = values.filter(Array.isArray) as unknown[][];
    if (RECENT.has(key)) return newestFirst(lists);
    if (!first.some(isRecord) && !first.some((v) => typeof v === 'number')) return first;
    // Same config in every worker: the n-th pool (server, history second) is the same one everywhere.
    return first.map((_, i) => merge(lists.map((l) => l[i]), key));
  }
  if (isRecord(first)) {
    const records = values.filter(isRecord);
    const out: Record<string, unknown> = {};
    for (const name of new Set(records.flatMap((r) => Object.keys(r)))) {
      out[name] = merge(records.map((r) => r[name]).filter((v) => v !== undefined), name);
    }
    return withRatios(out);
  }
  // Strings, booleans, null: the first worker's (e.g. a backend's state as its health checks see it).
  return first === null ? (values.find((v) => v !== null) ?? null) : first;
}

function withRatios(view: Record<string, unknown>): Record<string, unknown> {
  const { hits, misses, requests, errors } = view;
  if ('hitRatio' in view && typeof hits === 'number' && typeof misses === 'number') {
    view.hitRatio = hits + misses > 0 ? round4(hits / (hits + misses)) : null;
  }
  if ('errorRate' in view && typeof requests === 'number' && typeof errors === 'number') {
    view.errorRate = requests > 0 ? round4(errors / requests) : 0;
  }
  return view;
}

function newestFirst(lists: readonly unknown[][]): unknown[] {
  const limit = Math.max(...lists.map((l) => l.length));
  const at = (v: unknown) => (isRecord(v) && typeof v.at === 'string' ? v.at : '');
  return lists
    .flat()
    .sort((a, b) => (at(a) < at(b) ? 1 : at(a) > at(b) ? -1 : 0))
    .slice(0, limit);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function round4(n: number): number {
  return Math.round(n * 10_000) / 10_000;
}
