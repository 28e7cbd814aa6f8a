/**
 * The admin view of the cache over real sockets: GET /api/cache/entries (both doors, prefix filter,
 * paging by cursor, hits per entry, plausible age and ttl, Vary'd values) and GET /api/cache/entry (one
 * URL's variants with their stored headers, never the body); purging by URL whether or not the URL
 * carries the default port.
 */
import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from '../helpers/http.js';
import { startOrigin, type Origin } from '../helpers/origin.js';
import { startPortico, type RunningPortico } from '../helpers/portico.js';
import { api, exposedAdmin, post } from './helpers.js';

let origin: Origin;
let p: RunningPortico;
let site: string;

/** An absolute-form GET through the forward proxy. */
function viaForward(proxy: string, url: string): Promise<number> {
  const { hostname, port } = new URL(proxy);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: hostname, port, path: url, headers: { host: new URL(url).host }, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

beforeAll(async () => {
  origin = await startOrigin((req, res) => {
    const path = req.url ?? '/';
    if (path.startsWith('/static/')) {
      res.writeHead(200, { 'cache-control': 'max-age=600', 'surrogate-key': 'static js', 'content-type': 'text/javascript', 'x-origin': 'yes' });
      res.end(`// ${path}`);
      return;
    }
    if (path === '/aged') {
      // Already 100 s old when it left the origin: age ≈ 100, ttl ≈ 500.
      res.writeHead(200, { 'cache-control': 'max-age=600', age: '100' });
      res.end('aged');
      return;
    }
    if (path === '/page') {
      res.writeHead(200, { 'cache-control': 'max-age=60', vary: 'Accept-Language', 'content-language': req.headers['accept-language'] ?? 'none' });
      res.end(`page in ${req.headers['accept-language'] ?? 'none'}`);
      return;
    }
    if (path === '/stale') {
      res.writeHead(200, { 'cache-control': 'max-age=0', etag: '"v1"' });
      res.end('stale at once');
      return;
    }
    res.writeHead(200, { 'cache-control': 'max-age=100' });
    res.end(`body of ${path}`);
  });
  p = await startPortico({
    reverse: { listen: '127.0.0.1:0', routes: [{ path: '/', pool: 'o' }] },
    pools: { o: { servers: [{ url: origin.url }] } },
    forward: { listen: '127.0.0.1:0' },
    admin: { listen: '127.0.0.1:0', token: 'tok' },
  });
  site = p.reverseUrl;
});

afterAll(async () => {
  await p?.stop();
  await origin?.close();
});

type Row = { door: string; url: string; vary: Record<string, string | null>; status: number; size: number; age: number; ttl: number; state: string; hits: number; tags: string[]; copies: number };
type Listing = { entries: Row[]; next: string | null; total: number; limit: number; workers: number; prefix: string; door: string | null };

async function list(query: string): Promise<Listing> {
  const r = await api<Listing>(`${p.adminUrl}/api/cache/entries${query}`);
  expect(r.status, JSON.stringify(r.json)).toBe(200);
  return r.json;
}

describe('GET /api/cache/entries', () => {
  it('lists stored entries with URL, status, size, age, ttl, tags and the hits each one served', async () => {
    for (let i = 0; i < 3; i++) expect((await request(`${site}/static/app.js`)).status).toBe(200);
    await request(`${site}/static/app.js`, { method: 'HEAD' });
    expect(origin.count('/static/app.js')).toBe(1);

    const { entries, workers } = await list(`?prefix=${encodeURIComponent(`${site}/static/app.js`)}`);
    expect(workers).toBe(1);
    expect(entries).toHaveLength(1);
    const e = entries[0]!;
    expect(e).toMatchObject({ door: 'reverse', url: `${site}/static/app.js`, vary: {}, status: 200, state: 'fresh', hits: 3, tags: ['static', 'js'], copies: 1 });
    expect(e.size).toBeGreaterThan('// /static/app.js'.length);
    expect(e.age).toBeGreaterThanOrEqual(0);
    expect(e.age).toBeLessThan(5);
    expect(e.ttl).toBeGreaterThan(590);
    expect(e.ttl).toBeLessThanOrEqual(600);
    expect(e).not.toHaveProperty('key');
  });

  it('shows the age a response already had, and a stale entry as stale', async () => {
    await request(`${site}/aged`);
    await request(`${site}/stale`);
    const aged = (await list(`?prefix=${encodeURIComponent(`${site}/aged`)}`)).entries[0]!;
    expect(aged.age).toBeGreaterThanOrEqual(100);
    expect(aged.age).toBeLessThan(105);
    expect(aged.ttl).toBeGreaterThan(495);
    expect(aged.ttl).toBeLessThanOrEqual(500);
    const stale = (await list(`?prefix=${encodeURIComponent(`${site}/stale`)}`)).entries[0]!;
    expect(stale).toMatchObject({ state: 'stale', hits: 0 });
    expect(stale.ttl).toBeLessThanOrEqual(0);
  });

  it('lists each variant of a URL with the request header values it was stored for', async () => {
    await request(`${site}/page`, { headers: { 'accept-language': 'en' } });
    await request(`${site}/page`, { headers: { 'accept-language': 'de' } });
    await request(`${site}/page`, { headers: { 'accept-language': 'de' } });
    const { entries } = await list(`?prefix=${encodeURIComponent(`${site}/page`)}`);
    expect(entries.map((e) => [e.vary, e.hits])).toEqual(
      expect.arrayContaining([
        [{ 'accept-language': 'en' }, 0],
        [{ 'accept-language': 'de' }, 1],
      ]),
    );
    expect(entries).toHaveLength(2);
  });

  it('filters by URL prefix: normalised like a cache key, a partial host, or without a scheme', async () => {
    await request(`${site}/static/b.css`);
    await request(`${site}/other`);
    const host = new URL(site).host;
    const paths = (l: Listing) => l.entries.map((e) => new URL(e.url).pathname);
    const statics = await list(`?prefix=${encodeURIComponent(`HTTP://${host}/static/`)}`);
    expect(paths(statics)).toEqual(['/static/app.js', '/static/b.css']);
    expect(statics.total).toBe(2);
    expect(paths(await list(`?prefix=${encodeURIComponent(`${host}/static/b`)}`))).toEqual(['/static/b.css']);
    expect((await list(`?prefix=${encodeURIComponent('http://127.0.0.')}`)).total).toBeGreaterThanOrEqual(6);
    expect((await list(`?prefix=${encodeURIComponent('http://elsewhere.example/')}`)).entries).toEqual([]);
  });

  it('pages through the entries with a cursor, in a stable order, without repeats', async () => {
    for (let i = 0; i < 7; i++) await request(`${site}/n/${i}`);
    const prefix = encodeURIComponent(`${site}/n/`);
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page: Listing = await list(`?prefix=${prefix}&limit=3${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.total).toBe(7);
      expect(page.entries.length).toBeLessThanOrEqual(3);
      seen.push(...page.entries.map((e) => new URL(e.url).pathname));
      cursor = page.next;
      pages++;
    } while (cursor !== null && pages < 10);
    expect(pages).toBe(3);
    expect(seen).toEqual(['/n/0', '/n/1', '/n/2', '/n/3', '/n/4', '/n/5', '/n/6']);
    // A page ends on the last entry: no cursor when nothing follows.
    expect((await list(`?prefix=${prefix}&limit=7`)).next).toBeNull();
    expect((await list(`?prefix=${prefix}`)).limit).toBe(100);
  });

  it('lists both doors and says which door each entry belongs to', async () => {
    const target = `${origin.url}/static/forwarded.js`;
    expect(await viaForward(p.forwardUrl!, target)).toBe(200);
    const fwd = await list(`?door=forward&prefix=${encodeURIComponent(origin.url)}`);
    expect(fwd.entries.map((e) => [e.door, e.url])).toEqual([['forward', target]]);
    const all = await list('');
    expect(new Set(all.entries.map((e) => e.door))).toEqual(new Set(['forward', 'reverse']));
    expect((await list('?door=reverse')).entries.every((e) => e.door === 'reverse')).toBe(true);
  });

  it('refuses a bad limit, door, cursor or offset with 400 and says what it expected', async () => {
    const bad = async (q: string) => (await api(`${p.adminUrl}/api/cache/entries${q}`)).json.error as string;
    expect(await bad('?limit=0')).toBe('limit: expected a whole number from 1 to 1000, got "0"');
    expect(await bad('?limit=1001')).toContain('from 1 to 1000');
    expect(await bad('?door=both')).toBe('door: expected "reverse" or "forward", got "both"');
    expect(await bad('?cursor=nonsense')).toContain('cursor: expected');
    expect(await bad('?offset=100')).toContain('cursor');
    expect((await api(`${p.adminUrl}/api/cache/entries`, { method: 'POST' })).status).toBe(405);
  });

  it('needs the token where every API call does', async () => {
    const exposed = await exposedAdmin(p.portico);
    try {
      expect((await api(`${exposed.url}/api/cache/entries`)).status).toBe(401);
      expect((await api(`${exposed.url}/api/cache/entries`, { headers: { authorization: 'Bearer tok' } })).status).toBe(200);
    } finally {
      await exposed.close();
    }
  });
});

describe('GET /api/cache/entry', () => {
  it("shows one URL's variants with their status line and stored headers, never the body", async () => {
    await request(`${site}/page`, { headers: { 'accept-language': 'fr' } });
    const r = await api(`${p.adminUrl}/api/cache/entry?url=${encodeURIComponent(`${site}/page`)}`);
    expect(r.status).toBe(200);
    expect(r.json.url).toBe(`${site}/page`);
    const fr = r.json.variants.find((v: any) => v.vary['accept-language'] === 'fr');
    expect(fr).toMatchObject({ door: 'reverse', status: 200, statusMessage: 'OK', state: 'fresh', worker: process.pid });
    const headers = new Map((fr.headers as [string, string][]).map(([n, v]) => [n.toLowerCase(), v]));
    expect(headers.get('cache-control')).toBe('max-age=60');
    expect(headers.get('vary')).toBe('Accept-Language');
    expect(headers.get('content-length')).toBe(String('page in fr'.length));
    expect(Date.parse(fr.date)).toBeGreaterThan(0);
    expect(JSON.stringify(r.json)).not.toContain('page in fr');
  });

  it('404s for a URL with nothing stored, 400s for one that is not absolute', async () => {
    const none = await api(`${p.adminUrl}/api/cache/entry?url=${encodeURIComponent(`${site}/never`)}`);
    expect(none.status).toBe(404);
    expect(none.json.error).toContain('nothing is stored for');
    expect((await api(`${p.adminUrl}/api/cache/entry?url=/page`)).status).toBe(400);
  });
});

describe('purge by URL, with or without the default port', () => {
  const at = (host: string, path: string, headers: Record<string, string> = {}) => request(`${site}${path}`, { headers: { host, ...headers } });

  it('treats http://h:80/x and http://h/x as one entry, in requests and in purges', async () => {
    expect((await at('site.test', '/port')).status).toBe(200);
    expect((await at('site.test:80', '/port')).headers['cache-status']).toContain('hit');
    expect((await at('SITE.test:80', '/port')).headers['cache-status']).toContain('hit');
    expect(origin.count('/port')).toBe(1);
    const listed = await list(`?prefix=${encodeURIComponent('http://site.test:80/port')}`);
    expect(listed.entries.map((e) => e.url)).toEqual(['http://site.test/port']);

    const purge = (url: string) => post(`${p.adminUrl}/api/cache/purge`, { url }, { authorization: 'Bearer tok' });
    expect((await purge('http://site.test:80/port')).json).toMatchObject({ purged: 1 });
    expect((await at('site.test:80', '/port')).headers['cache-status']).toContain('fwd=uri-miss');
    expect(origin.count('/port')).toBe(2);
    expect((await purge('http://site.test/port')).json).toMatchObject({ purged: 1 });
    expect((await at('site.test', '/port')).headers['cache-status']).toContain('fwd=uri-miss');
    expect((await purge('HTTP://Site.Test:80/port')).json).toMatchObject({ purged: 1 });
    expect((await purge('http://site.test:80/port')).json).toMatchObject({ purged: 0 });
  });

  it('does the same for prefix purges and for one door', async () => {
    await at('site.test:80', '/pre/a');
    await at('site.test', '/pre/b');
    const purged = await post(`${p.adminUrl}/api/cache/purge`, { prefix: 'http://site.test:80/pre/' }, { authorization: 'Bearer tok' });
    expect(purged.json).toMatchObject({ purged: 2 });
    await at('site.test', '/pre/a');
    const oneDoor = await post(`${p.adminUrl}/api/cache/purge`, { url: 'http://site.test:80/pre/a', door: 'reverse' }, { authorization: 'Bearer tok' });
    expect(oneDoor.json).toEqual({ purged: 1, url: 'http://site.test:80/pre/a', door: 'reverse' });
    const wrong = await post(`${p.adminUrl}/api/cache/purge`, { tag: 'x', door: 'reverse' }, { authorization: 'Bearer tok' });
    expect(wrong.status).toBe(400);
  });

  it('drops the entry from the listing and its hit count with it', async () => {
    await at('site.test', '/counted');
    await at('site.test', '/counted');
    expect((await list(`?prefix=${encodeURIComponent('http://site.test/counted')}`)).entries[0]).toMatchObject({ hits: 1 });
    await post(`${p.adminUrl}/api/cache/purge`, { url: 'http://site.test/counted' }, { authorization: 'Bearer tok' });
    expect((await list(`?prefix=${encodeURIComponent('http://site.test/counted')}`)).entries).toEqual([]);
    await at('site.test', '/counted');
    expect((await list(`?prefix=${encodeURIComponent('http://site.test/counted')}`)).entries[0]).toMatchObject({ hits: 0 });
  });
});

describe('with the cache off', () => {
  it('answers 409', async () => {
    const off = await startPortico({
      reverse: { listen: '127.0.0.1:0', routes: [{ path: '/', pool: 'o' }] },
      pools: { o: { servers: [{ url: origin.url }] } },
      cache: { enabled: false },
      admin: { listen: '127.0.0.1:0' },
    });
    try {
      const r = await api(`${off.adminUrl}/api/cache/entries`);
      expect(r.status).toBe(409);
      expect(r.json.error).toContain('cache is off');
    } finally {
      await off.stop();
    }
  });
});
