/**
 * Operators' cache rules (`cache.rules[]`) over real sockets: each rule's effect, and its absence —
 * an app without freshness headers is not cached unless a rule says so.
 */
import { describe, expect, it } from 'vitest';
import { request } from '../helpers/http.js';
import { routedGateway } from './routed-gateway.js';

const g = routedGateway('/r', {
  rules: [
    { name: 'bypass-logged-in', cookie: { session: '.+' }, bypass: true },
    { name: 'no-store-api', path: '/r-api/', bypass: true },
    { name: 'statuses', path: '/statuses/', default_ttl: { 200: '1h', 404: '1m' } },
    { name: 'static', path: '/\\.(css|js)(\\?|$)/', default_ttl: '1d', key: { query: false } },
    { name: 'min', path: '/min/', min_ttl: '10m' },
    { name: 'max', path: '/max/', max_ttl: '30s' },
    { name: 'reload', path: '/reload/', ignore_client_no_cache: true },
    { name: 'private', path: '/private/', cache_private: true },
    { name: 'cookie', path: '/cookie/', cache_set_cookie: true },
    { name: 'keep-id', path: '/keep/', key: { query: ['id'] } },
    { name: 'ignore-utm', path: '/utm/', key: { query: { ignore: ['utm_source', 'utm_medium'] } } },
    { name: 'sorted', path: '/sorted/', key: { query: 'sort' } },
    { name: 'tenant', path: '/tenant/', key: { headers: ['X-Tenant'], cookies: ['lang'] } },
    { name: 'small', path: '/small/', max_object_size: '3b' },
    { name: 'popular', path: '/popular/', min_uses: 3 },
    { name: 'not-found-only', path: '/nf/', status: 404, default_ttl: '5m' },
    { name: 'forward-only', door: 'forward', path: '/fwd/', default_ttl: '1h' },
  ],
});

/** Routes like `/statuses/r5` reach the origin as `/statuses/r5`: register the full path instead. */
function at(dir: string, headers: Record<string, string> = {}, status = 200) {
  let n = 0;
  const p = g.path(() => undefined);
  const url = `${dir}${p.slice(1)}`;
  // Re-register under the full path the gateway forwards.
  (g as unknown as { routes: Map<string, unknown> }).routes.set(url, (_req: unknown, res: import('node:http').ServerResponse) => {
    n++;
    res.writeHead(status, { 'content-type': 'text/plain', ...headers });
    res.end(`body ${n}`);
  });
  return { url, count: () => n };
}

const get = (url: string, headers: Record<string, string> = {}) => request(`${g.base}${url}`, { headers });

describe('without a rule', () => {
  it('a response without freshness information is not cached', async () => {
    const page = at('/plain/');
    expect((await get(page.url)).headers['cache-status']).toMatch(/detail=no-freshness/);
    await get(page.url);
    expect(page.count()).toBe(2);
  });
});

describe('default_ttl (proxy_cache_valid, refresh_pattern)', () => {
  it('gives freshness by status to responses that carry none, and names the rule', async () => {
    const ok = at('/statuses/');
    const first = await get(ok.url);
    expect(first.headers['cache-status']).toMatch(/stored; detail=rule:statuses$/);
    expect(first.headers['cache-status']).toMatch(/ttl=(3599|3600)/);
    expect((await get(ok.url)).headers['cache-status']).toMatch(/^portico; hit/);
    expect(ok.count()).toBe(1);
    const missing = at('/statuses/', {}, 404);
    await get(missing.url);
    expect((await get(missing.url)).headers['cache-status']).toMatch(/^portico; hit; ttl=(59|60)/);
    const failing = at('/statuses/', {}, 500);
    await get(failing.url);
    await get(failing.url);
    expect(failing.count()).toBe(2);
  });

  it('never overrides the origin: no-store and private still win', async () => {
    const noStore = at('/statuses/', { 'cache-control': 'no-store' });
    await get(noStore.url);
    await get(noStore.url);
    expect(noStore.count()).toBe(2);
  });

  it('a status condition limits the response part of a rule', async () => {
    const ok = at('/nf/');
    await get(ok.url);
    await get(ok.url);
    expect(ok.count()).toBe(2);
    const missing = at('/nf/', {}, 404);
    await get(missing.url);
    expect((await get(missing.url)).headers['cache-status']).toMatch(/^portico; hit; ttl=(299|300)/);
  });

  it('a rule for the other door does not apply', async () => {
    const page = at('/fwd/');
    await get(page.url);
    await get(page.url);
    expect(page.count()).toBe(2);
  });
});

describe('min_ttl and max_ttl', () => {
  it('clamp the origin freshness', async () => {
    const short = at('/min/', { 'cache-control': 'max-age=1' });
    expect((await get(short.url)).headers['cache-status']).toMatch(/ttl=(599|600); stored; detail=rule:min/);
    const long = at('/max/', { 'cache-control': 'max-age=86400' });
    expect((await get(long.url)).headers['cache-status']).toMatch(/ttl=(29|30); stored; detail=rule:max/);
  });
});

describe('bypass (proxy_cache_bypass / proxy_no_cache)', () => {
  it('neither looks up nor stores, on a path or when a cookie is set', async () => {
    const api = at('/r-api/', { 'cache-control': 'max-age=60' });
    for (let i = 0; i < 3; i++) expect((await get(api.url)).headers['cache-status']).toBe('portico; fwd=bypass; fwd-status=200; detail=rule:no-store-api');
    expect(api.count()).toBe(3);
    const page = at('/any/', { 'cache-control': 'max-age=60' });
    await get(page.url);
    expect((await get(page.url)).headers['cache-status']).toMatch(/^portico; hit/);
    const loggedIn = await get(page.url, { cookie: 'theme=dark; session=abc' });
    expect(loggedIn.headers['cache-status']).toMatch(/fwd=bypass; .*detail=rule:bypass-logged-in/);
    expect(page.count()).toBe(2);
  });
});

describe('ignore_client_no_cache (Squid ignore-reload)', () => {
  it('serves a fresh stored response to a reload; without the rule the reload revalidates', async () => {
    const page = at('/reload/', { 'cache-control': 'max-age=60', etag: '"v"' });
    await get(page.url);
    expect((await get(page.url, { 'cache-control': 'no-cache' })).headers['cache-status']).toMatch(/^portico; hit/);
    expect((await get(page.url, { pragma: 'no-cache' })).headers['cache-status']).toMatch(/^portico; hit/);
    expect(page.count()).toBe(1);
    const other = at('/other/', { 'cache-control': 'max-age=60', etag: '"v"' });
    await get(other.url);
    await get(other.url, { 'cache-control': 'no-cache' });
    expect(other.count()).toBe(2);
  });
});

describe('cache_private and cache_set_cookie', () => {
  it('store what RFC 9111 would not, without the Set-Cookie', async () => {
    const priv = at('/private/', { 'cache-control': 'private, max-age=60' });
    await get(priv.url);
    expect((await get(priv.url)).headers['cache-status']).toMatch(/^portico; hit/);
    const withCookie = at('/cookie/', { 'cache-control': 'max-age=60', 'set-cookie': 'id=1' });
    expect((await get(withCookie.url)).headers['set-cookie']).toEqual(['id=1']);
    const hit = await get(withCookie.url);
    expect(hit.headers['cache-status']).toMatch(/^portico; hit/);
    expect(hit.headers['set-cookie']).toBeUndefined();
    const plain = at('/plain-cookie/', { 'cache-control': 'max-age=60', 'set-cookie': 'id=1' });
    const plainReply = await get(plain.url);
    expect(plainReply.headers['cache-status'], JSON.stringify(plainReply.headers)).toMatch(/detail=set-cookie/);
  });
});

describe('key (proxy_cache_key, Varnish hash_data)', () => {
  it('keeps only the listed query parameters', async () => {
    const page = at('/keep/', { 'cache-control': 'max-age=60' });
    await get(`${page.url}?id=1&utm=x`);
    expect((await get(`${page.url}?utm=y&id=1`)).headers['cache-status']).toMatch(/^portico; hit/);
    expect((await get(`${page.url}?id=2`)).headers['cache-status']).toMatch(/fwd=uri-miss/);
    expect(page.count()).toBe(2);
  });

  it('drops ignored parameters, drops the whole query, sorts', async () => {
    const utm = at('/utm/', { 'cache-control': 'max-age=60' });
    await get(`${utm.url}?a=1&utm_source=x`);
    expect((await get(`${utm.url}?utm_medium=y&a=1`)).headers['cache-status']).toMatch(/^portico; hit/);
    const css = at('/assets/', { 'cache-control': 'max-age=60' });
    await get(`${css.url}.css?v=1`);
    expect((await get(`${css.url}.css?v=2`)).headers['cache-status']).toMatch(/^portico; hit/);
    const sorted = at('/sorted/', { 'cache-control': 'max-age=60' });
    await get(`${sorted.url}?b=2&a=1`);
    expect((await get(`${sorted.url}?a=1&b=2`)).headers['cache-status']).toMatch(/^portico; hit/);
  });

  it('adds request headers and cookies to the key', async () => {
    const page = at('/tenant/', { 'cache-control': 'max-age=60' });
    await get(page.url, { 'x-tenant': 'a' });
    expect((await get(page.url, { 'x-tenant': 'a' })).headers['cache-status']).toMatch(/^portico; hit/);
    expect((await get(page.url, { 'x-tenant': 'b' })).headers['cache-status']).toMatch(/fwd=vary-miss/);
    expect((await get(page.url, { 'x-tenant': 'a', cookie: 'lang=de' })).headers['cache-status']).toMatch(/fwd=vary-miss/);
    expect((await get(page.url, { 'x-tenant': 'a', cookie: 'x=1; lang=de' })).headers['cache-status']).toMatch(/^portico; hit/);
  });
});

describe('Vary: Accept-Encoding', () => {
  it('is normalised to the set of known codings a client accepts', async () => {
    const page = at('/enc/', { 'cache-control': 'max-age=60', vary: 'Accept-Encoding' });
    await get(page.url, { 'accept-encoding': 'gzip, deflate, br' });
    expect((await get(page.url, { 'accept-encoding': 'br;q=1.0, gzip;q=0.8, deflate, sdch' })).headers['cache-status']).toMatch(/^portico; hit/);
    expect((await get(page.url, { 'accept-encoding': 'gzip' })).headers['cache-status']).toMatch(/fwd=vary-miss/);
    expect((await get(page.url, { 'accept-encoding': 'gzip, br;q=0' })).headers['cache-status']).toMatch(/^portico; hit/);
  });
});

describe('max_object_size and min_uses', () => {
  it('a rule can lower the size limit', async () => {
    const page = at('/small/', { 'cache-control': 'max-age=60' });
    await get(page.url);
    await get(page.url);
    expect(page.count()).toBe(2);
  });

  it('stores from the Nth request on (proxy_cache_min_uses)', async () => {
    const page = at('/popular/', { 'cache-control': 'max-age=60' });
    expect((await get(page.url)).headers['cache-status']).toMatch(/detail=rule:popular$/);
    expect((await get(page.url)).headers['cache-status']).not.toMatch(/stored/);
    expect((await get(page.url)).headers['cache-status']).toMatch(/stored; detail=rule:popular/);
    expect((await get(page.url)).headers['cache-status']).toMatch(/^portico; hit/);
    expect(page.count()).toBe(3);
  });
});

describe('rules are checked like the rest of the config', () => {
  it('a bad rule is refused with its key path, and nothing starts', async () => {
    const { startPortico } = await import('../helpers/portico.js');
    const bad = startPortico({
      reverse: { listen: '127.0.0.1:0', routes: [{ path: '/', pool: 'p' }] },
      pools: { p: { servers: [{ url: 'http://127.0.0.1:9' }] } },
      cache: { rules: [{ name: 'ok', path: '/a/' }, { path: '/(unclosed/' }] },
    } as never);
    await expect(bad).rejects.toThrow(/cache\.rules\[1\]\.path: expected a valid regular expression, got "\/\(unclosed\/"/);
    const { validateConfig } = await import('../../src/config/load.js');
    expect(() => validateConfig({ forward: {}, cache: { rules: [{ default_ttl: 'soon' }] } })).toThrow(/cache\.rules\[0\]\.default_ttl: expected a duration/);
    expect(() => validateConfig({ forward: {}, cache: { rules: [{ default_tll: '1h' }] } })).toThrow(/cache\.rules\[0\]\.default_tll: unknown key/);
  });
});
