/**
 * A corpus of malformed and hostile requests sent as raw bytes through both front doors: each gets the
 * right 4xx, nothing reaches the origin, and the proxy serves the next request.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrigin, type Origin } from '../helpers/origin.js';
import { startPortico, type RunningPortico } from '../helpers/portico.js';
import { CORPUS } from './corpus.js';

let origin: Origin;
let p: RunningPortico;

beforeAll(async () => {
  origin = await startOrigin((_req, res) => res.end('fine'));
  p = await startPortico({
    reverse: { listen: '127.0.0.1:0', routes: [{ path: '/', pool: 'app' }] },
    pools: { app: { servers: [{ url: origin.url }] } },
    forward: { listen: '127.0.0.1:0' },
    limits: { max_body_size: '1mb' },
  });
});

afterAll(async () => {
  await p.stop();
  await origin.close();
});

/** Sends raw bytes on a fresh connection; resolves with the status line's code (0 if none came). */
function sendRaw(address: string, raw: string): Promise<number> {
  const { hostname, port } = new URL(address);
  return new Promise((resolve) => {
    const socket = connect(Number(port), hostname);
    let received = '';
    const done = () => {
      socket.destroy();
      resolve(Number(/^HTTP\/1\.[01] (\d{3})/.exec(received)?.[1] ?? 0));
    };
    socket.on('data', (d: Buffer) => {
      received += d.toString('latin1');
      if (received.includes('\r\n')) done();
    });
    socket.on('error', done);
    socket.on('close', done);
    socket.write(raw, 'latin1');
  });
}

describe.each([
  ['reverse', () => p.reverseUrl, () => '/', () => 'app.test'],
  ['forward', () => p.forwardUrl!, () => `http://127.0.0.1:${origin.port}/`, () => `127.0.0.1:${origin.port}`],
])('the %s proxy', (_door, address, target, host) => {
  it(`has a corpus of at least 60 cases`, () => {
    expect(CORPUS.length).toBeGreaterThanOrEqual(60);
  });

  it.each(CORPUS)('%s → %i, and the next request is served', async (_name, raw, status) => {
    const before = origin.requests.length;
    const got = await sendRaw(address(), raw.replaceAll('{T}', target()).replaceAll('{H}', host()));
    expect(got).toBe(status);
    expect(origin.requests.length).toBe(before);
    const fill = (text: string) => text.replaceAll('{T}', target()).replaceAll('{H}', host());
    expect(await sendRaw(address(), fill('GET {T} HTTP/1.1\r\nHost: {H}\r\nConnection: close\r\n\r\n'))).toBe(200);
  });
});
