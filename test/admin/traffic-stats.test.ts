/** Pure logic of the admin layer: latency windows, per-second history, counters, blocked log, config diff, redaction, summary. */
import { describe, expect, it } from 'vitest';
import { BlockedLog } from '../../src/admin/blocked-log.js';
import { diffConfig } from '../../src/admin/config-diff.js';
import { CumulativeHistogram, RecentLatency } from '../../src/admin/latency.js';
import { redactedConfig } from '../../src/admin/redact.js';
import { StatsSummary } from '../../src/admin/stats-summary.js';
import { TrafficStats } from '../../src/admin/traffic-stats.js';
import { validateConfig } from '../../src/config/load.js';
import type { ExchangeRecord } from '../../src/pipeline/session.js';
import { recordingLogger } from '../balance/logs.js';

const record = (over: Partial<ExchangeRecord> = {}): ExchangeRecord => ({
  door: 'reverse',
  kind: 'http',
  url: '/',
  user: undefined,
  startedAt: performance.now(),
  clientAddress: '127.0.0.1',
  upstream: undefined,
  cache: undefined,
  error: undefined,
  method: 'GET',
  bytes: 100,
  ...over,
});

describe('RecentLatency', () => {
  it('gives quantiles within a bucket (≈12%) of the truth', () => {
    const h = new RecentLatency();
    for (let i = 1; i <= 1000; i++) h.record(i, 0);
    const p50 = h.quantile(0.5, 0)!;
    const p99 = h.quantile(0.99, 0)!;
    expect(p50).toBeGreaterThanOrEqual(500);
    expect(p50).toBeLessThan(500 * 1.13);
    expect(p99).toBeGreaterThanOrEqual(990);
    expect(p99).toBeLessThan(990 * 1.13);
    expect(h.count(0)).toBe(1000);
  });

  it('forgets samples older than the window', () => {
    const h = new RecentLatency(60_000, 6);
    h.record(1000, 0);
    expect(h.quantile(0.99, 59_000)).not.toBeNull();
    expect(h.quantile(0.99, 61_000)).toBeNull();
    h.record(5, 61_000);
    expect(h.quantile(0.99, 61_000)!).toBeLessThan(6);
  });

  it('has no samples to report when empty, and clamps tiny and huge values', () => {
    const h = new RecentLatency();
    expect(h.quantile(0.5, 0)).toBeNull();
    h.record(0, 0);
    h.record(1e9, 0);
    expect(h.quantile(0.01, 0)).toBe(0.05);
    expect(h.quantile(1, 0)).toBeGreaterThan(100_000);
  });
});

describe('CumulativeHistogram', () => {
  it('puts each observation in the first bucket whose bound is ≥ it', () => {
    const h = new CumulativeHistogram([0.1, 1]);
    h.observe(0.05);
    h.observe(0.1);
    h.observe(0.5);
    h.observe(3);
    expect([...h.counts]).toEqual([2, 1, 1]);
    expect(h.count).toBe(4);
    expect(h.sum).toBeCloseTo(3.65);
  });
});

describe('TrafficStats', () => {
  it('counts by door, method, status class and cache result', () => {
    const t = new TrafficStats(() => 10_000);
    t.recordRequest(record({ cache: 'hit' }), 200);
    t.recordRequest(record({ cache: 'miss', method: 'POST' }), 201);
    t.recordRequest(record({ door: 'forward', method: undefined }), 200); // a CONNECT reported by the tunnel code
    t.recordRequest(record({ method: 'BREW' }), 418);
    t.recordRequest(record(), 503);
    t.recordRequest(record(), 499);
    const totals = t.totals();
    expect(t.total).toBe(6);
    expect(totals.byDoor).toEqual({ reverse: 5, forward: 1 });
    expect(totals.byStatus).toEqual({ '1xx': 0, '2xx': 3, '3xx': 0, '4xx': 2, '5xx': 1 });
    expect(totals.byCache).toMatchObject({ hit: 1, miss: 1, none: 4 });
    expect(totals.byMethod).toMatchObject({ GET: 3, POST: 1, CONNECT: 1, OTHER: 1 });
    expect(t.bytes[0]).toBe(500);
    const seen: string[] = [];
    t.forEachCount((door, method, status, cache, n) => seen.push(`${door} ${method} ${status} ${cache} ${n}`));
    expect(seen).toContain('reverse GET 2xx hit 1');
    expect(seen).toContain('forward CONNECT 2xx none 1');
  });

  it('keeps requests and 5xx per second for the last minutes, zeroing quiet seconds', () => {
    let now = 1_000_000;
    const t = new TrafficStats(() => now);
    for (let i = 0; i < 5; i++) t.recordRequest(record(), 200);
    t.recordRequest(record(), 502);
    now += 1000;
    t.recordRequest(record(), 200);
    now += 3000;
    const h = t.history();
    expect(h.end).toBe(now / 1000 - 1);
    expect(h.requests.slice(-4)).toEqual([6, 1, 0, 0]);
    expect(h.errors.slice(-4)).toEqual([1, 0, 0, 0]);
    expect(t.rate(4)).toBeCloseTo(7 / 4);
    now += 400_000; // longer than the history
    expect(t.history().requests.every((n) => n === 0)).toBe(true);
  });

  it('keeps upstream attempts per pool and backend across backend objects (reloads)', () => {
    const t = new TrafficStats(() => 0);
    const spec = { url: 'http://10.0.0.5:3000' };
    const before = { pool: 'web', address: 'http://10.0.0.5:3000/', spec };
    const after = { pool: 'web', address: 'http://10.0.0.5:3000/', spec };
    t.recordAttempt(before, 'ok', 12);
    t.recordAttempt(after, 'failure', 30);
    const b = t.backend('web', 'http://10.0.0.5:3000/')!;
    expect(b).toMatchObject({ attempts: 2, failures: 1, url: 'http://10.0.0.5:3000', pool: 'web' });
    expect(b.histogram.count).toBe(2);
    expect(b.recent.quantile(1, 0)).toBeGreaterThanOrEqual(30);
    expect([...t.allBackends()]).toHaveLength(1);
  });
});

describe('BlockedLog', () => {
  it('keeps the newest entries first, bounded, with counts per rule', () => {
    const log = new BlockedLog(3);
    for (let i = 0; i < 5; i++) log.record({ door: 'forward', at: i, client: '127.0.0.1', method: 'GET', target: `h${i}:80`, rule: i % 2 ? 'odd' : 'even' });
    expect(log.recent().map((b) => b.target)).toEqual(['h4:80', 'h3:80', 'h2:80']);
    expect(log.recent(1)).toHaveLength(1);
    expect(log.total).toBe(5);
    expect(Object.fromEntries(log.byRule)).toEqual({ even: 3, odd: 2 });
  });
});

const base = {
  reverse: { listen: '127.0.0.1:8080', routes: [{ path: '/', pool: 'web' }] },
  pools: { web: { servers: [{ url: 'http://10.0.0.5:3000' }] } },
};

describe('diffConfig', () => {
  it('names what changed, and what needs a restart', () => {
    const before = validateConfig(base);
    const after = validateConfig({
      ...base,
      reverse: { ...base.reverse, listen: '127.0.0.1:8081' },
      pools: { web: { servers: [{ url: 'http://10.0.0.5:3000' }, { url: 'http://10.0.0.6:3000' }], balance: 'random' }, api: { servers: [{ url: 'http://10.0.0.7:1' }] } },
    });
    const outcome = diffConfig(before, after);
    expect(outcome.changes).toEqual(expect.arrayContaining(['reverse.listen: changed', 'pools.web.balance: changed', 'pools.web.servers: changed', 'pools.api: added']));
    expect(outcome.restartNeeded).toEqual(['reverse.listen']);
    expect(diffConfig(before, validateConfig(base))).toEqual({ changes: [], restartNeeded: [] });
  });

  it('does not ask for a restart for a new certificate: the running TLS listener takes it on reload', () => {
    const tls = (cert: string) => ({ ...base, reverse: { ...base.reverse, tls_listen: '127.0.0.1:8443', tls: { cert, key: '/k.pem' } } });
    const outcome = diffConfig(validateConfig(tls('/a.pem')), validateConfig(tls('/b.pem')));
    expect(outcome).toEqual({ changes: ['reverse.tls: changed'], restartNeeded: [] });
    // A TLS listener that was not there before is one.
    expect(diffConfig(validateConfig(base), validateConfig(tls('/a.pem'))).restartNeeded).toEqual(['reverse.tls_listen']);
  });
});

describe('redactedConfig', () => {
  it('hides secrets and writes addresses back', () => {
    const config = validateConfig({
      ...base,
      forward: { listen: 3128, auth: { users: { bob: 'hunter2' } }, upstream_proxy: 'http://user:pw@10.0.0.1:3128' },
      admin: { listen: '127.0.0.1:9090', token: 'tok' },
    });
    const shown = redactedConfig(config) as any;
    expect(shown.admin).toEqual({ listen: '127.0.0.1:9090', token: '[redacted]' });
    expect(shown.forward.auth.users).toEqual({ bob: '[redacted]' });
    expect(shown.forward.upstream_proxy).toBe('http://user:redacted@10.0.0.1:3128/');
    expect(shown.forward.listen).toBe('127.0.0.1:3128');
    expect(JSON.stringify(shown)).not.toMatch(/hunter2|"tok"|:pw@/);
  });
});

describe('StatsSummary', () => {
  it('logs one line with requests, RPS, status mix, hit ratio and per-backend errors since the last one', () => {
    const { log, lines } = recordingLogger();
    const traffic = new TrafficStats();
    let hits = 3;
    const cache = { stats: () => ({ entries: 1, bytes: 1, maxBytes: 10, hits, misses: 1, stores: 1, evictions: 0, shared: null }), purgeUrl: async () => 0, purgePrefix: async () => 0, purgeTag: async () => 0 };
    const summary = new StatsSummary({ traffic, cache, pools: new Map() }, log);
    traffic.recordRequest(record(), 200);
    traffic.recordRequest(record(), 502);
    traffic.recordAttempt({ pool: 'web', address: 'http://a/', spec: { url: 'http://a' } }, 'failure', 5);
    summary.emit();
    const first = lines.at(-1) as any;
    expect(first).toMatchObject({ msg: 'stats', requests: 2, total: 2, status: { '2xx': 1, '5xx': 1 }, hitRatio: 0.75, backendErrors: { 'web http://a': 1 } });
    expect(first.rps).toBeGreaterThan(0);
    hits = 5;
    summary.emit();
    const second = lines.at(-1) as any;
    expect(second).toMatchObject({ requests: 0, hitRatio: 1 });
    expect(second.backendErrors).toBeUndefined();
    expect(second.status).toEqual({});
    summary.stop();
  });
});
