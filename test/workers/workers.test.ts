/**
 * `--workers N` through the real CLI: connections are spread over the workers, the admin API and
 * /metrics add up every worker, an unsafe request or a purge empties every worker's cache, a worker
 * that dies is replaced, SIGHUP reloads them all, SIGTERM stops them all, and a worker that cannot
 * start stops the whole process with its error.
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { api, post, writeTempFile } from '../admin/helpers.js';
import { startCli, type RunningCli } from '../helpers/cli.js';
import { request, waitFor } from '../helpers/http.js';
import type { Origin } from '../helpers/origin.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { startRedisServer } from '../helpers/redis-server.js';

const run = promisify(execFile);
const cleanup = cleanupAfterEach();

function configYaml(server: string, extra = ''): string {
  return `workers: 2
reverse:
  listen: 127.0.0.1:0
  routes: [{ path: /, pool: web }]
pools:
  web:
    servers: [{ url: ${server} }]
admin:
  listen: 127.0.0.1:0
log:
  stats_interval: 0
${extra}`;
}

interface Workers extends RunningCli {
  readonly reverse: string;
  readonly admin: string;
}

async function startWorkers(file: string): Promise<Workers> {
  const cli = await startCli(['--config', file], ['reverse', 'admin']);
  cleanup.push(cli.stop);
  await waitFor(() => cli.lines.some((l) => l.msg === 'all workers serving'), 15_000, 'both workers to serve');
  return { ...cli, reverse: cli.urls.reverse!, admin: cli.urls.admin! };
}

type WorkerStats = { pid: number; requests: number };

async function stats(admin: string): Promise<Record<string, any> & { workers: WorkerStats[] }> {
  return (await api(`${admin}/api/stats`)).json as Record<string, any> & { workers: WorkerStats[] };
}

/** An origin whose page is cacheable for a minute and changes version with every POST. */
async function versionedOrigin(): Promise<Origin> {
  let version = 1;
  return cleanup.origin((req, res) => {
    if (req.method === 'POST') {
      version++;
      res.end('changed');
      return;
    }
    res.writeHead(200, { 'cache-control': 'max-age=60', 'content-type': 'text/plain' });
    res.end(`v${version}`);
  });
}

/** GETs `url` on new connections until both workers have it cached. */
async function cachedInBothWorkers(p: Workers, url: string): Promise<void> {
  await waitFor(
    async () => {
      expect((await request(url)).status).toBe(200);
      return (await stats(p.admin)).cache.entries === 2;
    },
    10_000,
    'both workers to cache the page',
  );
}

describe('--workers 2 with the shared tier on Redis', () => {
  it('asks the origin once for six sequential requests of one URL, on new connections (both workers)', async () => {
    const redis = await startRedisServer();
    cleanup.push(() => redis.stop());
    const o = await versionedOrigin();
    const p = await startWorkers(writeTempFile('portico.yaml', configYaml(o.url, `cache:\n  redis: ${redis.url}\n`)));
    const bodies: string[] = [];
    for (let i = 0; i < 6; i++) {
      bodies.push((await request(`${p.reverse}/page`)).body);
      // The first worker's store reaches Redis after its response: the next request may be the other's.
      if (i === 0) await waitFor(async () => (await (await redis.admin()).keys('*reverse:*')).length > 0, 3_000, 'the page in Redis');
    }
    expect(bodies).toEqual(['v1', 'v1', 'v1', 'v1', 'v1', 'v1']);
    expect(o.count('/page')).toBe(1);
    const s = await stats(p.admin);
    expect(s.workers.every((w) => w.requests > 0)).toBe(true);
  });
});

describe('--workers 2', () => {
  it('spreads connections over both workers; /api/stats and /metrics count every worker', async () => {
    const o = await cleanup.origin((_req, res) => res.end('hello'));
    const p = await startWorkers(writeTempFile('portico.yaml', configYaml(o.url, '')));
    for (let i = 0; i < 10; i++) expect((await request(`${p.reverse}/nc/${i}`)).body).toBe('hello');

    const s = await stats(p.admin);
    expect(s.workers).toHaveLength(2);
    expect(new Set(s.workers.map((w) => w.pid)).size).toBe(2);
    for (const w of s.workers) expect(w.requests).toBeGreaterThan(0);
    expect(s.requests.total).toBe(10);
    expect(s.workers[0]!.requests + s.workers[1]!.requests).toBe(10);
    expect(s.pools[0].servers[0].requests).toBe(10);

    const metrics = (await request(`${p.admin}/metrics`)).body;
    const counted = [...metrics.matchAll(/^portico_requests_total\{[^}]*door="reverse"[^}]*\} (\d+)$/gm)].reduce((n, m) => n + Number(m[1]), 0);
    expect(counted).toBe(10);
  });

  it('an unsafe request through one worker invalidates the page in the other worker too', async () => {
    const o = await versionedOrigin();
    const p = await startWorkers(writeTempFile('portico.yaml', configYaml(o.url)));
    const page = `${p.reverse}/page`;
    await cachedInBothWorkers(p, page);
    expect(o.count('/page')).toBe(2);

    // The POST's answer comes once both workers have dropped the page: requests sent the moment it
    // arrives, on new connections over both workers, all get the new version.
    expect((await request(page, { method: 'POST', body: 'x' })).status).toBe(200);
    const after = await Promise.all(Array.from({ length: 8 }, async () => (await request(page)).body));
    expect(after).toEqual(Array(8).fill('v2'));
  });

  it('POST /api/cache/purge empties every worker\'s cache and says how many entries went', async () => {
    const o = await versionedOrigin();
    const p = await startWorkers(writeTempFile('portico.yaml', configYaml(o.url)));
    const page = `${p.reverse}/page`;
    await cachedInBothWorkers(p, page);
    const fetched = o.count('/page');

    const purge = await post(`${p.admin}/api/cache/purge`, { url: page });
    expect(purge.json).toEqual({ purged: 2, url: page });
    expect((await stats(p.admin)).cache.entries).toBe(0);
    await request(page);
    expect(o.count('/page')).toBe(fetched + 1);
  });

  it('a worker that dies is replaced, and requests keep being answered', async () => {
    const o = await cleanup.origin((_req, res) => res.end('hello'));
    const p = await startWorkers(writeTempFile('portico.yaml', configYaml(o.url)));
    const before = (await stats(p.admin)).workers.map((w) => w.pid);
    process.kill(before[1]!, 'SIGKILL');
    await waitFor(async () => {
      const pids = (await stats(p.admin)).workers.map((w) => w.pid);
      return pids.length === 2 && !pids.includes(before[1]!);
    }, 15_000, 'a new worker in place of the killed one');
    expect(p.lines.some((l) => l.msg?.startsWith('a worker stopped; the spare takes its place') && l.signal === 'SIGKILL')).toBe(true);
    for (let i = 0; i < 6; i++) expect((await request(`${p.reverse}/after`)).status).toBe(200);
  });

  it('SIGHUP to the primary reloads every worker; SIGTERM stops them all and exits 0', async () => {
    const a = await cleanup.origin((_req, res) => res.end('a'));
    const b = await cleanup.origin((_req, res) => res.end('b'));
    const file = writeTempFile('portico.yaml', configYaml(a.url));
    const p = await startWorkers(file);
    writeFileSync(file, configYaml(b.url));
    p.child.kill('SIGHUP');
    await waitFor(() => p.lines.filter((l) => l.msg === 'config reloaded').length === 2, 10_000, 'both workers to reload');
    const seen: string[] = [];
    for (let i = 0; i < 6; i++) seen.push((await request(`${p.reverse}/nc/${i}`)).body);
    expect(seen).toEqual(['b', 'b', 'b', 'b', 'b', 'b']);

    const pids = (await stats(p.admin)).workers.map((w) => w.pid);
    p.child.kill('SIGTERM');
    expect(await p.exited).toBe(0);
    expect(p.lines.filter((l) => l.msg === 'stopped').length).toBe(2);
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow();
  });

  it('a worker that cannot bind its address stops the whole process with status 2', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    cleanup.push(() => new Promise((resolve) => taken.close(() => resolve())));
    const port = (taken.address() as { port: number }).port;
    const o = await cleanup.origin((_req, res) => res.end('hello'));
    const failed = await run(process.execPath, ['dist/cli.js', '--workers', '2', '--reverse', `127.0.0.1:${port}`, '--upstream', o.url]).catch(
      (err: { code: number; stderr: string }) => err,
    );
    expect((failed as { code: number }).code).toBe(2);
    expect((failed as { stderr: string }).stderr).toMatch(/reverse\.listen.*in use/);
  });

  it('rejects a bad worker count by name', async () => {
    const flag = await run(process.execPath, ['dist/cli.js', '--workers', 'many', '--forward', '0']).catch((err: { code: number; stderr: string }) => err);
    expect(flag).toMatchObject({ code: 2, stderr: 'portico: --workers: expected a positive integer or "auto", got "many"\n' });
    const file = writeTempFile('portico.yaml', 'workers: 0\nforward: { listen: 127.0.0.1:0 }\n');
    const key = await run(process.execPath, ['dist/cli.js', '--config', file, '--check']).catch((err: { code: number; stderr: string }) => err);
    expect(key).toMatchObject({ code: 2 });
    expect((key as { stderr: string }).stderr).toContain('workers: expected a positive integer or "auto"');
  });
});
