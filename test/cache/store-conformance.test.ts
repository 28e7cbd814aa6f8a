/** One behaviour contract for every CacheStore implementation. */
import { mkdtemp, readdir, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DiskStore } from '../../src/cache/disk-store.js';
import { MemoryStore } from '../../src/cache/memory-store.js';
import type { FreshnessInfo } from '../../src/cache/shared-cache-policy.js';
import type { CacheStore, StoreOptions } from '../../src/cache/store.js';
import { NEVER, newStoredResponse, type StoredResponse } from '../../src/cache/stored-response.js';

const INFO: FreshnessInfo = {
  correctedInitialAge: 0,
  responseTime: 1_000_000,
  lifetime: 60_000,
  heuristic: false,
  alwaysRevalidate: false,
  noStale: false,
  staleWhileRevalidate: 0,
  staleIfError: 0,
  etag: '"e"',
  lastModified: null,
  date: 1_000_000,
};

function entry(url: string, options: { body?: string; vary?: string; tags?: string; etag?: boolean } = {}): StoredResponse {
  const raw = ['Content-Type', 'text/plain'];
  if (options.tags) raw.push('Surrogate-Key', options.tags);
  const headers: Record<string, string> = { 'content-type': 'text/plain' };
  if (options.tags) headers['surrogate-key'] = options.tags;
  return newStoredResponse({
    url,
    requestHeaders: options.vary ? { 'accept-language': options.vary } : {},
    status: 200,
    statusMessage: 'OK',
    rawHeaders: raw,
    headers,
    body: Buffer.from(options.body ?? 'body'),
    info: options.etag === false ? { ...INFO, etag: null } : INFO,
    vary: options.vary ? ['accept-language'] : [],
    omit: new Set(),
    tagHeader: 'surrogate-key',
  });
}

interface Harness {
  make(options: StoreOptions): Promise<CacheStore>;
  /** Reopens the store over the same data (disk: a restart), or null when the store is not persistent. */
  reopen: ((options: StoreOptions) => Promise<CacheStore>) | null;
  cleanup(): Promise<void>;
}

const dirs: string[] = [];
const stores: CacheStore[] = [];

const harnesses: [string, () => Promise<Harness>][] = [
  [
    'memory',
    async () => ({
      make: async (o) => new MemoryStore(o),
      reopen: null,
      cleanup: async () => undefined,
    }),
  ],
  [
    'disk',
    async () => {
      const dir = await mkdtemp(join(tmpdir(), 'portico-store-'));
      dirs.push(dir);
      const open = async (o: StoreOptions) => {
        const s = new DiskStore(dir, o);
        await s.whenReady();
        return s;
      };
      return { make: open, reopen: open, cleanup: () => rm(dir, { recursive: true, force: true }) };
    },
  ],
];

afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

describe.each(harnesses)('%s store', (_name, setup) => {
  let clock = 1_000_000;
  const now = () => clock;
  const open = async (h: Harness, o: Partial<StoreOptions> = {}) => {
    const s = await h.make({ maxBytes: 1 << 20, maxEntryBytes: 64 * 1024, now, sweepIntervalMs: 0, ...o });
    stores.push(s);
    return s;
  };

  it('stores, gets, replaces and deletes entries', async () => {
    const s = await open(await setup());
    const e = entry('http://a/x', { body: 'one' });
    expect(await s.set(e)).toBe(true);
    expect((await s.get(e.key))?.body.toString()).toBe('one');
    await s.set(entry('http://a/x', { body: 'two' }));
    expect((await s.get(e.key))?.body.toString()).toBe('two');
    expect(s.stats().entries).toBe(1);
    expect(await s.delete(e.key)).toBe(true);
    expect(await s.get(e.key)).toBeUndefined();
    expect(await s.delete(e.key)).toBe(false);
    expect(s.stats().entries).toBe(0);
    expect(s.stats().bytes).toBe(0);
  });

  it('keeps every variant of a URL and deletes them together', async () => {
    const s = await open(await setup());
    await s.set(entry('http://a/v', { vary: 'en' }));
    await s.set(entry('http://a/v', { vary: 'de' }));
    await s.set(entry('http://a/v2'));
    const variants = await s.variants('http://a/v');
    expect(variants.map((v) => v.varyValues[0]).sort()).toEqual(['de', 'en']);
    expect(await s.deleteUrl('http://a/v')).toBe(2);
    expect(await s.variants('http://a/v')).toEqual([]);
    expect(await s.variants('http://a/v2')).toHaveLength(1);
  });

  it('lists keys by prefix and purges by tag', async () => {
    const s = await open(await setup());
    await s.set(entry('http://a/static/1', { tags: 'img all' }));
    await s.set(entry('http://a/static/2', { tags: 'css, all' }));
    await s.set(entry('http://a/page', { tags: 'page' }));
    expect((await s.keys('http://a/static/')).length).toBe(2);
    expect(await s.purgeTag('all')).toBe(2);
    expect(await s.purgeTag('all')).toBe(0);
    expect((await s.keys('http://a/')).length).toBe(1);
    // Replacing an entry re-indexes its tags.
    await s.set(entry('http://a/page', { tags: 'other' }));
    expect(await s.purgeTag('page')).toBe(0);
    expect(await s.purgeTag('other')).toBe(1);
  });

  it('stays within its byte bound by evicting the least recently used entries', async () => {
    const one = entry('http://a/0', { body: 'x'.repeat(1000) });
    const s = await open(await setup(), { maxBytes: Math.floor(one.size * 3.5) });
    for (let i = 0; i < 3; i++) await s.set(entry(`http://a/${i}`, { body: 'x'.repeat(1000) }));
    await s.get(entry('http://a/0').key); // 0 is now more recent than 1
    await s.set(entry('http://a/3', { body: 'x'.repeat(1000) }));
    await s.set(entry('http://a/4', { body: 'x'.repeat(1000) }));
    expect(s.stats().bytes).toBeLessThanOrEqual(s.stats().maxBytes);
    expect(s.stats().evictions).toBeGreaterThanOrEqual(1);
    expect(await s.get(entry('http://a/1').key)).toBeUndefined();
    expect(await s.get(entry('http://a/4').key)).toBeDefined();
  });

  it('refuses an entry larger than the per-entry bound', async () => {
    const s = await open(await setup(), { maxEntryBytes: 2000 });
    expect(await s.set(entry('http://a/big', { body: 'x'.repeat(5000) }))).toBe(false);
    expect(await s.get(entry('http://a/big').key)).toBeUndefined();
    expect(s.stats().entries).toBe(0);
  });

  it('drops expired entries lazily and in a sweep', async () => {
    clock = 1_000_000;
    const s = await open(await setup());
    const a = entry('http://a/exp1', { etag: false });
    const b = entry('http://a/exp2', { etag: false });
    const keep = entry('http://a/keep');
    expect(a.expiresAt).toBeLessThan(NEVER);
    expect(keep.expiresAt).toBe(NEVER);
    await s.set(a);
    await s.set(b);
    await s.set(keep);
    clock = a.expiresAt + 1;
    expect(await s.get(a.key)).toBeUndefined();
    expect(await s.sweep()).toBe(1);
    expect(s.stats().entries).toBe(1);
    expect(await s.get(keep.key)).toBeDefined();
    clock = 1_000_000;
  });

  it('survives a restart when persistent', async () => {
    const h = await setup();
    if (h.reopen === null) return;
    const s = await open(h);
    await s.set(entry('http://a/p', { body: 'persisted', tags: 't1' }));
    await s.close();
    const again = await h.reopen({ maxBytes: 1 << 20, maxEntryBytes: 64 * 1024, now, sweepIntervalMs: 0 });
    stores.push(again);
    const got = await again.get(entry('http://a/p').key);
    expect(got?.body.toString()).toBe('persisted');
    expect(got?.rawHeaders).toEqual(entry('http://a/p', { body: 'persisted', tags: 't1' }).rawHeaders);
    expect(await again.purgeTag('t1')).toBe(1);
  });
});

describe('disk store files', () => {
  it('cleans temporary and corrupt files on start and keeps good ones', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'portico-store-'));
    dirs.push(dir);
    const options = { maxBytes: 1 << 20, maxEntryBytes: 64 * 1024, sweepIntervalMs: 0 };
    const first = new DiskStore(dir, options);
    await first.set(entry('http://a/good'));
    await first.close();
    await mkdir(join(dir, 'zz'), { recursive: true });
    await writeFile(join(dir, 'zz', 'junk.entry'), 'not an entry');
    await writeFile(join(dir, 'zz', 'half.entry.1.2.tmp'), 'partial write');
    const second = new DiskStore(dir, options);
    stores.push(second);
    await second.whenReady();
    expect(await readdir(join(dir, 'zz'))).toEqual([]);
    expect(second.stats().entries).toBe(1);
    expect((await second.get(entry('http://a/good').key))?.body.toString()).toBe('body');
  });
});
