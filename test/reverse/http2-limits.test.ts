/**
 * HTTP/2 abuse limits at the reverse TLS listener, each configured low and hit over real sockets:
 * a stream-reset flood (Rapid Reset) closes the connection with GOAWAY ENHANCE_YOUR_CALM and the
 * process keeps serving; concurrent streams, header list size, the SETTINGS acknowledgement and the
 * idle timeout; and the config keys' path-named errors.
 */
import { createServer, type Server } from 'node:http';
import { constants, type ClientHttp2Session } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import { h2Close, h2Connect, h2Request } from '../helpers/h2.js';
import { startPortico, type RunningPortico } from '../helpers/portico.js';
import { selfSignedCert } from '../helpers/tls.js';
import { recordingLogger, type LogLine } from '../balance/logs.js';

let origin: Server;
let inFlight = 0;
let mostInFlight = 0;
let p: RunningPortico;
let logLines: LogLine[];

beforeAll(async () => {
  origin = createServer((req, res) => {
    // Concurrency is counted for the concurrent-streams test's own paths only.
    const counted = req.url!.startsWith('/slow/conc');
    if (counted) inFlight++;
    mostInFlight = Math.max(mostInFlight, inFlight);
    const delay = req.url!.startsWith('/slow') ? 40 : 0;
    setTimeout(() => {
      if (counted) inFlight--;
      res.setHeader('cache-control', 'no-store');
      res.end(`ok ${req.url}`);
    }, delay);
  });
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  const tls = await selfSignedCert();
  const { log, lines } = recordingLogger();
  logLines = lines;
  p = await startPortico(
    {
      reverse: {
        tls_listen: '127.0.0.1:0',
        tls: { cert: tls.certPath, key: tls.keyPath },
        http2: {
          max_concurrent_streams: 4,
          max_header_list_size: '4kb',
          max_resets_per_second: 20,
          idle_timeout: '400ms',
          settings_timeout: '300ms',
        },
        routes: [{ path: '/', pool: 'app' }],
      },
      pools: { app: { servers: [{ url: `http://127.0.0.1:${(origin.address() as AddressInfo).port}` }] } },
      admin: { listen: '127.0.0.1:0' },
    },
    log,
  );
});

afterAll(async () => {
  await p.stop();
  origin.closeAllConnections();
  await new Promise<void>((resolve) => origin.close(() => resolve()));
});

/** Resolves with the GOAWAY code the server sent, or null when the session closed without one. */
function goawayCode(session: ClientHttp2Session): Promise<number | null> {
  return new Promise((resolve) => {
    let code: number | null = null;
    session.on('goaway', (c) => (code = c));
    session.on('close', () => resolve(code));
  });
}

describe('stream resets (Rapid Reset)', () => {
  it('closes a connection that resets more streams per second than allowed with ENHANCE_YOUR_CALM; the process keeps serving', async () => {
    // A raw client, as an attacker writes it: HEADERS then RST_STREAM, stream after stream, as fast as it can.
    const port = Number(new URL(p.reverseTlsUrl!).port);
    const { frames, sent } = await new Promise<{ frames: Buffer; sent: number }>((resolve, reject) => {
      let sent = 0;
      const socket = tlsConnect({ host: '127.0.0.1', port, ALPNProtocols: ['h2'], rejectUnauthorized: false }, () => {
        socket.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), frame(4, 0, 0, Buffer.alloc(0))]));
        const burst = () => {
          if (socket.destroyed || sent >= 1_000) return;
          const batch: Buffer[] = [];
          for (let i = 0; i < 50; i++, sent++) {
            const id = 2 * sent + 1;
            batch.push(frame(1, 0x5, id, GET_SLASH), frame(3, 0, id, u32(constants.NGHTTP2_CANCEL)));
          }
          socket.write(Buffer.concat(batch), () => setImmediate(burst));
        };
        burst();
      });
      const chunks: Buffer[] = [];
      socket.on('data', (d: Buffer) => chunks.push(d));
      socket.on('error', () => {}); // the server may cut the connection while we write
      socket.on('close', () => resolve({ frames: Buffer.concat(chunks), sent }));
      setTimeout(() => reject(new Error('the connection stayed open')), 10_000).unref();
    });
    expect(goawayCodes(frames)).toContain(constants.NGHTTP2_ENHANCE_YOUR_CALM);
    expect(sent).toBeLessThan(1_000);
    expect(logLines.some((l) => /too many stream resets/.test(l.msg))).toBe(true);
    // A well-behaved client on a new connection is served.
    const fresh = await h2Connect(p.reverseTlsUrl!);
    const reply = await h2Request(fresh, '/after-flood');
    await h2Close(fresh);
    expect(reply.status).toBe(200);
    const stats = (await (await fetch(`${p.adminUrl}/api/stats`)).json()) as { http2: { resetFloods: number } };
    expect(stats.http2.resetFloods).toBeGreaterThanOrEqual(1);
  });

  it('lets a client cancel a few streams now and then', async () => {
    const session = await h2Connect(p.reverseTlsUrl!);
    for (let i = 0; i < 10; i++) {
      const stream = session.request({ ':path': `/slow/cancel/${i}` });
      stream.on('error', () => {});
      stream.close(constants.NGHTTP2_CANCEL);
    }
    const reply = await h2Request(session, '/still-open');
    expect(reply.status).toBe(200);
    expect(session.closed).toBe(false);
    await h2Close(session);
  });
});

describe('concurrent streams', () => {
  it('announces max_concurrent_streams and never has more streams than that in flight', async () => {
    const session = await h2Connect(p.reverseTlsUrl!);
    expect(session.remoteSettings.maxConcurrentStreams).toBe(4);
    mostInFlight = 0;
    const replies = await Promise.all(Array.from({ length: 12 }, (_, i) => h2Request(session, `/slow/conc${i}`)));
    await h2Close(session);
    expect(replies.map((r) => r.status)).toEqual(Array(12).fill(200));
    expect(mostInFlight).toBeLessThanOrEqual(4);
  });
});

describe('reload', () => {
  it('offers new SETTINGS to connections made after a reload', async () => {
    const before = await h2Connect(p.reverseTlsUrl!);
    expect(before.remoteSettings.maxConcurrentStreams).toBe(4);
    const config = p.portico.config;
    p.portico.reload({ ...config, reverse: { ...config.reverse!, http2: { ...config.reverse!.http2, max_concurrent_streams: 6 } } });
    const after = await h2Connect(p.reverseTlsUrl!);
    expect(after.remoteSettings.maxConcurrentStreams).toBe(6);
    expect(before.remoteSettings.maxConcurrentStreams).toBe(4);
    await Promise.all([h2Close(before), h2Close(after)]);
    p.portico.reload(config);
    const back = await h2Connect(p.reverseTlsUrl!);
    expect(back.remoteSettings.maxConcurrentStreams).toBe(4);
    await h2Close(back);
  });
});

describe('header list size', () => {
  it('announces the limit', async () => {
    const session = await h2Connect(p.reverseTlsUrl!);
    expect(session.remoteSettings.maxHeaderListSize).toBe(4096);
    await h2Close(session);
  });

  it('resets a stream whose header list is over the limit; the connection serves the next one', async () => {
    // Raw frames: Node's client would refuse to send what the server announced it will not take.
    const port = Number(new URL(p.reverseTlsUrl!).port);
    const big = Buffer.concat([GET_SLASH, literal('x-big', 'y'.repeat(8 * 1024))]);
    const frames = await new Promise<Buffer>((resolve, reject) => {
      const socket = tlsConnect({ host: '127.0.0.1', port, ALPNProtocols: ['h2'], rejectUnauthorized: false }, () => {
        socket.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), frame(4, 0, 0, Buffer.alloc(0)), frame(4, 1, 0, Buffer.alloc(0))]));
        socket.write(frame(1, 0x5, 1, big));
        socket.write(frame(1, 0x5, 3, GET_SLASH));
      });
      const chunks: Buffer[] = [];
      socket.on('data', (d: Buffer) => {
        chunks.push(d);
        // Stream 3's response head is in: done.
        if (framesOf(Buffer.concat(chunks)).some((f) => f.type === 1 && f.stream === 3)) socket.destroy();
      });
      socket.on('error', reject);
      socket.on('close', () => resolve(Buffer.concat(chunks)));
    });
    const all = framesOf(frames);
    const reset = all.find((f) => f.type === 3 && f.stream === 1);
    expect(reset?.payload.readUInt32BE(0)).toBe(constants.NGHTTP2_ENHANCE_YOUR_CALM);
    expect(all.some((f) => f.type === 1 && f.stream === 3)).toBe(true);
    expect(all.some((f) => f.type === 7)).toBe(false);
  });
});


describe('timeouts', () => {
  it('closes an idle connection with GOAWAY after idle_timeout', async () => {
    const session = await h2Connect(p.reverseTlsUrl!);
    const closed = goawayCode(session);
    const started = performance.now();
    await h2Request(session, '/then-idle');
    expect(await closed).toBe(constants.NGHTTP2_NO_ERROR);
    expect(performance.now() - started).toBeGreaterThanOrEqual(350);
  });

  it('closes a connection that negotiated h2 and never sent the preface', async () => {
    const port = Number(new URL(p.reverseTlsUrl!).port);
    const started = performance.now();
    await new Promise<void>((resolve, reject) => {
      const socket = tlsConnect({ host: '127.0.0.1', port, ALPNProtocols: ['h2'], rejectUnauthorized: false });
      socket.on('error', reject);
      socket.on('data', () => {}); // the server's SETTINGS, never acknowledged
      socket.on('close', () => resolve());
    });
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(5_000);
  });

  it('closes a connection that never acknowledges the SETTINGS with SETTINGS_TIMEOUT', async () => {
    const port = Number(new URL(p.reverseTlsUrl!).port);
    const frames = await new Promise<Buffer>((resolve, reject) => {
      const socket = tlsConnect({ host: '127.0.0.1', port, ALPNProtocols: ['h2'], rejectUnauthorized: false }, () => {
        // The preface and an empty SETTINGS frame: a client, but one that never sends SETTINGS ACK.
        socket.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])]));
      });
      const chunks: Buffer[] = [];
      socket.on('data', (d: Buffer) => chunks.push(d));
      socket.on('error', reject);
      socket.on('close', () => resolve(Buffer.concat(chunks)));
    });
    expect(goawayCodes(frames)).toContain(constants.NGHTTP2_SETTINGS_TIMEOUT);
  });
});

/** An HTTP/2 frame (RFC 9113 §4.1). */
function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream, 5);
  return Buffer.concat([head, payload]);
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

/** HPACK for GET https://localhost/ from the static table: :method GET, :scheme https, :path /, :authority localhost. */
const GET_SLASH = Buffer.concat([Buffer.from([0x82, 0x87, 0x84, 0x41, 9]), Buffer.from('localhost')]);

/** The frames in a server's byte stream (a partial last frame is left out). */
function framesOf(bytes: Buffer): { type: number; stream: number; payload: Buffer }[] {
  const out: { type: number; stream: number; payload: Buffer }[] = [];
  for (let at = 0; at + 9 <= bytes.length; ) {
    const length = bytes.readUIntBE(at, 3);
    if (at + 9 + length > bytes.length) break;
    out.push({ type: bytes[at + 3]!, stream: bytes.readUInt32BE(at + 5) & 0x7fffffff, payload: bytes.subarray(at + 9, at + 9 + length) });
    at += 9 + length;
  }
  return out;
}

/** The error codes of the GOAWAY frames in a server's byte stream. */
function goawayCodes(bytes: Buffer): number[] {
  return framesOf(bytes)
    .filter((f) => f.type === 7)
    .map((f) => f.payload.readUInt32BE(4));
}

/** HPACK: a literal field without indexing, new name, no Huffman (RFC 7541 §6.2.2). */
function literal(name: string, value: string): Buffer {
  return Buffer.concat([Buffer.from([0]), hpackInt(name.length), Buffer.from(name), hpackInt(value.length), Buffer.from(value)]);
}

/** An HPACK integer with a 7-bit prefix (RFC 7541 §5.1). */
function hpackInt(n: number): Buffer {
  if (n < 127) return Buffer.from([n]);
  const bytes = [127];
  n -= 127;
  while (n >= 128) {
    bytes.push((n % 128) + 128);
    n = Math.floor(n / 128);
  }
  bytes.push(n);
  return Buffer.from(bytes);
}

describe('config', () => {
  const base = { reverse: { listen: 8080, routes: [{ path: '/', pool: 'a' }] }, pools: { a: { servers: [{ url: 'http://127.0.0.1:1' }] } } };
  const problem = (reverse: Record<string, unknown>) => {
    try {
      validateConfig({ ...base, reverse: { ...base.reverse, ...reverse } });
      return '';
    } catch (err) {
      return String((err as Error).message);
    }
  };

  it('has safe defaults', () => {
    const config = validateConfig(base);
    expect(config.reverse!.http2).toEqual({
      enabled: true,
      max_concurrent_streams: 100,
      stream_window: 4 * 1024 ** 2,
      connection_window: 16 * 1024 ** 2,
      max_resets_per_second: 200,
      idle_timeout: 60_000,
      settings_timeout: 10_000,
    });
    expect(config.reverse!.h2c).toBe(false);
  });

  it('names the key of a bad value', () => {
    expect(problem({ http2: { stream_window: '1kb' } })).toMatch(/reverse\.http2\.stream_window: expected a window size between 65535 bytes and 2gb/);
    expect(problem({ http2: { max_concurrent_streams: 0 } })).toMatch(/reverse\.http2\.max_concurrent_streams: expected a positive integer/);
    expect(problem({ http2: { idle_timout: '1s' } })).toMatch(/reverse\.http2/);
    expect(problem({ listen: undefined, tls_listen: 8443, tls: { cert: 'c', key: 'k' }, h2c: true })).toMatch(/reverse\.h2c: expected reverse\.listen/);
  });
});
