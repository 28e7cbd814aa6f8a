/**
 * A small re-implementation of the way the HTTP cache conformance suite (http-tests/cache-tests)
 * exercises a cache, run directly against HttpCache with a fake origin and an injected clock: each
 * scenario is a list of requests; the origin answers from the scenario's config (and says which
 * request it is answering in Server-Request-Count), so a reply can be told apart as cached or not.
 * "pause_after" moves the clock 3 s instead of sleeping.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import { HttpCache } from '../../src/cache/engine.js';
import { LocalTier } from '../../src/cache/local-tier.js';
import { MemoryStore } from '../../src/cache/memory-store.js';
import type { CacheConfig } from '../../src/config/cache-schema.js';
import { silentLogger } from '../../src/core/log.js';
import { doorCacheSettings } from '../../src/runtime.js';
import { ProxyError } from '../../src/core/errors.js';
import type { UpstreamOverrides, UpstreamResponse } from '../../src/core/messages.js';

/** [name, value, compare?]: a number value for Date/Expires/Last-Modified/If-Modified-Since is seconds from "now". */
export type HeaderSpec = readonly [string, string | number, boolean?];
export type ExpectedHeader = string | readonly [string, string | number] | readonly [string, '>', number];

export interface ScenarioRequest {
  readonly request_method?: string;
  readonly request_headers?: readonly HeaderSpec[];
  readonly query_arg?: string;
  readonly filename?: string;
  readonly response_status?: readonly [number, string];
  readonly response_headers?: readonly HeaderSpec[];
  readonly response_body?: string;
  readonly magic_locations?: boolean;
  readonly disconnect?: boolean;
  readonly pause_after?: boolean;
  readonly expected_type?: 'cached' | 'not_cached' | 'etag_validated' | 'lm_validated';
  readonly expected_status?: number;
  readonly expected_response_headers?: readonly ExpectedHeader[];
  readonly expected_response_headers_missing?: readonly string[];
  readonly expected_request_headers?: readonly (readonly [string, string])[];
  readonly expected_request_headers_missing?: readonly string[];
  readonly expected_response_text?: string;
  readonly expected_method?: string;
}

export interface Scenario {
  readonly id: string;
  readonly requests: readonly ScenarioRequest[];
}

const DATE_HEADERS = new Set(['date', 'expires', 'last-modified', 'if-modified-since']);
const LOCATION_HEADERS = new Set(['location', 'content-location']);
const NO_BODY = new Set([204, 304]);
const START = Date.UTC(2026, 0, 1, 12, 0, 0);

export const scenarioConfig: CacheConfig = {
  enabled: true,
  max_size: 64 * 1024 * 1024,
  max_object_size: 1024 * 1024,
  store: 'memory',
  heuristic_max: 86_400_000,
  tag_header: 'surrogate-key',
  targeted_fields: ['cdn-cache-control'],
  rules: [],
  quick_abort: 0.9,
};

function httpDate(now: number, deltaSeconds: number): string {
  return new Date(now + deltaSeconds * 1000).toUTCString();
}

interface ServerRecord {
  readonly method: string;
  readonly headers: IncomingHttpHeaders;
}

/** Runs one scenario; resolves with null when it passes, else with what went wrong. */
export async function runScenario(scenario: Scenario): Promise<string | null> {
  let clock = START;
  const now = () => clock;
  const store = new MemoryStore({ maxBytes: 64 << 20, maxEntryBytes: 2 << 20, now, sweepIntervalMs: 0 });
  const cache = new HttpCache({ settings: doorCacheSettings(scenarioConfig), tier: new LocalTier(store), log: silentLogger, now });
  const uuid = `u${Math.random().toString(16).slice(2)}`;
  const base = `http://cache.test/test/${uuid}`;
  const server: ServerRecord[] = [];
  try {
    for (let i = 0; i < scenario.requests.length; i++) {
      const cfg = scenario.requests[i]!;
      const reqNum = i + 1;
      const url = `${base}${cfg.filename ? `/${cfg.filename}` : ''}${cfg.query_arg ? `?${cfg.query_arg}` : ''}`;
      const headers: IncomingHttpHeaders = {};
      const add = (name: string, value: string) => {
        const n = name.toLowerCase();
        headers[n] = headers[n] === undefined ? value : `${headers[n] as string}, ${value}`;
      };
      add('pragma', 'foo');
      add('cache-control', 'nothing-to-see-here');
      for (const [name, value] of cfg.request_headers ?? []) add(name, typeof value === 'number' && DATE_HEADERS.has(name.toLowerCase()) ? httpDate(clock, value) : String(value));
      add('test-id', scenario.id);
      add('req-num', String(reqNum));
      const method = cfg.request_method ?? 'GET';

      const fetch = async (overrides: UpstreamOverrides | null): Promise<UpstreamResponse> => {
        const sent: IncomingHttpHeaders = { ...headers };
        for (const [name, value] of Object.entries(overrides?.headers ?? {})) {
          if (value === null) delete sent[name];
          else sent[name] = value;
        }
        return origin(scenario, overrides?.method ?? method, sent, server, clock, base);
      };

      let reply;
      try {
        reply = await cache.handle({ method, url, headers }, fetch);
      } catch (err) {
        if (err instanceof ProxyError && cfg.expected_status === err.status) {
          if (cfg.pause_after) clock += 3000;
          continue;
        }
        return `request ${reqNum}: cache threw ${(err as Error).message}`;
      }
      const body = reply.body === null ? '' : Buffer.isBuffer(reply.body) ? reply.body.toString() : await readAll(reply.body);
      // Let background work (stale-while-revalidate) finish.
      for (let k = 0; k < 5; k++) await new Promise((r) => setImmediate(r));

      const got = (name: string): string | null => {
        const values: string[] = [];
        for (let j = 0; j < reply.rawHeaders.length; j += 2) if (reply.rawHeaders[j]!.toLowerCase() === name.toLowerCase()) values.push(reply.rawHeaders[j + 1]!);
        return values.length === 0 ? null : values.join(', ');
      };
      const resNum = Number.parseInt(got('server-request-count') ?? '', 10);
      const where = `request ${reqNum} (${got('cache-status')})`;
      if (cfg.expected_type === 'cached' && !(reply.status === 304 && Number.isNaN(resNum)) && !(resNum < reqNum)) return `${where} does not come from cache`;
      if (cfg.expected_type === 'not_cached' && resNum !== reqNum) return `${where} comes from cache`;
      const wantStatus = cfg.expected_status ?? cfg.response_status?.[0] ?? 200;
      if (reply.status !== wantStatus) return `${where} status is ${reply.status}, not ${wantStatus}`;
      for (const h of cfg.expected_response_headers ?? []) {
        if (typeof h === 'string') {
          if (got(h) === null) return `${where} lacks ${h}`;
        } else if (h.length === 3) {
          if (!(Number.parseInt(got(h[0]) ?? '', 10) > h[2])) return `${where} ${h[0]} is ${got(h[0])}, should be > ${h[2]}`;
        } else {
          const want = typeof h[1] === 'number' ? httpDate(Number(got('server-now')), h[1]) : h[1];
          if (got(h[0]) !== want) return `${where} ${h[0]} is ${got(h[0])}, not ${want}`;
        }
      }
      for (const h of cfg.expected_response_headers_missing ?? []) if (got(h) !== null) return `${where} has unexpected ${h}: ${got(h)}`;
      const wantBody = cfg.expected_response_text ?? cfg.response_body ?? (NO_BODY.has(reply.status) || method === 'HEAD' ? '' : uuid);
      if (body !== wantBody && !(cfg.expected_response_text === undefined && cfg.response_body === undefined && (NO_BODY.has(reply.status) || method === 'HEAD'))) {
        return `${where} body is "${body}", not "${wantBody}"`;
      }
      if (cfg.pause_after) clock += 3000;
    }
    // Server-side checks.
    let s = 0;
    for (let i = 0; i < scenario.requests.length; i++) {
      const cfg = scenario.requests[i]!;
      if (cfg.expected_type === 'cached') continue;
      const rec = server[s++];
      if (cfg.expected_type === 'etag_validated' && rec?.headers['if-none-match'] === undefined) return `request ${i + 1} was not validated with If-None-Match`;
      if (cfg.expected_type === 'lm_validated' && rec?.headers['if-modified-since'] === undefined) return `request ${i + 1} was not validated with If-Modified-Since`;
      for (const [name, value] of cfg.expected_request_headers ?? []) {
        if (rec?.headers[name.toLowerCase()] !== value) return `request ${i + 1} header ${name} is ${String(rec?.headers[name.toLowerCase()])}, not ${value}`;
      }
      for (const name of cfg.expected_request_headers_missing ?? []) if (rec?.headers[name.toLowerCase()] !== undefined) return `request ${i + 1} has ${name}`;
      if (cfg.expected_method !== undefined && rec?.method !== cfg.expected_method) return `request ${i + 1} method ${rec?.method}`;
    }
    return null;
  } finally {
    await cache.close();
  }
}

async function readAll(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString();
}

function origin(scenario: Scenario, method: string, headers: IncomingHttpHeaders, server: ServerRecord[], now: number, base: string): UpstreamResponse {
  const srvNum = server.length + 1;
  const reqNum = Number(headers['req-num']) || srvNum;
  const cfg = scenario.requests[reqNum - 1];
  if (cfg === undefined) throw new Error(`no config for request ${reqNum}`);
  const prev = scenario.requests[reqNum - 2];
  let status: readonly [number, string] = cfg.response_status ?? [200, 'OK'];
  if (cfg.expected_type?.endsWith('validated')) {
    const header = (name: string) => {
      const h = prev?.response_headers?.find(([n]) => n.toLowerCase() === name);
      return h === undefined ? undefined : typeof h[1] === 'number' ? httpDate(now, h[1]) : h[1];
    };
    const lm = header('last-modified');
    const etag = header('etag');
    if ((lm !== undefined && headers['if-modified-since'] === lm) || (etag !== undefined && headers['if-none-match'] === etag)) status = [304, 'Not Modified'];
    else status = [999, '304 Not Generated'];
  }
  server.push({ method, headers });
  if (cfg.disconnect) throw new ProxyError('connection_reset', 'origin closed the connection');
  const raw: string[] = ['Server-Base-Url', base, 'Server-Request-Count', String(srvNum), 'Server-Now', String(now)];
  let hasDate = false;
  let hasType = false;
  for (const [name, value] of cfg.response_headers ?? []) {
    const lower = name.toLowerCase();
    let v = typeof value === 'number' && DATE_HEADERS.has(lower) ? httpDate(now, value) : String(value);
    if (LOCATION_HEADERS.has(lower) && cfg.magic_locations) v = v ? `${base}/${v}` : base;
    if (lower === 'date') hasDate = true;
    if (lower === 'content-type') hasType = true;
    raw.push(name, v);
  }
  if (!hasDate) raw.push('Date', httpDate(now, 0));
  if (!hasType) raw.push('Content-Type', 'text/plain');
  const body = NO_BODY.has(status[0]) || method === 'HEAD' ? Buffer.alloc(0) : Buffer.from(cfg.response_body ?? base.slice(base.lastIndexOf('/') + 1));
  if (!NO_BODY.has(status[0])) raw.push('Content-Length', String(method === 'HEAD' ? Buffer.byteLength(cfg.response_body ?? base.slice(base.lastIndexOf('/') + 1)) : body.length));
  const map: IncomingHttpHeaders = {};
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i]!.toLowerCase();
    if (n === 'set-cookie') (map['set-cookie'] ??= []).push(raw[i + 1]!);
    else map[n] = map[n] === undefined ? raw[i + 1] : `${map[n] as string}, ${raw[i + 1]!}`;
  }
  return { status: status[0], statusMessage: status[1], rawHeaders: raw, headers: map, body: Readable.from(body.length ? [body] : []), upstreamLabel: 'origin' };
}
