/**
 * The cache through the real reverse proxy: every test counts the requests that reach the origin.
 */
import { request as httpRequest } from 'node:http';
import { describe, expect, it } from 'vitest';
import type { HttpCache } from '../../src/cache/engine.js';
import { request } from '../helpers/http.js';
import { routedGateway } from './routed-gateway.js';

const gateway = routedGateway('/t', { max_object_size: '64kb', tag_header: 'surrogate-key' });
const { path, get } = gateway;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function cacheOf(): HttpCache {
  const cache = gateway.portico.portico.cache?.reverse ?? null;
  if (cache === null) throw new Error('cache disabled');
  return cache;
}

describe('storing and reusing', () => {
  it('serves a fresh response from the cache with Age and Cache-Status', async () => {
    const p = path((_req, res) => {
      res.setHeader('Cache-Control', 'max-age=60');
      res.end('hello');
    });
    const a = await get(p);
    const b = await get(p);
    expect(a.headers['cache-status']).toMatch(/^portico; fwd=uri-miss; fwd-status=200; ttl=(59|60); stored$/);
    expect(b.status).toBe(200);
    expect(b.body).toBe('hello');
    expect(b.headers.age).toBe('0');
    expect(b.headers['cache-status']).toMatch(/^portico; hit; ttl=\d+$/);
    expect(b.headers.date).toBe(a.headers.date);
    expect(b.headers.warning).toBeUndefined();
    expect(gateway.origin.count(p)).toBe(1);
  });

  it.each([
    ['no-store', 'no-store', {}],
    ['private', 'private, max-age=60', {}],
    ['set-cookie', 'max-age=60', { 'Set-Cookie': 'sid=1' }],
  ])('does not store a %s response', async (detail, cacheControl, extra) => {
    const p = path((_req, res) => {
      res.setHeader('Cache-Control', cacheControl);
      for (const [k, v] of Object.entries(extra)) res.setHeader(k, v);
      res.end('x');
    });
    const a = await get(p);
    await get(p);
    expect(a.headers['cache-status']).toContain(`detail=${detail}`);
    expect(gateway.origin.count(p)).toBe(2);
  });

  it('stores a public Set-Cookie response but never replays the cookie', async () => {
    const p = path((_req, res) => {
      res.setHeader('Cache-Control', 'public, max-age=60');
      res.setHeader('Set-Cookie', 'sid=secret');
      res.end('shared');
    });
    const a = await get(p);
    const b = await get(p);
    expect(a.headers['set-cookie']).toEqual(['sid=secret']);
    expect(b.body).toBe('shared');
    expect(b.headers['set-cookie']).toBeUndefined();
    expect(gateway.origin.count(p)).toBe(1);
  });

  it('does not share a response to an Authorization request unless the origin allows it', async () => {
    const plain = path((_req, res) => {
      res.setHeader('Cache-Control', 'max-age=60');
      res.end('mine');
    });
    const shared = path((_req, res) => {
      res.setHeader('Cache-Control', 's-maxage=60');
      res.end('ours');
    });
    const a = await get(plain, { authorization: 'Bearer a' });
    await get(plain);
    expect(a.headers['cache-status']).toContain('detail=auth');
    expect(gateway.origin.count(plain)).toBe(2);
    await get(shared, { authorization: 'Bearer a' });
    const b = await get(shared);
    expect(b.body).toBe('ours');
    expect(gateway.origin.count(shared)).toBe(1);
  });

  it('does not reuse a response without freshness or validator (no invented TTL)', async () => {
    const p = path((_req, res) => res.end('plain'));
    const a = await get(p);
    await get(p);
    expect(a.headers['cache-status']).toContain('detail=no-freshness');
    expect(gateway.origin.count(p)).toBe(2);
  });

  it('uses heuristic freshness for a 200 with Last-Modified', async () => {
    const p = path((_req, res) => {
      res.setHeader('Last-Modified', new Date(Date.now() - 10 * 86_400_000).toUTCString());
      res.end('old');
    });
    await get(p);
    const b = await get(p);
    expect(b.headers['cache-status']).toContain('hit');
    expect(gateway.origin.count(p)).toBe(1);
  });

  it('keeps separate variants per Vary and reports vary-miss', async () => {
    const p = path((req, res) => {
      res.setHeader('Cache-Control', 'max-age=60');
      res.setHeader('Vary', 'Accept-Language');
      res.end(`lang=${req.headers['accept-language'] ?? ''}`);
    });
    await get(p, { 'accept-language': 'en' });
    const de = await get(p, { 'accept-language': 'de' });
    const en = await get(p, { 'accept-language': 'EN' });
    const de2 = await get(p, { 'accept-language': 'de' });
    expect(de.headers['cache-status']).toContain('fwd=vary-miss');
    expect(en.body).toBe('lang=en');
    expect(de2.body).toBe('lang=de');
    expect(gateway.origin.count(p)).toBe(2);
  });

  it('does not keep a response larger than max_object_size but streams it whole', async () => {
    const big = 'x'.repeat(100 * 1024);
    const p = path((_req, res) => {
      res.setHeader('Cache-Control', 'max-age=60');
      res.end(big);
    });
    const a = await get(p);
    const b = await get(p);
    expect(a.body.length).toBe(big.length);
    expect(a.headers['cache-status']).toContain('detail=too-big');
    expect(b.body.length).toBe(big.length);
    expect(gateway.origin.count(p)).toBe(2);
  });

  it('does not keep a chunked response that grows past max_object_size', async () => {
    const p = path((_req, res) => {
      res.setHeader('Cache-Control', 'max-age=60');
      for (let i = 0; i < 10; i++) res.write('y'.repeat(10 * 1024));
      res.end();
    });
    const a = await get(p);
    await get(p);
    expect(a.body.length).toBe(100 * 1024);
    expect(gateway.origin.count(p)).toBe(2);
  });
});

describe('validation', () => {
  it('revalidates a stale response with If-None-Match and merges the 304', async () => {
    let version = 1;
    const p = path((req, res) => {
      res.setHeader('Cache-Control', 'max-age=1');
      res.setHeader('ETag', '"v1"');
      res.setHeader('X-Version', String(version++));
      if (req.headers['if-none-match'] === '"v1"') {
        res.statusCode = 304;
        res.end();
      } else res.end('body-v1');
    });
    await get(p);
    gateway.clock.advance(1100);
    const b = await get(p);
    expect(b.status).toBe(200);
    expect(b.body).toBe('body-v1');
    expect(b.headers['x-version']).toBe('2');
    expect(b.headers['cache-status']).toMatch(/fwd=stale; fwd-status=304/);
    expect(gateway.origin.requests.filter((r) => r.url === p).map((r) => r.headers['if-none-match'])).toEqual([undefined, '"v1"']);
    const c = await get(p);
    expect(c.headers['cache-status']).toContain('hit');
    expect(c.headers['x-version']).toBe('2');
    expect(gateway.origin.count(p)).toBe(2);
  });

  it('replaces the stored response when the revalidation returns 200', async () => {
    let version = 1;
    const p = path((_req, res) => {
      res.setHeader('Cache-Control', 'max-age=1');
      res.setHeader('ETag', `"v${version}"`);
      res.end(`body-${version++}`);
    });
    await get(p);
    gateway.clock.advance(1100);
    const b = await get(p);
    const c = await get(p);
    expect(b.body).toBe('body-2');
    expect(c.body).toBe('body-2');
    expect(c.headers['cache-status']).toContain('hit');
    expect(gateway.origin.count(p)).toBe(2);
  });

  it('answers a client conditional with 304 from a fresh stored response', async () => {
    const p = path((_req, res) => {
      res.setHeader('Cache-Control', 'max-age=60');
      res.setHeader('ETag', '"abc"');
      res.end('content');
    });
    await get(p);
    const b = await get(p, { 'if-none-match': '"abc"' });
    expect(b.status).toBe(304);
    expect(b.headers.etag).toBe('"abc"');
    expect(b.body).toBe('');
    expect(gateway.origin.count(p)).toBe(1);
  });

  it('revalidates on a client no-cache (fwd=request)', async () => {
    const p = path((req, res) => {
      res.setHeader('Cache-Control', 'max-age=60');
      res.setHeader('ETag', '"abc"');
      if (req.headers['if-none-match'] === '"abc"') {
        res.statusCode = 304;
        res.end();
      } else res.end('content');
    });
    await get(p);
    const b = await get(p, { 'cache-control': 'no-cache' });
    expect(b.body).toBe('content');
    expect(b.headers['cache-status']).toContain('fwd=request; fwd-status=304');
    expect(gateway.origin.count(p)).toBe(2);
  });

  it('answers only-if-cached misses with 504', async () => {
    const p = path((_req, res) => res.end('never'));
    const a = await get(p, { 'cache-control': 'only-if-cached' });
    expect(a.status).toBe(504);
    expect(a.headers['cache-status']).toContain('only-if-cached');
    expect(gateway.origin.count(p)).toBe(0);
  });
});

describe('HEAD and Range', () => {
  it('serves HEAD from a stored GET response', async () => {
    const p = path((_req, res) => {
      res.setHeader('Cache-Control', 'max-age=60');
      res.end('twelve bytes');
    });
    await get(p);
    const h = await get(p, {}, 'HEAD');
    expect(h.status).toBe(200);
    expect(h.body).toBe('');
    expect(h.headers['content-length']).toBe('12');
    expect(gateway.origin.count(p)).toBe(1);
  });

  it('answers Range requests from a stored complete response (206, If-Range, 416)', async () => {
    const p = path((_req, res) => {
      res.setHeader('Cache-Control', 'max-age=60');
      res.setHeader('ETag', '"r1"');
      res.end('0123456789');
    });
    await get(p);
    const r = await get(p, { range: 'bytes=2-4' });
    expect(r.status).toBe(206);
    expect(r.body).toBe('234');
    expect(r.headers['content-range']).toBe('bytes 2-4/10');
    const suffix = await get(p, { range: 'bytes=-3' });
    expect(suffix.body).toBe('789');
    const wrongIfRange = await get(p, { range: 'bytes=2-4', 'if-range': '"other"' });
    expect(wrongIfRange.status).toBe(200);
    expect(wrongIfRange.body).toBe('0123456789');
    const unsatisfiable = await get(p, { range: 'bytes=20-' });
    expect(unsatisfiable.status).toBe(416);
    expect(unsatisfiable.headers['content-range']).toBe('bytes */10');
    expect(gateway.origin.count(p)).toBe(1);
  });

  it('passes an upstream 206 through and does not store it', async () => {
    const p = path((_req, res) => {
      res.statusCode = 206;
      res.setHeader('Cache-Control', 'max-age=60');
      res.setHeader('Content-Range', 'bytes 0-1/10');
      res.end('01');
    });
    const a = await get(p, { range: 'bytes=0-1' });
    const b = await get(p);
    expect(a.status).toBe(206);
    expect(b.status).toBe(206);
    expect(gateway.origin.count(p)).toBe(2);
  });
});

describe('invalidation', () => {
  it('invalidates the target and same-origin Location after a successful POST', async () => {
    const target = path((_req, res) => {
      res.setHeader('Cache-Control', 'max-age=60');
      res.end('t');
    });
    const other = path((_req, res) => {
      res.setHeader('Cache-Control', 'max-age=60');
      res.end('o');
    });
    const poster = path((req, res) => {
      if (req.method === 'POST') {
        res.statusCode = 201;
        res.setHeader('Location', other);
        res.end('created');
      } else {
        res.setHeader('Cache-Control', 'max-age=60');
        res.end('p');
      }
    });
    await get(poster);
    await get(other);
    await get(target);
    const post = await request(`${gateway.base}${poster}`, { method: 'POST', body: 'data' });
    expect(post.status).toBe(201);
    expect(post.headers['cache-status']).toBe('portico; fwd=method; fwd-status=201');
    await get(poster);
    await get(other);
    await get(target);
    expect(gateway.origin.count(poster)).toBe(3);
    expect(gateway.origin.count(other)).toBe(2);
    expect(gateway.origin.count(target)).toBe(1);
  });

  it('keeps the stored response when the unsafe request fails', async () => {
    const p = path((req, res) => {
      if (req.method === 'DELETE') {
        res.statusCode = 500;
        res.end('no');
      } else {
        res.setHeader('Cache-Control', 'max-age=60');
        res.end('kept');
      }
    });
    await get(p);
    await request(`${gateway.base}${p}`, { method: 'DELETE' });
    const b = await get(p);
    expect(b.headers['cache-status']).toContain('hit');
    expect(gateway.origin.count(p)).toBe(2);
  });
});

describe('stale responses', () => {
  it('serves stale on a 5xx within stale-if-error, and never under must-revalidate', async () => {
    const lenient = gateway.failable('max-age=1, stale-if-error=60');
    const strictOrigin = gateway.failable('max-age=1, stale-if-error=60, must-revalidate');
    const [sie, strict] = [lenient.path, strictOrigin.path];
    await get(sie);
    await get(strict);
    gateway.clock.advance(1100);
    lenient.failing = strictOrigin.failing = true;
    const a = await get(sie);
    const b = await get(strict);
    lenient.failing = strictOrigin.failing = false;
    expect(a.status).toBe(200);
    expect(a.body).toBe('good');
    expect(a.headers['cache-status']).toContain('fwd=stale; fwd-status=503');
    expect(a.headers['cache-status']).toContain('detail=stale-if-error');
    expect(b.status).toBe(503);
    expect(gateway.origin.count(sie)).toBe(2);
    // The failure did not evict the good entry.
    const c = await get(sie, { 'cache-control': 'max-stale=600' });
    expect(c.body).toBe('good');
  });

  it('serves stale when the origin cannot be reached, within stale-if-error', async () => {
    const p = path((req, res) => {
      if (gateway.origin.count(p) > 1) {
        req.socket.destroy();
        return;
      }
      res.setHeader('Cache-Control', 'max-age=1, stale-if-error=60');
      res.end('still here');
    });
    await get(p);
    gateway.clock.advance(1100);
    const b = await get(p);
    expect(b.status).toBe(200);
    expect(b.body).toBe('still here');
    expect(b.headers['cache-status']).toContain('detail=stale-if-error');
  });

  it('serves stale-while-revalidate and revalidates once in the background', async () => {
    let version = 0;
    const p = path((_req, res) => {
      version++;
      res.setHeader('Cache-Control', 'max-age=1, stale-while-revalidate=60');
      res.end(`v${version}`);
    });
    await get(p);
    gateway.clock.advance(1100);
    const [a, b] = await Promise.all([get(p), get(p)]);
    expect([a.body, b.body]).toEqual(['v1', 'v1']);
    expect(a.headers['cache-status']).toContain('detail=stale-while-revalidate');
    for (let i = 0; i < 50 && gateway.origin.count(p) < 2; i++) await sleep(10);
    await sleep(20);
    const c = await get(p);
    expect(c.body).toBe('v2');
    expect(gateway.origin.count(p)).toBe(2);
  });
});

describe('request collapsing', () => {
  it('sends one upstream request for concurrent misses of a shareable response', async () => {
    const p = path((_req, res) => {
      setTimeout(() => {
        res.setHeader('Cache-Control', 'max-age=60');
        res.end('slow');
      }, 150);
    });
    const replies = await Promise.all(Array.from({ length: 5 }, () => get(p)));
    expect(replies.every((r) => r.body === 'slow')).toBe(true);
    expect(gateway.origin.count(p)).toBe(1);
    expect(replies.filter((r) => String(r.headers['cache-status']).includes('collapsed')).length).toBe(4);
  });

  it('lets waiters go upstream on their own when the response is not shareable', async () => {
    const p = path((_req, res) => {
      setTimeout(() => {
        res.setHeader('Cache-Control', 'private');
        res.end('mine');
      }, 100);
    });
    const replies = await Promise.all(Array.from({ length: 3 }, () => get(p)));
    expect(replies.every((r) => r.body === 'mine')).toBe(true);
    expect(gateway.origin.count(p)).toBe(3);
  });

  it('after a response that could not be stored, concurrent requests for the URL go upstream at once (hit-for-miss)', async () => {
    let cacheable = false;
    const p = path((_req, res) => {
      setTimeout(() => {
        res.setHeader('Cache-Control', cacheable ? 'max-age=60' : 'no-store');
        res.end('answer');
      }, 300);
    });
    // First burst: the others wait for the first request's answer before they go upstream.
    let burst = Promise.all(Array.from({ length: 4 }, () => get(p)));
    await sleep(150);
    expect(gateway.origin.count(p)).toBe(1);
    await burst;
    // The URL is known not to be storable now: nobody waits.
    const before = gateway.origin.count(p);
    burst = Promise.all(Array.from({ length: 4 }, () => get(p)));
    await sleep(150);
    expect(gateway.origin.count(p) - before).toBe(4);
    await burst;
    // Once a response is stored again, hits follow as usual.
    cacheable = true;
    await get(p);
    expect((await get(p)).headers['cache-status']).toContain('hit');
  });
});

describe('failures never corrupt the store', () => {
  it('stores nothing when the upstream body breaks off, and keeps the previous entry', async () => {
    let broken = false;
    const p = path((_req, res) => {
      res.setHeader('Cache-Control', 'max-age=1');
      res.setHeader('Content-Length', '100');
      if (broken) {
        res.write('partial');
        setTimeout(() => res.destroy(), 20);
      } else res.end('z'.repeat(100));
    });
    await get(p);
    gateway.clock.advance(1100);
    broken = true;
    await expect(get(p)).rejects.toThrow();
    broken = false;
    const c = await get(p, { 'cache-control': 'max-stale=600' });
    expect(c.body).toBe('z'.repeat(100));
    expect(c.headers['cache-status']).toContain('hit');
  });

  it('stores nothing when the client goes away mid-body', async () => {
    const p = path((_req, res) => {
      res.setHeader('Cache-Control', 'max-age=60');
      res.write('a'.repeat(1000));
      setTimeout(() => res.end('b'), 200);
    });
    await new Promise<void>((resolve) => {
      const req = httpRequest(`${gateway.base}${p}`, (res) => {
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.on('error', () => resolve());
      req.end();
    });
    await sleep(300);
    const b = await get(p);
    expect(b.headers['cache-status']).toContain('fwd=uri-miss');
    expect(gateway.origin.count(p)).toBe(2);
  });
});

describe('purge', () => {
  it('purges by URL, prefix and tag', async () => {
    const tagged = path((_req, res) => {
      res.setHeader('Cache-Control', 'max-age=60');
      res.setHeader('Surrogate-Key', 'alpha beta');
      res.end('t');
    });
    const byUrl = path((_req, res) => {
      res.setHeader('Cache-Control', 'max-age=60');
      res.end('u');
    });
    await get(tagged);
    await get(byUrl);
    const cache = cacheOf();
    const host = new URL(gateway.base).host;
    expect(await cache.purgeTag('beta')).toBe(1);
    expect(await cache.purgeUrl(`http://${host}${byUrl}`)).toBe(1);
    await get(tagged);
    await get(byUrl);
    expect(gateway.origin.count(tagged)).toBe(2);
    expect(gateway.origin.count(byUrl)).toBe(2);
    expect(await cache.purgePrefix(`http://${host}/`)).toBeGreaterThanOrEqual(2);
    expect(cache.stats().entries).toBe(0);
  });
});
