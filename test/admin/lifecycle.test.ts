/**
 * The real CLI (`node dist/cli.js --config FILE`, built by test/global-setup.ts): SIGTERM lets a slow
 * request finish and exits 0, idle keep-alive connections do not hold the exit, the drain timeout
 * bounds a request that never ends, and SIGHUP reloads the file.
 */
import { writeFileSync } from 'node:fs';
import { Agent, get } from 'node:http';
import { describe, expect, it } from 'vitest';
import { startCli as startRunningCli, type RunningCli } from '../helpers/cli.js';
import { request, waitFor } from '../helpers/http.js';
import { api, writeTempFile } from './helpers.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';

const cleanup = cleanupAfterEach();

function configYaml(servers: readonly string[], drain = '10s'): string {
  return `reverse:
  listen: 127.0.0.1:0
  routes: [{ path: /, pool: web, cache: false }]
pools:
  web:
    servers:
${servers.map((u) => `      - url: ${u}`).join('\n')}
admin:
  listen: 127.0.0.1:0
shutdown:
  drain_timeout: ${drain}
log:
  stats_interval: 0
`;
}

async function startCli(file: string): Promise<RunningCli & { reverse: string; admin: string }> {
  const cli = await startRunningCli(['--config', file], ['reverse', 'admin']);
  cleanup.push(cli.stop);
  return { ...cli, reverse: cli.urls.reverse!, admin: cli.urls.admin! };
}

describe('SIGTERM', () => {
  it('lets a slow in-flight request complete, closes its keep-alive connection, refuses new ones, exits 0', async () => {
    const slow = await cleanup.origin((req, res) => {
      if (req.url === '/slow') setTimeout(() => res.end('finished'), 700);
      else res.end('quick');
    });
    const p = await startCli(writeTempFile('portico.yaml', configYaml([slow.url])));
    const agent = new Agent({ keepAlive: true });
    cleanup.push(async () => agent.destroy());
    const reply = new Promise<{ status: number; body: string; connection: string | undefined }>((resolve, reject) => {
      get(`${p.reverse}/slow`, { agent }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, connection: res.headers.connection }));
      }).on('error', reject);
    });
    await waitFor(() => slow.count('/slow') === 1, 5_000, 'the slow request to reach the origin');
    p.child.kill('SIGTERM');
    await waitFor(() => p.lines.some((l) => l.msg?.startsWith('shutting down')), 5_000, 'the shutdown log line');
    await expect(request(`${p.reverse}/quick`)).rejects.toThrow(/ECONNREFUSED/);
    const done = await reply;
    expect(done).toEqual({ status: 200, body: 'finished', connection: 'keep-alive' });
    // The idle keep-alive connection is closed at once rather than after keepAliveTimeout (5 s) or the drain timeout (10 s).
    const code = await Promise.race([p.exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 4_000))]);
    expect(code).toBe(0);
    expect(p.lines.some((l) => l.msg === 'stopped')).toBe(true);
    const access = p.lines.find((l) => l.msg === 'request' && l.url === '/slow');
    expect(access).toMatchObject({ door: 'reverse', method: 'GET', status: 200, upstream: slow.url, complete: true });
    expect(access!.bytes).toBeGreaterThan(0);
    expect(access!.client).toBe('127.0.0.1');
  });

  it('cuts a request that outlives shutdown.drain_timeout and still exits 0', async () => {
    const hang = await cleanup.origin(() => {
      /* never answers */
    });
    const p = await startCli(writeTempFile('portico.yaml', configYaml([hang.url], '300ms')));
    const outcome = request(`${p.reverse}/hang`).then(
      (r) => `status ${r.status}`,
      (err: Error) => err.message,
    );
    await waitFor(() => hang.count() === 1, 5_000, 'the request to reach the origin');
    p.child.kill('SIGTERM');
    expect(await p.exited).toBe(0);
    expect(await outcome).toMatch(/socket hang up|ECONNRESET/);
  });
});

describe('SIGHUP', () => {
  it('re-reads the file: a broken one is logged and ignored, a good one adds the backend', async () => {
    const a = await cleanup.origin((_req, res) => res.end('a'));
    const b = await cleanup.origin((_req, res) => res.end('b'));
    const file = writeTempFile('portico.yaml', configYaml([a.url]));
    const p = await startCli(file);
    writeFileSync(file, 'pools: [1, 2');
    p.child.kill('SIGHUP');
    await waitFor(() => p.lines.some((l) => l.msg?.startsWith('reload rejected')), 5_000, 'the rejected reload to be logged');
    expect((await request(`${p.reverse}/`)).body).toBe('a');

    writeFileSync(file, configYaml([a.url, b.url]));
    p.child.kill('SIGHUP');
    await waitFor(async () => (await api(`${p.admin}/api/pools`)).json.pools[0].servers.length === 2, 5_000, 'the reload to add b');
    const seen = new Set<string>();
    for (let i = 0; i < 4; i++) seen.add((await request(`${p.reverse}/`)).body);
    expect(seen).toEqual(new Set(['a', 'b']));
    expect(p.lines.find((l) => l.msg === 'config reloaded')).toMatchObject({ changes: ['pools.web.servers: changed'] });
  });
});
