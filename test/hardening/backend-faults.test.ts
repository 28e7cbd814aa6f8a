/**
 * Backends that fail: die half-way through a response, hang, never read, or send framing that could be
 * read two ways. Each test checks what the client sees, what the cache kept, and what the pool learnt.
 */
import type { ServerResponse } from 'node:http';
import { describe, expect, it } from 'vitest';
import type { Pool } from '../../src/balance/pool.js';
import type { HttpCache } from '../../src/cache/engine.js';
import { fetchOutcome, request, waitFor } from '../helpers/http.js';
import { reverseConfig, startPortico, type RunningPortico } from '../helpers/portico.js';
import { answerWith, blackHole, faultOrigin, rawOrigin, type FaultOrigin } from './helpers.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';

const cleanup = cleanupAfterEach();

function later<T extends { close(): Promise<void> }>(thing: T): T {
  cleanup.push(() => thing.close());
  return thing;
}

async function proxy(backends: readonly string[], pool: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<RunningPortico> {
  const p = await startPortico(reverseConfig(backends, pool, extra));
  cleanup.push(() => p.stop());
  return p;
}

const cacheOf = (p: RunningPortico): HttpCache => p.portico.cache!.reverse!;
const poolOf = (p: RunningPortico): Pool => p.portico.pools.get('p')!;
const FULL = 64 * 1024;
const body = (seed: string, n = FULL) => Buffer.alloc(n, seed);

/**
 * An origin whose next response sends its head and the first `sent` bytes of a FULL-byte body, then
 * dies when `kill()` is called (the test calls it once the client has seen those bytes).
 */
function dyingHandler(origin: FaultOrigin, headers: Record<string, string>, sent = 8 * 1024) {
  const state = { res: null as ServerResponse | null };
  origin.setHandler((_req, res) => {
    res.writeHead(200, headers);
    res.write(body('x', sent));
    state.res = res;
  });
  return { kill: () => state.res!.socket!.destroy() };
}

describe('a backend that dies mid-response', () => {
  it.each([
    ['Content-Length', { 'content-length': String(FULL) }],
    ['chunked', {}],
  ])('(%s) the client sees a broken transfer, nothing is stored, and passive checks mark the backend', async (_name, framing) => {
    const origin = later(await faultOrigin());
    const p = await proxy([origin.url], { retries: 0, passive: { max_fails: 1, fail_timeout: '30s' } });
    const dying = dyingHandler(origin, { 'cache-control': 'max-age=60', ...framing });

    const outcome = await fetchOutcome(`${p.reverseUrl}/page`, { onResponse: (res) => res.once('data', dying.kill) });
    expect(outcome.status).toBe(200);
    expect(outcome.complete).toBe(false);
    expect(outcome.error).toBeDefined();
    expect(outcome.body.length).toBeLessThan(FULL);

    // Nothing was stored: an only-if-cached request finds nothing, the cache counted no store.
    expect(cacheOf(p).stats()).toMatchObject({ entries: 0, stores: 0 });
    expect((await request(`${p.reverseUrl}/page`, { headers: { 'cache-control': 'only-if-cached' } })).status).toBe(504);

    // The broken body counted against the backend (max_fails 1: it is down now), and nothing is held.
    const [snap] = poolOf(p).snapshot();
    expect(snap).toMatchObject({ errors: 1, state: 'down', inflight: 0 });
    await waitFor(() => origin.counts.open === 0, 2_000, 'upstream socket closed');
  });

  it('a stored response is not replaced by a broken one and is still served, fresh or stale-if-error', async () => {
    const origin = later(await faultOrigin());
    const p = await proxy([origin.url], { retries: 0, passive: { max_fails: 1, fail_timeout: '300ms' } });
    const good = body('g', 4096);
    origin.setHandler((_req, res) => res.writeHead(200, { 'cache-control': 'max-age=60', 'content-length': good.length }).end(good));
    expect((await request(`${p.reverseUrl}/fresh`)).status).toBe(200);
    origin.setHandler((_req, res) => res.writeHead(200, { 'cache-control': 'max-age=0, stale-if-error=60', 'content-length': good.length }).end(good));
    expect((await request(`${p.reverseUrl}/stale`)).status).toBe(200);
    expect(cacheOf(p).stats().entries).toBe(2);

    // A client forces revalidation of the fresh one; the backend dies while sending the new version.
    let dying = dyingHandler(origin, { 'cache-control': 'max-age=60', 'content-length': String(FULL) });
    const broken = await fetchOutcome(`${p.reverseUrl}/fresh`, { headers: { 'cache-control': 'no-cache' }, onResponse: (res) => res.once('data', dying.kill) });
    expect(broken.complete).toBe(false);
    // The backend is now down (passive), and the stored response is still there, byte for byte.
    expect(poolOf(p).snapshot()[0]!.state).toBe('down');
    const hit = await fetchOutcome(`${p.reverseUrl}/fresh`);
    expect(hit.complete).toBe(true);
    expect(hit.body.equals(good)).toBe(true);
    expect(hit.headers['cache-status']).toMatch(/hit/);

    // The stale one, once the backend is back (after fail_timeout): its revalidation breaks off too; then
    // (backend down again, or answering 503) stale-if-error serves the stored copy intact.
    await waitFor(() => poolOf(p).snapshot()[0]!.state === 'up', 3_000, 'backend back after fail_timeout');
    dying = dyingHandler(origin, { 'cache-control': 'max-age=60', 'content-length': String(FULL) });
    const broken2 = await fetchOutcome(`${p.reverseUrl}/stale`, { onResponse: (res) => res.once('data', dying.kill) });
    expect(broken2.complete).toBe(false);
    origin.setHandler((_req, res) => res.writeHead(503).end('down'));
    const stale = await fetchOutcome(`${p.reverseUrl}/stale`);
    expect(stale.status).toBe(200);
    expect(stale.complete).toBe(true);
    expect(stale.body.equals(good)).toBe(true);
    expect(stale.headers['cache-status']).toMatch(/stale-if-error/);
    expect(cacheOf(p).stats()).toMatchObject({ entries: 2, stores: 2 });
  });

  it('with another backend in the pool, the next requests go there', async () => {
    const dead = later(await faultOrigin());
    const alive = later(await faultOrigin((_req, res) => res.end('alive')));
    const p = await proxy([dead.url, alive.url], { retries: 1, passive: { max_fails: 1, fail_timeout: '30s' } }, { cache: { enabled: false } });
    const dying = dyingHandler(dead, { 'content-length': String(FULL) });
    // Round-robin: one of the first two requests lands on the dying backend.
    const outcomes = [await fetchOutcome(`${p.reverseUrl}/a`, { onResponse: (res) => res.once('data', () => dead.requests.length > 0 && dying.kill()) })];
    if (dead.requests.length === 0) outcomes.push(await fetchOutcome(`${p.reverseUrl}/a`, { onResponse: (res) => res.once('data', dying.kill) }));
    expect(outcomes.at(-1)!.complete).toBe(false);
    for (let i = 0; i < 6; i++) {
      const reply = await fetchOutcome(`${p.reverseUrl}/a`);
      expect(reply.complete).toBe(true);
      expect(reply.body.toString()).toBe('alive');
    }
    expect(poolOf(p).snapshot().find((s) => s.url.startsWith(dead.url))!.state).toBe('down');
  });
});

describe('a backend that hangs', () => {
  it('never answering: 504 within the response timeout, and the upstream connection is closed', async () => {
    const origin = later(await faultOrigin(() => {
      /* never answers */
    }));
    const p = await proxy([origin.url], { retries: 0, timeouts: { connect: '1s', response_header: '300ms', idle: '1s' } });
    const started = Date.now();
    const reply = await request(`${p.reverseUrl}/x`);
    const elapsed = Date.now() - started;
    expect(reply.status).toBe(504);
    expect(reply.headers['proxy-status']).toMatch(/http_response_timeout/);
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(3_000);
    await waitFor(() => origin.counts.open === 0, 2_000, 'upstream socket closed');
    expect(poolOf(p).snapshot()[0]).toMatchObject({ errors: 1, inflight: 0 });
  });

  it('many hanging requests do not pile up connections', async () => {
    const origin = later(await faultOrigin(() => {}));
    const p = await proxy([origin.url], { retries: 0, passive: { max_fails: 0 }, timeouts: { connect: '1s', response_header: '300ms', idle: '1s' } });
    const replies = await Promise.all(Array.from({ length: 20 }, (_, i) => request(`${p.reverseUrl}/x${i}`)));
    expect(replies.map((r) => r.status)).toEqual(Array(20).fill(504));
    await waitFor(() => origin.counts.open === 0, 2_000, 'every upstream socket closed');
    expect(origin.counts.accepted).toBe(20);
  });

  it('stalling in the middle of the body: the idle timeout breaks the transfer and frees the connection', async () => {
    const origin = later(await faultOrigin((_req, res) => {
      res.writeHead(200, { 'content-length': String(FULL), 'cache-control': 'max-age=60' });
      res.write(body('s', 1024));
    }));
    const p = await proxy([origin.url], { retries: 0, passive: { max_fails: 1 }, timeouts: { connect: '1s', response_header: '1s', idle: '300ms' } });
    const outcome = await fetchOutcome(`${p.reverseUrl}/slow`);
    expect(outcome.status).toBe(200);
    expect(outcome.complete).toBe(false);
    expect(cacheOf(p).stats().entries).toBe(0);
    await waitFor(() => origin.counts.open === 0, 2_000, 'upstream socket closed');
    expect(poolOf(p).snapshot()[0]).toMatchObject({ errors: 1, state: 'down', inflight: 0 });
  });
});

describe('a backend that misbehaves in other ways', () => {
  it('trickling its response head forever: 504 at the response timeout', async () => {
    const origin = later(await rawOrigin((socket) => {
      socket.once('data', () => {
        socket.write('HTTP/1.1 200 OK\r\nX-Slow: ');
        const timer = setInterval(() => socket.write('a'), 50);
        socket.on('close', () => clearInterval(timer));
      });
    }));
    const p = await proxy([origin.url], { retries: 0, timeouts: { connect: '1s', response_header: '400ms', idle: '5s' } });
    const started = Date.now();
    expect((await request(`${p.reverseUrl}/x`)).status).toBe(504);
    expect(Date.now() - started).toBeLessThan(3_000);
    await waitFor(() => origin.counts.open === 0, 2_000, 'upstream socket closed');
  });

  it('an oversized response head: 502', async () => {
    const origin = later(await rawOrigin(answerWith(`HTTP/1.1 200 OK\r\nX-Big: ${'b'.repeat(64 * 1024)}\r\nContent-Length: 2\r\n\r\nok`)));
    const p = await proxy([origin.url], { retries: 0 });
    const reply = await request(`${p.reverseUrl}/x`);
    expect(reply.status).toBe(502);
    await waitFor(() => origin.counts.open === 0, 2_000, 'upstream socket closed');
  });

  it('answering before it has read the upload, then hanging up: the answer is relayed, the client is not stuck', async () => {
    const origin = later(await rawOrigin((socket) => {
      socket.once('data', () => {
        socket.end('HTTP/1.1 413 Payload Too Large\r\nContent-Length: 8\r\nConnection: close\r\n\r\ntoo big\n');
      });
    }));
    const p = await proxy([origin.url], { retries: 0, passive: { max_fails: 1 } });
    const outcome = await fetchOutcome(`${p.reverseUrl}/upload`, { method: 'POST', body: Buffer.alloc(8 * 1024 * 1024, 'u') }).catch(
      (err: NodeJS.ErrnoException) => err.code ?? err.message,
    );
    // The client may see the 413, or (still sending when the proxy closes) a reset; never a hang.
    if (typeof outcome !== 'string') {
      expect(outcome.status).toBe(413);
      expect(outcome.body.toString()).toBe('too big\n');
    }
    await waitFor(() => origin.counts.open === 0, 2_000, 'upstream socket closed');
    await waitFor(() => poolOf(p).snapshot()[0]!.inflight === 0, 2_000, 'backend released');
    // The proxy still serves.
    expect((await request(`${p.reverseUrl}/after`)).status).toBe(413);
  });
});

describe('a backend that never reads', () => {
  it('accepting but never reading: 504 after the response timeout; the connection is closed', async () => {
    const origin = later(await rawOrigin(() => {}, { pauseOnConnect: true }));
    const p = await proxy([origin.url], { retries: 0, timeouts: { connect: '1s', response_header: '300ms', idle: '1s' } });
    const reply = await request(`${p.reverseUrl}/x`);
    expect(reply.status).toBe(504);
    // The origin only notices the close once it reads: let it read now.
    for (const s of origin.sockets) s.resume();
    await waitFor(() => origin.counts.open === 0, 2_000, 'upstream socket closed');
  });

  it('a large upload to a backend that never reads gets 504, not a stuck connection', async () => {
    const origin = later(await rawOrigin(() => {}, { pauseOnConnect: true }));
    const p = await proxy([origin.url], { retries: 0, timeouts: { connect: '1s', response_header: '400ms', idle: '1s' } });
    const outcome = await fetchOutcome(`${p.reverseUrl}/upload`, { method: 'POST', body: Buffer.alloc(8 * 1024 * 1024, 'u') });
    expect(outcome.status).toBe(504);
    for (const s of origin.sockets) s.resume();
    await waitFor(() => origin.counts.open === 0, 2_000, 'upstream socket closed');
    expect(poolOf(p).snapshot()[0]!.inflight).toBe(0);
  });

  it('never completing the TCP handshake: 504 after the connect timeout', async () => {
    const hole = later(await blackHole());
    const p = await proxy([hole.url], { retries: 0, timeouts: { connect: '300ms', response_header: '5s', idle: '5s' } });
    const started = Date.now();
    const reply = await request(`${p.reverseUrl}/x`);
    expect(reply.status).toBe(504);
    expect(reply.headers['proxy-status']).toMatch(/connection_timeout/);
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(poolOf(p).snapshot()[0]).toMatchObject({ errors: 1, inflight: 0 });
  });
});

describe('a backend that sends ambiguous framing', () => {
  const CASES = [
    ['Content-Length and Transfer-Encoding', 'Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nHELLO\r\n0\r\n\r\n'],
    ['Transfer-Encoding and Content-Length', 'Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n5\r\nHELLO\r\n0\r\n\r\n'],
    ['two different Content-Lengths', 'Content-Length: 5\r\nContent-Length: 6\r\n\r\nHELLO!'],
    ['a Content-Length list', 'Content-Length: 5, 6\r\n\r\nHELLO!'],
    ['Transfer-Encoding twice', 'Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nHELLO\r\n0\r\n\r\n'],
    ['a coding Portico cannot undo', 'Transfer-Encoding: gzip, chunked\r\n\r\n5\r\nHELLO\r\n0\r\n\r\n'],
    ['chunked not last (read to close)', 'Transfer-Encoding: chunked, identity\r\n\r\nHELLO'],
    ['a bad chunk size', 'Transfer-Encoding: chunked\r\n\r\nzz\r\nHELLO\r\n0\r\n\r\n'],
  ] as const;

  it.each(CASES)('%s: 502, nothing relayed or stored', async (_name, rest) => {
    const origin = later(await rawOrigin(answerWith(`HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\n${rest}`)));
    const p = await proxy([origin.url], { retries: 0 });
    const outcome = await fetchOutcome(`${p.reverseUrl}/x`).catch((err: NodeJS.ErrnoException) => err.code ?? err.message);
    if (typeof outcome === 'string') {
      // A framing error found in the body (a bad chunk size) comes after the head: the connection is cut.
      expect(outcome).toBe('ECONNRESET');
    } else if (outcome.status === 200) {
      expect(outcome.complete).toBe(false);
      expect(outcome.body.toString()).not.toContain('HELLO');
    } else {
      expect(outcome.status).toBe(502);
      expect(outcome.headers['proxy-status']).toMatch(/http_response_incomplete/);
      expect(outcome.body.toString()).not.toContain('HELLO');
    }
    expect(cacheOf(p).stats()).toMatchObject({ entries: 0, stores: 0 });
    await waitFor(() => origin.counts.open === 0, 2_000, 'upstream socket closed');
  });
});

describe('pooled upstream connections', () => {
  it('are closed by the proxy before the backend\'s announced keep-alive timeout, so none is reused as it closes', async () => {
    // The backend announces `Keep-Alive: timeout=2` and closes idle connections after 2 s.
    const origin = later(await faultOrigin((_req, res) => res.end('ok'), { keepAliveTimeout: 2_000 }));
    const p = await proxy([origin.url], { retries: 0 });
    expect((await request(`${p.reverseUrl}/x`)).body).toBe('ok');
    const [socket] = origin.sockets;
    const closedBy = await new Promise<string>((resolve) => {
      socket!.once('end', () => resolve('proxy')); // a FIN from the proxy
      socket!.once('close', () => resolve('backend'));
    });
    expect(closedBy).toBe('proxy');
  });
});
