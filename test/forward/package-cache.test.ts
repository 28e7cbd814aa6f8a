/**
 * The classic Squid job: a forward proxy for package downloads. A Debian mirror sends no freshness
 * information, so nothing would be cached; two rules (as in the README's recipe) keep packages for a
 * month and the index files for five minutes.
 */
import { describe, expect, it } from 'vitest';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { startPortico } from '../helpers/portico.js';
import { viaProxy } from '../helpers/http.js';

const cleanup = cleanupAfterEach();

describe('a forward proxy caching Debian packages', () => {
  it('keeps .deb files a month and index files five minutes; without the rules neither is kept', async () => {
    const mirror = await cleanup.origin((req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'last-modified': 'Mon, 01 Jan 2024 00:00:00 GMT' });
      res.end(`contents of ${req.url}`);
    });
    const rules = [
      { name: 'debs', door: 'forward', path: '/\\.(deb|udeb)$/', default_ttl: '30d' },
      { name: 'indexes', door: 'forward', path: '/\\/(InRelease|Release|Release\\.gpg|Packages(\\.gz|\\.xz)?|Sources(\\.gz|\\.xz)?)$/', default_ttl: '5m', max_ttl: '5m' },
    ];
    const p = await startPortico({ forward: { listen: '127.0.0.1:0', upstream_proxy: 'direct' }, cache: { rules } } as never);
    cleanup.push(() => p.stop());
    const port = p.forwardUrl!;
    const deb = `${mirror.url}/debian/pool/main/h/hello/hello_2.10-3_amd64.deb`;
    const index = `${mirror.url}/debian/dists/bookworm/main/binary-amd64/Packages.xz`;
    const first = await viaProxy(port, deb);
    expect(first.headers['cache-status']).toMatch(/ttl=(2591999|2592000); stored; detail=rule:debs/);
    expect((await viaProxy(port, deb)).headers['cache-status']).toMatch(/^portico; hit/);
    await viaProxy(port, index);
    const indexHit = await viaProxy(port, index);
    expect(indexHit.headers['cache-status']).toMatch(/^portico; hit; ttl=(29\d|300)$/);
    expect(mirror.count('/debian/pool/main/h/hello/hello_2.10-3_amd64.deb')).toBe(1);
    expect(mirror.count('/debian/dists/bookworm/main/binary-amd64/Packages.xz')).toBe(1);
    // Anything else the mirror sends is heuristically fresh at most (Last-Modified), as RFC 9111 says.
    const other = `${mirror.url}/debian/README`;
    expect((await viaProxy(port, other)).headers['cache-status']).not.toMatch(/rule:/);
  });
});
