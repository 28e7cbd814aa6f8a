/**
 * The cache's size bound is honest: what the memory store counts for an entry (`cache.size` is a bound
 * on that count) covers what the entry really costs the process. 5,000 distinct 1 KiB responses are
 * stored through the reverse proxy; the proxy's heap and ArrayBuffer memory, after forced garbage
 * collection, may not grow by more than the store says it holds.
 *
 * Portico runs in a child process with --expose-gc (test/hardening/fixtures/portico-child.mjs), so that
 * its memory is its own. A warm-up of 500 entries first takes the one-off growth (JIT code, pools) out
 * of the baseline. Measured when written: 2.9 KB per 1 KiB entry, 3.4 KB counted. Before, 3.6 KB per
 * entry against 1.8 KB counted (every entry had a hidden class of its own, and the overhead counted was
 * 512 bytes): a 256 MB cache of small responses then took about twice its size.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { Agent, get, type IncomingMessage } from 'node:http';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startOrigin, type Origin } from '../helpers/origin.js';

interface Measurement {
  readonly heapUsed: number;
  readonly arrayBuffers: number;
  readonly cache: { readonly entries: number; readonly bytes: number } | null;
}

const CHILD = fileURLToPath(new URL('../hardening/fixtures/portico-child.mjs', import.meta.url));
const BODY = Buffer.alloc(1024, 'x');

let child: ChildProcess;
let origin: Origin;
let reversePort: number;

function reply<T>(type: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (msg: { type: string; message?: string }) => {
      if (msg.type !== type && msg.type !== 'error') return;
      child.off('message', onMessage);
      if (msg.type === 'error') reject(new Error(msg.message));
      else resolve(msg as T);
    };
    child.on('message', onMessage);
  });
}

async function measure(): Promise<Measurement> {
  const measured = reply<Measurement>('measured');
  child.send({ type: 'measure' });
  return measured;
}

/** GETs /item/FROM … /item/(TO-1) through the proxy, `concurrency` at a time, each answered 200. */
async function fill(from: number, to: number, concurrency = 16): Promise<void> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  let next = from;
  const worker = async () => {
    while (next < to) {
      const n = next++;
      const status = await new Promise<number>((resolve, reject) => {
        get({ host: '127.0.0.1', port: reversePort, path: `/item/${n}`, agent }, (res: IncomingMessage) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        }).on('error', reject);
      });
      if (status !== 200) throw new Error(`/item/${n} answered ${status}`);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  agent.destroy();
}

beforeAll(async () => {
  origin = await startOrigin((req, res) => {
    res.setHeader('Content-Type', 'application/octet-stream');
    res.setHeader('Cache-Control', 'public, max-age=3600');
    res.setHeader('ETag', `"${req.url}"`);
    res.setHeader('Last-Modified', 'Mon, 07 Dec 2026 00:00:00 GMT');
    res.end(BODY);
  });
  child = fork(CHILD, [], { execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const started = reply<{ addresses: { reverse: string } }>('started');
  child.send({
    type: 'start',
    config: {
      reverse: { listen: '127.0.0.1:0', routes: [{ path: '/', pool: 'app' }] },
      pools: { app: { servers: [{ url: origin.url }] } },
      log: { level: 'silent', stats_interval: 0 },
    },
  });
  const { addresses } = await started;
  reversePort = Number(addresses.reverse.split(':').pop());
}, 30_000);

afterAll(async () => {
  if (child && child.exitCode === null) {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.send({ type: 'stop' });
    await Promise.race([exited, new Promise((r) => setTimeout(r, 3_000))]);
    if (child.exitCode === null) child.kill('SIGKILL');
  }
  await origin?.close();
});

it('counts at least what 5,000 stored 1 KiB responses cost the process, and not more than twice it', async () => {
  await fill(0, 500);
  const before = await measure();
  await fill(500, 5_500);
  const after = await measure();

  const stored = after.cache!.entries - before.cache!.entries;
  expect(stored).toBe(5_000);
  expect(origin.requests.length).toBe(5_500);
  const counted = (after.cache!.bytes - before.cache!.bytes) / stored;
  const real = (after.heapUsed + after.arrayBuffers - before.heapUsed - before.arrayBuffers) / stored;
  const figures = `real ${Math.round(real)} B per entry, counted ${Math.round(counted)} B`;
  expect(real, figures).toBeLessThanOrEqual(counted);
  expect(counted, figures).toBeLessThan(real * 2);
}, 60_000);
