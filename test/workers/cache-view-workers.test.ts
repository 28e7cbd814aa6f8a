/**
 * The cache view and PURGE with `--workers 2` through the real CLI, where every worker has a cache of
 * its own: the listing merges the workers' copies of an entry into one row (copies counted, hits added),
 * pages across workers without repeats, one URL's view shows each worker's copy, and a PURGE sent to
 * the reverse door empties every worker's copy and counts them all.
 */
import { describe, expect, it } from 'vitest';
import { api, writeTempFile } from '../admin/helpers.js';
import { startCli } from '../helpers/cli.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { request, waitFor } from '../helpers/http.js';

const cleanup = cleanupAfterEach();

describe('--workers 2: the cache view and PURGE', () => {
  it('merges both workers, pages across them, and PURGE reaches both', async () => {
    const origin = await cleanup.origin((req, res) => {
      res.writeHead(200, { 'cache-control': 'max-age=300' });
      res.end(`page ${req.url}`);
    });
    const file = writeTempFile(
      'portico.yaml',
      `workers: 2
reverse:
  listen: 127.0.0.1:0
  routes: [{ path: /, pool: web }]
  purge: { clients: [127.0.0.1/32] }
pools:
  web:
    servers: [{ url: ${origin.url} }]
admin:
  listen: 127.0.0.1:0
log:
  stats_interval: 0
`,
    );
    const cli = await startCli(['--config', file], ['reverse', 'admin']);
    cleanup.push(cli.stop);
    await waitFor(() => cli.lines.some((l) => l.msg === 'all workers serving'), 15_000, 'both workers to serve');
    const site = cli.urls.reverse!;
    const admin = cli.urls.admin!;
    const entries = async () => (await api(`${admin}/api/stats`)).json.cache.entries as number;

    // Each page fetched on new connections until both workers hold it (connections go to them in turn).
    const paths = ['/p/1', '/p/2', '/p/3'];
    let sent = 0;
    for (const [i, path] of paths.entries()) {
      await waitFor(
        async () => {
          expect((await request(`${site}${path}`)).status).toBe(200);
          if (path === '/p/1') sent++;
          return (await entries()) === 2 * (i + 1);
        },
        10_000,
        `both workers to cache ${path}`,
      );
    }
    for (let i = 0; i < 4; i++) await request(`${site}/p/1`);
    sent += 4;

    const listing = (await api(`${admin}/api/cache/entries?prefix=${encodeURIComponent(`${site}/p/`)}`)).json;
    expect(listing.workers).toBe(2);
    expect(listing.total).toBe(6);
    expect(listing.entries.map((e: any) => [new URL(e.url).pathname, e.copies])).toEqual([
      ['/p/1', 2],
      ['/p/2', 2],
      ['/p/3', 2],
    ]);
    // Every request for /p/1 that did not reach the origin was a hit in one worker or the other.
    expect(origin.count('/p/1')).toBe(2);
    expect(listing.entries[0].hits).toBe(sent - 2);

    const first = (await api(`${admin}/api/cache/entries?prefix=${encodeURIComponent(`${site}/p/`)}&limit=2`)).json;
    expect(first.entries.map((e: any) => new URL(e.url).pathname)).toEqual(['/p/1', '/p/2']);
    const second = (await api(`${admin}/api/cache/entries?prefix=${encodeURIComponent(`${site}/p/`)}&limit=2&cursor=${first.next}`)).json;
    expect(second.entries.map((e: any) => new URL(e.url).pathname)).toEqual(['/p/3']);
    expect(second.next).toBeNull();

    const one = (await api(`${admin}/api/cache/entry?url=${encodeURIComponent(`${site}/p/2`)}`)).json;
    expect(one.variants).toHaveLength(2);
    expect(new Set(one.variants.map((v: any) => v.worker)).size).toBe(2);

    const purged = await request(`${site}/p/2`, { method: 'PURGE', headers: { accept: 'application/json' } });
    expect(purged.status).toBe(200);
    expect(JSON.parse(purged.body)).toMatchObject({ purged: 2 });
    expect(await entries()).toBe(4);
    expect(origin.requests.some((r) => r.method === 'PURGE')).toBe(false);
  }, 40_000);
});
