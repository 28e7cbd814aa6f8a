/**
 * Cache rules (issue 3) end to end through the real reverse proxy, over real sockets: every test
 * counts the requests that reach the origin. Complements reverse-proxy-cache.test.ts with the rules
 * it does not cover. A stored response grows stale when the test moves the shared clock forward
 * (`gateway.clock.advance(ms)`: max-age=1 is stale 1.1 s later, Date and Age having 1 s granularity),
 * so the tests run one after another.
 */
import { describe, expect, it } from 'vitest';
import { request, type Reply } from '../helpers/http.js';
import { routedGateway, type Handler } from './routed-gateway.js';

const gateway = routedGateway('/rules', { max_object_size: '64kb' });
const { path, get } = gateway;

/** The If-None-Match each request for `p` carried to the origin, in order. */
const inm = (p: string) => gateway.origin.requests.filter((r) => r.url === p).map((r) => r.headers['if-none-match']);
const age = (r: Reply) => Number(r.headers.age);

/** A handler that answers 304 to If-None-Match `etag`, else 200 with `body`. */
function validating(cacheControl: string, etag: string, body: string, extra: Record<string, string> = {}): Handler {
  return (req, res) => {
    res.setHeader('Cache-Control', cacheControl);
    res.setHeader('ETag', etag);
    for (const [k, v] of Object.entries(extra)) res.setHeader(k, v);
    if (req.headers['if-none-match'] === etag) {
      res.statusCode = 304;
      res.end();
    } else res.end(body);
  };
}

describe('1. s-maxage', () => {
  it('s-maxage=60 overrides max-age=0 for this shared cache (hit)', async () => {
    const p = path((_req, res) => {
      res.setHeader('Cache-Control', 'max-age=0, s-maxage=60');
      res.end('shared');
    });
    const a = await get(p);
    const b = await get(p);
    expect(a.status).toBe(200);
    expect(a.headers['cache-status']).toMatch(/^portico; fwd=uri-miss; fwd-status=200; ttl=(58|59|60); stored$/);
    expect(b.status).toBe(200);
    expect(b.body).toBe('shared');
    expect(age(b)).toBeLessThanOrEqual(1);
    expect(b.headers['cache-status']).toMatch(/^portico; hit; ttl=(58|59|60)$/);
    expect(gateway.origin.count(p)).toBe(1);
  });

  it('s-maxage implies must-revalidate: once stale it is not served stale under stale-if-error (503 passed on)', async () => {
    // max-age=60 is overridden by s-maxage=1 for a shared cache.
    const origin = gateway.failable('s-maxage=1, max-age=60, stale-if-error=60');
    const p = origin.path;
    const a = await get(p);
    expect(a.headers['cache-status']).toContain('stored');
    gateway.clock.advance(1100);
    origin.failing = true;
    const b = await get(p);
    expect(b.status).toBe(503);
    expect(b.body).toBe('down');
    expect(b.body).not.toBe('good');
    expect(b.headers['cache-status']).toContain('fwd=stale; fwd-status=503');
    expect(b.headers['cache-status']).not.toContain('stale-if-error');
    // A request max-stale does not unlock it either.
    const c = await get(p, { 'cache-control': 'max-stale=600' });
    expect(c.status).toBe(503);
    expect(c.body).toBe('down');
    expect(gateway.origin.count(p)).toBe(3);
  });
});

describe('2. response no-cache', () => {
  it('stores a no-cache response with an ETag but revalidates it before every reuse', async () => {
    const p = path(validating('no-cache', '"nc1"', 'nc-body'));
    const a = await get(p);
    expect(a.status).toBe(200);
    // lifetime 0; ttl is 0 or -1 depending on where in its second the origin's Date fell.
    expect(a.headers['cache-status']).toMatch(/fwd=uri-miss; fwd-status=200; ttl=(0|-1); stored/);
    const b = await get(p);
    expect(b.status).toBe(200);
    expect(b.body).toBe('nc-body');
    expect(b.headers['cache-status']).toMatch(/^portico; fwd=stale; fwd-status=304; ttl=(0|-1)$/);
    expect(gateway.origin.count(p)).toBe(2);
    const c = await get(p);
    expect(c.body).toBe('nc-body');
    expect(c.headers['cache-status']).toContain('fwd=stale; fwd-status=304');
    expect(inm(p)).toEqual([undefined, '"nc1"', '"nc1"']);
    expect(gateway.origin.count(p)).toBe(3);
  });

  it('revalidates no-cache even with max-age=60 (never a plain hit)', async () => {
    const p = path(validating('no-cache, max-age=60', '"nc2"', 'nc2-body'));
    await get(p);
    const b = await get(p);
    expect(b.status).toBe(200);
    expect(b.body).toBe('nc2-body');
    expect(b.headers['cache-status']).toContain('fwd=stale; fwd-status=304');
    expect(b.headers['cache-status']).not.toMatch(/; hit/);
    expect(inm(p)).toEqual([undefined, '"nc2"']);
    expect(gateway.origin.count(p)).toBe(2);
  });

  it('does not store a no-cache response without a validator', async () => {
    const p = path((_req, res) => {
      res.setHeader('Cache-Control', 'no-cache, max-age=60');
      res.end('nv');
    });
    const a = await get(p);
    const b = await get(p);
    expect(a.headers['cache-status']).toContain('detail=no-cache');
    expect(b.body).toBe('nv');
    expect(b.headers['cache-status']).toContain('fwd=uri-miss');
    expect(gateway.origin.count(p)).toBe(2);
  });
});

describe('3. proxy-revalidate and must-revalidate', () => {
  it('proxy-revalidate: once stale it is not served stale under stale-if-error', async () => {
    const origin = gateway.failable('max-age=1, proxy-revalidate, stale-if-error=60');
    const p = origin.path;
    await get(p);
    gateway.clock.advance(1100);
    origin.failing = true;
    const b = await get(p);
    expect(b.status).toBe(503);
    expect(b.body).toBe('down');
    expect(b.headers['cache-status']).toContain('fwd=stale; fwd-status=503');
    expect(gateway.origin.count(p)).toBe(2);
  });

  it('proxy-revalidate: once stale it is revalidated even when the request allows max-stale', async () => {
    const p = path(validating('max-age=1, proxy-revalidate', '"pr"', 'pr-body'));
    await get(p);
    gateway.clock.advance(1100);
    const b = await get(p, { 'cache-control': 'max-stale=600' });
    expect(b.status).toBe(200);
    expect(b.body).toBe('pr-body');
    expect(b.headers['cache-status']).toContain('fwd=stale; fwd-status=304');
    expect(inm(p)).toEqual([undefined, '"pr"']);
    expect(gateway.origin.count(p)).toBe(2);
  });

  it('a FRESH must-revalidate response is served from the cache without revalidation', async () => {
    const p = path(validating('max-age=60, must-revalidate', '"mr"', 'mr-body'));
    await get(p);
    const b = await get(p);
    const c = await get(p);
    expect(b.status).toBe(200);
    expect(b.body).toBe('mr-body');
    expect(age(b)).toBeLessThanOrEqual(1);
    expect(b.headers['cache-status']).toMatch(/^portico; hit; ttl=(58|59|60)$/);
    expect(c.headers['cache-status']).toContain('hit');
    expect(gateway.origin.count(p)).toBe(1);
  });

  it('a FRESH proxy-revalidate response is served from the cache without revalidation', async () => {
    const p = path(validating('max-age=60, proxy-revalidate', '"prf"', 'prf-body'));
    await get(p);
    const b = await get(p);
    expect(b.body).toBe('prf-body');
    expect(b.headers['cache-status']).toMatch(/^portico; hit; ttl=\d+$/);
    expect(gateway.origin.count(p)).toBe(1);
  });
});

describe('4. private, private="x", no-store, case-insensitive directives', () => {
  it('does not store a response with bare private (any case)', async () => {
    const p = path((_req, res) => {
      res.setHeader('Cache-Control', 'PRIVATE, max-age=60');
      res.end('mine');
    });
    const a = await get(p);
    const b = await get(p);
    expect(a.status).toBe(200);
    expect(a.headers['cache-status']).toContain('detail=private');
    expect(b.body).toBe('mine');
    expect(b.headers['cache-status']).toContain('fwd=uri-miss');
    expect(b.headers['cache-status']).toContain('detail=private');
    expect(gateway.origin.count(p)).toBe(2);
  });

  it('private="x-secret": stores the response but never the named field (RFC 9111 §5.2.2.7)', async () => {
    const p = path((_req, res) => {
      res.setHeader('Cache-Control', 'private="x-secret", max-age=60');
      res.setHeader('X-Secret', 'for-one-client');
      res.setHeader('X-Public', 'for-all');
      res.end('qualified');
    });
    const a = await get(p);
    const b = await get(p);
    expect(a.headers['x-secret']).toBe('for-one-client');
    expect(a.headers['cache-status']).toContain('stored');
    expect(b.status).toBe(200);
    expect(b.body).toBe('qualified');
    expect(b.headers['cache-status']).toMatch(/^portico; hit; ttl=\d+$/);
    expect(b.headers['x-public']).toBe('for-all');
    expect(b.headers['x-secret']).toBeUndefined();
    expect(gateway.origin.count(p)).toBe(1);
  });

  it('does not store a no-store response (any case), even with max-age', async () => {
    const p = path((_req, res) => {
      res.setHeader('Cache-Control', 'max-age=60, No-Store');
      res.end('ns');
    });
    const a = await get(p);
    const b = await get(p);
    expect(a.headers['cache-status']).toContain('detail=no-store');
    expect(b.status).toBe(200);
    expect(b.body).toBe('ns');
    expect(b.headers['cache-status']).toContain('fwd=uri-miss');
    expect(gateway.origin.count(p)).toBe(2);
  });

  it('treats directive names case-insensitively (MAX-AGE=60 is a hit)', async () => {
    const p = path((_req, res) => {
      res.setHeader('Cache-Control', 'MAX-AGE=60');
      res.end('upper');
    });
    const a = await get(p);
    const b = await get(p);
    expect(a.headers['cache-status']).toMatch(/ttl=(58|59|60); stored$/);
    expect(b.status).toBe(200);
    expect(b.body).toBe('upper');
    expect(age(b)).toBeLessThanOrEqual(1);
    expect(b.headers['cache-status']).toMatch(/^portico; hit; ttl=(58|59|60)$/);
    expect(gateway.origin.count(p)).toBe(1);
  });
});

describe('5. CDN-Cache-Control (RFC 9213)', () => {
  it('CDN-Cache-Control: max-age=60 wins over Cache-Control: no-store (stored, hit)', async () => {
    const p = path((_req, res) => {
      res.setHeader('CDN-Cache-Control', 'max-age=60');
      res.setHeader('Cache-Control', 'no-store');
      res.end('cdn');
    });
    const a = await get(p);
    const b = await get(p);
    expect(a.headers['cache-status']).toMatch(/ttl=(58|59|60); stored$/);
    expect(b.status).toBe(200);
    expect(b.body).toBe('cdn');
    expect(b.headers['cache-status']).toMatch(/^portico; hit; ttl=(58|59|60)$/);
    expect(gateway.origin.count(p)).toBe(1);
  });

  it('CDN-Cache-Control: no-store wins over Cache-Control: max-age=60 (not stored)', async () => {
    const p = path((_req, res) => {
      res.setHeader('CDN-Cache-Control', 'no-store');
      res.setHeader('Cache-Control', 'max-age=60');
      res.end('cdn-ns');
    });
    const a = await get(p);
    const b = await get(p);
    expect(a.headers['cache-status']).toContain('detail=no-store');
    expect(b.status).toBe(200);
    expect(b.body).toBe('cdn-ns');
    expect(b.headers['cache-status']).toContain('fwd=uri-miss');
    expect(gateway.origin.count(p)).toBe(2);
  });
});

describe('6. request directives', () => {
  it('request max-age=0 forces revalidation of a fresh response (fwd=request)', async () => {
    const p = path(validating('max-age=60', '"ma0"', 'ma0-body'));
    await get(p);
    const b = await get(p, { 'cache-control': 'max-age=0' });
    expect(b.status).toBe(200);
    expect(b.body).toBe('ma0-body');
    expect(b.headers['cache-status']).toContain('fwd=request; fwd-status=304');
    expect(inm(p)).toEqual([undefined, '"ma0"']);
    expect(gateway.origin.count(p)).toBe(2);
    const c = await get(p);
    expect(c.headers['cache-status']).toContain('hit');
    expect(gateway.origin.count(p)).toBe(2);
  });

  it('request max-stale allows a stale hit', async () => {
    const p = path((_req, res) => {
      res.setHeader('Cache-Control', 'max-age=1');
      res.end('old-but-ok');
    });
    await get(p);
    gateway.clock.advance(1100);
    const b = await get(p, { 'cache-control': 'max-stale=60' });
    expect(b.status).toBe(200);
    expect(b.body).toBe('old-but-ok');
    expect(age(b)).toBeGreaterThanOrEqual(1);
    expect(b.headers['cache-status']).toMatch(/^portico; hit; ttl=-?\d+$/);
    expect(gateway.origin.count(p)).toBe(1);
  });

  it('request max-stale does not allow a stale must-revalidate response', async () => {
    let version = 1;
    const p = path((_req, res) => {
      res.setHeader('Cache-Control', 'max-age=1, must-revalidate');
      res.end(`mr-v${version++}`);
    });
    await get(p);
    gateway.clock.advance(1100);
    const b = await get(p, { 'cache-control': 'max-stale=60' });
    expect(b.status).toBe(200);
    expect(b.body).toBe('mr-v2');
    expect(b.headers['cache-status']).toContain('fwd=stale; fwd-status=200');
    expect(gateway.origin.count(p)).toBe(2);
  });

  it('request min-fresh larger than the remaining freshness goes upstream', async () => {
    let version = 1;
    const p = path((_req, res) => {
      res.setHeader('Cache-Control', 'max-age=60');
      res.end(`mf-v${version++}`);
    });
    await get(p);
    const ok = await get(p, { 'cache-control': 'min-fresh=10' });
    expect(ok.body).toBe('mf-v1');
    expect(ok.headers['cache-status']).toContain('hit');
    expect(gateway.origin.count(p)).toBe(1);
    const b = await get(p, { 'cache-control': 'min-fresh=120' });
    expect(b.status).toBe(200);
    expect(b.body).toBe('mf-v2');
    expect(b.headers['cache-status']).toContain('fwd=request; fwd-status=200');
    expect(gateway.origin.count(p)).toBe(2);
  });

  it('request no-store: the response is not stored', async () => {
    const p = path((_req, res) => {
      res.setHeader('Cache-Control', 'max-age=60');
      res.end('rns');
    });
    const a = await get(p, { 'cache-control': 'no-store' });
    expect(a.status).toBe(200);
    expect(a.body).toBe('rns');
    expect(a.headers['cache-status']).toContain('detail=request-no-store');
    const b = await get(p);
    expect(b.body).toBe('rns');
    expect(b.headers['cache-status']).toMatch(/fwd=uri-miss; fwd-status=200; ttl=\d+; stored/);
    const c = await get(p);
    expect(c.headers['cache-status']).toContain('hit');
    expect(gateway.origin.count(p)).toBe(2);
  });
});

describe('7. Age and Date', () => {
  it('an upstream Age: 30 counts against max-age=60; the origin Date is kept', async () => {
    const date = new Date(Math.floor(Date.now() / 1000) * 1000 - 5000).toUTCString();
    const p = path((_req, res) => {
      res.setHeader('Cache-Control', 'max-age=60');
      res.setHeader('Age', '30');
      res.setHeader('Date', date);
      res.end('aged');
    });
    const a = await get(p);
    const b = await get(p);
    expect(a.headers.date).toBe(date);
    const ttlA = Number(/ttl=(-?\d+)/.exec(String(a.headers['cache-status']))?.[1]);
    expect(ttlA).toBeLessThanOrEqual(30);
    expect(ttlA).toBeGreaterThanOrEqual(28);
    expect(b.status).toBe(200);
    expect(b.body).toBe('aged');
    expect(b.headers.date).toBe(date);
    expect(age(b)).toBeGreaterThanOrEqual(30);
    expect(age(b)).toBeLessThanOrEqual(32);
    expect(b.headers['cache-status']).toMatch(/^portico; hit; ttl=\d+$/);
    const ttlB = Number(/ttl=(-?\d+)/.exec(String(b.headers['cache-status']))?.[1]);
    expect(ttlB).toBeLessThanOrEqual(30);
    expect(gateway.origin.count(p)).toBe(1);
  });

  it('an upstream Age beyond max-age makes the response stale at once', async () => {
    const p = path(validating('max-age=60', '"aged"', 'too-old', { Age: '120' }));
    await get(p);
    const b = await get(p);
    expect(b.body).toBe('too-old');
    expect(b.headers['cache-status']).toContain('fwd=stale; fwd-status=304');
    expect(gateway.origin.count(p)).toBe(2);
  });
});

describe('8. HEAD freshens the stored GET (RFC 9111 §4.3.5)', () => {
  it('a HEAD that goes upstream with the same validator updates the stored GET headers', async () => {
    let version = 1;
    const p = path((req, res) => {
      res.setHeader('Cache-Control', version === 1 ? 'max-age=1' : 'max-age=60');
      res.setHeader('ETag', '"hd"');
      res.setHeader('X-Version', String(version));
      res.setHeader('Content-Length', '8');
      if (req.method === 'HEAD') {
        res.end();
        return;
      }
      res.end('headbody');
    });
    const a = await get(p);
    expect(a.headers['x-version']).toBe('1');
    version = 2;
    // The client's no-cache sends the HEAD upstream; the origin answers 200 (it ignores If-None-Match).
    const h = await get(p, { 'cache-control': 'no-cache' }, 'HEAD');
    expect(h.status).toBe(200);
    expect(h.body).toBe('');
    expect(h.headers['x-version']).toBe('2');
    expect(gateway.origin.requests.filter((r) => r.url === p).map((r) => r.method)).toEqual(['GET', 'HEAD']);
    gateway.clock.advance(1100); // the original max-age=1 would be stale by now
    const b = await get(p);
    expect(b.status).toBe(200);
    expect(b.body).toBe('headbody');
    expect(b.headers['x-version']).toBe('2');
    expect(b.headers['cache-control']).toBe('max-age=60');
    expect(b.headers['cache-status']).toMatch(/^portico; hit; ttl=\d+$/);
    expect(gateway.origin.count(p)).toBe(2);
  });

  it('a HEAD with a different validator makes the stored GET unusable', async () => {
    let etag = '"h1"';
    const p = path((req, res) => {
      res.setHeader('Cache-Control', 'max-age=60');
      res.setHeader('ETag', etag);
      res.setHeader('Content-Length', '3');
      if (req.method === 'HEAD') res.end();
      else res.end(etag === '"h1"' ? 'one' : 'two');
    });
    await get(p);
    etag = '"h2"';
    await get(p, { 'cache-control': 'no-cache' }, 'HEAD');
    const b = await get(p);
    expect(b.status).toBe(200);
    expect(b.body).toBe('two');
    expect(b.headers.etag).toBe('"h2"');
    expect(b.headers['cache-status']).toContain('fwd=uri-miss');
    expect(gateway.origin.count(p)).toBe(3);
  });
});

describe('9. invalidation', () => {
  it('a successful DELETE invalidates the target URL', async () => {
    let version = 1;
    const p = path((req, res) => {
      if (req.method === 'DELETE') {
        res.statusCode = 204;
        res.end();
        return;
      }
      res.setHeader('Cache-Control', 'max-age=60');
      res.end(`del-v${version++}`);
    });
    await get(p);
    expect((await get(p)).headers['cache-status']).toContain('hit');
    const d = await request(`${gateway.base}${p}`, { method: 'DELETE' });
    expect(d.status).toBe(204);
    expect(d.headers['cache-status']).toBe('portico; fwd=method; fwd-status=204');
    const b = await get(p);
    expect(b.status).toBe(200);
    expect(b.body).toBe('del-v2');
    expect(b.headers['cache-status']).toContain('fwd=uri-miss');
    expect(gateway.origin.count(p)).toBe(3); // GET, DELETE, GET
  });

  it('a POST with a same-origin Content-Location invalidates that URL; a cross-origin Location is not', async () => {
    const mk = (label: string) => {
      let v = 1;
      return path((_req, res) => {
        res.setHeader('Cache-Control', 'max-age=60');
        res.end(`${label}-${v++}`);
      });
    };
    const described = mk('described');
    const elsewhere = mk('elsewhere');
    const poster = path((req, res) => {
      if (req.method === 'POST') {
        res.statusCode = 200;
        res.setHeader('Content-Location', described);
        res.setHeader('Location', `http://other.invalid${elsewhere}`);
        res.end('posted');
      } else res.end('p');
    });
    await get(described);
    await get(elsewhere);
    const post = await request(`${gateway.base}${poster}`, { method: 'POST', body: 'x' });
    expect(post.status).toBe(200);
    expect(post.body).toBe('posted');
    expect(post.headers['cache-status']).toBe('portico; fwd=method; fwd-status=200');
    const d = await get(described);
    const e = await get(elsewhere);
    expect(d.body).toBe('described-2');
    expect(d.headers['cache-status']).toContain('fwd=uri-miss');
    expect(e.body).toBe('elsewhere-1');
    expect(e.headers['cache-status']).toMatch(/^portico; hit; ttl=\d+$/);
    expect(gateway.origin.count(described)).toBe(2);
    expect(gateway.origin.count(elsewhere)).toBe(1);
  });

  it('a POST with an absolute same-origin Content-Location invalidates that URL', async () => {
    let v = 1;
    const target = path((_req, res) => {
      res.setHeader('Cache-Control', 'max-age=60');
      res.end(`abs-${v++}`);
    });
    const poster = path((_req, res) => {
      res.setHeader('Content-Location', `${gateway.base}${target}`);
      res.end('posted');
    });
    await get(target);
    await request(`${gateway.base}${poster}`, { method: 'POST', body: 'x' });
    const b = await get(target);
    expect(b.body).toBe('abs-2');
    expect(b.headers['cache-status']).toContain('fwd=uri-miss');
    expect(gateway.origin.count(target)).toBe(2);
  });
});

describe('10. 304 merge', () => {
  it('headers of a 304 (X-Version, Cache-Control) replace the stored ones on later hits', async () => {
    let revalidated = false;
    const p = path((req, res) => {
      res.setHeader('ETag', '"m1"');
      if (req.headers['if-none-match'] === '"m1"') {
        revalidated = true;
        res.setHeader('Cache-Control', 'max-age=60');
        res.setHeader('X-Version', '2');
        res.statusCode = 304;
        res.end();
        return;
      }
      res.setHeader('Cache-Control', 'max-age=1');
      res.setHeader('X-Version', '1');
      res.end('merge-body');
    });
    const a = await get(p);
    expect(a.headers['x-version']).toBe('1');
    gateway.clock.advance(1100);
    const b = await get(p);
    expect(revalidated).toBe(true);
    expect(b.status).toBe(200);
    expect(b.body).toBe('merge-body');
    expect(b.headers['x-version']).toBe('2');
    expect(b.headers['cache-control']).toBe('max-age=60');
    expect(b.headers['cache-status']).toMatch(/fwd=stale; fwd-status=304; ttl=(58|59|60)/);
    gateway.clock.advance(1100); // stale under the old max-age=1, fresh under the merged max-age=60
    const c = await get(p);
    expect(c.status).toBe(200);
    expect(c.body).toBe('merge-body');
    expect(c.headers['x-version']).toBe('2');
    expect(c.headers['cache-control']).toBe('max-age=60');
    expect(c.headers['cache-status']).toMatch(/^portico; hit; ttl=(5[0-9]|60)$/);
    expect(age(c)).toBeGreaterThanOrEqual(1);
    expect(gateway.origin.count(p)).toBe(2);
  });
});
