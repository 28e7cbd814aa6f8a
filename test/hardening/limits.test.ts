/** Limits, rate limits, L7 rules and cache-poisoning defences, as a client meets them. */
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import { request } from '../helpers/http.js';
import { startOrigin, type Origin } from '../helpers/origin.js';
import { startPortico, type RunningPortico } from '../helpers/portico.js';
import { selfSignedCert } from '../helpers/tls.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';

const cleanup = cleanupAfterEach();

async function echoOrigin(): Promise<Origin> {
  const o = await startOrigin((req, res, body) => {
    res.setHeader('content-type', 'application/json');
    if (req.url?.startsWith('/cached')) res.setHeader('cache-control', 'max-age=60');
    res.end(JSON.stringify({ url: req.url, method: req.method, headers: req.headers, bodyLength: body.length }));
  });
  cleanup.push(() => o.close());
  return o;
}

async function gateway(origin: Origin, extra: Record<string, unknown> = {}, reverse: Record<string, unknown> = {}): Promise<RunningPortico> {
  const p = await startPortico({
    reverse: { listen: '127.0.0.1:0', routes: [{ path: '/', pool: 'app' }], ...reverse },
    pools: { app: { servers: [{ url: origin.url }] } },
    ...extra,
  } as never);
  cleanup.push(() => p.stop());
  return p;
}

function rawConnect(url: string): Socket {
  const { hostname, port } = new URL(url);
  return connect(Number(port), hostname);
}

function readStatus(socket: Socket): Promise<{ status: number; text: string }> {
  return new Promise((resolve) => {
    let text = '';
    socket.on('data', (d: Buffer) => {
      text += d.toString();
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      if (m && text.includes('\r\n\r\n')) resolve({ status: Number(m[1]), text });
    });
    socket.on('close', () => resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), text }));
    socket.on('error', () => undefined);
  });
}

describe('timeouts and connection limits', () => {
  it('answers 408 to a client that sends its headers too slowly (slowloris)', async () => {
    const p = await gateway(await echoOrigin(), { limits: { header_timeout: '1s' } });
    const socket = rawConnect(p.reverseUrl);
    socket.write('GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ');
    const started = Date.now();
    const reply = await readStatus(socket);
    expect(reply.status).toBe(408);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('refuses connections beyond max_connections_per_client with 429', async () => {
    const p = await gateway(await echoOrigin(), { limits: { max_connections_per_client: 2 } });
    const held = [rawConnect(p.reverseUrl), rawConnect(p.reverseUrl)];
    await Promise.all(held.map((s) => new Promise((r) => s.once('connect', r))));
    const third = await readStatus(rawConnect(p.reverseUrl));
    expect(third.status).toBe(429);
    expect(third.text).toContain('more than 2 open connections');
    for (const s of held) s.destroy();
  });
});

describe('body limits', () => {
  it('relays a chunked upload within the limit and answers 413 to one over it', async () => {
    const origin = await echoOrigin();
    const p = await gateway(origin, { limits: { max_body_size: '64kb' } });
    const small = await request(`${p.reverseUrl}/up`, { method: 'POST', headers: { 'transfer-encoding': 'chunked' }, body: 'x'.repeat(60_000) });
    expect(JSON.parse(small.body).bodyLength).toBe(60_000);
    const big = await request(`${p.reverseUrl}/up`, { method: 'POST', headers: { 'transfer-encoding': 'chunked' }, body: 'x'.repeat(200_000) }).catch((err: Error) => err);
    if (big instanceof Error) expect(big.message).toMatch(/socket|ECONNRESET|EPIPE/);
    else expect(big.status).toBe(413);
  });

  it('a route may allow bigger bodies than the front door', async () => {
    const origin = await echoOrigin();
    const p = await gateway(origin, { limits: { max_body_size: '1kb' } }, {
      routes: [
        { path: '/upload/', pool: 'app', max_body_size: '1mb' },
        { path: '/', pool: 'app' },
      ],
    });
    expect((await request(`${p.reverseUrl}/upload/x`, { method: 'POST', body: 'x'.repeat(100_000) })).status).toBe(200);
    expect((await request(`${p.reverseUrl}/other`, { method: 'POST', body: 'x'.repeat(100_000) })).status).toBe(413);
  });

  it('answers Expect: 100-continue with 413 before the body is sent when it is too big', async () => {
    const p = await gateway(await echoOrigin(), { limits: { max_body_size: '1kb' } });
    const socket = rawConnect(p.reverseUrl);
    socket.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n');
    expect((await readStatus(socket)).status).toBe(413);
    const ok = rawConnect(p.reverseUrl);
    ok.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n');
    const first = await readStatus(ok);
    expect(first.status).toBe(100);
    ok.destroy();
  });
});

describe('rate limits', () => {
  it('gives 429 with Retry-After past the front door rate, per client address', async () => {
    const p = await gateway(await echoOrigin(), {}, { rate_limit: { rate: 0.5, burst: 3 } });
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await request(`${p.reverseUrl}/`, { localAddress: '127.0.0.2' })).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
    const limited = await request(`${p.reverseUrl}/`, { localAddress: '127.0.0.2' });
    expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect((await request(`${p.reverseUrl}/`, { localAddress: '127.0.0.3' })).status).toBe(200);
  });

  it('applies a route rate limit only to that route', async () => {
    const p = await gateway(await echoOrigin(), {}, {
      routes: [
        { path: '/login', pool: 'app', rate_limit: { rate: 0.1, burst: 1 } },
        { path: '/', pool: 'app' },
      ],
    });
    expect((await request(`${p.reverseUrl}/login`)).status).toBe(200);
    const limited = await request(`${p.reverseUrl}/login`);
    expect(limited.status).toBe(429);
    expect(limited.body).toContain('reverse.routes[0]');
    expect((await request(`${p.reverseUrl}/home`)).status).toBe(200);
  });
});

describe('L7 filtering (reverse.rules)', () => {
  it('denies by method, path and header with 403 naming the rule, and lets the rest through', async () => {
    const origin = await echoOrigin();
    const p = await gateway(origin, {}, {
      rules: [
        { action: 'allow', path: '/admin/', client: '127.0.0.5' },
        { name: 'no-admin', action: 'deny', path: '/admin/' },
        { name: 'no-trace', action: 'deny', method: ['TRACE', 'TRACK'] },
        { name: 'scanners', action: 'deny', header: { 'user-agent': 'sqlmap|nikto' } },
        { name: 'traversal', action: 'deny', path: '/\\.\\./|%2e%2e/' },
      ],
    });
    const denied = await request(`${p.reverseUrl}/admin/users`);
    expect(denied.status).toBe(403);
    expect(denied.body).toContain('"no-admin" (reverse.rules[1])');
    expect((await request(`${p.reverseUrl}/admin/users`, { localAddress: '127.0.0.5' })).status).toBe(200);
    expect((await request(`${p.reverseUrl}/`, { method: 'TRACE' })).status).toBe(403);
    expect((await request(`${p.reverseUrl}/`, { headers: { 'user-agent': 'sqlmap/1.7' } })).status).toBe(403);
    expect((await request(p.reverseUrl, { path: '/static/%2e%2e/etc/passwd' })).status).toBe(403);
    expect((await request(`${p.reverseUrl}/home`)).status).toBe(200);
    expect(origin.requests.map((r) => r.url)).toEqual(['/admin/users', '/home']);
  });

  it('rejects a bad rule at load time, naming the key', () => {
    expect(() =>
      validateConfig({ reverse: { listen: 1, routes: [{ path: '/', pool: 'a' }], rules: [{ action: 'deny', path: 'admin' }] }, pools: { a: { servers: [{ url: 'http://127.0.0.1:1' }] } } }),
    ).not.toThrow();
    return startPortico({
      reverse: { listen: '127.0.0.1:0', routes: [{ path: '/', pool: 'a' }], rules: [{ action: 'deny', path: 'admin' }] },
      pools: { a: { servers: [{ url: 'http://127.0.0.1:1' }] } },
    }).then(
      () => expect.unreachable(),
      (err: Error) => expect(err.message).toContain('reverse.rules[0].path: expected a path prefix like "/admin/" or a /regex/, got "admin"'),
    );
  });
});

describe('cache poisoning', () => {
  it('does not pass URL, host or method overrides from clients to the backend', async () => {
    const origin = await echoOrigin();
    const p = await gateway(origin);
    const reply = await request(`${p.reverseUrl}/page`, {
      headers: {
        host: 'app.test',
        'x-forwarded-host': 'evil.example',
        'x-original-url': '/admin',
        'x-rewrite-url': '/admin',
        'x-http-method-override': 'DELETE',
        'x-forwarded-port': '1337',
      },
    });
    const seen = JSON.parse(reply.body).headers as Record<string, string>;
    expect(seen['x-forwarded-host']).toBe('app.test');
    expect(seen['x-original-url']).toBeUndefined();
    expect(seen['x-rewrite-url']).toBeUndefined();
    expect(seen['x-http-method-override']).toBeUndefined();
    expect(seen['x-forwarded-port']).toBeUndefined();
  });

  it('keeps them from a trusted proxy', async () => {
    const p = await gateway(await echoOrigin(), {}, { trusted_proxies: ['127.0.0.7'] });
    const reply = await request(`${p.reverseUrl}/page`, { headers: { 'x-original-url': '/x' }, localAddress: '127.0.0.7' });
    expect(JSON.parse(reply.body).headers['x-original-url']).toBe('/x');
  });

  it('normalises the cache key: host case and the default port do not make new entries', async () => {
    const origin = await echoOrigin();
    const p = await gateway(origin);
    await request(`${p.reverseUrl}/cached/a`, { headers: { host: 'app.test' } });
    const again = await request(`${p.reverseUrl}/cached/a`, { headers: { host: 'APP.Test:80' } });
    expect(again.headers['cache-status']).toMatch(/hit/);
    expect(origin.count('/cached/a')).toBe(1);
  });
});

describe('TLS', () => {
  it('refuses TLS 1.1 and accepts TLS 1.2 with a modern cipher', async () => {
    const cert = await selfSignedCert();
    const origin = await echoOrigin();
    const p = await gateway(origin, {}, { listen: undefined, tls_listen: '127.0.0.1:0', tls: { cert: cert.certPath, key: cert.keyPath } });
    const { port } = new URL(p.reverseTlsUrl!);
    const attempt = (maxVersion: 'TLSv1.1' | 'TLSv1.2') =>
      new Promise<string>((resolve) => {
        const s = tlsConnect({ host: '127.0.0.1', port: Number(port), rejectUnauthorized: false, minVersion: 'TLSv1', maxVersion, ciphers: 'DEFAULT:@SECLEVEL=0' }, () => {
          resolve(`${s.getProtocol()} ${s.getCipher().name}`);
          s.destroy();
        });
        s.on('error', (err) => resolve(`error: ${err.message}`));
      });
    expect(await attempt('TLSv1.1')).toMatch(/^error/);
    expect(await attempt('TLSv1.2')).toMatch(/^TLSv1\.2 ECDHE-(RSA|ECDSA)-(AES\d+-GCM|CHACHA20)/);
  });

  it('loads a new certificate on reload', async () => {
    const first = await selfSignedCert('first.test');
    const second = await selfSignedCert('second.test');
    const origin = await echoOrigin();
    const config = (cert: typeof first) => ({
      reverse: { tls_listen: '127.0.0.1:0', tls: { cert: cert.certPath, key: cert.keyPath }, routes: [{ path: '/', pool: 'app' }] },
      pools: { app: { servers: [{ url: origin.url }] } },
    });
    const p = await startPortico(config(first));
    cleanup.push(() => p.stop());
    const { port } = new URL(p.reverseTlsUrl!);
    const subject = () =>
      new Promise<string>((resolve, reject) => {
        const s = tlsConnect({ host: '127.0.0.1', port: Number(port), rejectUnauthorized: false }, () => {
          resolve(String(s.getPeerCertificate().subject.CN));
          s.destroy();
        });
        s.on('error', reject);
      });
    expect(await subject()).toBe('first.test');
    const next = validateConfig(config(second));
    writeFileSync(first.certPath, second.cert); // the old files may change too; the new config names new files
    p.portico.reload({ ...next, reverse: { ...next.reverse!, tls_listen: validateConfig(config(first)).reverse!.tls_listen } });
    expect(await subject()).toBe('second.test');
  });
});
