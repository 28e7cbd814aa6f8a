/**
 * Traffic statistics for the dashboard, the JSON API, the periodic summary and /metrics. One instance
 * lives as long as the process (it survives reloads). Recording runs once per request and once per
 * upstream attempt: counters and preallocated typed arrays only, no allocation on the hot path.
 */
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { ExchangeRecord, FrontDoor } from '../pipeline/session.js';
import { CumulativeHistogram, RecentLatency } from './latency.js';

export const DOORS = ['reverse', 'forward'] as const satisfies readonly FrontDoor[];
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'CONNECT', 'OTHER'] as const;
const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;
/** How the cache took part: its `cacheResult`, `none` when it never answered (errors, cache off). */
const CACHE_RESULTS = ['hit', 'stale', 'revalidated', 'miss', 'bypass', 'local', 'none', 'other'] as const;
export const TUNNEL_KINDS = ['connect', 'upgrade'] as const;

export type DoorName = (typeof DOORS)[number];
export type TunnelKind = (typeof TUNNEL_KINDS)[number];

const N_METHODS = METHODS.length;
const N_STATUS = STATUS_CLASSES.length;
const N_CACHE = CACHE_RESULTS.length;
/** Seconds of per-second history kept for the RPS chart. */
const HISTORY_SECONDS = 300;

/** An upstream attempt's outcome, as the balance layer reports it. */
export type AttemptResult = 'ok' | 'failure';

/** What the stats need to know of a backend object (the balance layer's Backend satisfies it). */
export interface AttemptBackend {
  readonly pool: string;
  readonly address: string;
  readonly spec: { readonly url: string };
}

/** Per backend (pool + address), across reloads. */
class BackendTraffic {
  attempts = 0;
  failures = 0;
  readonly histogram = new CumulativeHistogram();
  readonly recent = new RecentLatency();
  constructor(
    readonly pool: string,
    readonly url: string,
  ) {}
}

export interface TunnelTotals {
  open: number;
  total: number;
  /** Bytes from clients toward targets. */
  bytesUp: number;
  /** Bytes from targets toward clients. */
  bytesDown: number;
}

export class TrafficStats {
  /** Finished requests by door × method × status class × cache result. */
  readonly counts = new Float64Array(DOORS.length * N_METHODS * N_STATUS * N_CACHE);
  readonly bytes = new Float64Array(DOORS.length);
  readonly inflight = new Int32Array(DOORS.length);
  readonly durations: readonly CumulativeHistogram[] = DOORS.map(() => new CumulativeHistogram());
  readonly recent: readonly RecentLatency[] = DOORS.map(() => new RecentLatency());
  readonly tunnels: Record<TunnelKind, TunnelTotals> = {
    connect: { open: 0, total: 0, bytesUp: 0, bytesDown: 0 },
    upgrade: { open: 0, total: 0, bytesUp: 0, bytesDown: 0 },
  };
  total = 0;
  /** Finished requests by the client's protocol. */
  readonly byProtocol = { http1: 0, http2: 0 };
  /** HTTP/2 connections (the reverse door's TLS listener, and h2c): kept by src/reverse/http2-listener.ts. */
  readonly http2 = { open: 0, total: 0, resetFloods: 0, settingsTimeouts: 0, idleClosed: 0 };
  /** Requests finished per second (ring indexed by epoch second). */
  private readonly perSecond = new Float64Array(HISTORY_SECONDS);
  /** 5xx answers per second. */
  private readonly errorsPerSecond = new Float64Array(HISTORY_SECONDS);
  private lastSecond: number;
  private readonly backends = new Map<string, BackendTraffic>();
  private readonly backendByObject = new WeakMap<object, BackendTraffic>();
  private readonly clock: () => number;

  constructor(clock: () => number = Date.now) {
    this.clock = clock;
    this.lastSecond = Math.floor(clock() / 1000);
  }

  /** Counts a request as in flight on `door` until its response closes. Call from the listener's 'request' event. */
  track(res: ServerResponse, door: DoorName): void {
    const i = door === 'reverse' ? 0 : 1;
    this.inflight[i]!++;
    res.on('close', i === 0 ? this.reverseClosed : this.forwardClosed);
  }

  private readonly reverseClosed = (): void => {
    this.inflight[0]!--;
  };

  private readonly forwardClosed = (): void => {
    this.inflight[1]!--;
  };

  /** One finished request (the runtime's onDone hook, called by both front doors). */
  readonly recordRequest = (record: ExchangeRecord, status: number): void => {
    const now = this.clock();
    const door = record.door === 'reverse' ? 0 : 1;
    // A forward CONNECT is reported by the tunnel code, which does not go through logWhenDone (no method).
    const method = record.method ?? (door === 1 ? 'CONNECT' : undefined);
    const index = ((door * N_METHODS + methodIndex(method)) * N_STATUS + statusIndex(status)) * N_CACHE + cacheIndex(record.cache);
    this.counts[index]!++;
    this.total++;
    if (record.httpVersion === '2.0') this.byProtocol.http2++;
    else this.byProtocol.http1++;
    if (record.bytes !== undefined) this.bytes[door]! += record.bytes;
    const ms = performance.now() - record.startedAt;
    this.durations[door]!.observe(ms / 1000);
    this.recent[door]!.record(ms, now);
    const slot = this.advance(now);
    this.perSecond[slot]!++;
    if (status >= 500) this.errorsPerSecond[slot]!++;
  };

  /** One upstream attempt finished (the pools' onAttempt hook). */
  readonly recordAttempt = (backend: AttemptBackend, outcome: AttemptResult, elapsedMs: number): void => {
    let t = this.backendByObject.get(backend);
    if (t === undefined) t = this.adopt(backend);
    t.attempts++;
    if (outcome !== 'ok') t.failures++;
    t.histogram.observe(elapsedMs / 1000);
    t.recent.record(elapsedMs, this.clock());
  };

  /** Counts an upgraded connection (CONNECT tunnel or WebSocket) until its client socket closes. */
  trackTunnel(socket: Duplex, kind: TunnelKind): void {
    const totals = this.tunnels[kind];
    totals.open++;
    totals.total++;
    const s = socket as Partial<Socket>;
    const read0 = s.bytesRead ?? 0;
    const written0 = s.bytesWritten ?? 0;
    socket.once('close', () => {
      totals.open--;
      totals.bytesUp += (s.bytesRead ?? 0) - read0;
      totals.bytesDown += (s.bytesWritten ?? 0) - written0;
    });
  }

  /** The traffic of one backend (by pool and URL as configured), if it has seen any. */
  backend(pool: string, address: string): BackendTraffic | undefined {
    return this.backends.get(backendKey(pool, address));
  }

  allBackends(): IterableIterator<BackendTraffic> {
    return this.backends.values();
  }

  /** Requests per second over the last `seconds` complete seconds. */
  rate(seconds: number): number {
    const now = this.clock();
    const current = this.advance(now);
    let sum = 0;
    const n = Math.min(seconds, HISTORY_SECONDS - 1);
    for (let k = 1; k <= n; k++) sum += this.perSecond[(current - k + HISTORY_SECONDS) % HISTORY_SECONDS]!;
    return sum / n;
  }

  /**
   * Per-second history, oldest first, ending with the last complete second (`end`, epoch seconds).
   */
  history(): { end: number; requests: number[]; errors: number[] } {
    const now = this.clock();
    const current = this.advance(now);
    const requests: number[] = [];
    const errors: number[] = [];
    for (let k = HISTORY_SECONDS - 1; k >= 1; k--) {
      const slot = (current - k + HISTORY_SECONDS) % HISTORY_SECONDS;
      requests.push(this.perSecond[slot]!);
      errors.push(this.errorsPerSecond[slot]!);
    }
    return { end: Math.floor(now / 1000) - 1, requests, errors };
  }

  /** Totals folded over the other dimensions. */
  totals(): {
    byDoor: Record<DoorName, number>;
    byMethod: Record<string, number>;
    byStatus: Record<string, number>;
    byCache: Record<string, number>;
  } {
    const byDoor = { reverse: 0, forward: 0 };
    const byMethod: Record<string, number> = {};
    const byStatus: Record<string, number> = {};
    const byCache: Record<string, number> = {};
    for (const m of METHODS) byMethod[m] = 0;
    for (const s of STATUS_CLASSES) byStatus[s] = 0;
    for (const c of CACHE_RESULTS) byCache[c] = 0;
    this.forEachCount((door, method, status, cache, n) => {
      byDoor[door] += n;
      byMethod[method]! += n;
      byStatus[status]! += n;
      byCache[cache]! += n;
    });
    return { byDoor, byMethod, byStatus, byCache };
  }

  /** Every non-zero request counter with its labels. */
  forEachCount(fn: (door: DoorName, method: string, status: string, cache: string, n: number) => void): void {
    const counts = this.counts;
    for (let i = 0; i < counts.length; i++) {
      const n = counts[i]!;
      if (n === 0) continue;
      const c = i % N_CACHE;
      const s = Math.floor(i / N_CACHE) % N_STATUS;
      const m = Math.floor(i / (N_CACHE * N_STATUS)) % N_METHODS;
      const d = Math.floor(i / (N_CACHE * N_STATUS * N_METHODS));
      fn(DOORS[d]!, METHODS[m]!, STATUS_CLASSES[s]!, CACHE_RESULTS[c]!, n);
    }
  }

  /** The latency quantile (ms) over the last minute, across doors (`door` omitted) or for one. */
  latencyQuantile(q: number, door?: DoorName): number | null {
    const now = this.clock();
    if (door !== undefined) return this.recent[door === 'reverse' ? 0 : 1]!.quantile(q, now);
    // The larger of the doors' quantiles is a fair upper estimate without merging histograms.
    let out: number | null = null;
    for (const r of this.recent) {
      const v = r.quantile(q, now);
      if (v !== null && (out === null || v > out)) out = v;
    }
    return out;
  }

  /** Moves the per-second ring to `now`, zeroing the seconds nothing happened in; returns the current slot. */
  private advance(now: number): number {
    const second = Math.floor(now / 1000);
    const last = this.lastSecond;
    if (second > last) {
      const gap = Math.min(second - last, HISTORY_SECONDS);
      for (let k = 1; k <= gap; k++) {
        const slot = (last + k) % HISTORY_SECONDS;
        this.perSecond[slot] = 0;
        this.errorsPerSecond[slot] = 0;
      }
      this.lastSecond = second;
    }
    return this.lastSecond % HISTORY_SECONDS;
  }

  private adopt(backend: AttemptBackend): BackendTraffic {
    const key = backendKey(backend.pool, backend.address);
    let t = this.backends.get(key);
    if (t === undefined) {
      t = new BackendTraffic(backend.pool, backend.spec.url);
      this.backends.set(key, t);
    }
    this.backendByObject.set(backend, t);
    return t;
  }
}

function backendKey(pool: string, address: string): string {
  return `${pool}\u0000${address}`;
}

function methodIndex(method: string | undefined): number {
  switch (method) {
    case 'GET':
      return 0;
    case 'HEAD':
      return 1;
    case 'POST':
      return 2;
    case 'PUT':
      return 3;
    case 'PATCH':
      return 4;
    case 'DELETE':
      return 5;
    case 'OPTIONS':
      return 6;
    case 'CONNECT':
      return 7;
    default:
      return 8;
  }
}

function statusIndex(status: number): number {
  const c = Math.floor(status / 100) - 1;
  return c < 0 ? 0 : c > 4 ? 4 : c;
}

function cacheIndex(result: string | undefined): number {
  switch (result) {
    case 'hit':
      return 0;
    case 'stale':
      return 1;
    case 'revalidated':
      return 2;
    case 'miss':
      return 3;
    case 'bypass':
      return 4;
    case 'local':
      return 5;
    case undefined:
      return 6;
    default:
      return 7;
  }
}
