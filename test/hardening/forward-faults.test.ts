/**
 * The same faults through the forward proxy: absolute-URI requests to origins that die, hang or send
 * broken framing, clients that leave, and CONNECT tunnels whose target dies or never answers.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { fetchOutcome, type Outcome, waitFor } from '../helpers/http.js';
import { startPortico, type RunningPortico } from '../helpers/portico.js';
import { connectThrough } from '../forward/helpers.js';
import { answerWith, blackHole, closed, faultOrigin, rawOrigin } from './helpers.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';

const cleanup = cleanupAfterEach();

function later<T extends { close(): Promise<void> }>(thing: T): T {
  cleanup.push(() => thing.close());
  return thing;
}

async function forwardProxy(forward: Record<string, unknown> = {}): Promise<RunningPortico & { port: number }> {
  const p = await startPortico({
    forward: { listen: '127.0.0.1:0', upstream_proxy: 'direct', ...forward },
    cache: { enabled: true },
  } as Parameters<typeof startPortico>[0]);
  cleanup.push(() => p.stop());
  return Object.assign(p, { port: Number(new URL(p.forwardUrl!).port) });
}

/** An absolute-form GET through the proxy. */
function viaProxy(p: RunningPortico, target: string, options: Parameters<typeof fetchOutcome>[1] = {}): Promise<Outcome> {
  return fetchOutcome(target, { ...options, proxy: p.forwardUrl! });
}

describe('absolute-URI requests', () => {
  it('an origin dying mid-response: broken transfer for the client, nothing stored', async () => {
    let doomed: ServerResponse | undefined;
    const origin = later(await faultOrigin((_req, res) => {
      res.writeHead(200, { 'content-length': String(64 * 1024), 'cache-control': 'max-age=60' });
      res.write(Buffer.alloc(4096, 'x'));
      doomed = res;
    }));
    const p = await forwardProxy();
    const outcome = await viaProxy(p, `${origin.url}/page`, { onResponse: (res) => res.once('data', () => doomed!.socket!.destroy()) });
    expect(outcome.status).toBe(200);
    expect(outcome.complete).toBe(false);
    expect(p.portico.cache!.stats()).toMatchObject({ entries: 0, stores: 0 });
    await waitFor(() => origin.counts.open === 0, 2_000, 'the upstream connection to close');
  });

  it('an origin that never answers: 504 within the response timeout, connection closed', async () => {
    const origin = later(await faultOrigin(() => {}));
    const p = await forwardProxy({ timeouts: { connect: '1s', response_header: '300ms', idle: '1s' } });
    const started = Date.now();
    const outcome = await viaProxy(p, `${origin.url}/x`);
    expect(outcome.status).toBe(504);
    expect(Date.now() - started).toBeLessThan(3_000);
    await waitFor(() => origin.counts.open === 0, 2_000, 'the upstream connection to close');
  });

  it('an origin that never completes the handshake: 504 after the connect timeout', async () => {
    const hole = later(await blackHole());
    const p = await forwardProxy({ timeouts: { connect: '300ms', response_header: '5s', idle: '5s' } });
    const started = Date.now();
    const outcome = await viaProxy(p, `${hole.url}/x`);
    expect(outcome.status).toBe(504);
    expect(outcome.headers['proxy-status']).toMatch(/connection_timeout/);
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it.each([
    ['Content-Length and Transfer-Encoding', 'Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nHELLO\r\n0\r\n\r\n'],
    ['two different Content-Lengths', 'Content-Length: 5\r\nContent-Length: 6\r\n\r\nHELLO!'],
    ['Transfer-Encoding gzip', 'Transfer-Encoding: gzip\r\n\r\nHELLO'],
  ])('ambiguous framing (%s): 502, nothing relayed or stored', async (_name, rest) => {
    const origin = later(await rawOrigin(answerWith(`HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\n${rest}`)));
    const p = await forwardProxy();
    const outcome = await viaProxy(p, `${origin.url}/x`);
    expect(outcome.status).toBe(502);
    expect(outcome.body.toString()).not.toContain('HELLO');
    expect(p.portico.cache!.stats().entries).toBe(0);
  });

  it('a client leaving mid-upload cancels the upstream request', async () => {
    let received = 0;
    let aborted: Promise<boolean> | undefined;
    const origin = later(await faultOrigin((req: IncomingMessage) => {
      aborted = new Promise((resolve) => req.once('close', () => resolve(!req.complete)));
      req.on('data', (c: Buffer) => (received += c.length));
    }));
    const p = await forwardProxy();
    const client = connect(p.port, '127.0.0.1');
    await new Promise<void>((resolve) => client.once('connect', () => resolve()));
    client.write(`POST ${origin.url}/upload HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\nContent-Length: ${16 * 1024 * 1024}\r\n\r\n`);
    client.write(Buffer.alloc(256 * 1024, 'u'));
    await waitFor(() => received > 0, 5_000, 'the origin to receive part of the body');
    client.destroy();
    expect(await aborted).toBe(true);
    await waitFor(() => origin.counts.open === 0, 2_000, 'the upstream connection to close');
  });

  it('a client leaving mid-download cancels the upstream response; nothing is stored', async () => {
    let finished: Promise<boolean> | undefined;
    const origin = later(await faultOrigin((_req, res) => {
      finished = new Promise((resolve) => res.once('close', () => resolve(res.writableFinished)));
      res.writeHead(200, { 'content-length': String(64 * 1024 * 1024), 'cache-control': 'max-age=60' });
      const chunk = Buffer.alloc(64 * 1024, 'd');
      const pump = () => {
        while (!res.destroyed && res.write(chunk));
        if (!res.destroyed) res.once('drain', pump);
      };
      pump();
    }));
    const p = await forwardProxy();
    await new Promise<void>((resolve) => {
      const req = httpRequest({ host: '127.0.0.1', port: p.port, path: `${origin.url}/big`, agent: false, headers: { host: `127.0.0.1:${origin.port}` } }, (res) => {
        let got = 0;
        res.on('data', (c: Buffer) => {
          got += c.length;
          if (got > 256 * 1024) {
            req.destroy();
            resolve();
          }
        });
      });
      req.on('error', () => {});
      req.end();
    });
    expect(await finished).toBe(false);
    await waitFor(() => origin.counts.open === 0, 2_000, 'the upstream connection to close');
    expect(p.portico.cache!.stats()).toMatchObject({ entries: 0, stores: 0 });
  });
});

describe('CONNECT tunnels', () => {
  it('a target that dies mid-stream: the client gets what was sent, then the tunnel closes', async () => {
    const target = later(await rawOrigin((socket) => {
      socket.once('data', () => {
        socket.write('partial answer', () => socket.destroy());
      });
    }));
    const p = await forwardProxy({ connect_ports: [target.port] });
    const reply = await connectThrough(p.port, `127.0.0.1:${target.port}`);
    expect(reply.status).toBe(200);
    let got = '';
    reply.socket.on('data', (c: Buffer) => (got += c.toString()));
    reply.socket.write('hello');
    await closed(reply.socket);
    expect(got).toBe('partial answer');
    await waitFor(() => p.portico.forward!.openTunnels === 0, 2_000, 'the tunnel to be forgotten');
  });

  it('a client that drops the tunnel: the target connection is closed', async () => {
    const targetSockets: Socket[] = [];
    const target = later(await rawOrigin((socket) => {
      targetSockets.push(socket);
      socket.on('data', (c) => socket.write(c));
    }));
    const p = await forwardProxy({ connect_ports: [target.port] });
    const reply = await connectThrough(p.port, `127.0.0.1:${target.port}`);
    reply.socket.write('ping');
    await new Promise<void>((resolve) => reply.socket.once('data', () => resolve()));
    reply.socket.destroy();
    await closed(targetSockets[0]!);
    await waitFor(() => p.portico.forward!.openTunnels === 0 && target.counts.open === 0, 2_000, 'the tunnel to close');
  });

  it('a target that never accepts: 504 after the connect timeout; a client leaving first cancels the attempt', async () => {
    const hole = later(await blackHole());
    const port = Number(new URL(hole.url).port);
    const p = await forwardProxy({ connect_ports: [port], timeouts: { connect: '300ms', response_header: '5s', idle: '5s' } });
    const started = Date.now();
    const reply = await connectThrough(p.port, `127.0.0.1:${port}`);
    expect(reply.status).toBe(504);
    expect(Date.now() - started).toBeLessThan(3_000);


    // A client that gives up while the target connection is still being opened frees it at once
    // (well before this proxy's 5 s connect timeout).
    const q = await forwardProxy({ connect_ports: [port], timeouts: { connect: '5s', response_header: '5s', idle: '5s' } });
    const socket = connect(q.port, '127.0.0.1');
    socket.write(`CONNECT 127.0.0.1:${port} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
    await waitFor(() => q.portico.forward!.openingTunnels === 1, 2_000, 'the tunnel to be opening');
    socket.destroy();
    await waitFor(() => q.portico.forward!.openingTunnels === 0, 1_000, 'the attempt to be cancelled');
    expect(q.portico.forward!.openTunnels).toBe(0);
  });

  it('an idle tunnel is closed after tunnel_idle_timeout on both sides', async () => {
    const targetSockets: Socket[] = [];
    const target = later(await rawOrigin((socket) => targetSockets.push(socket)));
    const p = await forwardProxy({ connect_ports: [target.port], tunnel_idle_timeout: '300ms' });
    const reply = await connectThrough(p.port, `127.0.0.1:${target.port}`);
    await closed(reply.socket);
    await closed(targetSockets[0]!);
    await waitFor(() => p.portico.forward!.openTunnels === 0, 2_000, 'the tunnel to be forgotten');
  });
});

describe('pooled origin connections', () => {
  it('are closed by the proxy before the origin\'s keep-alive timeout, so none is reused as it closes', async () => {
    const origin = later(await faultOrigin((_req, res) => res.end('ok'), { keepAliveTimeout: 2_000 }));
    const p = await forwardProxy();
    const outcome = await viaProxy(p, `${origin.url}/x`);
    expect(outcome.status).toBe(200);
    const [socket] = origin.sockets;
    const closedBy = await new Promise<string>((resolve) => {
      socket!.once('end', () => resolve('proxy')); // a FIN from the proxy
      socket!.once('close', () => resolve('origin'));
    });
    expect(closedBy).toBe('proxy');
  });
});
