/** The admin JSON API over real sockets: stats, pools, drain/enable, purge, config, explain, errors. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request, waitFor } from '../helpers/http.js';
import { startOrigin, type Origin } from '../helpers/origin.js';
import { startPortico, type RunningPortico } from '../helpers/portico.js';
import { api, bodies, post } from './helpers.js';

let a: Origin;
let b: Origin;
let p: RunningPortico;
let admin: string;

beforeAll(async () => {
  const handler = (name: string) => (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => {
    if (req.url?.startsWith('/cached')) {
      res.setHeader('cache-control', 'max-age=300');
      res.setHeader('surrogate-key', req.url.includes('tagged') ? 'tagged' : 'other');
    }
    res.end(name);
  };
  a = await startOrigin(handler('a'));
  b = await startOrigin(handler('b'));
  p = await startPortico({
    reverse: { listen: '127.0.0.1:0', routes: [{ path: '/', pool: 'web' }] },
    pools: { web: { servers: [{ url: a.url }, { url: b.url, weight: 2 }], sticky: { cookie: 'srv' } } },
    forward: {
      listen: '127.0.0.1:0',
      auth: { users: { alice: 'secret-password' } },
      rules: [
        { name: 'ads', action: 'deny', host: ['*.ads.example'] },
        { name: 'bots', action: 'deny', user_agent: 'BadBot' },
      ],
    },
    admin: { listen: '127.0.0.1:0', token: 'let-me-in' },
  });
  admin = p.adminUrl!;
});

afterAll(async () => {
  await p?.stop();
  await a?.close();
  await b?.close();
});

const auth = { authorization: 'Bearer let-me-in' };
const serverOf = (pools: any, url: string) => pools.pools[0].servers.find((s: any) => s.url.startsWith(url));

describe('GET /api/stats', () => {
  it('counts requests by door, status class and cache result, and reports uptime and listeners', async () => {
    const before = (await api(`${admin}/api/stats`)).json;
    for (let i = 0; i < 5; i++) await request(`${p.reverseUrl}/page`);
    await request(`${p.reverseUrl}/cached/one`);
    await request(`${p.reverseUrl}/cached/one`);
    const s = (await api(`${admin}/api/stats`)).json;
    expect(s.requests.total - before.requests.total).toBe(7);
    expect(s.requests.byDoor.reverse.total - before.requests.byDoor.reverse.total).toBe(7);
    expect(s.requests.byStatus['2xx'] - before.requests.byStatus['2xx']).toBe(7);
    expect(s.requests.byCache.hit - before.requests.byCache.hit).toBe(1);
    expect(s.requests.byMethod.GET).toBeGreaterThanOrEqual(7);
    expect(s.requests.p99Ms).toBeGreaterThan(0);
    expect(s.requests.bytes).toBeGreaterThan(0);
    expect(s.uptimeSeconds).toBeGreaterThanOrEqual(0);
    expect(s.listeners.reverse).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(s.listeners.admin).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(s.cache.enabled).toBe(true);
    expect(s.cache.hits).toBeGreaterThanOrEqual(1);
    expect(s.cache.hitRatio).toBeGreaterThan(0);
    expect(s.cache.maxBytes).toBe(256 * 1024 ** 2);
    expect(s.history.requests).toHaveLength(299);
    expect(s.pools.map((x: any) => x.name)).toEqual(['web']);
  });

  it('keeps a per-second history that the requests show up in', async () => {
    for (let i = 0; i < 3; i++) await request(`${p.reverseUrl}/page`);
    // The current second is not in the history until it is complete.
    await waitFor(async () => {
      const s = (await api(`${admin}/api/stats`)).json;
      return s.history.requests.slice(-5).reduce((x: number, y: number) => x + y, 0) >= 3;
    }, 3_000, 'the requests in the per-second history');
  });
});

describe('GET /api/pools', () => {
  it('lists each backend with id, state, weight, counters, error rate and latency', async () => {
    await bodies(`${p.reverseUrl}/x`, 6);
    const { status, json } = await api(`${admin}/api/pools`);
    expect(status).toBe(200);
    const pool = json.pools[0];
    expect(pool).toMatchObject({ name: 'web', balance: 'round-robin', sticky: { cookie: 'srv' }, health: null, queued: 0 });
    expect(pool.servers).toHaveLength(2);
    const sa = serverOf(json, a.url);
    expect(sa).toMatchObject({ state: 'up', drained: false, weight: 1, backup: false, inflight: 0, errors: 0, errorRate: 0 });
    expect(sa.id).toMatch(/^[0-9a-f]{16}$/);
    expect(sa.requests).toBeGreaterThan(0);
    expect(sa.latencyEwmaMs).toBeGreaterThan(0);
    expect(sa.latencyP99Ms).toBeGreaterThan(0);
    expect(serverOf(json, b.url).weight).toBe(2);
    expect((await api(`${admin}/api/pools/web`)).json.name).toBe('web');
    expect((await api(`${admin}/api/pools/nope`)).status).toBe(404);
  });
});

describe('drain and enable', () => {
  it('a drained backend gets no new requests (sticky clients move); enable brings it back', async () => {
    const pools = (await api(`${admin}/api/pools`)).json;
    const idA = serverOf(pools, a.url).id;
    const drained = await post(`${admin}/api/pools/web/servers/${idA}/drain`, undefined, auth);
    expect(drained.status).toBe(200);
    expect(drained.json.server).toMatchObject({ id: idA, state: 'drained', drained: true });

    // A client pinned to a by its sticky cookie is moved.
    const first = await request(`${p.reverseUrl}/x`);
    expect(first.body).toBe('b');
    const aCookie = (await api(`${admin}/api/pools`)).json; // still drained
    expect(serverOf(aCookie, a.url).state).toBe('drained');
    const seen = new Set(await bodies(`${p.reverseUrl}/x`, 8));
    expect(seen).toEqual(new Set(['b']));

    const enabled = await post(`${admin}/api/pools/web/servers/${idA}/enable`, undefined, auth);
    expect(enabled.json.server).toMatchObject({ state: 'up', drained: false });
    expect(new Set(await bodies(`${p.reverseUrl}/x`, 8))).toEqual(new Set(['a', 'b']));
  });

  it('accepts the server URL in place of its id, and 404s an unknown server', async () => {
    const byUrl = await post(`${admin}/api/pools/web/servers/${encodeURIComponent(a.url)}/drain`, undefined, auth);
    expect(byUrl.status).toBe(200);
    expect(byUrl.json.server.state).toBe('drained');
    await post(`${admin}/api/pools/web/servers/${encodeURIComponent(a.url)}/enable`, undefined, auth);
    const unknown = await post(`${admin}/api/pools/web/servers/0123456789abcdef/drain`, undefined, auth);
    expect(unknown.status).toBe(404);
    expect(unknown.json.error).toMatch(/no server "0123456789abcdef"/);
  });
});

describe('POST /api/cache/purge', () => {
  it('purges by URL, prefix and tag, answering how many entries went', async () => {
    const host = new URL(p.reverseUrl).host;
    for (const path of ['/cached/u', '/cached/pre/1', '/cached/pre/2', '/cached/tagged/1']) {
      await request(`${p.reverseUrl}${path}`);
      expect((await request(`${p.reverseUrl}${path}`)).headers['cache-status']).toMatch(/hit/);
    }
    expect((await post(`${admin}/api/cache/purge`, { url: `http://${host}/cached/u` }, auth)).json).toEqual({ purged: 1, url: `http://${host}/cached/u` });
    expect((await post(`${admin}/api/cache/purge`, { prefix: `http://${host}/cached/pre/` }, auth)).json.purged).toBe(2);
    expect((await post(`${admin}/api/cache/purge`, { tag: 'tagged' }, auth)).json.purged).toBeGreaterThanOrEqual(1);
    expect((await request(`${p.reverseUrl}/cached/u`)).headers['cache-status']).not.toMatch(/hit/);
    expect((await request(`${p.reverseUrl}/cached/pre/1`)).headers['cache-status']).not.toMatch(/hit/);
    expect((await request(`${p.reverseUrl}/cached/tagged/1`)).headers['cache-status']).not.toMatch(/hit/);
  });

  it('says what is wrong with a bad body', async () => {
    const none = await post(`${admin}/api/cache/purge`, {}, auth);
    expect(none.status).toBe(400);
    expect(none.json.error).toMatch(/exactly one of "url", "prefix" or "tag"/);
    expect((await post(`${admin}/api/cache/purge`, { url: 'x', tag: 'y' }, auth)).status).toBe(400);
    expect((await post(`${admin}/api/cache/purge`, { url: '/relative' }, auth)).json.error).toMatch(/absolute/);
    expect((await post(`${admin}/api/cache/purge`, { what: 1 }, auth)).json.error).toMatch(/unknown field "what"/);
    const notJson = await request(`${admin}/api/cache/purge`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: '{nope' });
    expect(notJson.status).toBe(400);
    const wrongType = await request(`${admin}/api/cache/purge`, { method: 'POST', headers: { ...auth, 'content-type': 'text/plain' }, body: '{"url":"http://x/"}' });
    expect(wrongType.status).toBe(415);
  });
});

describe('GET /api/config', () => {
  it('shows the running config with secrets redacted and addresses written back', async () => {
    const { status, json, body } = await api(`${admin}/api/config`);
    expect(status).toBe(200);
    expect(json.admin.token).toBe('[redacted]');
    expect(json.forward.auth.users.alice).toBe('[redacted]');
    expect(body).not.toContain('secret-password');
    expect(body).not.toContain('let-me-in');
    expect(json.reverse.listen).toBe('127.0.0.1:0');
    expect(json.pools.web.servers[0].url).toBe(a.url);
    expect(json.shutdown.drain_timeout).toBe('10s'); // sizes and durations as a person writes them
  });
});

describe('GET /api/explain', () => {
  it('names the rule that would block a request, and why', async () => {
    // This forward proxy asks for credentials: explain takes `user` as authenticated.
    const ads = await api(`${admin}/api/explain?url=${encodeURIComponent('http://x.ads.example/banner')}&client=127.0.0.1&user=alice`);
    expect(ads.status).toBe(200);
    expect(ads.json).toMatchObject({ decision: 'deny', rule: '"ads" (forward.rules[0])' });
    expect(ads.json.reason).toMatch(/first rule that matches/);
    const bot = await api(`${admin}/api/explain?url=http://example.com/&client=127.0.0.1&user=alice&user_agent=BadBot/1.0`);
    expect(bot.json).toMatchObject({ decision: 'deny', rule: '"bots" (forward.rules[1])' });
    const ok = await api(`${admin}/api/explain?url=http://example.com/&client=127.0.0.1&user=alice&user_agent=curl/8`);
    expect(ok.json).toMatchObject({ decision: 'allow', rule: null });
    expect(ok.json.reason).toMatch(/none of the 2 rules matches/);
    // Without a user it is a request without credentials, as a real one would be answered.
    const anonymous = await api(`${admin}/api/explain?url=http://example.com/&client=127.0.0.1`);
    expect(anonymous.json).toMatchObject({ decision: 'deny', phase: 'resolve', status: 407 });
    expect(anonymous.json.reason).toMatch(/needs a user name and password/);
  });

  it('explains the client allow-list and CONNECT ports too', async () => {
    const outsider = await api(`${admin}/api/explain?url=http://example.com/&client=10.1.2.3`);
    expect(outsider.json).toMatchObject({ decision: 'deny', rule: null });
    expect(outsider.json).toMatchObject({ phase: 'client', status: 403 });
    expect(outsider.json.reason).toMatch(/10\.1\.2\.3 is not allowed to use this proxy \(see forward\.clients\)/);
    const port = await api(`${admin}/api/explain?url=example.com:8443&client=127.0.0.1&user=alice`);
    expect(port.json).toMatchObject({ decision: 'deny', phase: 'resolve', status: 403, request: { method: 'CONNECT', target: 'example.com:8443' } });
    expect(port.json.reason).toMatch(/connect_ports/);
    expect((await api(`${admin}/api/explain`)).status).toBe(400);
    expect((await api(`${admin}/api/explain?url=ftp://x/`)).status).toBe(400);
  });
});

describe('routing', () => {
  it('answers 404 with the list of endpoints, 405 with Allow for a wrong method', async () => {
    const missing = await api(`${admin}/api/nothing`);
    expect(missing.status).toBe(404);
    expect(missing.json.endpoints).toContain('GET /api/stats');
    const wrong = await api(`${admin}/api/stats`, { method: 'POST', headers: auth });
    expect(wrong.status).toBe(405);
    expect(wrong.headers.allow).toBe('GET, HEAD');
    const drainByGet = await api(`${admin}/api/pools/web/servers/x/drain`);
    expect(drainByGet.status).toBe(405);
    expect((await request(`${admin}/nowhere`)).status).toBe(404);
  });

  it('serves the dashboard page and its assets with a strict CSP', async () => {
    const page = await request(`${admin}/`);
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toMatch(/text\/html/);
    expect(page.headers['content-security-policy']).toMatch(/script-src 'self'/);
    expect(page.body).toContain('<script src="/dashboard.js"');
    expect((await request(`${admin}/dashboard.js`)).headers['content-type']).toMatch(/javascript/);
    expect((await request(`${admin}/dashboard.css`)).headers['content-type']).toMatch(/text\/css/);
  });
});
