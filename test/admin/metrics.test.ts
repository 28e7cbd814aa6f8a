/** GET /metrics: Prometheus exposition with standard names and units, values that follow the traffic. */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request, waitFor } from '../helpers/http.js';
import { deadAddress, startOrigin, type Origin } from '../helpers/origin.js';
import { startPortico, type RunningPortico } from '../helpers/portico.js';

let origin: Origin;
let dead: string;
let p: RunningPortico;
let text: string;

/** The value of the sample `name{labels}` (labels given in any order, all must match). */
function sample(body: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of body.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have: Record<string, string> = {};
    for (const part of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      have[part[1]!] = part[2]!.replace(/\\(.)/g, (_all, c: string) => (c === 'n' ? '\n' : c));
    }
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return undefined;
}

beforeAll(async () => {
  origin = await startOrigin((req, res) => {
    if (req.url === '/cached') res.setHeader('cache-control', 'max-age=60');
    if (req.url === '/missing') res.statusCode = 404;
    res.end('hello');
  });
  dead = await deadAddress();
  p = await startPortico({
    reverse: {
      listen: '127.0.0.1:0',
      routes: [
        { path: '/dead/', pool: 'gone' },
        { path: '/', pool: 'web' },
      ],
    },
    pools: {
      web: { servers: [{ url: origin.url }] },
      gone: { servers: [{ url: dead }], retries: 0, passive: { max_fails: 0 } },
    },
    forward: {
      listen: '127.0.0.1:0',
      connect_ports: [443, origin.port],
      rules: [{ name: 'no-example', action: 'deny', host: ['blocked.example'] }],
    },
    admin: { listen: '127.0.0.1:0' },
  });
  for (let i = 0; i < 4; i++) await request(`${p.reverseUrl}/page`);
  await request(`${p.reverseUrl}/cached`);
  await request(`${p.reverseUrl}/cached`);
  await request(`${p.reverseUrl}/missing`);
  await request(`${p.reverseUrl}/page`, { method: 'POST', body: 'x' });
  expect((await request(`${p.reverseUrl}/dead/x`)).status).toBe(502);
  // One forward request blocked by a rule (absolute-form through the forward proxy).
  await new Promise<void>((resolve, reject) => {
    const fwd = new URL(p.forwardUrl!);
    const s = connect(Number(fwd.port), fwd.hostname, () => s.write('GET http://blocked.example/ HTTP/1.1\r\nHost: blocked.example\r\nConnection: close\r\n\r\n'));
    s.on('data', () => {});
    s.on('close', () => resolve());
    s.on('error', reject);
  });
  await waitFor(async () => (await request(`${p.adminUrl}/api/stats`)).body.includes('"forward"'), 2_000);
  const reply = await request(`${p.adminUrl}/metrics`);
  expect(reply.status).toBe(200);
  expect(reply.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
  text = reply.body;
});

afterAll(async () => {
  await p?.stop();
  await origin?.close();
});

describe('/metrics', () => {
  it('counts requests by door, method, status class and cache result', () => {
    expect(sample(text, 'portico_requests_total', { door: 'reverse', method: 'GET', status_class: '2xx', cache: 'hit' })).toBe(1);
    expect(sample(text, 'portico_requests_total', { door: 'reverse', method: 'GET', status_class: '4xx' })).toBe(1);
    expect(sample(text, 'portico_requests_total', { door: 'reverse', method: 'POST', status_class: '2xx' })).toBe(1);
    expect(sample(text, 'portico_requests_total', { door: 'reverse', status_class: '5xx' })).toBe(1);
    expect(sample(text, 'portico_requests_total', { door: 'forward', status_class: '4xx' })).toBe(1);
    expect(sample(text, 'portico_response_bytes_total', { door: 'reverse' })).toBeGreaterThan(0);
    expect(text).toMatch(/# TYPE portico_requests_total counter/);
  });

  it('has request and upstream duration histograms in seconds', () => {
    expect(text).toMatch(/# TYPE portico_request_duration_seconds histogram/);
    expect(sample(text, 'portico_request_duration_seconds_count', { door: 'reverse' })).toBe(9);
    expect(sample(text, 'portico_request_duration_seconds_bucket', { door: 'reverse', le: '+Inf' })).toBe(9);
    expect(text).toMatch(/# TYPE portico_upstream_request_duration_seconds histogram/);
    const web = { pool: 'web', backend: origin.url };
    // 4 + 1 (miss) + 1 (404) + 1 (POST) attempts reached the origin; the hit did not.
    expect(sample(text, 'portico_upstream_request_duration_seconds_count', web)).toBe(7);
    expect(sample(text, 'portico_upstream_request_duration_seconds_bucket', { ...web, le: '60' })).toBe(7);
    expect(sample(text, 'portico_upstream_request_duration_seconds_sum', web)).toBeGreaterThan(0);
    expect(sample(text, 'portico_upstream_failures_total', { pool: 'gone', backend: dead })).toBe(1);
    expect(sample(text, 'portico_upstream_failures_total', web)).toBe(0);
  });

  it('has backend health, in-flight and queue gauges', () => {
    expect(sample(text, 'portico_backend_up', { pool: 'web', backend: origin.url })).toBe(1);
    expect(sample(text, 'portico_backend_state', { pool: 'web', backend: origin.url, state: 'up' })).toBe(1);
    expect(sample(text, 'portico_backend_state', { pool: 'web', backend: origin.url, state: 'drained' })).toBe(0);
    expect(sample(text, 'portico_backend_inflight_requests', { pool: 'web', backend: origin.url })).toBe(0);
    expect(sample(text, 'portico_pool_queued_requests', { pool: 'web' })).toBe(0);
    // The scrape itself is on the admin listener: nothing is in flight on the front doors.
    expect(sample(text, 'portico_inflight_requests', { door: 'reverse' })).toBe(0);
  });

  it('has cache entries, bytes, limit, hits, misses and evictions', () => {
    expect(sample(text, 'portico_cache_entries')).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'portico_cache_bytes')).toBeGreaterThan(0);
    expect(sample(text, 'portico_cache_max_bytes')).toBe(256 * 1024 ** 2);
    expect(sample(text, 'portico_cache_hits_total')).toBe(1);
    expect(sample(text, 'portico_cache_misses_total')).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'portico_cache_evictions_total')).toBe(0);
  });

  it('has tunnels, blocked requests by rule, reloads, build info and process metrics', () => {
    expect(sample(text, 'portico_tunnels_open', { kind: 'connect' })).toBe(0);
    expect(text).toMatch(/# TYPE portico_tunnel_bytes_total counter/);
    expect(sample(text, 'portico_config_reloads_total', { result: 'failure' })).toBe(0);
    expect(sample(text, 'portico_build_info')).toBe(1);
    expect(sample(text, 'process_cpu_seconds_total')).toBeGreaterThan(0);
    expect(sample(text, 'process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(text).toMatch(/nodejs_eventloop_lag_seconds/);
  });

  it('counts forward-proxy blocks by rule', async () => {
    const stats = JSON.parse((await request(`${p.adminUrl}/api/stats`)).body);
    expect(stats.blocked.total).toBe(1);
    expect(sample(text, 'portico_forward_blocked_total', { rule: '"no-example" (forward.rules[0])' })).toBe(1);
    expect(stats.blocked.recent[0]).toMatchObject({ method: 'GET', rule: '"no-example" (forward.rules[0])' });
  });

  it('counts CONNECT tunnels and the bytes through them', async () => {
    const fwd = new URL(p.forwardUrl!);
    let received = '';
    await new Promise<void>((resolve, reject) => {
      const s = connect(Number(fwd.port), fwd.hostname, () => s.write(`CONNECT 127.0.0.1:${origin.port} HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\n\r\n`));
      s.on('data', (chunk: Buffer) => {
        const before = received;
        received += chunk.toString('latin1');
        if (!before.includes('\r\n\r\n') && received.includes('\r\n\r\n')) {
          // Established: speak HTTP to the origin through the tunnel.
          s.write('GET /through HTTP/1.1\r\nHost: origin\r\nConnection: close\r\n\r\n');
        }
      });
      s.on('close', () => resolve());
      s.on('error', reject);
    });
    expect(received).toMatch(/^HTTP\/1\.1 200 Connection Established/);
    expect(received).toMatch(/hello$/);
    await waitFor(async () => sample((await request(`${p.adminUrl}/metrics`)).body, 'portico_tunnels_total', { kind: 'connect' }) === 1, 2_000, 'tunnel counted');
    const after = (await request(`${p.adminUrl}/metrics`)).body;
    expect(sample(after, 'portico_tunnels_open', { kind: 'connect' })).toBe(0);
    expect(sample(after, 'portico_tunnel_bytes_total', { kind: 'connect', direction: 'up' })).toBeGreaterThanOrEqual(50);
    expect(sample(after, 'portico_tunnel_bytes_total', { kind: 'connect', direction: 'down' })).toBeGreaterThan(100);
  });
});

describe('blocked requests', () => {
  it('what the forward proxy reports through onBlocked shows in /api/stats and /metrics', async () => {
    const q = await startPortico({ forward: { listen: '127.0.0.1:0' }, admin: { listen: '127.0.0.1:0' } });
    try {
      const rule = '"ads" (forward.rules[0])';
      q.portico.blocked.record({ door: 'forward', at: Date.now(), client: '127.0.0.1', method: 'GET', target: 'ads.example:80', rule });
      q.portico.blocked.record({ door: 'forward', at: Date.now(), client: '127.0.0.2', user: 'bob', method: 'CONNECT', target: 'ads.example:443', rule });
      const stats = JSON.parse((await request(`${q.adminUrl}/api/stats`)).body);
      expect(stats.blocked.total).toBe(2);
      expect(stats.blocked.byRule).toEqual({ [rule]: 2 });
      expect(stats.blocked.recent[0]).toMatchObject({ client: '127.0.0.2', user: 'bob', method: 'CONNECT', target: 'ads.example:443', rule });
      expect(stats.blocked.recent[0].at).toMatch(/^\d{4}-\d\d-\d\dT/);
      expect(sample((await request(`${q.adminUrl}/metrics`)).body, 'portico_forward_blocked_total', { rule })).toBe(2);
    } finally {
      await q.stop();
    }
  });
});
