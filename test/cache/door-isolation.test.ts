/**
 * The reverse and the forward proxy keep separate caches: a reverse-proxy client chooses the Host
 * header, and what the backends answer for it must never be served to forward-proxy users as that
 * host's page — nor a forward-proxy user's copy to reverse clients.
 */
import { expect, it } from 'vitest';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { request, viaProxy } from '../helpers/http.js';
import { reverseConfig, startPortico } from '../helpers/portico.js';

const cleanup = cleanupAfterEach();

const cacheable = (body: string) => cleanup.origin((_req, res) => {
  res.setHeader('cache-control', 'max-age=60');
  res.end(body);
});

it('a page cached for a Host named by a reverse-proxy client is not what forward-proxy users of that host get, nor the other way round', async () => {
  const backend = await cacheable('from the backend');
  const site = await cacheable('from the real site');
  const p = await startPortico({ ...reverseConfig([backend.url]), forward: { listen: '127.0.0.1:0' } });
  cleanup.push(() => p.stop());
  const siteHost = new URL(site.url).host;

  const planted = await request(`${p.reverseUrl}/page`, { headers: { host: siteHost } });
  expect(planted.body).toBe('from the backend');
  expect((await request(`${p.reverseUrl}/page`, { headers: { host: siteHost } })).headers['cache-status']).toContain('hit');

  const forwarded = await viaProxy(p.forwardUrl!, `${site.url}/page`);
  expect(forwarded.body).toBe('from the real site');
  expect(site.count('/page')).toBe(1);

  const other = await viaProxy(p.forwardUrl!, `${site.url}/other`);
  expect(other.body).toBe('from the real site');
  expect((await request(`${p.reverseUrl}/other`, { headers: { host: siteHost } })).body).toBe('from the backend');

  // One cache to the admin view: both doors' entries, purged together.
  expect(p.portico.cache!.stats().entries).toBe(4);
  expect(await p.portico.cache!.purgeUrl(`${site.url}/page`)).toBe(2);
});
