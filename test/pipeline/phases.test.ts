/**
 * One request pipeline (src/pipeline/runner.ts) behind every entry point: forward HTTP, CONNECT, reverse
 * HTTP and reverse Upgrade each meet the same phases — client, admission, resolve, rules, limit, proxy —
 * over real sockets. For every request the tests check the answer (status, Proxy-Status, the block
 * page), whether it reached the backend, and that it left exactly one access-log line with the right
 * status, door and method (each request comes from its own loopback address, which its line carries).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LogLine } from '../balance/logs.js';
import { connectThrough } from '../forward/helpers.js';
import { rawExchange } from '../helpers/raw.js';
import { addresses, allFinished, forwardConnect, forwardHttp, reverseHttp, startBackend, startRig, upgradeRequest, type Answer, type Backend, type Rig } from './rig.js';

let backend: Backend;
let rig: Rig;
/** A fresh allowed client address per request (forward.clients is 127.0.0.0/16). */
const client = addresses('127.0');
/** A fresh address outside forward.clients. */
const outsider = addresses('127.1');
/** Requests sent by the tests, for the final count of access-log lines. */
let sent = 0;

beforeAll(async () => {
  backend = await startBackend();
  rig = await startRig({
    forward: {
      listen: '127.0.0.1:0',
      upstream_proxy: 'direct',
      clients: ['127.0.0.0/16'],
      connect_ports: [backend.origin.port],
      rate_limit: { rate: 1, burst: 3 },
      // Via names this proxy on relayed requests (what a loop is recognised by).
      anonymize: false,
      rules: [{ name: 'ads', action: 'deny', host: ['*.ads.test'] }],
    },
    reverse: {
      listen: '127.0.0.1:0',
      routes: [
        { host: 'app.test', path: '/', pool: 'web' },
        { host: 'app.test', path: '/limited/', pool: 'web', rate_limit: { rate: 2, burst: 2 } },
      ],
      rules: [{ name: 'private', action: 'deny', path: ['/private/'] }],
    },
    pools: { web: { servers: [{ url: backend.origin.url }], retries: 0 } },
    limits: { max_url_length: 1024 },
    cache: { enabled: false },
  });
});

afterAll(async () => {
  await rig?.close();
  await backend?.origin.close();
});

/** What one case expects of its answer and of its log line. */
interface Expected {
  readonly status: number;
  /** Proxy-Status error name, for a refusal. */
  readonly error?: string;
  /** A piece of the body. */
  readonly body?: string;
}

interface Case {
  /** The phase that decides (or `proxy` when the request goes through). */
  readonly phase: 'client' | 'admission' | 'resolve' | 'rules' | 'limit' | 'proxy';
  readonly what: string;
  /** Sends the request from `from`; returns the last answer. Requests before it (to use up a rate) count in `sends`. */
  readonly send: (from: string, marker: string) => Promise<Answer>;
  readonly sends?: number;
  readonly expect: Expected;
  /** Whether the backend sees the request (a path starting with the marker). */
  readonly reaches: boolean;
  /** Sent from outside forward.clients. */
  readonly outsider?: boolean;
}

const LONG = `/${'x'.repeat(1100)}`;
const H2C = { connection: 'Upgrade, HTTP2-Settings', upgrade: 'h2c', 'http2-settings': 'AAMAAABkAAQAAP__' };

/**
 * Runs one case: its answer, whether it reached the backend, and its one access-log line (the last of
 * `sends` lines from its client address).
 */
async function runCase(door: 'forward' | 'reverse', method: string, c: Case): Promise<void> {
  const from = c.outsider ? outsider() : client();
  const marker = `/${door}-${c.phase}-${sent}/`;
  const before = backend.reached(marker);
  const answer = await c.send(from, marker);
  sent += c.sends ?? 1;
  expect(answer.status, c.what).toBe(c.expect.status);
  if (c.expect.error !== undefined) expect(String(answer.headers['proxy-status'])).toMatch(new RegExp(`^portico; error=${c.expect.error}; details="`));
  if (c.expect.body !== undefined) expect(answer.body).toContain(c.expect.body);
  await allFinished();
  expect(backend.reached(marker) - before, `${c.what}: reached the backend`).toBe(c.reaches ? 1 : 0);
  const lines = rig.accessLines().filter((l) => l.client === from);
  expect(lines, `${c.what}: access-log lines`).toHaveLength(c.sends ?? 1);
  // Tunnels log when they close, so the lines of several requests need not be in the order sent.
  expect(lines.map(pick), c.what).toContainEqual({ door, method, status: c.expect.status });
  for (const line of lines) expect({ door: line.door, method: line.method }).toEqual({ door, method });
}

const pick = (l: LogLine) => ({ door: l.door, method: l.method, status: l.status });
const block = (rule: string) => ({ status: 403, error: 'http_request_denied', body: `is blocked by policy (rule "${rule}"` });

describe('forward HTTP (absolute-form requests)', () => {
  const origin = () => backend.origin.url;
  const cases: Case[] = [
    { phase: 'client', what: 'a client outside forward.clients', outsider: true, send: (from, m) => forwardHttp(rig, `${origin()}${m}`, { client: from }), expect: { status: 403, error: 'http_request_denied', body: 'forward.clients' }, reaches: false },
    { phase: 'admission', what: 'a target longer than limits.max_url_length', send: (from, m) => forwardHttp(rig, `${origin()}${m}${LONG}`, { client: from }), expect: { status: 414, error: 'http_request_error' }, reaches: false },
    { phase: 'admission', what: 'Upgrade: h2c', send: (from, m) => forwardHttp(rig, `${origin()}${m}`, { client: from, headers: H2C }), expect: { status: 400, error: 'http_request_error', body: 'h2c' }, reaches: false },
    { phase: 'resolve', what: 'the proxy itself as the target (a loop)', send: (from, m) => forwardHttp(rig, `http://127.0.0.1:${rig.forwardPort}${m}`, { client: from }), expect: { status: 508, error: 'proxy_loop_detected' }, reaches: false },
    { phase: 'resolve', what: 'a request that has been through this proxy (its Via)', send: (from, m) => loopedThrough(from, m), sends: 2, expect: { status: 508, error: 'proxy_loop_detected' }, reaches: false },
    { phase: 'rules', what: 'a host forward.rules deny', send: (from, m) => forwardHttp(rig, `http://banner.ads.test${m}`, { client: from }), expect: block('ads'), reaches: false },
    { phase: 'proxy', what: 'an allowed request', send: (from, m) => forwardHttp(rig, `${origin()}${m}`, { client: from }), expect: { status: 200, body: 'ok GET /forward-proxy' }, reaches: true },
  ];
  it.each(cases)('$phase: $what', (c) => runCase('forward', 'GET', c));

  /** A request relayed once (the origin sees this proxy's Via), then sent again with that Via: a loop. */
  async function loopedThrough(from: string, marker: string): Promise<Answer> {
    const first = await forwardHttp(rig, `${backend.origin.url}/first-hop`, { client: from });
    expect(first.status).toBe(200);
    const via = String(backend.origin.requests.at(-1)!.headers.via ?? '');
    expect(via).toMatch(/portico-/);
    return forwardHttp(rig, `${backend.origin.url}${marker}`, { client: from, headers: { via } });
  }
});

describe('CONNECT', () => {
  const target = () => `127.0.0.1:${backend.origin.port}`;
  /** Connections made to the backend (what a tunnel opens). */
  let connections = 0;
  beforeAll(() => {
    backend.origin.server.on('connection', () => connections++);
  });
  const cases: (Case & { opens: boolean })[] = [
    { phase: 'client', what: 'a client outside forward.clients', outsider: true, send: (from) => forwardConnect(rig, target(), { client: from }), expect: { status: 403, error: 'http_request_denied', body: 'forward.clients' }, reaches: false, opens: false },
    { phase: 'admission', what: 'two Host fields', send: (from) => forwardConnect(rig, target(), { client: from, headers: { Host: 'other.test:443' } }), expect: { status: 400, error: 'http_request_error', body: 'more than one Host' }, reaches: false, opens: false },
    { phase: 'resolve', what: 'a port outside forward.connect_ports', send: (from) => forwardConnect(rig, '127.0.0.1:8443', { client: from }), expect: { status: 403, error: 'http_request_denied', body: 'connect_ports' }, reaches: false, opens: false },
    { phase: 'rules', what: 'a host forward.rules deny', send: (from) => forwardConnect(rig, `tracker.ads.test:${backend.origin.port}`, { client: from }), expect: block('ads'), reaches: false, opens: false },
    { phase: 'proxy', what: 'an allowed tunnel', send: (from) => forwardConnect(rig, target(), { client: from }), expect: { status: 200 }, reaches: false, opens: true },
  ];
  it.each(cases)('$phase: $what', async (c) => {
    const before = connections;
    await runCase('forward', 'CONNECT', c);
    expect(connections - before, 'connections the proxy opened to the target').toBe(c.opens ? 1 : 0);
  });
});

describe('reverse HTTP', () => {
  const cases: Case[] = [
    { phase: 'admission', what: 'a target longer than limits.max_url_length', send: (from, m) => reverseHttp(rig, 'app.test', `${m}${LONG}`, { client: from }), expect: { status: 414, error: 'http_request_error' }, reaches: false },
    { phase: 'resolve', what: 'a host no route serves', send: (from, m) => reverseHttp(rig, 'nowhere.test', m, { client: from }), expect: { status: 404, error: 'http_request_error', body: 'no route' }, reaches: false },
    { phase: 'rules', what: 'a path reverse.rules deny', send: (from, m) => reverseHttp(rig, 'app.test', `/private${m}`, { client: from }), expect: block('private'), reaches: false },
    { phase: 'limit', what: "over the route's rate_limit (burst 2)", send: (from, m) => overRate((path) => reverseHttp(rig, 'app.test', path, { client: from }), `/limited${m}`), sends: 3, expect: { status: 429, error: 'http_request_denied' }, reaches: false },
    { phase: 'proxy', what: 'an allowed request', send: (from, m) => reverseHttp(rig, 'app.test', m, { client: from }), expect: { status: 200, body: 'ok GET /reverse-proxy' }, reaches: true },
  ];
  it.each(cases)('$phase: $what', (c) => runCase('reverse', 'GET', c));
});

describe('reverse Upgrade', () => {
  const up = (path: string, upgrade: string, from: string, headers?: Record<string, string>) => upgradeRequest(rig.reversePort, 'app.test', path, upgrade, { client: from, headers });
  const cases: Case[] = [
    { phase: 'admission', what: 'Upgrade: h2c', send: (from, m) => up(m, 'h2c', from, { 'HTTP2-Settings': 'AAMAAABkAAQAAP__' }), expect: { status: 400, error: 'http_request_error', body: 'h2c' }, reaches: false },
    { phase: 'admission', what: 'Upgrade: websocket, h2c', send: (from, m) => up(m, 'websocket, h2c', from), expect: { status: 400, error: 'http_request_error' }, reaches: false },
    { phase: 'resolve', what: 'a host no route serves', send: (from, m) => upgradeRequest(rig.reversePort, 'nowhere.test', m, 'websocket', { client: from }), expect: { status: 404, error: 'http_request_error' }, reaches: false },
    { phase: 'rules', what: 'a denied path, Upgrade: websocket', send: (from, m) => up(`/private${m}`, 'websocket', from), expect: block('private'), reaches: false },
    { phase: 'rules', what: 'a denied path, Upgrade: foo/1', send: (from, m) => up(`/private${m}`, 'foo/1', from), expect: block('private'), reaches: false },
    { phase: 'rules', what: 'a denied path, Upgrade: WebSocket and Connection: keep-alive, Upgrade', send: (from, m) => up(`/private${m}`, 'WebSocket', from, { Connection: 'keep-alive, Upgrade' }), expect: block('private'), reaches: false },
    { phase: 'limit', what: "over the route's rate_limit (burst 2)", send: (from, m) => overRate((path) => up(path, 'websocket', from), `/limited${m}`), sends: 3, expect: { status: 429, error: 'http_request_denied' }, reaches: false },
    { phase: 'proxy', what: 'Upgrade: websocket', send: (from, m) => up(m, 'websocket', from), expect: { status: 101 }, reaches: true },
    { phase: 'proxy', what: 'Upgrade: foo/1', send: (from, m) => up(m, 'foo/1', from), expect: { status: 101 }, reaches: true },
  ];
  it.each(cases)('$phase: $what', (c) => runCase('reverse', 'GET', c));
});

/** Uses up a burst of 2 on other paths of the route, then sends the request for `path`. */
async function overRate(send: (path: string) => Promise<Answer>, path: string): Promise<Answer> {
  for (let i = 0; i < 2; i++) expect((await send(`/limited/burst-${i}`)).status).not.toBe(429);
  return send(path);
}

describe('CONNECT at the reverse door', () => {
  it('is refused with 405 and logged once, as CONNECT at the reverse door', async () => {
    const from = client();
    const reply = await connectThrough(rig.reversePort, 'app.test:443', {}, { localAddress: from });
    sent++;
    expect(reply.status).toBe(405);
    expect(reply.headers.allow).toContain('GET');
    expect(String(reply.headers['proxy-status'])).toMatch(/^portico; error=http_request_error/);
    await allFinished();
    const lines = rig.accessLines().filter((l) => l.client === from);
    expect(lines.map(pick)).toEqual([{ door: 'reverse', method: 'CONNECT', status: 405 }]);
  });
});

describe("requests Node's parser cannot read", () => {
  const unreadable = [
    ['reverse', 'Content-Length with Transfer-Encoding', () => `GET /smuggle HTTP/1.1\r\nHost: app.test\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 'GET', '/smuggle'],
    ['forward', 'a header line without a colon', (B: number) => `GET http://127.0.0.1:${B}/bad HTTP/1.1\r\nHost: 127.0.0.1:${B}\r\nNo colon here\r\n\r\n`, 'GET', `http://127.0.0.1:B/bad`],
    ['reverse', 'TLS bytes on the plain listener', () => '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n', '-', '-'],
  ] as const;
  it.each(unreadable)('%s: %s is refused with 400 and logged once', async (door, _what, bytes, method, url) => {
    const from = client();
    const port = door === 'reverse' ? rig.reversePort : rig.forwardPort;
    const answer = await rawExchange(port, bytes(backend.origin.port), { localAddress: from, deadlineMs: 5_000 });
    sent++;
    expect(answer.text).toMatch(/^HTTP\/1\.1 400 /);
    expect(answer.text).toMatch(/proxy-status: portico; error=http_request_error/i);
    await allFinished();
    const lines = rig.accessLines().filter((l) => l.client === from);
    expect(lines.map((l) => ({ door: l.door, method: l.method, url: l.url, status: l.status }))).toEqual([
      { door, method, url: url.replace(':B', `:${backend.origin.port}`), status: 400 },
    ]);
  });
});

describe('rate limits count every kind of attempt', () => {
  it("12 Upgrade attempts against a route's rate_limit (rate 2, burst 2): the rest are 429 and never reach the backend", async () => {
    const before = backend.upgrades.length;
    const { from, statuses, mostLetThrough } = await attempts(12, { rate: 2, burst: 2 }, (from, i) =>
      upgradeRequest(rig.reversePort, 'app.test', `/limited/ws-${i}`, i % 2 ? 'foo/1' : 'websocket', { client: from }),
    );
    const switched = statuses.filter((s) => s === 101).length;
    expect(switched).toBeGreaterThanOrEqual(2);
    expect(switched).toBeLessThanOrEqual(mostLetThrough);
    expect(statuses.filter((s) => s === 429)).toHaveLength(12 - switched);
    expect(backend.upgrades.length - before).toBe(switched);
    await allFinished();
    expect(statusesLogged(from)).toEqual([...statuses].sort());
  });

  it('CONNECT attempts count against forward.rate_limit (rate 1, burst 3)', async () => {
    const target = `127.0.0.1:${backend.origin.port}`;
    const { from, statuses, mostLetThrough } = await attempts(8, { rate: 1, burst: 3 }, (from) => forwardConnect(rig, target, { client: from }));
    const opened = statuses.filter((s) => s === 200).length;
    expect(opened).toBeGreaterThanOrEqual(3);
    expect(opened).toBeLessThanOrEqual(mostLetThrough);
    expect(statuses.filter((s) => s === 429)).toHaveLength(8 - opened);
    await allFinished();
    expect(statusesLogged(from)).toEqual([...statuses].sort());
  });

  it('refused CONNECTs use up the rate too: a CONNECT to a port not allowed still costs a token', async () => {
    const { statuses, mostLetThrough } = await attempts(6, { rate: 1, burst: 3 }, (from) => forwardConnect(rig, '127.0.0.1:8443', { client: from }));
    expect(statuses.slice(0, 3)).toEqual([403, 403, 403]);
    expect(statuses.filter((s) => s === 403).length).toBeLessThanOrEqual(mostLetThrough);
    expect(statuses).toContain(429);
  });
});

/**
 * Sends `n` attempts one after another from one fresh client address; their statuses, and the most a
 * limiter of `rate` per second and `burst` can have let through meanwhile (the burst and the whole
 * tokens refilled while they went out).
 */
async function attempts(
  n: number,
  limit: { rate: number; burst: number },
  send: (from: string, i: number) => Promise<Answer>,
): Promise<{ from: string; statuses: number[]; mostLetThrough: number }> {
  const from = client();
  const statuses: number[] = [];
  const started = performance.now();
  for (let i = 0; i < n; i++) statuses.push((await send(from, i)).status);
  sent += n;
  return { from, statuses, mostLetThrough: limit.burst + Math.ceil(((performance.now() - started) / 1000) * limit.rate) };
}

/** The statuses of the access-log lines of `from`, sorted (a tunnel's line is written when it closes). */
function statusesLogged(from: string): number[] {
  return rig
    .accessLines()
    .filter((l) => l.client === from)
    .map((l) => Number(l.status))
    .sort();
}

describe('the access log', () => {
  it('has exactly one line for every request these tests sent, no more', async () => {
    await allFinished();
    expect(rig.accessLines()).toHaveLength(sent);
  });
});
