/** What the backend and the client see: routing, Host, X-Forwarded-*, hop-by-hop headers, bodies. */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from '../helpers/http.js';
import { startOrigin, type Origin } from '../helpers/origin.js';
import { startPortico, type RunningPortico } from '../helpers/portico.js';

let web: Origin;
let api: Origin;
let wild: Origin;
let p: RunningPortico;

beforeAll(async () => {
  web = await startOrigin((req, res) => res.end(req.url === '/host' ? `host=${req.headers.host}` : 'web'));
  api = await startOrigin((req, res) => {
    if (req.url === '/api/echo') {
      res.setHeader('connection', 'x-secret');
      res.setHeader('x-secret', 'hop');
      res.setHeader('keep-alive', 'timeout=99');
      res.end(JSON.stringify(req.headers));
    } else res.end('api');
  });
  wild = await startOrigin((_req, res) => res.end('wild'));
  p = await startPortico({
    reverse: {
      listen: '127.0.0.1:0',
      trusted_proxies: ['127.0.0.9/32'],
      routes: [
        { host: 'app.example.com', path: '/api/', pool: 'api' },
        { host: '*.example.org', path: '/', pool: 'wild' },
        { host: 'raw.test', path: '/', pool: 'upstreamhost' },
        { path: '/', pool: 'web' },
      ],
    },
    pools: {
      web: { servers: [{ url: web.url }] },
      api: { servers: [{ url: api.url }] },
      wild: { servers: [{ url: wild.url }] },
      upstreamhost: { servers: [{ url: web.url }], preserve_host: false },
    },
    cache: { enabled: false },
  });
});

afterAll(async () => {
  await p.stop();
  await Promise.all([web.close(), api.close(), wild.close()]);
});

describe('routing', () => {
  it('routes by exact host and path prefix, by wildcard host, and falls back to the default route', async () => {
    expect((await request(`${p.reverseUrl}/api/x`, { headers: { host: 'app.example.com' } })).body).toBe('api');
    expect((await request(`${p.reverseUrl}/other`, { headers: { host: 'app.example.com' } })).body).toBe('web');
    expect((await request(`${p.reverseUrl}/`, { headers: { host: 'deep.sub.example.org:8080' } })).body).toBe('wild');
    expect((await request(`${p.reverseUrl}/api/x`, { headers: { host: 'other.test' } })).body).toBe('web');
  });
});

describe('headers', () => {
  it('preserves Host and sends the client address in X-Forwarded-For and Forwarded', async () => {
    const reply = await request(`${p.reverseUrl}/api/echo`, { headers: { host: 'app.example.com' } });
    const seen = JSON.parse(reply.body) as Record<string, string>;
    expect(seen.host).toBe('app.example.com');
    expect(seen['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen['x-forwarded-proto']).toBe('http');
    expect(seen['x-forwarded-host']).toBe('app.example.com');
    expect(seen.forwarded).toBe('for=127.0.0.1;host=app.example.com;proto=http');
  });

  it('sends the backend\'s own host when preserve_host is false', async () => {
    const reply = await request(`${p.reverseUrl}/host`, { headers: { host: 'raw.test' } });
    expect(reply.body).toBe(`host=127.0.0.1:${web.port}`);
  });

  it('replaces a forged X-Forwarded-For chain from an untrusted client, and extends it from a trusted proxy', async () => {
    const forged = await request(`${p.reverseUrl}/api/echo`, {
      headers: { host: 'app.example.com', 'x-forwarded-for': '6.6.6.6', forwarded: 'for=6.6.6.6' },
    });
    const f = JSON.parse(forged.body) as Record<string, string>;
    expect(f['x-forwarded-for']).toBe('127.0.0.1');
    expect(f.forwarded).not.toContain('6.6.6.6');
    const trusted = await request(`${p.reverseUrl}/api/echo`, {
      headers: { host: 'app.example.com', 'x-forwarded-for': '203.0.113.7' },
      localAddress: '127.0.0.9',
    });
    expect((JSON.parse(trusted.body) as Record<string, string>)['x-forwarded-for']).toBe('203.0.113.7, 127.0.0.9');
  });

  it('removes hop-by-hop headers both ways, including those named in Connection', async () => {
    const reply = await request(`${p.reverseUrl}/api/echo`, {
      headers: { host: 'app.example.com', connection: 'x-drop-me', 'x-drop-me': '1', te: 'trailers', 'proxy-authorization': 'Basic eA==' },
    });
    const seen = JSON.parse(reply.body) as Record<string, string>;
    expect(seen['x-drop-me']).toBeUndefined();
    expect(seen['proxy-authorization']).toBeUndefined();
    expect(seen.te).toBeUndefined();
    expect(reply.headers['x-secret']).toBeUndefined();
    expect(reply.headers['keep-alive']).not.toBe('timeout=99'); // Portico's own keep-alive, not the backend's
    expect(reply.headers.connection).not.toContain('x-secret');
  });

  it('answers 404 with a clear body when no route matches', async () => {
    const only = await startPortico({
      reverse: { listen: '127.0.0.1:0', routes: [{ host: 'a.test', path: '/', pool: 'web' }] },
      pools: { web: { servers: [{ url: web.url }] } },
    });
    try {
      const reply = await request(`${only.reverseUrl}/x`, { headers: { host: 'b.test' } });
      expect(reply.status).toBe(404);
      expect(reply.body).toContain('no route for b.test/x');
    } finally {
      await only.stop();
    }
  });
});

describe('bodies', () => {
  it('streams a large upload and a large download without changing a byte', async () => {
    const big = await startOrigin((req, res, body) => {
      if (req.method === 'POST') res.end(`${body.length}:${body.slice(0, 5)}:${body.slice(-5)}`);
      else res.end('z'.repeat(5 * 1024 * 1024));
    });
    const q = await startPortico({
      reverse: { listen: '127.0.0.1:0', routes: [{ path: '/', pool: 'b' }] },
      pools: { b: { servers: [{ url: big.url }] } },
    });
    try {
      const upload = 'start' + 'x'.repeat(3 * 1024 * 1024) + 'final';
      const up = await request(`${q.reverseUrl}/up`, { method: 'POST', body: upload });
      expect(up.body).toBe(`${upload.length}:start:final`);
      const down = await request(`${q.reverseUrl}/down`);
      expect(down.body.length).toBe(5 * 1024 * 1024);
    } finally {
      await q.stop();
      await big.close();
    }
  });

  it('flushes server-sent events as they come', async () => {
    let sendSecond: () => void = () => {};
    const sse = await startOrigin((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.write('data: one\n\n');
      sendSecond = () => res.end('data: two\n\n');
    });
    const q = await startPortico({
      reverse: { listen: '127.0.0.1:0', routes: [{ path: '/', pool: 's' }] },
      pools: { s: { servers: [{ url: sse.url }] } },
    });
    try {
      const port = Number(new URL(q.reverseUrl).port);
      const socket = connect(port, '127.0.0.1');
      socket.write('GET /events HTTP/1.1\r\nHost: x\r\n\r\n');
      let text = '';
      await new Promise<void>((resolve) => {
        socket.on('data', (d: Buffer) => {
          text += d.toString();
          if (text.includes('data: one')) resolve();
        });
      });
      expect(text).not.toContain('data: two');
      sendSecond();
      await new Promise<void>((resolve) => socket.on('data', () => text.includes('data: two') && resolve()));
      socket.destroy();
    } finally {
      await q.stop();
      await sse.close();
    }
  });
});
