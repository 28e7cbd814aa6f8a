/**
 * PURGE on the reverse door over real sockets: refused with 405 unless reverse.purge is configured,
 * 403 from clients it does not list, 200 with the count (every variant, both schemes) or 404 when
 * nothing was stored; it runs the request phases like any request (rules, rate limit, access log) and
 * never reaches a backend.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/errors.js';
import { validateConfig } from '../../src/config/load.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { recordingLogger } from '../balance/logs.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { request, waitFor } from '../helpers/http.js';
import type { Origin } from '../helpers/origin.js';
import { startPortico, type RunningPortico } from '../helpers/portico.js';
import { selfSignedCert } from '../helpers/tls.js';

const cleanup = cleanupAfterEach();

/** A cacheable origin that varies on Accept-Language and answers PURGE itself (it must never see one). */
function cacheableOrigin(): Promise<Origin> {
  return cleanup.origin((req, res) => {
    res.writeHead(200, { 'cache-control': 'max-age=300', vary: 'Accept-Language' });
    res.end(`${req.method} ${req.url} ${req.headers['accept-language'] ?? ''}`);
  });
}

async function portico(origin: Origin, reverse: Record<string, unknown> = {}, extra: Record<string, unknown> = {}, log = recordingLogger().log): Promise<RunningPortico> {
  const p = await startPortico(
    {
      reverse: { listen: '127.0.0.1:0', routes: [{ path: '/', pool: 'o' }], ...reverse },
      pools: { o: { servers: [{ url: origin.url }] } },
      ...extra,
    } as ConfigInput,
    log,
  );
  cleanup.push(p.stop);
  return p;
}

const purge = (url: string, headers: Record<string, string> = {}, localAddress?: string) => request(url, { method: 'PURGE', headers, localAddress });
const neverSawPurge = (origin: Origin) => expect(origin.requests.filter((r) => r.method === 'PURGE')).toEqual([]);

describe('PURGE on the reverse door', () => {
  it('is refused with 405 (and Allow) when reverse.purge is not configured, and the entry stays', async () => {
    const origin = await cacheableOrigin();
    const p = await portico(origin);
    await request(`${p.reverseUrl}/a`);
    const r = await purge(`${p.reverseUrl}/a`);
    expect(r.status).toBe(405);
    expect(r.headers.allow).toBe('GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS');
    expect(r.body).toContain('PURGE is not allowed here');
    expect((await request(`${p.reverseUrl}/a`)).headers['cache-status']).toContain('hit');
    expect(origin.count('/a')).toBe(1);
    neverSawPurge(origin);
  });

  it('drops every variant of the URL for a listed client: 200 with the count, then 404', async () => {
    const origin = await cacheableOrigin();
    const p = await portico(origin, { purge: { clients: ['127.0.0.1/32'] } });
    await request(`${p.reverseUrl}/a?x=1`, { headers: { 'accept-language': 'en' } });
    await request(`${p.reverseUrl}/a?x=1`, { headers: { 'accept-language': 'de' } });
    await request(`${p.reverseUrl}/b`);
    expect(origin.count()).toBe(3);

    const r = await purge(`${p.reverseUrl}/a?x=1`);
    expect(r.status).toBe(200);
    expect(r.headers['cache-control']).toBe('no-store');
    expect(r.body).toBe(`200 OK: Purged 2 entries for ${p.reverseUrl}/a?x=1.\n`);
    expect((await request(`${p.reverseUrl}/a?x=1`, { headers: { 'accept-language': 'en' } })).headers['cache-status']).toContain('fwd=uri-miss');
    expect((await request(`${p.reverseUrl}/b`)).headers['cache-status']).toContain('hit');

    const json = await purge(`${p.reverseUrl}/a?x=1`, { accept: 'application/json' });
    expect(json.status).toBe(200);
    expect(JSON.parse(json.body)).toEqual({ purged: 1, url: `${p.reverseUrl}/a?x=1` });
    const again = await purge(`${p.reverseUrl}/a?x=1`);
    expect(again.status).toBe(404);
    expect(again.body).toBe(`404 Not Found: Nothing stored for ${p.reverseUrl}/a?x=1.\n`);
    expect(origin.count()).toBe(4);
    neverSawPurge(origin);
  });

  it('answers 403 to a client reverse.purge.clients does not list', async () => {
    const origin = await cacheableOrigin();
    const p = await portico(origin, { purge: { clients: ['127.0.0.1/32'] } });
    await request(`${p.reverseUrl}/a`);
    const r = await purge(`${p.reverseUrl}/a`, { 'x-forwarded-for': '127.0.0.1' }, '127.0.0.2');
    expect(r.status).toBe(403);
    expect(r.body).toContain('127.0.0.2 may not PURGE here (see reverse.purge.clients)');
    expect((await request(`${p.reverseUrl}/a`)).headers['cache-status']).toContain('hit');
    neverSawPurge(origin);
  });

  it("takes the site from Host, with or without the default port, and drops the URL's entries under both schemes", async () => {
    const origin = await cacheableOrigin();
    const cert = await selfSignedCert();
    const p = await portico(origin, { tls_listen: '127.0.0.1:0', tls: { cert: cert.certPath, key: cert.keyPath }, purge: { clients: ['127.0.0.1/32'] } });
    await request(`${p.reverseUrl}/s`, { headers: { host: 'site.test' } });
    await request(`${p.reverseTlsUrl}/s`, { headers: { host: 'site.test' } });
    expect(origin.count('/s')).toBe(2);
    // A response is stored as its body ends: wait until both are in before purging.
    await waitFor(() => p.portico.cache!.listEntries({ prefix: 'site.test/s', limit: 10 }).total === 2, 5_000, 'both schemes stored');
    const r = await purge(`${p.reverseUrl}/s`, { host: 'site.test:80', accept: 'application/json' });
    expect(JSON.parse(r.body)).toEqual({ purged: 2, url: 'http://site.test/s' });
    expect((await request(`${p.reverseTlsUrl}/s`, { headers: { host: 'site.test:443' } })).headers['cache-status']).toContain('fwd=uri-miss');
  });

  it('runs the phases of every request: reverse.rules, the rate limit and the access log', async () => {
    const origin = await cacheableOrigin();
    const { log, lines } = recordingLogger();
    const p = await portico(
      origin,
      { purge: { clients: ['127.0.0.0/8'] }, rules: [{ name: 'no-purge-of-private', action: 'deny', method: 'PURGE', path: '/private/' }], rate_limit: { rate: 0.001, burst: 4 } },
      {},
      log,
    );
    await request(`${p.reverseUrl}/ok`);
    expect((await purge(`${p.reverseUrl}/ok`)).status).toBe(200);
    const denied = await purge(`${p.reverseUrl}/private/x`);
    expect(denied.status).toBe(403);
    expect(denied.body).toContain('no-purge-of-private');
    expect((await purge(`${p.reverseUrl}/nothing`)).status).toBe(404);
    expect((await purge(`${p.reverseUrl}/ok`)).status).toBe(429);
    const access = lines.filter((l: any) => l.msg === 'request' && l.method === 'PURGE') as any[];
    expect(access.map((l) => [l.url, l.status])).toEqual([
      ['/ok', 200],
      ['/private/x', 403],
      ['/nothing', 404],
      ['/ok', 429],
    ]);
    expect(access[0]).toMatchObject({ door: 'reverse', cache: 'local' });
    expect(lines.some((l: any) => l.msg === 'cache purged by PURGE' && l.purged === 1)).toBe(true);
    neverSawPurge(origin);
  });

  it('answers 404 when the cache is off, without reaching the backend', async () => {
    const origin = await cacheableOrigin();
    const p = await portico(origin, { purge: { clients: ['127.0.0.1/32'] } }, { cache: { enabled: false } });
    const r = await purge(`${p.reverseUrl}/a`, { 'content-type': 'text/plain' });
    expect(r.status).toBe(404);
    expect(r.body).toContain('the cache is off');
    neverSawPurge(origin);
  });

  it('throws a PURGE body away and keeps the connection usable', async () => {
    const origin = await cacheableOrigin();
    const p = await portico(origin, { purge: { clients: ['127.0.0.1/32'] } });
    await request(`${p.reverseUrl}/a`);
    const r = await request(`${p.reverseUrl}/a`, { method: 'PURGE', body: 'x'.repeat(100_000), headers: { 'content-type': 'text/plain' } });
    expect(r.status).toBe(200);
    neverSawPurge(origin);
    expect(origin.requests.every((q) => q.body === '')).toBe(true);
  });
});

describe('reverse.purge config', () => {
  const problems = (purge: unknown): readonly string[] => {
    try {
      validateConfig({ reverse: { listen: '8080', routes: [{ path: '/', pool: 'web' }], purge }, pools: { web: { servers: [{ url: 'http://127.0.0.1:3000' }] } } });
    } catch (err) {
      if (err instanceof ConfigError) return err.problems;
      throw err;
    }
    return [];
  };

  it('names the key path and what was expected', () => {
    expect(problems({ clients: ['10.0.0.0/8', '::1/128'] })).toEqual([]);
    expect(problems({ clients: ['10.0.0.0/33'] })[0]).toMatch(/^reverse\.purge\.clients\[0\]: expected a CIDR like "10\.0\.0\.0\/8"/);
    expect(problems({ clients: [] })[0]).toMatch(/^reverse\.purge\.clients: expected at least one CIDR/);
    expect(problems({})[0]).toMatch(/^reverse\.purge\.clients: expected a list of CIDRs/);
    expect(problems({ clients: ['127.0.0.1'], methods: ['PURGE'] })[0]).toMatch(/^reverse\.purge\.methods: unknown key/);
  });
});
