#!/usr/bin/env node
// A micro-measurement of the Redis cache tier (not a test): latency of RedisTier.store() and of a hit
// by RedisTier.variants() for a 1 KiB and a 100 KiB response, next to plain node-redis SET/GET of the
// same record, against a redis-server this script starts on a free port of 127.0.0.1 (and stops).
//
//   npm run build && node bench/redis-tier.mjs [--n 3000]
//
// Sequential calls (one in flight), so the figures are round-trip latency on loopback plus our work
// (Lua script, record encoding and CRC-32 check); the last column is hits/s with 32 in flight.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { createClient, RESP_TYPES } from '@redis/client';
import { pino } from 'pino';
import { RedisTier } from '../dist/cache/redis/redis-tier.js';
import { encodeRecord } from '../dist/cache/redis/record-codec.js';
import { newStoredResponse } from '../dist/cache/stored-response.js';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const N = arg('n', 3000);
const WARMUP = 300;
const SIZES = [1024, 100 * 1024];

const port = await new Promise((resolve) => {
  const s = net.createServer().listen(0, '127.0.0.1', () => {
    const p = s.address().port;
    s.close(() => resolve(p));
  });
});
const server = spawn(process.env.REDIS_SERVER ?? 'redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'ignore', 'inherit'] });
server.on('exit', (code, signal) => {
  if (!stopping) console.error(`redis-server exited (${code ?? signal}) during the run`);
});
let stopping = false;
const url = `redis://127.0.0.1:${port}`;

try {
  const log = pino({ level: 'warn' });
  const tier = new RedisTier({ url, maxObjectBytes: 1 << 20, log, commandTimeoutMs: 1000 });
  await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('redis tier did not come up')), 5000);
    const check = (s) => s.status === 'up' && s.bus === 'up' && (clearTimeout(t), resolve());
    check(tier.state());
    tier.onStateChange(check);
  });
  const raw = createClient({ url, RESP: 2, commandOptions: { typeMapping: { [RESP_TYPES.BLOB_STRING]: Buffer } } });
  raw.on('error', (err) => console.error(`raw client: ${err.message}`));
  await raw.connect();

  const rows = [];
  for (const size of SIZES) {
    const entries = Array.from({ length: 50 }, (_, i) => entryOf(`http://bench.test/${size}/${i}`, size));
    const records = entries.map((e) => encodeRecord(e));
    const set = await timed((i) => tier.store(entries[i % 50]).then((ok) => assert(ok, 'store')));
    const get = await timed((i) => tier.variants(entries[i % 50].url).then((v) => assert(v.length === 1 && v[0].body.length === size, 'hit')));
    const rawSet = await timed((i) => raw.set(`raw:${i % 50}`, records[i % 50], { PX: 60_000 }));
    const rawGet = await timed((i) => raw.get(`raw:${i % 50}`).then((v) => assert(v.length === records[i % 50].length, 'raw get')));
    const hitsPerSecond = await throughput((i) => tier.variants(entries[i % 50].url));
    rows.push({ size, set, get, rawSet, rawGet, hitsPerSecond });
  }
  await raw.close();
  await tier.close();

  const us = (v) => `${Math.round(v)} µs`;
  console.log(`\nRedis tier on ${url} (redis-server ${await version()}, Node ${process.version}, ${N} sequential calls each)\n`);
  console.log('| entry | store() p50 | store() p99 | variants() hit p50 | p99 | raw SET p50 | p99 | raw GET p50 | p99 | hits/s (32 in flight) |');
  console.log('|---|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    console.log(
      `| ${r.size / 1024} KiB | ${us(r.set.p50)} | ${us(r.set.p99)} | ${us(r.get.p50)} | ${us(r.get.p99)} | ${us(r.rawSet.p50)} | ${us(r.rawSet.p99)} | ${us(r.rawGet.p50)} | ${us(r.rawGet.p99)} | ${Math.round(r.hitsPerSecond)} |`,
    );
  }
} finally {
  stopping = true;
  const exited = once(server, 'exit');
  server.kill('SIGKILL');
  await exited;
}

async function timed(op) {
  for (let i = 0; i < WARMUP; i++) await op(i);
  const samples = new Float64Array(N);
  for (let i = 0; i < N; i++) {
    const t0 = process.hrtime.bigint();
    await op(i);
    samples[i] = Number(process.hrtime.bigint() - t0) / 1e3;
  }
  samples.sort();
  return { p50: samples[Math.floor(N * 0.5)], p99: samples[Math.floor(N * 0.99)] };
}

async function throughput(op) {
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < N) await op(next++);
    }),
  );
  return N / ((performance.now() - t0) / 1000);
}

function entryOf(u, size) {
  const now = Date.now();
  return newStoredResponse({
    url: u,
    requestHeaders: {},
    status: 200,
    statusMessage: 'OK',
    rawHeaders: ['Content-Type', 'application/octet-stream', 'Cache-Control', 'public, max-age=3600', 'ETag', '"x"'],
    headers: { 'content-type': 'application/octet-stream', 'cache-control': 'public, max-age=3600', etag: '"x"' },
    body: Buffer.alloc(size, 0x61),
    info: { correctedInitialAge: 0, responseTime: now, lifetime: 3_600_000, heuristic: false, alwaysRevalidate: false, noStale: false, staleWhileRevalidate: 0, staleIfError: 0, etag: '"x"', lastModified: null, date: now },
    vary: [],
    omit: new Set(),
    tagHeader: 'surrogate-key',
  });
}

function assert(ok, what) {
  if (!ok) throw new Error(`bench: ${what} failed`);
}

async function version() {
  const c = createClient({ url });
  await c.connect();
  const info = await c.info('server');
  await c.close();
  return /redis_version:(\S+)/.exec(info)?.[1] ?? '?';
}
