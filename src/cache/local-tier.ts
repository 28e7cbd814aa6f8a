/**
 * A process's own cache tier: one store (memory or disk) and the index above it. Answers which
 * variants a URL has — synchronously when the store does — and purges by URL, prefix and tag.
 */
import type { CacheStore, StoreStats } from './store.js';
import { StoreIndex } from './store-index.js';
import type { StoredResponse } from './stored-response.js';

const NONE: StoredResponse[] = [];

export class LocalTier {
  readonly index = new StoreIndex();

  constructor(readonly store: CacheStore) {
    store.listen(this.index);
  }

  /** Every stored variant of a URL (primary key); an array at once when the store answers synchronously. */
  variants(url: string): StoredResponse[] | Promise<StoredResponse[]> {
    const keys = this.index.keysOf(url);
    if (keys === undefined) return NONE;
    if (typeof keys === 'string') {
      const entry = this.store.get(keys);
      if (entry instanceof Promise) return entry.then((e) => (e === undefined ? NONE : [e]));
      return entry === undefined ? NONE : [entry];
    }
    const out: StoredResponse[] = [];
    let pending: Promise<StoredResponse | undefined>[] | null = null;
    // A Set iterator skips keys that get() drops on the way (an expired entry is reported lost).
    for (const key of keys) {
      const entry = this.store.get(key);
      if (entry instanceof Promise) (pending ??= []).push(entry);
      else if (entry !== undefined) out.push(entry);
    }
    if (pending === null) return out;
    return Promise.all(pending).then((entries) => {
      for (const entry of entries) if (entry !== undefined) out.push(entry);
      return out;
    });
  }

  /** Counts a hit served from the entry under `key` (for the admin listing; nothing is allocated). */
  hit(key: string): void {
    this.index.hit(key);
  }

  async set(entry: StoredResponse): Promise<boolean> {
    const stored = await this.store.set(entry);
    if (stored) this.index.found(entry);
    else this.index.lost(entry.key);
    return stored;
  }

  async delete(key: string): Promise<boolean> {
    this.index.lost(key);
    return this.store.delete(key);
  }

  /** Drops every variant of a URL; returns how many entries went. */
  deleteUrl(url: string): Promise<number> {
    const keys = this.index.keysOf(url);
    return this.deleteAll(keys === undefined ? [] : typeof keys === 'string' ? [keys] : [...keys]);
  }

  /** Drops every entry whose URL starts with `prefix`. */
  purgePrefix(prefix: string): Promise<number> {
    return this.deleteAll(this.index.keysUnder(prefix));
  }

  purgeTag(tag: string): Promise<number> {
    return this.deleteAll(this.index.keysTagged(tag));
  }

  stats(): StoreStats {
    return this.store.stats();
  }

  close(): Promise<void> {
    return this.store.close();
  }

  private async deleteAll(keys: readonly string[]): Promise<number> {
    let n = 0;
    for (const key of keys) if (await this.delete(key)) n++;
    return n;
  }
}
