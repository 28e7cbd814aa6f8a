/**
 * What an operator sees in the first minutes: a start-up block (also at --log-level warn, where
 * nothing else is printed), a closed terminal (SIGHUP without --config) stopping the proxy gracefully
 * instead of "reloading" and dying later, and a broken stdout never killing it.
 */
import { Agent, get } from 'node:http';
import { describe, expect, it } from 'vitest';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { request, waitFor } from '../helpers/http.js';
import { writeTempFile } from '../admin/helpers.js';
import { startPortico } from './cli.js';

const cleanup = cleanupAfterEach();

async function start(args: readonly string[]) {
  const p = await startPortico(args);
  cleanup.push(p.stop);
  return p;
}

describe('the start-up block', () => {
  it('is printed at --log-level warn: version, listeners, pools and backends, cache, admin URL; nothing else', async () => {
    const origin = await cleanup.origin();
    const p = await start(['--reverse', '127.0.0.1:0', '--upstream', origin.url, '--forward', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--log-level', 'warn', '--cache-size', '64mb']);
    const block = p.stderr();
    expect(block).toMatch(/^portico \d+\.\d+\.\d+ · pid \d+ · no config file \(flags only\)\n/);
    expect(block).toMatch(new RegExp(`^ {2}reverse {2}http://127\\.0\\.0\\.1:\\d+ {2}/ → default$`, 'm'));
    expect(block).toMatch(/^ {2}forward {2}http:\/\/127\.0\.0\.1:\d+ {2}\(curl -x http:\/\/127\.0\.0\.1:\d+; PAC at http:\/\/127\.0\.0\.1:\d+\/proxy\.pac\)$/m);
    expect(block).toContain(`  pool default  round-robin: ${origin.url}\n`);
    expect(block).toContain('  cache    64mb in memory\n');
    expect(block).toMatch(/^ {2}admin {4}http:\/\/127\.0\.0\.1:\d+\/ {2}\(dashboard, \/api, \/metrics\)$/m);
    expect(block.split('\n').filter(Boolean).length).toBeLessThanOrEqual(8);
    // The addresses in it are the real ones (port 0 resolved).
    expect((await request(`${p.urls.reverse}/`)).body).toBe('ok');
    expect((await request(`${p.urls.admin}/api/stats`)).status).toBe(200);
    expect(p.stdout()).toBe('');
  });

  it('is not printed with --log-level silent', async () => {
    const origin = await cleanup.origin();
    // Silent, it says nothing at all: its health checks (every 50 ms) are what shows that it serves.
    const health = '{ path: /health, interval: 50ms }';
    const file = writeTempFile('portico.yaml', `reverse: { listen: 127.0.0.1:0, routes: [{ pool: web }] }\npools: { web: { servers: [{ url: "${origin.url}" }], health: ${health} } }\nlog: { level: silent }\n`);
    const { spawn } = await import('node:child_process');
    const child = spawn(process.execPath, ['dist/cli.js', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    // A few checks after the first: the worker has long told its supervisor that it serves, which is
    // when the block would be printed.
    await waitFor(() => origin.count('/health') >= 4, 10_000, 'health checks from the silent proxy');
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    expect(err).toBe('');
  });
});

describe('SIGHUP without --config (the terminal closed)', () => {
  it('stops gracefully: the request in flight finishes, the port is released, exit 0', async () => {
    const origin = await cleanup.origin((req, res) => {
      if (req.url === '/slow') setTimeout(() => res.end('finished'), 600);
      else res.end('quick');
    });
    const p = await start(['--reverse', '127.0.0.1:0', '--upstream', origin.url]);
    const agent = new Agent({ keepAlive: false });
    const slow = new Promise<string>((resolve, reject) => {
      get(`${p.urls.reverse}/slow`, { agent }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve(body));
      }).on('error', reject);
    });
    await waitFor(() => origin.count('/slow') === 1, 5_000, 'the slow request to reach the origin');
    p.child.kill('SIGHUP');
    expect(await slow).toBe('finished');
    expect(await p.exited).toEqual({ code: 0, signal: null });
    expect(p.stdout()).toContain('SIGHUP without --config (terminal closed?): shutting down');
    await expect(request(`${p.urls.reverse}/quick`)).rejects.toThrow(/ECONNREFUSED/);
  });

  it('with --config, SIGHUP still reloads and the proxy keeps serving', async () => {
    const origin = await cleanup.origin();
    const file = writeTempFile('portico.yaml', `reverse: { listen: 127.0.0.1:0, routes: [{ pool: web }] }\npools: { web: { servers: [{ url: "${origin.url}" }] } }\n`);
    const p = await start(['--config', file]);
    p.child.kill('SIGHUP');
    await waitFor(() => p.stdout().includes('"msg":"config reloaded"'), 5_000, 'the reload line');
    expect((await request(`${p.urls.reverse}/`)).status).toBe(200);
    expect(p.child.exitCode).toBe(null);
  });
});

describe('a broken stdout', () => {
  it('(EPIPE: the reader went away) never kills the process: it keeps serving and logging stops', async () => {
    const origin = await cleanup.origin();
    const p = await start(['--reverse', '127.0.0.1:0', '--upstream', origin.url]);
    // Close our end of its stdout pipe: its next log write fails with EPIPE.
    p.child.stdout!.destroy();
    for (let i = 0; i < 50; i++) expect((await request(`${p.urls.reverse}/page-${i}`)).status).toBe(200);
    await new Promise((r) => setTimeout(r, 200));
    expect(p.child.exitCode).toBe(null);
    expect(p.stderr()).not.toMatch(/EPIPE|Unhandled|Error:/);
    p.child.kill('SIGTERM');
    expect(await p.exited).toEqual({ code: 0, signal: null });
  });

  it.each([
    ['alone', ['--no-supervise']],
    ['supervised (the worker shares the pipe)', []],
  ])('(EPIPE) with nothing logged since: SIGTERM still stops it, %s (the last lines are dropped, not retried for ever)', async (_how, flags) => {
    const origin = await cleanup.origin();
    const p = await start(['--reverse', '127.0.0.1:0', '--upstream', origin.url, ...flags]);
    p.child.stdout!.destroy();
    await new Promise((r) => setTimeout(r, 100));
    // Its first write after the reader left is the shutdown line: it fails as the process exits.
    p.child.kill('SIGTERM');
    const exited = await Promise.race([p.exited, new Promise((r) => setTimeout(() => r('still running after 5 s'), 5_000))]);
    expect(exited).toEqual({ code: 0, signal: null });
  });
});
