/**
 * One behaviour contract for every CacheStore implementation: `storeConformance()` is called once per
 * store (test/cache/stores.test.ts), directly on the store and through a LocalTier (the index above it).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { LocalTier } from '../../src/cache/local-tier.js';
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

export function entry(url: string, options: { body?: string; vary?: string; tags?: string; etag?: boolean } = {}): StoredResponse {
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

export interface StoreHarness {
  make(options: StoreOptions): Promise<CacheStore>;
  /** Reopens the store over the same data (disk: a restart), or null when the store is not persistent. */
  reopen: ((options: StoreOptions) => Promise<CacheStore>) | null;
  cleanup(): Promise<void>;
}

/** The contract, as a vitest suite named after the store. */
export function storeConformance(name: string, setup: () => Promise<StoreHarness>): void {
  const stores: CacheStore[] = [];
  const harnesses: StoreHarness[] = [];
  let clock = 1_000_000;
  const now = () => clock;
  const open = async (h: StoreHarness, o: Partial<StoreOptions> = {}) => {
    harnesses.push(h);
    const s = await h.make({ maxBytes: 1 << 20, maxEntryBytes: 64 * 1024, now, sweepIntervalMs: 0, ...o });
    stores.push(s);
    return s;
  };
  const tierOf = async (o: Partial<StoreOptions> = {}) => new LocalTier(await open(await setup(), o));

  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close();
    for (const h of harnesses.splice(0)) await h.cleanup();
    clock = 1_000_000;
  });

  describe(`${name} store`, () => {
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
      const tier = await tierOf();
      await tier.set(entry('http://a/v', { vary: 'en' }));
      await tier.set(entry('http://a/v', { vary: 'de' }));
      await tier.set(entry('http://a/v2'));
      const variants = await tier.variants('http://a/v');
      expect(variants.map((v) => v.varyValues[0]).sort()).toEqual(['de', 'en']);
      expect(await tier.deleteUrl('http://a/v')).toBe(2);
      expect(await tier.variants('http://a/v')).toEqual([]);
      expect(await tier.variants('http://a/v2')).toHaveLength(1);
    });

    it('finds the variants of a URL as they come and go one by one', async () => {
      const tier = await tierOf();
      const en = entry('http://a/v', { vary: 'en' });
      const de = entry('http://a/v', { vary: 'de' });
      const languages = async () => (await tier.variants('http://a/v')).map((v) => v.varyValues[0]).sort();
      await tier.set(en);
      expect(await languages()).toEqual(['en']);
      await tier.set(de);
      expect(await languages()).toEqual(['de', 'en']);
      await tier.delete(en.key);
      expect(await languages()).toEqual(['de']);
      await tier.set(en);
      expect(await languages()).toEqual(['de', 'en']);
      await tier.delete(de.key);
      await tier.delete(en.key);
      expect(await languages()).toEqual([]);
      expect(await tier.purgePrefix('http://a/')).toBe(0);
      expect(tier.index.size).toBe(0);
    });

    it('purges by prefix and by tag', async () => {
      const tier = await tierOf();
      await tier.set(entry('http://a/static/1', { tags: 'img all' }));
      await tier.set(entry('http://a/static/2', { tags: 'css, all' }));
      await tier.set(entry('http://a/page', { tags: 'page' }));
      await tier.set(entry('http://a/other/1'));
      expect(await tier.purgeTag('all')).toBe(2);
      expect(await tier.purgeTag('all')).toBe(0);
      expect(await tier.purgePrefix('http://a/other/')).toBe(1);
      expect(tier.index.size).toBe(1);
      // Replacing an entry re-indexes its tags.
      await tier.set(entry('http://a/page', { tags: 'other' }));
      expect(await tier.purgeTag('page')).toBe(0);
      expect(await tier.purgeTag('other')).toBe(1);
    });

    it('stays within its byte bound by evicting the least recently used entries, and says so', async () => {
      // What one entry counts in this store (the memory store counts entry.size, the disk store its files).
      const probe = await tierOf();
      await probe.set(entry('http://a/0', { body: 'x'.repeat(1000) }));
      const tier = await tierOf({ maxBytes: Math.floor(probe.store.stats().bytes * 3.5) });
      const s = tier.store;
      for (let i = 0; i < 3; i++) await tier.set(entry(`http://a/${i}`, { body: 'x'.repeat(1000) }));
      await s.get(entry('http://a/0').key); // 0 is now more recent than 1
      await tier.set(entry('http://a/3', { body: 'x'.repeat(1000) }));
      await tier.set(entry('http://a/4', { body: 'x'.repeat(1000) }));
      expect(s.stats().bytes).toBeLessThanOrEqual(s.stats().maxBytes);
      expect(s.stats().evictions).toBeGreaterThanOrEqual(1);
      expect(await s.get(entry('http://a/1').key)).toBeUndefined();
      expect(await s.get(entry('http://a/4').key)).toBeDefined();
      // The index above the store forgot what the store evicted.
      expect(await tier.variants('http://a/1')).toEqual([]);
      expect(tier.index.size).toBe(s.stats().entries);
    });

    it('refuses an entry larger than the per-entry bound', async () => {
      const tier = await tierOf({ maxEntryBytes: 2000 });
      expect(await tier.set(entry('http://a/big', { body: 'x'.repeat(5000) }))).toBe(false);
      expect(await tier.store.get(entry('http://a/big').key)).toBeUndefined();
      expect(tier.store.stats().entries).toBe(0);
      expect(tier.index.size).toBe(0);
    });

    it('drops expired entries lazily and in a sweep', async () => {
      const tier = await tierOf();
      const s = tier.store;
      const a = entry('http://a/exp1', { etag: false });
      const b = entry('http://a/exp2', { etag: false });
      const keep = entry('http://a/keep');
      expect(a.expiresAt).toBeLessThan(NEVER);
      expect(keep.expiresAt).toBe(NEVER);
      await tier.set(a);
      await tier.set(b);
      await tier.set(keep);
      clock = a.expiresAt + 1;
      expect(await s.get(a.key)).toBeUndefined();
      expect(await s.sweep()).toBe(1);
      expect(s.stats().entries).toBe(1);
      expect(await s.get(keep.key)).toBeDefined();
      expect(tier.index.size).toBe(1);
    });

    it('survives a restart when persistent, and tells the index what it found', async () => {
      const h = await setup();
      if (h.reopen === null) return;
      const s = await open(h);
      await s.set(entry('http://a/p', { body: 'persisted', tags: 't1' }));
      await s.close();
      const again = await h.reopen({ maxBytes: 1 << 20, maxEntryBytes: 64 * 1024, now, sweepIntervalMs: 0 });
      stores.push(again);
      const tier = new LocalTier(again);
      await again.ready();
      const got = await again.get(entry('http://a/p').key);
      expect(got?.body.toString()).toBe('persisted');
      expect(got?.rawHeaders).toEqual(entry('http://a/p', { body: 'persisted', tags: 't1' }).rawHeaders);
      expect(await tier.purgeTag('t1')).toBe(1);
    });
  });
}
