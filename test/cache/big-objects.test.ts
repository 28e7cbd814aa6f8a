/**
 * Big objects: a 256 MiB response through the disk store is written while it is relayed and never held
 * in memory (peak RSS growth measured below 64 MiB), then served from disk whole and by ranges; a
 * download its client abandons is finished into the cache when it is far enough along (quick_abort).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { get, type IncomingMessage } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { request, waitFor } from '../helpers/http.js';
import { reverseConfig, startPortico } from '../helpers/portico.js';
import { writeTempFile } from '../admin/helpers.js';
import { recordingLogger } from '../balance/logs.js';
import { startCli } from '../helpers/cli.js';

const cleanup = cleanupAfterEach();
const MiB = 1024 * 1024;
const SIZE = 256 * MiB;

/** Byte `i` of the big body: distinct for every offset (mod 2^32), so that a misplaced byte shows. */
function block(index: number): Buffer {
  const b = Buffer.allocUnsafe(MiB);
  for (let i = 0; i < MiB; i += 4) b.writeUInt32LE((index * MiB + i) >>> 0, i);
  return b;
}

function bigBody(): Readable {
  let index = 0;
  return new Readable({
    highWaterMark: MiB,
    read() {
      this.push(index * MiB < SIZE ? block(index++) : null);
    },
  });
}

/** The expected bytes `start`…`end` (inclusive). */
function expected(start: number, end: number): Buffer {
  const out = Buffer.allocUnsafe(end - start + 1);
  for (let o = start; o <= end; o++) {
    const word = (Math.floor(o / 4) * 4) >>> 0;
    const shift = (o % 4) * 8;
    out[o - start] = (word >>> shift) & 0xff;
  }
  return out;
}

/** Reads a response through, hashing it, without keeping it. */
function download(url: string, headers: Record<string, string> = {}): Promise<{ res: IncomingMessage; bytes: number; sha: string; body: Buffer | null }> {
  return new Promise((resolve, reject) => {
    get(url, { headers, agent: false }, (res) => {
      const hash = createHash('sha256');
      let bytes = 0;
      const small: Buffer[] = [];
      res.on('data', (c: Buffer) => {
        bytes += c.length;
        hash.update(c);
        if (bytes <= MiB) small.push(c);
      });
      res.on('end', () => resolve({ res, bytes, sha: hash.digest('hex'), body: bytes <= MiB ? Buffer.concat(small) : null }));
      res.on('error', reject);
    }).on('error', reject);
  });
}

/** A field of /proc/PID/status in bytes (VmRSS: resident now; VmHWM: the peak so far). */
function procKb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) * 1024;
}

describe('a 256 MiB object through the disk store', () => {
  it('is stored while relayed, served from disk whole and by ranges, with RSS growth under 64 MiB', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'portico-big-'));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    let originSha = '';
    const origin = await cleanup.origin((req, res) => {
      if (req.url === '/warm') {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': 8 * MiB, 'cache-control': 'max-age=3600' });
        res.end(Buffer.alloc(8 * MiB, 1));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': SIZE, 'cache-control': 'max-age=3600', etag: '"big"' });
      const hash = createHash('sha256');
      const body = bigBody();
      body.on('data', (c: Buffer) => hash.update(c));
      body.on('end', () => (originSha = hash.digest('hex')));
      body.pipe(res);
    });
    // Portico in a process of its own, so that its memory is measured apart from this test's.
    const config = writeTempFile(
      'portico.yaml',
      `reverse: { listen: 127.0.0.1:0, routes: [{ path: /, pool: app }] }\npools: { app: { servers: [{ url: ${origin.url} }] } }\ncache: { store: disk, dir: ${dir}, max_size: 1gb, max_object_size: 512mb }\nadmin: { listen: 127.0.0.1:0 }\nlog: { level: warn, stats_interval: 0 }\n`,
    );
    const cli = await startCli(['--config', config, '--no-supervise', '--log-level', 'info'], ['reverse', 'admin']);
    cleanup.push(cli.stop);
    const pid = cli.child.pid!;
    const base = cli.urls.reverse!;
    // Any traffic grows V8's young generation to its working size (~25 MiB more than at start-up):
    // warm the process with a small object through the same path (stored, then a hit), so that what
    // is measured is what the big object costs.
    for (let i = 0; i < 2; i++) expect((await download(`${base}/warm`)).bytes).toBe(8 * MiB);
    const before = procKb(pid, 'VmRSS');
    const miss = await download(`${base}/big`);
    expect(miss.res.statusCode).toBe(200);
    expect(miss.res.headers['cache-status']).toMatch(/fwd=uri-miss; fwd-status=200; ttl=\d+; stored/);
    expect(miss.bytes).toBe(SIZE);
    expect(miss.sha).toBe(originSha);
    await waitFor(async () => JSON.parse((await request(`${cli.urls.admin}/api/stats`)).body).cache.entries === 2, 10_000, 'the entry to be committed');
    const hit = await download(`${base}/big`);
    expect(hit.res.headers['cache-status']).toMatch(/^portico; hit/);
    expect(hit.bytes).toBe(SIZE);
    expect(hit.sha).toBe(originSha);
    const growth = procKb(pid, 'VmHWM') - before;
    console.log(`256 MiB through the disk store: peak RSS growth ${(growth / MiB).toFixed(1)} MiB (RSS before ${(before / MiB).toFixed(1)} MiB)`);
    expect(growth, `peak RSS growth ${Math.round(growth / MiB)} MiB`).toBeLessThan(64 * MiB);
    expect(origin.count('/big')).toBe(1);
    expect(origin.count('/warm')).toBe(1);

    for (const [range, start, end] of [
      ['bytes=100000000-100000099', 100_000_000, 100_000_099],
      ['bytes=-100', SIZE - 100, SIZE - 1],
      [`bytes=${SIZE - 1000}-`, SIZE - 1000, SIZE - 1],
      ['bytes=0-0', 0, 0],
    ] as const) {
      const part = await download(`${base}/big`, { range });
      expect(part.res.statusCode, range).toBe(206);
      expect(part.res.headers['content-range']).toBe(`bytes ${start}-${end}/${SIZE}`);
      expect(part.body!.equals(expected(start, end)), range).toBe(true);
    }
    expect(origin.count('/big')).toBe(1);
  }, 120_000);
});

describe('quick_abort: a download its client abandons', () => {
  async function setup(quickAbort: number) {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    const origin = await cleanup.origin(async (_req, res) => {
      res.writeHead(200, { 'content-length': 1000, 'cache-control': 'max-age=60' });
      res.write('x'.repeat(800));
      await gate;
      res.end('y'.repeat(200));
    });
    const { log, lines } = recordingLogger();
    const p = await startPortico(reverseConfig([origin.url], {}, { cache: { quick_abort: quickAbort } }), log);
    cleanup.push(() => p.stop());
    // The proxy has seen its client leave once the request's access-log line is written.
    const left = () => waitFor(() => lines.some((l) => l.msg === 'request' && l.url === '/file'), 5_000, 'the proxy to see the client leave');
    return { origin, p, release, left };
  }

  /** Reads `wanted` bytes of the body, then leaves. */
  function leaveAfter(base: string, wanted: number): Promise<void> {
    const { port } = new URL(base);
    return new Promise((resolve) => {
      const socket = connect(Number(port), '127.0.0.1', () => socket.write(`GET /file HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`));
      let seen = '';
      socket.on('data', (d: Buffer) => {
        seen += d.toString('latin1');
        const body = seen.indexOf('\r\n\r\n');
        if (body >= 0 && seen.length - body - 4 >= wanted) {
          socket.destroy();
          resolve();
        }
      });
    });
  }

  it('is finished into the cache when more than the fraction had arrived', async () => {
    const { origin, p, release, left } = await setup(0.75);
    await leaveAfter(p.reverseUrl, 800);
    await left();
    release();
    await waitFor(() => p.portico.cache!.stats().entries === 1, 5_000, 'the abandoned download to be stored');
    const next = await request(`${p.reverseUrl}/file`);
    expect(next.headers['cache-status']).toMatch(/^portico; hit/);
    expect(next.body).toBe('x'.repeat(800) + 'y'.repeat(200));
    expect(origin.count('/file')).toBe(1);
  });

  it('is dropped when less had arrived', async () => {
    const { origin, p, release, left } = await setup(0.9);
    await leaveAfter(p.reverseUrl, 800);
    await left();
    release();
    await new Promise((r) => setTimeout(r, 200));
    expect(p.portico.cache!.stats().entries).toBe(0);
    expect((await request(`${p.reverseUrl}/file`)).headers['cache-status']).toMatch(/fwd=uri-miss/);
    expect(origin.count('/file')).toBe(2);
  });
});
