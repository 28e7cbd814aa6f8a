/**
 * The access log as an operator uses it: a file (log.access.file) in JSON or in the combined log
 * format with the cache result added, reopened on SIGUSR1 after logrotate moved it (as nginx does);
 * and a cache result that agrees with the response's Cache-Status.
 */
import { existsSync, mkdtempSync, readFileSync, renameSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeTempFile } from '../admin/helpers.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { request, viaProxy, waitFor } from '../helpers/http.js';
import { connectThrough } from '../forward/helpers.js';
import { startPortico } from './cli.js';

const cleanup = cleanupAfterEach();

function logDir(): string {
  return mkdtempSync(join(tmpdir(), 'portico-access-'));
}

const fileLines = (path: string) => (existsSync(path) ? readFileSync(path, 'utf8').split('\n').filter(Boolean) : []);

async function cacheableOrigin() {
  return cleanup.origin((req, res) => {
    res.setHeader('cache-control', 'max-age=60');
    res.end(`page ${req.url}`);
  });
}

async function start(yaml: string) {
  const p = await startPortico(['--config', writeTempFile('portico.yaml', yaml)]);
  cleanup.push(p.stop);
  return p;
}

describe('log.access.file', () => {
  it('JSON: one line per request in the file (not on stdout); SIGUSR1 reopens it after a rotation', async () => {
    const origin = await cacheableOrigin();
    const dir = logDir();
    const file = join(dir, 'access.log');
    const p = await start(`reverse: { listen: 127.0.0.1:0, routes: [{ pool: web }] }
pools: { web: { servers: [{ url: "${origin.url}" }] } }
log: { access: { file: ${file} } }
`);
    await request(`${p.urls.reverse}/one`);
    await waitFor(() => fileLines(file).length === 1, 5_000, 'the first access line');
    const first = JSON.parse(fileLines(file)[0]!);
    expect(first).toMatchObject({ msg: 'request', door: 'reverse', client: '127.0.0.1', method: 'GET', url: '/one', status: 200, cache: 'miss', upstream: origin.url });
    expect(typeof first.ms).toBe('number');
    expect(typeof first.time).toBe('string');
    expect(p.stdout()).not.toContain('"msg":"request"');

    // logrotate: move the file away, then tell Portico to reopen.
    renameSync(file, `${file}.1`);
    await request(`${p.urls.reverse}/two`);
    await waitFor(() => fileLines(`${file}.1`).length === 2, 5_000, 'the second line, still in the moved file');
    p.child.kill('SIGUSR1');
    await waitFor(() => p.stdout().includes('access log reopened'), 5_000, 'the reopen log line');
    await request(`${p.urls.reverse}/three`);
    await waitFor(() => fileLines(file).length === 1, 5_000, 'a line in the new file');
    expect(JSON.parse(fileLines(file)[0]!).url).toBe('/three');
    expect(fileLines(`${file}.1`)).toHaveLength(2);
  });

  it('combined: the format log tools read, with the cache result, upstream and ms added', async () => {
    const origin = await cacheableOrigin();
    const file = join(logDir(), 'access.log');
    const p = await start(`reverse: { listen: 127.0.0.1:0, routes: [{ pool: web }] }
pools: { web: { servers: [{ url: "${origin.url}" }] } }
log: { access: { file: ${file}, format: combined } }
`);
    await request(`${p.urls.reverse}/page?x=1`, { headers: { 'user-agent': 'curl/8.5.0', referer: 'http://example.com/"quoted"' } });
    await request(`${p.urls.reverse}/page?x=1`, { headers: { 'user-agent': 'curl/8.5.0' } });
    await waitFor(() => fileLines(file).length === 2, 5_000, 'two combined lines');
    const [miss, hit] = fileLines(file);
    // %h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i" cache upstream ms
    const combined = /^(\S+) - (\S+) \[(\d\d\/\w{3}\/\d{4}:\d\d:\d\d:\d\d [+-]\d{4})\] "([^"]*)" (\d{3}) (\d+|-) "((?:[^"\\]|\\.)*)" "((?:[^"\\]|\\.)*)" (\S+) (\S+) (\d+)$/;
    const m1 = combined.exec(miss!);
    expect(m1, miss).not.toBeNull();
    expect(m1!.slice(1, 3)).toEqual(['127.0.0.1', '-']);
    expect(m1![4]).toBe('GET /page?x=1 HTTP/1.1');
    expect(m1![5]).toBe('200');
    expect(Number(m1![6])).toBeGreaterThan(0);
    expect(m1![7]).toBe('http://example.com/\\"quoted\\"');
    expect(m1![8]).toBe('curl/8.5.0');
    expect(m1!.slice(9, 11)).toEqual(['miss', origin.url]);
    const m2 = combined.exec(hit!);
    expect(m2![7]).toBe('-');
    expect(m2!.slice(9, 11)).toEqual(['hit', '-']);
  });

  it('a CONNECT tunnel is one line too, with the bytes each way', async () => {
    const target: Server = createServer((s) => s.on('data', (d) => s.write(d)));
    await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
    cleanup.push(() => new Promise((r) => target.close(() => r())));
    const port = (target.address() as { port: number }).port;
    const file = join(logDir(), 'access.log');
    const p = await start(`forward: { listen: 127.0.0.1:0, connect_ports: [${port}] }\nlog: { access: { file: ${file} } }\n`);
    const tunnel = await connectThrough(Number(new URL(p.urls.forward!).port), `127.0.0.1:${port}`);
    expect(tunnel.status).toBe(200);
    tunnel.socket.write('hello');
    await new Promise((r) => tunnel.socket.once('data', r));
    tunnel.socket.end();
    await waitFor(() => fileLines(file).length === 1, 5_000, 'the tunnel line');
    expect(JSON.parse(fileLines(file)[0]!)).toMatchObject({ door: 'forward', method: 'CONNECT', url: `127.0.0.1:${port}`, status: 200, up: 5, down: 5 });
  });

  it('log.anonymize leaves the client address out of the file', async () => {
    const origin = await cacheableOrigin();
    const file = join(logDir(), 'access.log');
    const p = await start(`reverse: { listen: 127.0.0.1:0, routes: [{ pool: web }] }
pools: { web: { servers: [{ url: "${origin.url}" }] } }
log: { anonymize: true, access: { file: ${file}, format: combined } }
`);
    await request(`${p.urls.reverse}/`);
    await waitFor(() => fileLines(file).length === 1, 5_000, 'the line');
    expect(fileLines(file)[0]).toMatch(/^- - - \[/);
  });

  it('--check refuses a file in a directory that does not exist, and an unknown format', async () => {
    const { execFile } = await import('node:child_process');
    const check = (yaml: string) => {
      const file = writeTempFile('portico.yaml', yaml);
      return new Promise<string>((resolve) => execFile(process.execPath, ['dist/cli.js', '--config', file, '--check'], (_e, _o, err) => resolve(err.replaceAll(file, 'FILE'))));
    };
    expect(await check('forward: { listen: 0 }\nlog: { access: { file: /nonexistent-dir/access.log } }\n')).toBe(
      'portico: FILE: log.access.file: expected a file Portico can append to, got "/nonexistent-dir/access.log" (its directory /nonexistent-dir does not exist)\n',
    );
    expect(await check('forward: { listen: 0 }\nlog: { access: { format: clf } }\n')).toBe('portico: FILE: log.access.format: expected "json" or "combined", got "clf"\n');
  });
});

describe('the cache result in the log agrees with Cache-Status', () => {
  it('miss, hit, bypass (client no-cache: fwd=request), revalidated, and a forward-proxy page', async () => {
    const etag = '"v1"';
    const origin = await cleanup.origin((req, res) => {
      if (req.url === '/short') res.setHeader('etag', etag);
      res.setHeader('cache-control', req.url === '/short' ? 'max-age=0, must-revalidate' : 'max-age=60');
      if (req.headers['if-none-match'] === etag) {
        res.statusCode = 304;
        res.end();
        return;
      }
      res.end('body');
    });
    const p = await startPortico(['--reverse', '127.0.0.1:0', '--upstream', origin.url, '--forward', '127.0.0.1:0']);
    cleanup.push(p.stop);
    const seen: [string, string][] = [];
    const get = async (path: string, headers: Record<string, string> = {}) => {
      const r = await request(`${p.urls.reverse}${path}`, { headers });
      seen.push([path, String(r.headers['cache-status'])]);
    };
    await get('/a');
    await get('/a');
    await get('/a', { 'cache-control': 'no-cache' });
    await get('/short');
    await get('/short');
    const fwd = await viaProxy(p.urls.forward!, `${origin.url}/f`);
    expect(fwd.status).toBe(200);
    await waitFor(() => p.stdout().split('\n').filter((l) => l.includes('"msg":"request"')).length === 6, 5_000, 'six request lines');
    const logged = p.stdout().split('\n').filter((l) => l.includes('"msg":"request"')).map((l) => JSON.parse(l) as { cache: string; door: string });
    expect(seen.map(([, s]) => s)).toEqual([
      expect.stringMatching(/^portico; fwd=uri-miss; fwd-status=200; ttl=\d+; stored$/),
      expect.stringMatching(/^portico; hit; ttl=\d+$/),
      expect.stringMatching(/^portico; fwd=request; fwd-status=200/),
      expect.stringMatching(/^portico; fwd=uri-miss; fwd-status=200/),
      expect.stringMatching(/^portico; fwd=stale; fwd-status=304/),
    ]);
    expect(logged.map((l) => l.cache)).toEqual(['miss', 'hit', 'bypass', 'miss', 'revalidated', 'miss']);
    expect(logged[5]!.door).toBe('forward');
  });
});
