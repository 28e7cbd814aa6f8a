/**
 * Clients that go away half-way, through the reverse proxy: the upstream request is cancelled, the
 * backend is released (and not blamed), and nothing half-received is stored.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import type { Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { Pool } from '../../src/balance/pool.js';
import { request, waitFor } from '../helpers/http.js';
import { reverseConfig, startPortico, type RunningPortico } from '../helpers/portico.js';
import { faultOrigin, type FaultOrigin } from './helpers.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';

const cleanup = cleanupAfterEach();

async function setup(handler: (req: IncomingMessage, res: ServerResponse) => unknown, cache = true): Promise<{ origin: FaultOrigin; p: RunningPortico; pool: Pool }> {
  const origin = await faultOrigin(handler);
  cleanup.push(() => origin.close());
  const p = await startPortico(reverseConfig([origin.url], { retries: 0, passive: { max_fails: 1, fail_timeout: '30s' } }, { cache: { enabled: cache } }));
  cleanup.push(() => p.stop());
  return { origin, p, pool: p.portico.pools.get('p')! };
}

/** How an origin-side request ended: 'end' (whole body read), or 'aborted' when the proxy cut it. */
function requestEnding(req: IncomingMessage): Promise<'end' | 'aborted'> {
  return new Promise((resolve) => {
    req.once('end', () => resolve('end'));
    req.once('aborted', () => resolve('aborted'));
    req.once('close', () => resolve(req.complete ? 'end' : 'aborted'));
  });
}

/** How an origin-side response ended: 'finish' (all written) or 'close' before that. */
function responseEnding(res: ServerResponse): Promise<'finish' | 'close'> {
  return new Promise((resolve) => {
    res.once('finish', () => resolve('finish'));
    res.once('close', () => resolve(res.writableFinished ? 'finish' : 'close'));
  });
}

/** Streams `total` bytes, respecting backpressure, until done or the connection closes. */
function streamBody(res: ServerResponse, total: number, headers: Record<string, string>): void {
  res.writeHead(200, { 'content-length': String(total), ...headers });
  const chunk = Buffer.alloc(64 * 1024, 'd');
  let sent = 0;
  const pump = () => {
    while (sent < total && !res.destroyed) {
      sent += chunk.length;
      if (!res.write(chunk)) return void res.once('drain', pump);
    }
    if (!res.destroyed) res.end();
  };
  pump();
}

describe('a client that goes away mid-upload', () => {
  it('the upstream request is cancelled, its connection closed, and the backend not blamed', async () => {
    let ending: Promise<'end' | 'aborted'> | undefined;
    let received = 0;
    const { origin, p, pool } = await setup((req, res) => {
      ending = requestEnding(req);
      req.on('data', (c: Buffer) => (received += c.length));
      req.on('end', () => res.end('got it'));
    });
    const port = Number(new URL(p.reverseUrl).port);
    const client = connect(port, '127.0.0.1');
    await new Promise<void>((resolve) => client.once('connect', () => resolve()));
    client.write(`POST /upload HTTP/1.1\r\nHost: app\r\nContent-Length: ${16 * 1024 * 1024}\r\n\r\n`);
    client.write(Buffer.alloc(512 * 1024, 'u'));
    await waitFor(() => received > 0, 5_000, 'the origin to receive part of the body');
    client.destroy();

    expect(await ending).toBe('aborted');
    await waitFor(() => origin.counts.open === 0, 2_000, 'the upstream connection to close');
    await waitFor(() => pool.snapshot()[0]!.inflight === 0, 2_000, 'the backend to be released');
    expect(pool.snapshot()[0]).toMatchObject({ errors: 0, state: 'up' });
    // The proxy still serves.
    origin.setHandler((_req, res) => res.end('fine'));
    expect((await request(`${p.reverseUrl}/next`)).body).toBe('fine');
  });

  it('leaving before the upstream answers (upload complete) cancels the upstream request too', async () => {
    let ending: Promise<'finish' | 'close'> | undefined;
    const { origin, p, pool } = await setup((_req, res) => {
      ending = responseEnding(res); // never answers
    });
    const req = httpRequest({ host: '127.0.0.1', port: new URL(p.reverseUrl).port, path: '/wait', method: 'POST', agent: false, headers: { 'content-length': '5' } });
    req.on('error', () => {});
    req.end('hello');
    await waitFor(() => origin.requests.length === 1, 5_000, 'the request to reach the origin');
    req.destroy();
    expect(await ending).toBe('close');
    await waitFor(() => origin.counts.open === 0, 2_000, 'the upstream connection to close');
    await waitFor(() => pool.snapshot()[0]!.inflight === 0, 2_000, 'the backend to be released');
    expect(pool.snapshot()[0]).toMatchObject({ errors: 0, state: 'up' });
  });
});

describe('a client that goes away mid-download', () => {
  it.each([
    ['cacheable, through the cache', true, { 'cache-control': 'max-age=60' }],
    ['not cacheable', true, { 'cache-control': 'no-store' }],
    ['cache disabled', false, {}],
  ] as const)('%s: the upstream response is cancelled, nothing is stored, the next request is served at once', async (_name, cache, headers) => {
    const TOTAL = 32 * 1024 * 1024;
    const endings: Array<Promise<'finish' | 'close'>> = [];
    const { origin, p, pool } = await setup((_req, res) => {
      endings.push(responseEnding(res));
      streamBody(res, TOTAL, headers);
    }, cache);

    let got = 0;
    await new Promise<void>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port: new URL(p.reverseUrl).port, path: '/big', agent: false }, (res) => {
        res.on('data', (c: Buffer) => {
          got += c.length;
          if (got >= 256 * 1024) {
            req.destroy();
            resolve();
          }
        });
      });
      req.on('error', () => {});
      req.on('close', () => (got < 256 * 1024 ? reject(new Error('closed early')) : undefined));
      req.end();
    });

    expect(await endings[0]).toBe('close');
    await waitFor(() => origin.counts.open === 0, 2_000, 'the upstream connection to close');
    await waitFor(() => pool.snapshot()[0]!.inflight === 0, 2_000, 'the backend to be released');
    expect(pool.snapshot()[0]).toMatchObject({ errors: 0, state: 'up' });
    if (cache) expect(p.portico.cache!.stats()).toMatchObject({ entries: 0, stores: 0 });

    // The same URL again: not held back by a collapsed request that will never finish, and whole.
    origin.setHandler((_req, res) => res.writeHead(200, { 'cache-control': 'max-age=60' }).end('small now'));
    const started = Date.now();
    const again = await request(`${p.reverseUrl}/big`);
    expect(again.body).toBe('small now');
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(origin.requests.length).toBe(2);
  });

  it('a client that stops reading (but stays) does not make the proxy buffer the whole response', async () => {
    const TOTAL = 64 * 1024 * 1024;
    let written = 0;
    const { p } = await setup((_req, res) => {
      const write = res.write.bind(res) as (chunk: Buffer) => boolean;
      res.write = ((chunk: Buffer) => {
        written += chunk.length;
        return write(chunk);
      }) as typeof res.write;
      streamBody(res, TOTAL, { 'cache-control': 'no-store' });
    });
    const socket = connect(Number(new URL(p.reverseUrl).port), '127.0.0.1');
    socket.write('GET /big HTTP/1.1\r\nHost: app\r\n\r\n');
    await new Promise<void>((resolve) => socket.once('data', () => resolve()));
    socket.pause();
    // Give the pipeline time to fill every buffer along the way; then the origin must be held back.
    await waitFor(async () => {
      const before = written;
      await new Promise((r) => setTimeout(r, 200));
      return written === before;
    }, 10_000, 'the origin to be held back by backpressure');
    expect(written).toBeLessThan(TOTAL / 2);
    socket.destroy();
  });
});

describe('a client that goes away while waiting for a backend', () => {
  it('a request waiting in the pool queue leaves it and never reaches the backend', async () => {
    const held: ServerResponse[] = [];
    const origin = await faultOrigin((_req, res) => held.push(res));
    cleanup.push(() => origin.close());
    const q = await startPortico({
      reverse: { listen: '127.0.0.1:0', routes: [{ path: '/', pool: 'p' }] },
      pools: { p: { servers: [{ url: origin.url, max_conns: 1 }], retries: 0, queue: { size: 5, timeout: '10s' } } },
      cache: { enabled: false },
    });
    cleanup.push(() => q.stop());
    const qpool = q.portico.pools.get('p')!;
    const port = new URL(q.reverseUrl).port;
    const first = request(`${q.reverseUrl}/first`);
    await waitFor(() => origin.requests.length === 1, 5_000, 'the first request to hold the backend');
    const second = httpRequest({ host: '127.0.0.1', port, path: '/second', agent: false });
    second.on('error', () => {});
    second.end();
    await waitFor(() => qpool.queued === 1, 5_000, 'the second request to be queued');
    second.destroy();
    await waitFor(() => qpool.queued === 0, 2_000, 'the queue to let it go');
    held[0]!.end('first done');
    expect((await first).body).toBe('first done');
    // Nothing more reaches the backend, and it is not held.
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(origin.requests.map((r) => r.url)).toEqual(['/first']);
    await waitFor(() => qpool.snapshot()[0]!.inflight === 0, 2_000, 'the backend to be released');
  });
});

describe('a client that goes away during a WebSocket upgrade', () => {
  it('while queued for a backend: it leaves the queue at once', async () => {
    const held: ServerResponse[] = [];
    const origin = await faultOrigin((_req, res) => held.push(res));
    cleanup.push(() => origin.close());
    const p = await startPortico({
      reverse: { listen: '127.0.0.1:0', routes: [{ path: '/', pool: 'p' }] },
      pools: { p: { servers: [{ url: origin.url, max_conns: 1 }], retries: 0, queue: { size: 5, timeout: '10s' } } },
      cache: { enabled: false },
    });
    cleanup.push(() => p.stop());
    const pool = p.portico.pools.get('p')!;
    const first = request(`${p.reverseUrl}/first`);
    await waitFor(() => origin.requests.length === 1, 5_000, 'the first request to hold the backend');
    const socket = connect(Number(new URL(p.reverseUrl).port), '127.0.0.1');
    socket.write('GET /ws HTTP/1.1\r\nHost: app\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
    await waitFor(() => pool.queued === 1, 5_000, 'the upgrade to be queued');
    socket.destroy();
    await waitFor(() => pool.queued === 0, 2_000, 'the queue to let it go');
    held[0]!.end('done');
    expect((await first).body).toBe('done');
    await waitFor(() => pool.snapshot()[0]!.inflight === 0, 2_000, 'the backend to be released');
    expect(origin.counts.accepted).toBe(1);
  });

  it('before the backend answers: the backend is released, not blamed', async () => {
    const { origin, p, pool } = await setup(() => {});
    origin.server.on('upgrade', (_req: IncomingMessage, socket: Duplex) => {
      // Never answers, but notices when the proxy hangs up.
      socket.on('end', () => socket.destroy());
      socket.resume();
    });
    const socket = connect(Number(new URL(p.reverseUrl).port), '127.0.0.1');
    socket.write('GET /ws HTTP/1.1\r\nHost: app\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
    await waitFor(() => origin.counts.accepted === 1 && pool.snapshot()[0]!.inflight === 1, 5_000, 'the upgrade to reach the backend');
    socket.destroy();
    await waitFor(() => pool.snapshot()[0]!.inflight === 0, 2_000, 'the backend to be released');
    expect(pool.snapshot()[0]).toMatchObject({ errors: 0, state: 'up' });
    await waitFor(() => origin.counts.open === 0, 2_000, 'the upstream connection to close');
  });

  it('half-way through a declined upgrade: the backend is released', async () => {
    const { origin, p, pool } = await setup((_req, res) => streamBody(res, 32 * 1024 * 1024, {}));
    const socket = connect(Number(new URL(p.reverseUrl).port), '127.0.0.1');
    socket.write('GET /ws HTTP/1.1\r\nHost: app\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
    await new Promise<void>((resolve) => socket.once('data', () => resolve()));
    socket.destroy();
    await waitFor(() => pool.snapshot()[0]!.inflight === 0, 2_000, 'the backend to be released');
    await waitFor(() => origin.counts.open === 0, 2_000, 'the upstream connection to close');
    expect(pool.snapshot()[0]).toMatchObject({ errors: 0, state: 'up' });
  });
});
