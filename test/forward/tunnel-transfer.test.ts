/**
 * Bulk transfers through CONNECT tunnels, direct and through an upstream proxy: every byte arrives in
 * order to a client that reads slowly (the proxy's writes back up and it must wait before reading
 * more), ends are passed on after the last bytes, a target that speaks first is heard after the 200,
 * and the tunnel's byte counts are exact.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/http.js';
import { connectThrough, startForward, type RunningForward } from './helpers.js';
import { recordingLogger, type LogLine } from '../balance/logs.js';

const DOWNLOAD = randomBytes(8 * 1024 * 1024 + 123);
const REQUEST = 'send\n';

let target: Server;
let targetPort: number;
let direct: RunningForward;
let parent: RunningForward;
let chained: RunningForward;
let logLines: LogLine[] = [];

/** The target: `send\n` gets DOWNLOAD then the end; a client that ends first gets `after-end` then the end; `banner` connections hear one at once. */
function onTargetConnection(socket: Socket): void {
  socket.on('error', () => {});
  let received = '';
  socket.on('data', (chunk: Buffer) => {
    received += chunk.toString('latin1');
    if (received === REQUEST) socket.end(DOWNLOAD);
    if (received === 'banner?') socket.end();
  });
  socket.on('end', () => {
    if (received === 'half-close') socket.end(Buffer.concat([DOWNLOAD, Buffer.from('after-end')]));
  });
}

beforeAll(async () => {
  target = createServer({ allowHalfOpen: true }, onTargetConnection);
  await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
  targetPort = (target.address() as AddressInfo).port;
  const { log, lines } = recordingLogger();
  logLines = lines;
  direct = await startForward({ connect_ports: [targetPort] }, { log });
  parent = await startForward({ connect_ports: [targetPort] });
  chained = await startForward({ connect_ports: [targetPort], upstream_proxy: parent.url });
});

afterAll(async () => {
  await direct.close();
  await chained.close();
  await parent.close();
  await new Promise<void>((resolve) => target.close(() => resolve()));
});

/** Reads everything until the end, one chunk per timer tick (a slow client: the proxy's writes back up). */
function readSlowly(socket: Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => {
    chunks.push(chunk);
    socket.pause();
    setTimeout(() => socket.resume(), 1);
  });
  return new Promise<Buffer>((resolve, reject) => {
    socket.once('end', () => resolve(Buffer.concat(chunks)));
    socket.once('error', reject);
  });
}

describe.each([
  ['direct', () => direct],
  ['through an upstream proxy', () => chained],
])('CONNECT tunnel, %s', (_name, proxy) => {
  it('delivers a multi-megabyte download intact to a slow reader, then its end', async () => {
    const tunnel = await connectThrough(proxy().port, `127.0.0.1:${targetPort}`);
    expect(tunnel.status).toBe(200);
    const received = readSlowly(tunnel.socket);
    tunnel.socket.write(REQUEST);
    expect((await received).equals(DOWNLOAD)).toBe(true);
    tunnel.socket.destroy();
  });

  it('passes the client end on and still delivers what the target sends after it', async () => {
    const tunnel = await connectThrough(proxy().port, `127.0.0.1:${targetPort}`);
    const received = readSlowly(tunnel.socket);
    tunnel.socket.end('half-close');
    const all = await received;
    expect(all.length).toBe(DOWNLOAD.length + 'after-end'.length);
    expect(all.subarray(0, DOWNLOAD.length).equals(DOWNLOAD)).toBe(true);
    expect(all.subarray(DOWNLOAD.length).toString()).toBe('after-end');
    tunnel.socket.destroy();
  });
});

describe('CONNECT tunnel to a target that speaks first', () => {
  it('relays what the target sends before the client says anything, after the 200', async () => {
    const banner = createServer((socket) => {
      socket.on('error', () => {});
      socket.write('220 banner\r\n');
      socket.on('data', () => socket.end('221 bye\r\n'));
    });
    await new Promise<void>((resolve) => banner.listen(0, '127.0.0.1', resolve));
    const port = (banner.address() as AddressInfo).port;
    const fwd = await startForward({ connect_ports: [port] });
    try {
      const socket = connect({ port: fwd.port, host: '127.0.0.1' });
      socket.write(`CONNECT 127.0.0.1:${port} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
      let text = '';
      socket.on('data', (chunk: Buffer) => {
        text += chunk.toString('latin1');
        if (text.endsWith('220 banner\r\n')) socket.write('QUIT\r\n');
      });
      await once(socket, 'end');
      expect(text).toBe('HTTP/1.1 200 Connection Established\r\n\r\n220 banner\r\n221 bye\r\n');
      socket.destroy();
    } finally {
      await fwd.close();
      await new Promise<void>((resolve) => banner.close(() => resolve()));
    }
  });
});

describe('CONNECT tunnel byte counts', () => {
  it('logs exactly the bytes that went each way through the tunnel', async () => {
    const tunnel = await connectThrough(direct.port, `127.0.0.1:${targetPort}`);
    const received = readSlowly(tunnel.socket);
    tunnel.socket.write(REQUEST);
    expect((await received).length).toBe(DOWNLOAD.length);
    tunnel.socket.destroy();
    await waitFor(() => logLines.some((l) => l.method === 'CONNECT' && l.down === DOWNLOAD.length), 5_000, 'the tunnel log line');
    const line = logLines.find((l) => l.method === 'CONNECT' && l.down === DOWNLOAD.length)!;
    expect(line).toMatchObject({ status: 200, up: REQUEST.length, down: DOWNLOAD.length });
  });
});
