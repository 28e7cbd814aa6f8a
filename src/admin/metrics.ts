/**
 * Prometheus metrics (`GET /metrics`) on a dedicated prom-client Registry. Nothing is observed through
 * prom-client on the request path: the proxy records into TrafficStats (typed arrays), and every
 * metric here is filled from that, the pools, the cache and the blocked-request log when scraped.
 */
import { collectDefaultMetrics, Counter, Gauge, Registry, type Metric } from 'prom-client';
import type { BackendSnapshot } from '../balance/types.js';
import type { CacheStats } from '../cache/types.js';
import type { CumulativeHistogram } from './latency.js';
import type { AdminTarget } from './sources.js';
import { DOORS, TUNNEL_KINDS } from './traffic-stats.js';

type Labels = Record<string, string>;

/**
 * A histogram family whose buckets are kept elsewhere (preallocated CumulativeHistograms), exposed in
 * prom-client's metric shape so the Registry formats it like any other.
 */
class ExternalHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  constructor(
    readonly name: string,
    readonly help: string,
    private readonly series: () => Iterable<readonly [Labels, CumulativeHistogram]>,
  ) {}

  get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: unknown[] }> {
    const values: unknown[] = [];
    for (const [labels, h] of this.series()) {
      let cumulative = 0;
      for (let i = 0; i < h.bounds.length; i++) {
        cumulative += h.counts[i]!;
        values.push({ labels: { ...labels, le: h.bounds[i]! }, value: cumulative, metricName: `${this.name}_bucket` });
      }
      values.push({ labels: { ...labels, le: '+Inf' }, value: h.count, metricName: `${this.name}_bucket` });
      values.push({ labels, value: h.sum, metricName: `${this.name}_sum` });
      values.push({ labels, value: h.count, metricName: `${this.name}_count` });
    }
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values });
  }

  reset(): void {}
}

export class AdminMetrics {
  readonly registry = new Registry();

  constructor(target: AdminTarget, version: string) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    const traffic = target.traffic;

    new Gauge({
      name: 'portico_build_info',
      help: 'Always 1; the version label says which Portico is running.',
      labelNames: ['version'],
      registers,
      collect() {
        this.set({ version }, 1);
      },
    });

    // --- requests through the front doors ---
    new Counter({
      name: 'portico_requests_total',
      help: 'Requests answered, by front door, method, status class and cache result.',
      labelNames: ['door', 'method', 'status_class', 'cache'],
      registers,
      collect() {
        this.reset();
        traffic.forEachCount((door, method, status, cache, n) => this.inc({ door, method, status_class: status, cache }, n));
      },
    });
    new Counter({
      name: 'portico_response_bytes_total',
      help: 'Bytes sent to clients (headers and body), by front door.',
      labelNames: ['door'],
      registers,
      collect() {
        this.reset();
        DOORS.forEach((door, i) => this.inc({ door }, traffic.bytes[i]!));
      },
    });
    new Gauge({
      name: 'portico_inflight_requests',
      help: 'Requests being answered right now, by front door.',
      labelNames: ['door'],
      registers,
      collect() {
        DOORS.forEach((door, i) => this.set({ door }, traffic.inflight[i]!));
      },
    });
    this.register(
      new ExternalHistogram('portico_request_duration_seconds', 'Time from request to the end of the response, by front door.', () =>
        DOORS.map((door, i) => [{ door }, traffic.durations[i]!] as const),
      ),
    );

    // --- upstream backends ---
    this.register(
      new ExternalHistogram('portico_upstream_request_duration_seconds', 'Time of each attempt against a backend, until its response body ended.', function* () {
        for (const b of traffic.allBackends()) yield [{ pool: b.pool, backend: b.url }, b.histogram] as const;
      }),
    );
    new Counter({
      name: 'portico_upstream_failures_total',
      help: 'Attempts against a backend that failed (connect errors, timeouts, 502-504, broken bodies).',
      labelNames: ['pool', 'backend'],
      registers,
      collect() {
        this.reset();
        for (const b of traffic.allBackends()) this.inc({ pool: b.pool, backend: b.url }, b.failures);
      },
    });
    const eachBackend = (fn: (pool: string, s: BackendSnapshot) => void) => {
      for (const [name, pool] of target.pools) for (const s of pool.snapshot()) fn(name, s);
    };
    new Gauge({
      name: 'portico_backend_up',
      help: '1 when the backend takes new requests (healthy and not drained), else 0.',
      labelNames: ['pool', 'backend'],
      registers,
      collect() {
        this.reset();
        eachBackend((pool, s) => this.set({ pool, backend: s.url }, s.state === 'up' ? 1 : 0));
      },
    });
    new Gauge({
      name: 'portico_backend_state',
      help: 'The backend state: 1 for the current one of up, down, drained.',
      labelNames: ['pool', 'backend', 'state'],
      registers,
      collect() {
        this.reset();
        eachBackend((pool, s) => {
          for (const state of ['up', 'down', 'drained'] as const) this.set({ pool, backend: s.url, state }, s.state === state ? 1 : 0);
        });
      },
    });
    new Gauge({
      name: 'portico_backend_inflight_requests',
      help: 'Requests a backend is answering right now.',
      labelNames: ['pool', 'backend'],
      registers,
      collect() {
        this.reset();
        eachBackend((pool, s) => this.set({ pool, backend: s.url }, s.inflight));
      },
    });
    new Gauge({
      name: 'portico_pool_queued_requests',
      help: 'Requests waiting for a backend of the pool with capacity (max_conns).',
      labelNames: ['pool'],
      registers,
      collect() {
        this.reset();
        for (const [pool, p] of target.pools) this.set({ pool }, p.queued);
      },
    });

    // --- cache ---
    const cacheGauge = (name: string, help: string, read: (s: CacheStats) => number) =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          const stats = target.cache?.stats();
          this.set(stats ? read(stats) : 0);
        },
      });
    const cacheCounter = (name: string, help: string, read: (s: CacheStats) => number) =>
      new Counter({
        name,
        help,
        registers,
        collect() {
          this.reset();
          const stats = target.cache?.stats();
          this.inc(stats ? read(stats) : 0);
        },
      });
    cacheGauge('portico_cache_entries', 'Responses stored in the cache.', (s) => s.entries);
    cacheGauge('portico_cache_bytes', 'Bytes stored in the cache.', (s) => s.bytes);
    cacheGauge('portico_cache_max_bytes', 'The cache size limit in bytes (cache.max_size).', (s) => s.maxBytes);
    cacheCounter('portico_cache_hits_total', 'Lookups answered from the cache (fresh, stale or revalidated).', (s) => s.hits);
    cacheCounter('portico_cache_misses_total', 'Lookups that had to go to the origin.', (s) => s.misses);
    cacheCounter('portico_cache_stores_total', 'Responses written to the cache.', (s) => s.stores);
    cacheCounter('portico_cache_evictions_total', 'Entries evicted to stay within cache.max_size.', (s) => s.evictions);
    // The shared tier (cache.redis): 1 while the Redis server answers, 0 while it is away or not set up.
    cacheGauge('portico_cache_shared_up', 'Whether the shared cache tier (Redis) answers: 1 up, 0 down or none.', (s) => (s.shared?.status === 'up' ? 1 : 0));
    cacheCounter('portico_cache_shared_hits_total', 'Lookups the shared tier (Redis) had a usable response for.', (s) => s.shared?.hits ?? 0);
    cacheCounter('portico_cache_shared_errors_total', 'Shared-tier (Redis) commands that failed or timed out.', (s) => s.shared?.errors ?? 0);

    // --- tunnels (CONNECT and WebSocket/Upgrade) ---
    new Gauge({
      name: 'portico_tunnels_open',
      help: 'Open tunnels: forward-proxy CONNECT (kind="connect") and reverse-proxy WebSocket/Upgrade (kind="upgrade").',
      labelNames: ['kind'],
      registers,
      collect() {
        for (const kind of TUNNEL_KINDS) this.set({ kind }, traffic.tunnels[kind].open);
      },
    });
    new Counter({
      name: 'portico_tunnels_total',
      help: 'Tunnels opened.',
      labelNames: ['kind'],
      registers,
      collect() {
        this.reset();
        for (const kind of TUNNEL_KINDS) this.inc({ kind }, traffic.tunnels[kind].total);
      },
    });
    new Counter({
      name: 'portico_tunnel_bytes_total',
      help: 'Bytes through closed tunnels: direction="up" client to target, "down" target to client.',
      labelNames: ['kind', 'direction'],
      registers,
      collect() {
        this.reset();
        for (const kind of TUNNEL_KINDS) {
          this.inc({ kind, direction: 'up' }, traffic.tunnels[kind].bytesUp);
          this.inc({ kind, direction: 'down' }, traffic.tunnels[kind].bytesDown);
        }
      },
    });

    // --- protocols (HTTP/2 at the reverse door) ---
    new Counter({
      name: 'portico_requests_by_protocol_total',
      help: 'Finished requests by the client\'s protocol: protocol="http1" (HTTP/1.x) or "http2".',
      labelNames: ['protocol'],
      registers,
      collect() {
        this.reset();
        this.inc({ protocol: 'http1' }, traffic.byProtocol.http1);
        this.inc({ protocol: 'http2' }, traffic.byProtocol.http2);
      },
    });
    new Gauge({
      name: 'portico_http2_connections_open',
      help: 'Open HTTP/2 connections (reverse TLS listener, and h2c).',
      registers,
      collect() {
        this.set(traffic.http2.open);
      },
    });
    new Counter({
      name: 'portico_http2_connections_closed_total',
      help: 'HTTP/2 connections closed by a guard: reason="reset_flood" (ENHANCE_YOUR_CALM), "settings_timeout", "idle".',
      labelNames: ['reason'],
      registers,
      collect() {
        this.reset();
        this.inc({ reason: 'reset_flood' }, traffic.http2.resetFloods);
        this.inc({ reason: 'settings_timeout' }, traffic.http2.settingsTimeouts);
        this.inc({ reason: 'idle' }, traffic.http2.idleClosed);
      },
    });

    // --- forward-proxy policy ---
    new Counter({
      name: 'portico_forward_blocked_total',
      help: 'Forward-proxy requests refused by an access rule, by rule.',
      labelNames: ['rule'],
      registers,
      collect() {
        this.reset();
        for (const [rule, n] of target.blocked.byRule) this.inc({ rule }, n);
      },
    });

    // --- config reloads ---
    new Counter({
      name: 'portico_config_reloads_total',
      help: 'Config reloads (SIGHUP or POST /api/reload), by result.',
      labelNames: ['result'],
      registers,
      collect() {
        this.reset();
        this.inc({ result: 'success' }, target.reloads.succeeded);
        this.inc({ result: 'failure' }, target.reloads.failed);
      },
    });
    new Gauge({
      name: 'portico_config_last_reload_success_timestamp_seconds',
      help: 'When the config was last loaded successfully (start or reload), in Unix seconds.',
      registers,
      collect() {
        this.set((target.reloads.lastSuccessAt || target.startedAt) / 1000);
      },
    });
  }

  private register(metric: ExternalHistogram): void {
    this.registry.registerMetric(metric as unknown as Metric);
  }
}
