/**
 * The reverse proxy's upstream connections (undici pools per backend, src/reverse/backend-client.ts):
 * HEAD and 1xx answers, no idle connection left behind by a cancelled request, pools closed when a
 * reload retires them and on shutdown, and the TLS server name of an https backend.
 */
import { request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import type { AddressInfo, Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import { request, waitFor } from '../helpers/http.js';
import { reverseConfig, startPortico, type RunningPortico } from '../helpers/portico.js';
import { selfSignedCert } from '../helpers/tls.js';
import { faultOrigin, rawOrigin, type FaultOrigin } from '../hardening/helpers.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';

const cleanup = cleanupAfterEach();

async function origin(handler?: (req: IncomingMessage, res: ServerResponse) => unknown): Promise<FaultOrigin> {
  const o = await faultOrigin(handler);
  cleanup.push(() => o.close());
  return o;
}

async function proxy(backends: readonly string[], pool: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): Promise<RunningPortico> {
  const p = await startPortico(reverseConfig(backends, { retries: 0, ...pool }, { cache: { enabled: false }, ...extra }));
  cleanup.push(() => p.stop());
  return p;
}

describe('answers', () => {
  it('HEAD: status and headers relayed, no body', async () => {
    const o = await origin((req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '11', 'x-method': req.method ?? '' });
      res.end(req.method === 'HEAD' ? undefined : 'hello world');
    });
    const p = await proxy([o.url]);
    const head = await request(`${p.reverseUrl}/h`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers['content-length']).toBe('11');
    expect(head.headers['x-method']).toBe('HEAD');
    expect(head.body).toBe('');
    expect((await request(`${p.reverseUrl}/h`)).body).toBe('hello world');
  });

  it('1xx interim answers (103 Early Hints) are not relayed; the final answer is', async () => {
    const o = await rawOrigin((socket) => {
      socket.once('data', () => {
        socket.write('HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n');
        setTimeout(() => socket.end('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nfinal'), 20);
      });
    });
    cleanup.push(() => o.close());
    const p = await proxy([o.url]);
    const reply = await request(`${p.reverseUrl}/x`);
    expect(reply.status).toBe(200);
    expect(reply.body).toBe('final');
  });

  it('a request body arrives whole, with its Content-Length or chunked', async () => {
    const seen: Array<{ length: string | undefined; te: string | undefined; body: string }> = [];
    const o = await origin((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        seen.push({ length: req.headers['content-length'], te: req.headers['transfer-encoding'], body: Buffer.concat(chunks).toString() });
        res.end('ok');
      });
    });
    const p = await proxy([o.url]);
    expect((await request(`${p.reverseUrl}/a`, { method: 'POST', body: 'abc'.repeat(1000) })).body).toBe('ok');
    const chunked = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${p.reverseUrl}/b`, { method: 'PUT', agent: false }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.write('part one, ');
      setTimeout(() => req.end('part two'), 20);
    });
    expect(chunked).toBe(200);
    expect(seen).toEqual([
      { length: '3000', te: undefined, body: 'abc'.repeat(1000) },
      { length: undefined, te: 'chunked', body: 'part one, part two' },
    ]);
  });
});

describe('timeouts', () => {
  it('an upload slower than the response timeout is not cut; the timeout counts from the end of the body', async () => {
    let hang = false;
    const o = await origin((req, res) => {
      let n = 0;
      req.on('data', (c: Buffer) => (n += c.length));
      req.on('end', () => {
        if (!hang) res.end(`got ${n}`);
      });
    });
    const p = await proxy([o.url], { timeouts: { connect: '1s', response_header: '300ms', idle: '1s' } });
    const upload = () =>
      new Promise<{ status: number; body: string; ms: number }>((resolve, reject) => {
        const started = Date.now();
        const req = httpRequest(`${p.reverseUrl}/up`, { method: 'POST', agent: false }, (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body, ms: Date.now() - started }));
        });
        req.on('error', reject);
        let sent = 0;
        const timer = setInterval(() => {
          req.write('x'.repeat(1000));
          if (++sent === 8) {
            clearInterval(timer);
            req.end();
          }
        }, 100);
      });
    const ok = await upload();
    expect(ok).toMatchObject({ status: 200, body: 'got 8000' });
    hang = true;
    const late = await upload();
    expect(late.status).toBe(504);
    expect(late.ms).toBeGreaterThanOrEqual(800 + 250);
    expect(late.ms).toBeLessThan(800 + 2_000);
  });
});

describe('retries', () => {
  it('a POST that never reached a backend (connection refused) goes to the next one with its whole body', async () => {
    const dead = await origin();
    const deadUrl = dead.url;
    await dead.close();
    const bodies: string[] = [];
    const alive = await origin((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        bodies.push(Buffer.concat(chunks).toString());
        res.end('stored');
      });
    });
    const p = await proxy([deadUrl, alive.url], { retries: 1, passive: { max_fails: 0 } });
    const payload = 'x'.repeat(200 * 1024);
    for (let i = 0; i < 4; i++) {
      const reply = await request(`${p.reverseUrl}/upload`, { method: 'POST', body: payload });
      expect(reply.status).toBe(200);
      expect(reply.body).toBe('stored');
    }
    expect(bodies).toEqual(Array(4).fill(payload));
  });
});

describe('upstream connections', () => {
  it('a request cancelled in flight leaves no connection behind', async () => {
    const o = await origin(() => {
      /* never answers */
    });
    const p = await proxy([o.url]);
    const req = httpRequest(`${p.reverseUrl}/wait`, { agent: false });
    req.on('error', () => {});
    req.end();
    await waitFor(() => o.requests.length === 1, 5_000, 'the request to reach the origin');
    req.destroy();
    await waitFor(() => o.counts.open === 0, 1_000, 'the upstream connection to close');
    // No new connection was opened for the cancelled request (undici#5845).
    await new Promise((r) => setTimeout(r, 100));
    expect(o.counts).toEqual({ open: 0, accepted: 1 });
    o.setHandler((_req, res) => res.end('next'));
    expect((await request(`${p.reverseUrl}/next`)).body).toBe('next');
  });

  it('keep-alive connections are reused across requests', async () => {
    const o = await origin((_req, res) => res.end('ok'));
    const p = await proxy([o.url]);
    for (let i = 0; i < 5; i++) expect((await request(`${p.reverseUrl}/${i}`)).body).toBe('ok');
    expect(o.counts.accepted).toBe(1);
  });

  it('a reload closes the connections of the retired runtime; requests in flight finish first', async () => {
    const held: ServerResponse[] = [];
    const a = await origin((req, res) => (req.url === '/slow' ? held.push(res) : res.end('a')));
    const b = await origin((_req, res) => res.end('b'));
    const p = await proxy([a.url]);
    // Two connections to a: one busy with /slow, one idle after /x.
    const slow = request(`${p.reverseUrl}/slow`);
    await waitFor(() => held.length === 1, 5_000, 'the slow request to reach a');
    expect((await request(`${p.reverseUrl}/x`)).body).toBe('a');
    expect(a.counts.open).toBe(2);
    p.portico.reload(validateConfig(reverseConfig([b.url], { retries: 0 }, { cache: { enabled: false } })));
    // The idle connection to a closes at once, the busy one once its answer is through.
    await waitFor(() => a.counts.open === 1, 2_000, 'the idle connection to a to close');
    held[0]!.end('slow done');
    expect((await slow).body).toBe('slow done');
    await waitFor(() => a.counts.open === 0, 2_000, 'the last connection to a to close');
    expect((await request(`${p.reverseUrl}/y`)).body).toBe('b');
  });

  it('shutdown closes the pooled connections', async () => {
    const o = await origin((_req, res) => res.end('ok'));
    const p = await startPortico(reverseConfig([o.url], { retries: 0 }, { cache: { enabled: false } }));
    expect((await request(`${p.reverseUrl}/x`)).body).toBe('ok');
    expect(o.counts.open).toBe(1);
    await p.stop();
    await waitFor(() => o.counts.open === 0, 2_000, 'the pooled connection to close');
  });
});

describe('https backends', () => {
  it('the TLS server name is the backend\'s host, never the client\'s Host; an untrusted certificate is a 502', async () => {
    const cert = await selfSignedCert('localhost');
    const names: Array<string | false> = [];
    const server = createTlsServer({ cert: cert.cert, key: cert.key }, (s: TLSSocket) => s.destroy());
    server.on('tlsClientError', (_err, s: TLSSocket) => names.push(s.servername ?? false));
    server.on('secureConnection', (s: TLSSocket) => names.push(s.servername ?? false));
    const sockets = new Set<Socket>();
    server.on('connection', (s: Socket) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanup.push(
      () =>
        new Promise<void>((resolve) => {
          for (const s of sockets) s.destroy();
          server.close(() => resolve());
        }),
    );
    const port = (server.address() as AddressInfo).port;
    const byName = await proxy([`https://localhost:${port}`], { preserve_host: true });
    const reply = await request(`${byName.reverseUrl}/x`, { headers: { host: 'client.example' } });
    expect(reply.status).toBe(502);
    expect(reply.headers['proxy-status']).toMatch(/tls_protocol_error/);
    const byIp = await proxy([`https://127.0.0.1:${port}`], { preserve_host: true });
    expect((await request(`${byIp.reverseUrl}/x`, { headers: { host: 'client.example' } })).status).toBe(502);
    await waitFor(() => names.length === 2, 2_000, 'both handshakes');
    expect(names).toEqual(['localhost', false]);
  });
});
