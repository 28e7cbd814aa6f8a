/**
 * The shared tier end to end: two Portico instances (as two machines would run) against one real
 * redis-server. A fills, B hits from Redis; Vary variants travel; purges through one instance's admin
 * API are gone from the other before the call answers; concurrent misses on both instances reach the
 * origin once; Redis killed mid-test changes nothing for clients, and it is used again once it is back.
 */
import { connect, createServer, type AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../../src/config/schema.js';
import { post } from '../../admin/helpers.js';
import { cleanupAfterEach } from '../../helpers/cleanup.js';
import { request, waitFor } from '../../helpers/http.js';
import type { Origin } from '../../helpers/origin.js';
import { startPortico, type RunningPortico } from '../../helpers/portico.js';
import { startRedisServer, type RedisServer } from '../../helpers/redis-server.js';

const cleanup = cleanupAfterEach();
let redis: RedisServer;

beforeAll(async () => {
  redis = await startRedisServer();
});
afterAll(async () => {
  await redis.stop();
});
beforeEach(async () => {
  if (redis.pid() === null) await redis.restart();
  const admin = await redis.admin();
  await admin.flushAll();
});

/** An instance in front of `origin`, sharing `redis`. */
async function instance(origin: Origin, extra: Record<string, unknown> = {}): Promise<RunningPortico> {
  const p = await startPortico({
    reverse: { listen: '127.0.0.1:0', routes: [{ path: '/', pool: 'app' }] },
    pools: { app: { servers: [{ url: origin.url }] } },
    cache: { redis: redis.url },
    admin: { listen: '127.0.0.1:0' },
    ...extra,
  } as ConfigInput);
  cleanup.push(() => p.stop());
  return p;
}

/** An origin whose responses are cacheable for a minute and say which request they answer. */
function countingOrigin(headers: Record<string, string> = {}, delayMs = 0): Promise<Origin> {
  let n = 0;
  return cleanup.origin((req, res) => {
    n++;
    const answer = () => {
      res.writeHead(200, { 'cache-control': 'max-age=60', 'content-type': 'text/plain', ...headers });
      res.end(`${req.url} #${n} ${req.headers['accept-language'] ?? ''}`.trim());
    };
    if (delayMs > 0) setTimeout(answer, delayMs);
    else answer();
  });
}

/**
 * A request as a load balancer in front of both instances would pass it: the same Host whichever
 * instance gets it (the cache key is the URL, host included).
 */
function get(p: RunningPortico, path: string, options: { method?: string; body?: string; headers?: Record<string, string> } = {}) {
  return request(`${p.reverseUrl}${path}`, { ...options, headers: { host: 'shared.test', ...options.headers } });
}

/** Waits until the shared tier has a variant of `path` (the store completes after the response). */
async function storedInRedis(path: string): Promise<void> {
  const admin = await redis.admin();
  await waitFor(async () => (await admin.keys('portico:reverse:*')).some((k) => String(k).includes(path)), 3_000, `${path} in Redis`);
}

/** A TCP relay to `url` that delays everything Redis sends back by `ms`; returns the relay's redis:// URL. */
async function slowRepliesFrom(url: string, ms: number): Promise<string> {
  const target = new URL(url);
  const server = createServer((client) => {
    const upstream = connect(Number(target.port), target.hostname);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.pipe(upstream);
    upstream.on('data', (chunk: Buffer) => setTimeout(() => client.write(chunk), ms));
    upstream.on('close', () => setTimeout(() => client.destroy(), ms));
    client.on('close', () => upstream.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanup.push(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
      }),
  );
  return `redis://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('two instances sharing one Redis', () => {
  it('A fills, B hits from Redis (Cache-Status says so); the origin is asked once', async () => {
    const origin = await countingOrigin();
    const a = await instance(origin);
    const b = await instance(origin);
    const first = await get(a, `/page`);
    expect(first.status).toBe(200);
    expect(first.headers['cache-status']).toMatch(/fwd=uri-miss; fwd-status=200; ttl=\d+; stored/);
    await storedInRedis('/page');
    const fromRedis = await get(b, `/page`);
    expect(fromRedis.body).toBe(first.body);
    expect(fromRedis.headers['cache-status']).toMatch(/^portico; hit; ttl=\d+; detail=redis$/);
    // B keeps its own copy now: the next hit is from its memory.
    expect((await get(b, `/page`)).headers['cache-status']).toMatch(/^portico; hit; ttl=\d+$/);
    expect(origin.count('/page')).toBe(1);
  });

  it('Vary variants travel between instances', async () => {
    const origin = await countingOrigin({ vary: 'accept-language' });
    const a = await instance(origin);
    const b = await instance(origin);
    for (const lang of ['en', 'de']) await get(a, `/v`, { headers: { 'accept-language': lang } });
    await waitFor(async () => (await (await redis.admin()).keys('portico:reverse:*')).filter((k) => String(k).includes('/v')).length >= 3, 3_000, 'two variants and their index');
    for (const lang of ['en', 'de']) {
      const reply = await get(b, `/v`, { headers: { 'accept-language': lang } });
      expect(reply.body).toMatch(new RegExp(`${lang}$`));
      expect(reply.headers['cache-status']).toMatch(/detail=redis/);
    }
    expect(origin.count('/v')).toBe(2);
  });

  it('a purge through A (URL, prefix, tag) is gone from B before the purge call answers', async () => {
    const origin = await countingOrigin({ 'surrogate-key': 'group-1' });
    const a = await instance(origin);
    const b = await instance(origin);
    for (const path of ['/p/url', '/p/prefix/x', '/p/tag']) {
      await get(a, `${path}`);
      await storedInRedis(path);
      await get(b, `${path}`); // now in B's memory too
    }
    const host = 'shared.test';
    const purges: [Record<string, string>, string][] = [
      [{ url: `http://${host}/p/url` }, '/p/url'],
      [{ prefix: `http://${host}/p/prefix/` }, '/p/prefix/x'],
      [{ tag: 'group-1' }, '/p/tag'],
    ];
    for (const [body, path] of purges) {
      const before = origin.count(path);
      const purged = await post(`${a.adminUrl}/api/cache/purge`, body);
      expect(purged.status).toBe(200);
      // Right after the call: B must not answer from memory, nor from Redis.
      const reply = await get(b, `${path}`);
      expect(reply.headers['cache-status'], JSON.stringify(body)).toMatch(/fwd=uri-miss/);
      expect(origin.count(path)).toBe(before + 1);
    }
  });

  it('an unsafe request through A invalidates the page in B', async () => {
    const origin = await countingOrigin();
    const a = await instance(origin);
    const b = await instance(origin);
    await get(a, `/doc`);
    await storedInRedis('/doc');
    await get(b, `/doc`);
    expect((await get(a, `/doc`, { method: 'POST', body: 'x' })).status).toBe(200);
    await waitFor(async () => !/hit/.test(String((await get(b, `/doc`)).headers['cache-status'])), 2_000, 'B to drop /doc');
  });

  it('concurrent misses on both instances reach the origin once', async () => {
    const origin = await countingOrigin({}, 300);
    const a = await instance(origin);
    const b = await instance(origin);
    const replies = await Promise.all([...Array(4)].flatMap(() => [get(a, `/slow`), get(b, `/slow`)]));
    expect(new Set(replies.map((r) => r.status))).toEqual(new Set([200]));
    expect(new Set(replies.map((r) => r.body)).size).toBe(1);
    expect(origin.count('/slow')).toBe(1);
    expect(replies.some((r) => /collapsed; detail=redis/.test(String(r.headers['cache-status'])))).toBe(true);
  });

  it("an instance whose miss in Redis is answered late reads Redis again when it wins the fill: the origin is asked once", async () => {
    // B's Redis replies arrive 50 ms late: B's read of Redis happens before A stores the page, but B
    // learns of the miss after A has fetched, stored and released its fill — so B wins the next fill.
    const origin = await countingOrigin();
    const a = await instance(origin);
    const slow = await slowRepliesFrom(redis.url, 50);
    const b = await instance(origin, { cache: { redis: slow } });
    const paths = Array.from({ length: 10 }, (_, i) => `/late/${i}`);
    const replies = await Promise.all(paths.flatMap((path) => [get(b, path), get(a, path)]));
    expect(replies.map((r) => r.status)).toEqual(paths.flatMap(() => [200, 200]));
    expect(origin.count()).toBe(paths.length);
    // B's answers came from A's fill, through Redis.
    expect(replies.filter((_, i) => i % 2 === 0).map((r) => r.headers['cache-status'])).toEqual(paths.map(() => expect.stringMatching(/; collapsed; detail=redis$/)));
  });

  it('an instance starts serving once its link to Redis is up, or at once when Redis is away', async () => {
    const origin = await countingOrigin();
    const a = await instance(origin);
    // A start waits for the link (and its pub/sub bus): the very first request already shares.
    expect(a.portico.cache!.stats().shared).toMatchObject({ status: 'up', bus: 'up' });
    await get(a, '/first');
    await storedInRedis('/first');
    const b = await instance(origin);
    expect((await get(b, '/first')).headers['cache-status']).toMatch(/hit; ttl=\d+; detail=redis/);
    // Nothing listens on port 9: the start does not wait for a Redis that is not there.
    const startedAt = Date.now();
    const alone = await instance(origin, { cache: { redis: 'redis://127.0.0.1:9' } });
    expect(Date.now() - startedAt).toBeLessThan(1_000);
    expect(alone.portico.cache!.stats().shared?.status).toBe('down');
    expect((await get(alone, '/first')).status).toBe(200);
  });

  it('with Redis killed, both instances keep answering 200; when it is back it is used again', async () => {
    const origin = await countingOrigin();
    const a = await instance(origin);
    const b = await instance(origin);
    await get(a, `/before`);
    await storedInRedis('/before');
    await redis.kill();
    for (const p of [a, b]) {
      for (const path of ['/before', '/during']) {
        const started = performance.now();
        const reply = await get(p, `${path}`);
        expect(reply.status).toBe(200);
        expect(performance.now() - started).toBeLessThan(1_000);
      }
    }
    // A still has /before in memory; nothing was lost.
    expect((await get(a, `/before`)).headers['cache-status']).toMatch(/^portico; hit/);
    await waitFor(() => a.portico.cache!.stats().shared?.status === 'down', 3_000, 'A to see Redis down');
    await redis.restart();
    await waitFor(() => a.portico.cache!.stats().shared?.status === 'up' && b.portico.cache!.stats().shared?.status === 'up', 10_000, 'both to see Redis back');
    await get(a, `/after`);
    await storedInRedis('/after');
    expect((await get(b, `/after`)).headers['cache-status']).toMatch(/detail=redis/);
    expect(origin.count('/after')).toBe(1);
  });

  it('reports the tier in /api/stats and /metrics', async () => {
    const origin = await countingOrigin();
    const a = await instance(origin);
    await get(a, `/s`);
    const stats = await request(`${a.adminUrl}/api/stats`);
    expect(JSON.parse(stats.body).cache.shared).toMatchObject({ status: 'up', bus: 'up' });
    const metrics = await request(`${a.adminUrl}/metrics`);
    expect(metrics.body).toMatch(/^portico_cache_shared_up 1$/m);
  });
});
