/**
 * No leaks: 5,000 connections opened and dropped through the reverse proxy (whole requests, requests cut
 * off in the head or the body, idle connections) and 1,000 CONNECT tunnels opened and dropped from
 * either side; afterwards the proxy's heap, file descriptors and active handles are back near where they
 * were.
 *
 * Portico runs in a child process (test/hardening/fixtures/portico-child.mjs, the built dist/ that the
 * global setup compiles), started with --expose-gc: its heap and descriptors are then its own, not mixed
 * with this test's clients and origins or with vitest's, and gc() can be forced before each reading.
 * A warm-up round first takes the one-off growth (JIT code, pools, the cache entry, lazily built state)
 * out of the baseline. Thresholds: a clean run grows the heap by about 1 MB; keeping every connection's
 * socket reachable (with its request and response) grows it by about 24 MB (measured by planting that
 * leak), hence the 10 MB limit. Descriptors and sockets must come back within 20 of the baseline, and
 * the proxy must report no open tunnel.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { connect, createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

interface Measurement {
  readonly heapUsed: number;
  readonly rss: number;
  readonly fds: number;
  readonly resources: Record<string, number>;
  readonly tunnels: number;
}

const CHILD = fileURLToPath(new URL('./fixtures/portico-child.mjs', import.meta.url));
const MB = 1024 * 1024;

let child: ChildProcess;
let origin: Server;
let target: NetServer;
const targetSockets = new Set<Socket>();
let reversePort: number;
let forwardPort: number;
let targetPort: number;

function send(msg: object): void {
  child.send(msg);
}

function reply<T>(type: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (msg: { type: string; message?: string }) => {
      if (msg.type === 'error') {
        child.off('message', onMessage);
        reject(new Error(msg.message));
      } else if (msg.type === type) {
        child.off('message', onMessage);
        resolve(msg as T);
      }
    };
    child.on('message', onMessage);
  });
}

async function measure(): Promise<Measurement> {
  const answer = reply<Measurement>('measured');
  send({ type: 'measure' });
  return answer;
}

/**
 * Measures once no TCP socket is open any more (clients gone, pooled upstream sockets expired: the
 * origin's keep-alive timeout is 3 s) and the descriptor count has come down to `fdsAtMost` (when
 * given) and held still — or after `limitMs`, and then the assertions say what is left. Descriptors are
 * released a little after their handles, so a single look races with their release: a leak is what
 * stays, not what is still on its way out.
 */
async function settled(fdsAtMost = Number.POSITIVE_INFINITY, limitMs = 15_000): Promise<Measurement> {
  const deadline = Date.now() + limitMs;
  let previous: Measurement | null = null;
  let lowest: Measurement | null = null;
  for (;;) {
    const m = await measure();
    if (lowest === null || m.fds < lowest.fds) lowest = m;
    const quiet = (m.resources.TCPSocketWrap ?? 0) === 0 && previous?.fds === m.fds && m.fds <= fdsAtMost;
    if (quiet) return m;
    if (Date.now() > deadline) return lowest;
    previous = m;
    await new Promise((r) => setTimeout(r, 250));
  }
}

beforeAll(async () => {
  // A small origin; its 3 s keep-alive timeout lets the proxy's pooled upstream sockets expire quickly.
  origin = createServer({ keepAliveTimeout: 3_000 }, (req, res) => {
    req.resume();
    req.on('end', () => {
      if (req.url === '/hit') res.writeHead(200, { 'cache-control': 'max-age=600', 'content-type': 'text/plain' }).end('cached');
      else res.writeHead(200, { 'cache-control': 'no-store', 'content-type': 'text/plain' }).end('fresh');
    });
  });
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  // A CONNECT target: echoes, and hangs up itself on "bye".
  target = createNetServer((socket) => {
    targetSockets.add(socket);
    socket.on('close', () => targetSockets.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.on('data', (chunk: Buffer) => {
      if (chunk.includes('bye')) socket.destroy();
      else socket.write(chunk);
    });
  });
  await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
  targetPort = (target.address() as AddressInfo).port;
  const originUrl = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`;

  child = fork(CHILD, [], { execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const started = reply<{ addresses: { reverse: string; forward: string } }>('started');
  send({
    type: 'start',
    config: {
      reverse: { listen: '127.0.0.1:0', routes: [{ path: '/', pool: 'app' }] },
      pools: { app: { servers: [{ url: originUrl }], passive: { max_fails: 0 } } },
      forward: { listen: '127.0.0.1:0', upstream_proxy: 'direct', connect_ports: [targetPort] },
      log: { level: 'silent', stats_interval: 0 },
    },
  });
  const { addresses } = await started;
  reversePort = Number(addresses.reverse.split(':').pop());
  forwardPort = Number(addresses.forward.split(':').pop());
}, 30_000);

afterAll(async () => {
  if (child && child.exitCode === null) {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    send({ type: 'stop' });
    await Promise.race([exited, new Promise((r) => setTimeout(r, 3_000))]);
    if (child.exitCode === null) child.kill('SIGKILL');
  }
  for (const s of targetSockets) s.destroy();
  await new Promise<void>((resolve) => target?.close(() => resolve()));
  origin?.closeAllConnections();
  await new Promise<void>((resolve) => origin?.close(() => resolve()));
});

/** Resolves when the socket has closed, whatever happened to it. */
function closedSocket(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    socket.on('error', () => {});
    socket.once('close', () => resolve());
  });
}

/** Status lines of the whole requests' answers, counted. */
const statuses = new Map<string, number>();

function countStatus(socket: Socket): void {
  let head = '';
  const onData = (chunk: Buffer) => {
    head += chunk.toString('latin1');
    const eol = head.indexOf('\r\n');
    if (eol < 0) return;
    const line = head.slice(0, eol);
    statuses.set(line, (statuses.get(line) ?? 0) + 1);
    socket.off('data', onData);
    socket.resume();
  };
  socket.on('data', onData);
}

/** One reverse-proxy connection of the given kind, opened and dropped. */
function reverseConnection(i: number): Promise<void> {
  const socket = connect(reversePort, '127.0.0.1');
  const done = closedSocket(socket);
  socket.once('connect', () => {
    switch (i % 5) {
      case 0: // a whole request for a cached URL, read to the end
        socket.write('GET /hit HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n');
        countStatus(socket);
        break;
      case 1: // a whole request that goes upstream, read to the end
        socket.write(`GET /miss?${i} HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n`);
        countStatus(socket);
        break;
      case 2: // half a request head, then gone
        socket.write(`GET /half?${i} HTTP/1.1\r\nHost: app\r\nX-Long: `, () => socket.destroy());
        break;
      case 3: // a head and half a body (the upstream request may already be under way), then gone
        socket.write(`POST /upload?${i} HTTP/1.1\r\nHost: app\r\nContent-Length: 65536\r\n\r\n${'b'.repeat(2048)}`, () => {
          setImmediate(() => socket.destroy());
        });
        break;
      default: // connect, say nothing, close
        socket.destroy();
    }
  });
  return done;
}

/** One CONNECT tunnel: opened, a few bytes each way, dropped by the client or by the target. */
function tunnel(i: number): Promise<void> {
  const socket = connect(forwardPort, '127.0.0.1');
  const done = closedSocket(socket);
  let stage: 'head' | 'echo' | 'done' = 'head';
  let buffer = '';
  socket.once('connect', () => socket.write(`CONNECT 127.0.0.1:${targetPort} HTTP/1.1\r\nHost: 127.0.0.1:${targetPort}\r\n\r\n`));
  socket.on('data', (chunk: Buffer) => {
    buffer += chunk.toString('latin1');
    if (stage === 'head' && buffer.includes('\r\n\r\n')) {
      if (!buffer.startsWith('HTTP/1.1 200')) return void socket.destroy(new Error(`tunnel refused: ${buffer.split('\r\n')[0]}`));
      buffer = '';
      stage = 'echo';
      socket.write(`hello ${i}`);
    } else if (stage === 'echo' && buffer.includes(`hello ${i}`)) {
      stage = 'done';
      if (i % 3 === 0) socket.destroy(); // the client drops it
      else if (i % 3 === 1) socket.write('bye'); // the target drops it
      else socket.end(); // the client closes its side cleanly
    }
  });
  return done;
}

/** Runs `count` jobs with at most `concurrency` at a time. */
async function run(count: number, concurrency: number, job: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) await job(next++);
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

describe('connections and tunnels opened and dropped by the thousand', () => {
  it('leave the heap, file descriptors and handles near their baseline', async () => {
    // Warm-up, then the baseline.
    await run(1_000, 50, reverseConnection);
    await run(200, 25, tunnel);
    const baseline = await settled();

    await run(5_000, 50, reverseConnection);
    await run(1_000, 25, tunnel);
    const after = await settled(baseline.fds + 20);

    const growth = (after.heapUsed - baseline.heapUsed) / MB;
    const summary = {
      heapBaselineMB: +(baseline.heapUsed / MB).toFixed(1),
      heapAfterMB: +(after.heapUsed / MB).toFixed(1),
      fds: [baseline.fds, after.fds],
      sockets: [baseline.resources.TCPSocketWrap ?? 0, after.resources.TCPSocketWrap ?? 0],
      timers: [baseline.resources.Timeout ?? 0, after.resources.Timeout ?? 0],
      tunnels: after.tunnels,
    };
    console.log('leak check', JSON.stringify(summary));
    expect(growth, JSON.stringify(summary)).toBeLessThan(10);
    expect(after.fds, JSON.stringify(summary)).toBeLessThanOrEqual(baseline.fds + 20);
    expect(after.resources.TCPSocketWrap ?? 0, JSON.stringify(summary)).toBeLessThanOrEqual((baseline.resources.TCPSocketWrap ?? 0) + 20);
    expect(after.resources.Timeout ?? 0, JSON.stringify(summary)).toBeLessThanOrEqual((baseline.resources.Timeout ?? 0) + 20);
    expect(after.tunnels).toBe(0);
    // Every whole request was answered: 2 in 5 of the 6,000 connections.
    expect(Object.fromEntries(statuses)).toEqual({ 'HTTP/1.1 200 OK': 2_400 });
  }, 75_000);
});
