/**
 * HTTP/2 at the reverse door, with Node's own http2 client over real sockets: ALPN negotiation and
 * the HTTP/1.1 fallback on the same TLS port (WebSocket included), cache hits and streamed misses over
 * h2, many streams on one connection, the translation to HTTP/1.1 backends (`:authority`, cookies,
 * multi-value and hop-by-hop fields, bodies without a length, HEAD, 103 Early Hints), the protocol in
 * the access log and the statistics, and h2c with prior knowledge on the plain listener.
 */
import { createServer, type Server } from 'node:http';
import { connect as netConnect, type AddressInfo } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { h2Close, h2Connect, h2Request } from '../helpers/h2.js';
import { request } from '../helpers/http.js';
import { startPortico, type RunningPortico } from '../helpers/portico.js';
import { selfSignedCert } from '../helpers/tls.js';
import { recordingLogger, type LogLine } from '../balance/logs.js';

interface Seen {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

let origin: Server;
let originUrl: string;
const seen: Seen[] = [];
/** Resolved by the streaming test once the client has the first chunk. */
let releaseStream: (() => void) | null = null;
let wss: WebSocketServer;
let p: RunningPortico;
let logLines: LogLine[];
const BIG = Buffer.alloc(3 * 1024 * 1024, 'abcdefghij');

function count(path: string): number {
  return seen.filter((s) => s.url === path).length;
}

beforeAll(async () => {
  origin = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body: Buffer.concat(chunks).toString() });
      const url = req.url!;
      if (url === '/cached') {
        res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=60' });
        res.end('cached body');
      } else if (url === '/stream') {
        // The first chunk, then the rest only once the client has received it: proof of streaming.
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'cache-control': 'no-store' });
        res.write(BIG.subarray(0, 64 * 1024));
        new Promise<void>((resolve) => (releaseStream = resolve)).then(() => res.end(BIG.subarray(64 * 1024)));
      } else if (url === '/big') {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': BIG.length, 'cache-control': 'max-age=60' });
        res.end(BIG);
      } else if (url === '/headers') {
        res.setHeader('set-cookie', ['a=1; Path=/', 'b=2; Path=/']);
        res.setHeader('x-multi', ['one', 'two']);
        res.setHeader('connection', 'keep-alive, x-hop');
        res.setHeader('x-hop', 'must not be relayed');
        res.setHeader('keep-alive', 'timeout=5');
        res.setHeader('cache-control', 'no-store');
        res.end('headers');
      } else if (url === '/trailers') {
        res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-checksum', 'cache-control': 'no-store' });
        res.write('body with ');
        res.addTrailers({ 'x-checksum': 'abc123', 'content-type': 'text/evil' });
        res.end('trailers');
      } else if (url === '/cut') {
        // Declares 1 MiB, sends 100 KiB, and dies: the client must not see a complete response.
        res.writeHead(200, { 'content-length': 1024 * 1024, 'cache-control': 'no-store' });
        res.write(Buffer.alloc(100 * 1024, 'c'), () => setTimeout(() => res.socket!.destroy(), 20));
      } else if (url === '/hints') {
        res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' });
        setTimeout(() => res.end('after hints'), 20);
      } else if (url.startsWith('/echo')) {
        res.setHeader('cache-control', 'no-store');
        res.end(`${req.method} ${chunks.length ? Buffer.concat(chunks).length : 0}`);
      } else if (url.startsWith('/slow')) {
        setTimeout(() => res.end(`slow ${url}`), 30);
      } else {
        res.setHeader('content-type', 'text/plain');
        res.end(`hello ${url} over ${req.headers['x-forwarded-proto']}`);
      }
    });
  });
  wss = new WebSocketServer({ server: origin });
  wss.on('connection', (ws) => ws.on('message', (data) => ws.send(`echo:${data.toString()}`)));
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  originUrl = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`;
  const tls = await selfSignedCert();
  const { log, lines } = recordingLogger();
  logLines = lines;
  p = await startPortico(
    {
      reverse: {
        listen: '127.0.0.1:0',
        tls_listen: '127.0.0.1:0',
        tls: { cert: tls.certPath, key: tls.keyPath },
        h2c: true,
        routes: [
          { path: '/', pool: 'app' },
          { host: 'small.test', path: '/', pool: 'app', max_body_size: '10b' },
        ],
      },
      pools: { app: { servers: [{ url: originUrl }] } },
      admin: { listen: '127.0.0.1:0' },
    },
    log,
  );
});

afterAll(async () => {
  await p.stop();
  wss.close();
  origin.closeAllConnections();
  await new Promise<void>((resolve) => origin.close(() => resolve()));
});

describe('negotiation', () => {
  it('offers h2 and http/1.1 by ALPN on the TLS listener', async () => {
    const port = Number(new URL(p.reverseTlsUrl!).port);
    const alpn = (protocols: string[]) =>
      new Promise<string | false | null>((resolve, reject) => {
        const socket = tlsConnect({ host: '127.0.0.1', port, ALPNProtocols: protocols, rejectUnauthorized: false }, () => {
          resolve(socket.alpnProtocol);
          socket.destroy();
        });
        socket.on('error', reject);
      });
    expect(await alpn(['h2', 'http/1.1'])).toBe('h2');
    expect(await alpn(['http/1.1'])).toBe('http/1.1');
  });

  it('answers HTTP/1.1 clients on the same port as before', async () => {
    const reply = await request(`${p.reverseTlsUrl}/plain`);
    expect(reply.status).toBe(200);
    expect(reply.body).toBe('hello /plain over https');
  });

  it('serves a request over h2 through the pipeline: :authority is the host, the backend speaks HTTP/1.1', async () => {
    const session = await h2Connect(p.reverseTlsUrl!);
    expect(session.alpnProtocol).toBe('h2');
    const reply = await h2Request(session, '/hello?x=1', { ':authority': 'app.test' });
    await h2Close(session);
    expect(reply.text).toBe('hello /hello?x=1 over https');
    expect(reply.status).toBe(200);
    const got = seen.findLast((s) => s.url === '/hello?x=1')!;
    expect(got.headers.host).toBe('app.test');
    expect(got.headers['x-forwarded-proto']).toBe('https');
    expect(got.headers['x-forwarded-host'] ?? 'app.test').toBe('app.test');
    expect(Object.keys(got.headers).some((k) => k.startsWith(':'))).toBe(false);
  });

  it('keeps WebSocket working on HTTP/1.1 connections of the TLS port', async () => {
    const ws = new WebSocket(`${p.reverseTlsUrl!.replace('https', 'wss')}/socket`, { rejectUnauthorized: false });
    const reply = await new Promise<string>((resolve, reject) => {
      ws.on('error', reject);
      ws.on('open', () => ws.send('ping'));
      ws.on('message', (data) => resolve(data.toString()));
    });
    ws.close();
    expect(reply).toBe('echo:ping');
  });
});

describe('the cache over h2', () => {
  it('serves a hit over h2 without reaching the backend', async () => {
    const session = await h2Connect(p.reverseTlsUrl!);
    const first = await h2Request(session, '/cached');
    const second = await h2Request(session, '/cached');
    await h2Close(session);
    expect(first.text).toBe('cached body');
    expect(second.text).toBe('cached body');
    expect(String(second.headers['cache-status'])).toMatch(/hit/);
    expect(second.headers.age).toBeDefined();
    expect(count('/cached')).toBe(1);
  });

  it('shares the cache between HTTP/1.1 and h2 clients', async () => {
    const h1 = await request(`${p.reverseTlsUrl}/big`);
    expect(h1.body.length).toBe(BIG.length);
    const session = await h2Connect(p.reverseTlsUrl!);
    const hit = await h2Request(session, '/big');
    await h2Close(session);
    expect(hit.body.equals(BIG)).toBe(true);
    expect(String(hit.headers['cache-status'])).toMatch(/hit/);
    expect(count('/big')).toBe(1);
  });

  it('streams a miss from the backend: the first bytes reach the client before the backend is done', async () => {
    const session = await h2Connect(p.reverseTlsUrl!);
    const stream = session.request({ ':path': '/stream' });
    const chunks: Buffer[] = [];
    let status = 0;
    stream.on('response', (h) => (status = Number(h[':status'])));
    const done = new Promise<void>((resolve, reject) => {
      stream.on('end', resolve);
      stream.on('error', reject);
    });
    stream.on('data', (c: Buffer) => {
      chunks.push(c);
      releaseStream?.();
    });
    await done;
    await h2Close(session);
    expect(status).toBe(200);
    expect(Buffer.concat(chunks).equals(BIG)).toBe(true);
  });

  it('answers HEAD with the head only', async () => {
    const session = await h2Connect(p.reverseTlsUrl!);
    const reply = await h2Request(session, '/big', { ':method': 'HEAD' });
    await h2Close(session);
    expect(reply.status).toBe(200);
    expect(reply.headers['content-length']).toBe(String(BIG.length));
    expect(reply.body.length).toBe(0);
  });
});

describe('failures over h2', () => {
  it('resets the stream (never a clean end) when the backend dies mid-body; the connection lives on', async () => {
    const session = await h2Connect(p.reverseTlsUrl!);
    const outcome = await new Promise<{ ended: boolean; code: number | undefined; bytes: number }>((resolve) => {
      const stream = session.request({ ':path': '/cut' });
      let bytes = 0;
      let ended = false;
      stream.on('data', (c: Buffer) => (bytes += c.length));
      stream.on('end', () => (ended = true));
      stream.on('error', () => {});
      stream.on('close', () => resolve({ ended, code: stream.rstCode, bytes }));
    });
    expect(outcome.ended).toBe(false);
    expect(outcome.code).not.toBe(0);
    expect(outcome.bytes).toBeLessThan(1024 * 1024);
    const after = await h2Request(session, '/plain');
    await h2Close(session);
    expect(after.status).toBe(200);
  });

  it('cancels the backend request when the client resets a streamed response', async () => {
    const session = await h2Connect(p.reverseTlsUrl!);
    const closed = new Promise<void>((resolve) => origin.once('request', (_req, res) => res.once('close', () => resolve())));
    const stream = session.request({ ':path': '/stream' });
    stream.on('error', () => {});
    await new Promise<void>((resolve) => stream.once('data', () => resolve()));
    stream.close(0x8);
    await closed; // the origin's response was abandoned, not left waiting
    const after = await h2Request(session, '/plain');
    await h2Close(session);
    expect(after.status).toBe(200);
    releaseStream = null;
  });
});

describe('many streams on one connection', () => {
  it('answers 100 concurrent streams on one connection', async () => {
    const session = await h2Connect(p.reverseTlsUrl!);
    expect(session.remoteSettings.maxConcurrentStreams).toBe(100);
    const replies = await Promise.all(Array.from({ length: 100 }, (_, i) => h2Request(session, `/slow/${i}`)));
    await h2Close(session);
    expect(replies.map((r) => r.status)).toEqual(Array(100).fill(200));
    expect(replies.map((r) => r.text)).toEqual(Array.from({ length: 100 }, (_, i) => `slow /slow/${i}`));
  });
});

describe('translation between HTTP/2 and HTTP/1.1', () => {
  it('relays multi-value fields, drops hop-by-hop ones, and joins split cookies with "; "', async () => {
    const session = await h2Connect(p.reverseTlsUrl!);
    // Two cookie fields, as HTTP/2 clients may send them (RFC 9113 §8.2.3).
    const reply = await h2Request(session, '/headers', { cookie: ['c=3', 'd=4'] });
    await h2Close(session);
    expect(reply.status).toBe(200);
    expect(reply.headers['set-cookie']).toEqual(['a=1; Path=/', 'b=2; Path=/']);
    expect(reply.headers['x-multi']).toBe('one, two');
    expect(reply.headers['x-hop']).toBeUndefined();
    expect(reply.headers['keep-alive']).toBeUndefined();
    expect(reply.headers.connection).toBeUndefined();
    expect(seen.findLast((s) => s.url === '/headers')!.headers.cookie).toBe('c=3; d=4');
  });

  it('sends a request body without a declared length upstream chunked, and one with a length as is', async () => {
    const session = await h2Connect(p.reverseTlsUrl!);
    const chunked = await h2Request(session, '/echo/a', { ':method': 'POST' }, 'x'.repeat(100_000));
    const sized = await h2Request(session, '/echo/b', { ':method': 'PUT', 'content-length': '5' }, 'hello');
    await h2Close(session);
    expect(chunked.text).toBe('POST 100000');
    expect(sized.text).toBe('PUT 5');
    const a = seen.findLast((s) => s.url === '/echo/a')!;
    expect(a.headers['transfer-encoding']).toBe('chunked');
    expect(a.body.length).toBe(100_000);
    expect(seen.findLast((s) => s.url === '/echo/b')!.headers['content-length']).toBe('5');
  });

  it('answers a body over the route limit with 413, without connection-specific fields', async () => {
    const session = await h2Connect(p.reverseTlsUrl!);
    const reply = await h2Request(session, '/echo/c', { ':method': 'POST', ':authority': 'small.test' }, 'x'.repeat(100));
    // The connection is still usable afterwards.
    const after = await h2Request(session, '/plain');
    await h2Close(session);
    expect(reply.status).toBe(413);
    expect(reply.headers.connection).toBeUndefined();
    expect(after.status).toBe(200);
  });

  it("relays the backend's trailer fields to an HTTP/2 client, without framing fields", async () => {
    const session = await h2Connect(p.reverseTlsUrl!);
    const reply = await h2Request(session, '/trailers');
    await h2Close(session);
    expect(reply.text).toBe('body with trailers');
    expect(reply.trailers?.['x-checksum']).toBe('abc123');
    expect(reply.trailers?.['content-type']).toBeUndefined();
  });

  it('relays trailer fields to an HTTP/1.1 client only when it sent TE: trailers', async () => {
    const port = Number(new URL(p.reverseUrl).port);
    const raw = (te: string) =>
      new Promise<string>((resolve, reject) => {
        const socket = netConnect(port, '127.0.0.1', () => socket.write(`GET /trailers HTTP/1.1\r\nHost: x\r\n${te}Connection: close\r\n\r\n`));
        let got = '';
        socket.on('data', (d) => (got += d.toString()));
        socket.on('end', () => resolve(got));
        socket.on('error', reject);
      });
    expect(await raw('TE: trailers\r\n')).toMatch(/\r\n0\r\nx-checksum: abc123\r\n\r\n$/);
    expect(await raw('')).not.toMatch(/x-checksum/);
  });

  it('relays 103 Early Hints before the response', async () => {
    const session = await h2Connect(p.reverseTlsUrl!);
    const reply = await h2Request(session, '/hints');
    await h2Close(session);
    expect(reply.informational.map((h) => h[':status'])).toEqual([103]);
    expect(reply.informational[0]!.link).toBe('</style.css>; rel=preload; as=style');
    expect(reply.text).toBe('after hints');
  });

  it('answers error pages over h2 (no route: 404) and refuses CONNECT', async () => {
    const session = await h2Connect(p.reverseTlsUrl!);
    const connect = await h2Request(session, '', { ':method': 'CONNECT', ':authority': 'example.com:443', ':path': undefined as unknown as string });
    await h2Close(session);
    expect(connect.status).toBe(400);
  });

  it('refuses a Host that disagrees with :authority', async () => {
    const session = await h2Connect(p.reverseTlsUrl!);
    const reply = await h2Request(session, '/plain', { ':authority': 'a.test', host: 'b.test' });
    await h2Close(session);
    expect(reply.status).toBe(400);
  });
});

describe('the protocol in logs and statistics', () => {
  it('logs HTTP/2.0 and counts requests by protocol', async () => {
    const session = await h2Connect(p.reverseTlsUrl!);
    await h2Request(session, '/logged');
    await h2Close(session);
    const line = logLines.findLast((l) => l.url === '/logged');
    expect(line?.protocol).toBe('HTTP/2.0');
    const stats = (await (await fetch(`${p.adminUrl}/api/stats`)).json()) as { requests: { byProtocol: { http1: number; http2: number } }; http2: { total: number } };
    expect(stats.requests.byProtocol.http2).toBeGreaterThan(0);
    expect(stats.requests.byProtocol.http1).toBeGreaterThan(0);
    expect(stats.http2.total).toBeGreaterThan(0);
    const metrics = await (await fetch(`${p.adminUrl}/metrics`)).text();
    expect(metrics).toMatch(/portico_requests_by_protocol_total\{protocol="http2"\} [1-9]/);
  });
});

describe('h2c with prior knowledge on the plain listener', () => {
  it('serves HTTP/2 and HTTP/1.1 on the same plain port', async () => {
    const session = await h2Connect(p.reverseUrl);
    const reply = await h2Request(session, '/h2c');
    await h2Close(session);
    expect(reply.status).toBe(200);
    expect(reply.text).toBe('hello /h2c over http');
    const h1 = await request(`${p.reverseUrl}/h1`);
    expect(h1.body).toBe('hello /h1 over http');
  });

  it('still refuses the Upgrade: h2c dance', async () => {
    const reply = await request(`${p.reverseUrl}/up`, { headers: { connection: 'Upgrade, HTTP2-Settings', upgrade: 'h2c', 'http2-settings': 'AAMAAABkAARAAAAAAAIAAAAA' } });
    expect(reply.status).toBe(400);
  });

  it('reads an HTTP/1.1 request that arrives a byte at a time', async () => {
    const port = Number(new URL(p.reverseUrl).port);
    const text = await new Promise<string>((resolve, reject) => {
      const socket = netConnect(port, '127.0.0.1');
      let got = '';
      socket.on('data', (d) => (got += d.toString()));
      socket.on('end', () => resolve(got));
      socket.on('error', reject);
      socket.setNoDelay(true);
      const req = 'GET /bytes HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n';
      let i = 0;
      const next = () => {
        if (i < req.length) {
          socket.write(req[i++]!);
          setTimeout(next, 2);
        }
      };
      next();
    });
    expect(text).toMatch(/^HTTP\/1\.1 200/);
    expect(text).toMatch(/hello \/bytes over http/);
  });
});
