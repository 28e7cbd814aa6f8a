/**
 * The hit path: a memory-store hit is answered in the same tick as the request (no promise in
 * between), and what goes on the wire for a hit — over both front doors — is the stored head in the
 * origin's order, then Age (computed per request) and Cache-Status.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { get as httpGet } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DiskStore } from '../../src/cache/disk-store.js';
import { HttpCache } from '../../src/cache/engine.js';
import { LocalTier } from '../../src/cache/local-tier.js';
import { MemoryStore } from '../../src/cache/memory-store.js';
import type { CacheStore } from '../../src/cache/store.js';
import { validateConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/core/log.js';
import { doorCacheSettings } from '../../src/runtime.js';
import { endToEndRawHeaders, headersFromRaw } from '../../src/core/hop-by-hop.js';
import { TestClock } from '../helpers/clock.js';
import { startOrigin, type Origin } from '../helpers/origin.js';
import { fieldOf, parseRawResponse, rawExchange, type RawResponse } from '../helpers/raw.js';
import { reverseConfig, startPortico, type RunningPortico } from '../helpers/portico.js';
import type { Reply, UpstreamFetch } from '../../src/core/messages.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The reverse proxy's clock: a stored response grows older when a test moves it forward. */
const clock = new TestClock();

/** What the origin sends for /page: its Date 10 s in the past, so a stored copy is 10 s old at once. */
const ORIGIN_DATE = new Date(Date.now() - 10_000).toUTCString();

let origin: Origin;
let reverse: RunningPortico;
let forward: RunningPortico;

beforeAll(async () => {
  origin = await startOrigin((req, res) => {
    if (req.url === '/no-date') res.sendDate = false;
    else res.setHeader('Date', ORIGIN_DATE);
    res.setHeader('Cache-Control', 'public, max-age=3600');
    res.setHeader('ETag', '"v1"');
    res.setHeader('X-Origin', 'one');
    res.end(`body of ${req.url}`);
  });
  reverse = await startPortico(reverseConfig([origin.url]), { now: clock.now });
  forward = await startPortico({ forward: { listen: '127.0.0.1:0' } });
});

afterAll(async () => {
  await reverse.stop();
  await forward.stop();
  await origin.close();
});

/** One request on its own connection, read byte for byte (Connection: close, so the reply ends with the socket). */
async function rawRequest(proxyUrl: string, target: string, host: string, method = 'GET'): Promise<RawResponse> {
  const { text } = await rawExchange(Number(new URL(proxyUrl).port), `${method} ${target} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
  return parseRawResponse(text);
}

const field = fieldOf;

function without(reply: RawResponse, ...names: string[]): (readonly [string, string])[] {
  return reply.fields.filter(([n]) => !names.includes(n.toLowerCase()));
}

describe.each([
  ['reverse', () => reverse.reverseUrl, (path: string) => path],
  ['forward', () => forward.forwardUrl!, (path: string) => `${origin.url}${path}`],
])('a hit through the %s proxy', (door, proxyUrl, target) => {
  const host = () => new URL(origin.url).host;

  it('sends the stored head in the origin order, then Age and Cache-Status, and the stored body', async () => {
    const path = `/page-${door}`;
    const miss = await rawRequest(proxyUrl(), target(path), host());
    const hit = await rawRequest(proxyUrl(), target(path), host());
    const again = await rawRequest(proxyUrl(), target(path), host());
    expect(origin.count(path)).toBe(1);
    expect(hit.statusLine).toBe('HTTP/1.1 200 OK');
    expect(hit.body).toBe(`body of ${path}`);
    expect(field(hit, 'cache-status')).toMatch(/^portico; hit; ttl=35\d\d$/);
    // The origin's fields, unchanged and in order, then ours; Node closes as the client asked.
    const names = hit.fields.map(([n]) => n);
    expect(names.slice(-3)).toEqual(['Age', 'Cache-Status', 'Connection']);
    expect(without(hit, 'age', 'cache-status')).toEqual(without(miss, 'cache-status'));
    expect(field(hit, 'date')).toBe(ORIGIN_DATE);
    // The stored copy was 10 s old when it arrived (the origin's Date): Age says so on every hit.
    expect(Number(field(hit, 'age'))).toBeGreaterThanOrEqual(10);
    expect(without(again, 'age')).toEqual(without(hit, 'age'));
  });

  it('answers HEAD from the same entry with the same head and no body', async () => {
    const path = `/head-${door}`;
    await rawRequest(proxyUrl(), target(path), host());
    const get = await rawRequest(proxyUrl(), target(path), host());
    const head = await rawRequest(proxyUrl(), target(path), host(), 'HEAD');
    expect(head.body).toBe('');
    expect(without(head, 'age')).toEqual(without(get, 'age'));
    expect(origin.count(path)).toBe(1);
  });

  it('gives a hit of a response without Date a current Date', async () => {
    await rawRequest(proxyUrl(), target('/no-date'), host());
    const hit = await rawRequest(proxyUrl(), target('/no-date'), host());
    expect(field(hit, 'cache-status')).toMatch(/^portico; hit/);
    expect(Math.abs(Date.parse(field(hit, 'date')!) - Date.now())).toBeLessThan(5_000);
  });
});

it('advances Age as the stored response grows older', async () => {
  const path = '/ageing';
  await rawRequest(reverse.reverseUrl, path, 'x');
  const first = await rawRequest(reverse.reverseUrl, path, 'x');
  clock.advance(1100);
  const later = await rawRequest(reverse.reverseUrl, path, 'x');
  expect(Number(field(later, 'age'))).toBeGreaterThan(Number(field(first, 'age')));
  expect(field(later, 'cache-status')).toMatch(/^portico; hit; ttl=\d+$/);
  expect(origin.count(path)).toBe(1);
});

describe('HttpCache.handle on a hit', () => {
  const fetchFromOrigin: UpstreamFetch = () =>
    new Promise((resolve, reject) => {
      httpGet(`${origin.url}/engine`, (res) => {
        const rawHeaders = endToEndRawHeaders(res.rawHeaders);
        resolve({ status: res.statusCode ?? 0, statusMessage: res.statusMessage ?? '', rawHeaders, headers: headersFromRaw(rawHeaders), body: res, upstreamLabel: origin.url });
      }).on('error', reject);
    });
  const req = { method: 'GET', url: 'http://engine.test/engine', headers: {} };

  async function fill(store: CacheStore): Promise<HttpCache> {
    const tier = new LocalTier(store);
    const cache = new HttpCache({ settings: doorCacheSettings(validateConfig(reverseConfig([origin.url])).cache), tier, log: silentLogger });
    const miss = await cache.handle(req, fetchFromOrigin);
    await drain(miss);
    // Storing completes after the body ends; the next lookup must find the entry.
    for (let i = 0; i < 100 && (await tier.variants(req.url)).length === 0; i++) await sleep(5);
    return cache;
  }

  async function drain(reply: Reply): Promise<void> {
    const body = reply.body;
    if (body === null || Buffer.isBuffer(body)) return;
    for await (const _ of body);
  }

  it('returns the reply itself, not a promise, for the memory store', async () => {
    const cache = await fill(new MemoryStore({ maxBytes: 1 << 20, maxEntryBytes: 1 << 20, sweepIntervalMs: 0 }));
    const hit = cache.handle(req, () => Promise.reject(new Error('a hit must not go upstream')));
    expect(hit).not.toBeInstanceOf(Promise);
    expect((hit as Reply).cacheResult).toBe('hit');
    expect(String((hit as Reply).body)).toBe('body of /engine');
    await cache.close();
  });

  it('returns a promise for the disk store, with the same reply', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'portico-hit-'));
    try {
      const cache = await fill(new DiskStore(dir, { maxBytes: 1 << 20, maxEntryBytes: 1 << 20, sweepIntervalMs: 0 }));
      const hit = cache.handle(req, () => Promise.reject(new Error('a hit must not go upstream')));
      expect(hit).toBeInstanceOf(Promise);
      const reply = await hit;
      expect(reply.cacheResult).toBe('hit');
      expect(String(reply.body)).toBe('body of /engine');
      await cache.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('rejects (never throws) when only-if-cached finds nothing', async () => {
    const cache = await fill(new MemoryStore({ maxBytes: 1 << 20, maxEntryBytes: 1 << 20, sweepIntervalMs: 0 }));
    const answer = cache.handle({ ...req, url: 'http://engine.test/absent', headers: { 'cache-control': 'only-if-cached' } }, fetchFromOrigin);
    await expect(answer).rejects.toMatchObject({ code: 'only_if_cached' });
    await cache.close();
  });
});
