/**
 * Where stored responses live, and the little a store must do: get, set, delete by key, stay within its
 * byte bound, and say which entries it holds and which left by themselves. Everything above a key —
 * which variants a URL has, which entries carry a tag, prefix purges — lives once, in StoreIndex
 * (src/cache/store-index.ts), above every store. One conformance suite (test/cache/store-conformance.ts)
 * runs against every implementation.
 *
 * Keys are `url + "\n" + variant key` (see StoredResponse.key). Every store is bounded in bytes
 * (StoredResponse.size), evicts least recently used entries, refuses entries larger than its
 * per-entry bound, and drops entries past their expiresAt lazily on access and in a periodic sweep.
 */
import type { BodyWriter, StoredResponse } from './stored-response.js';

export interface StoreStats {
  readonly entries: number;
  readonly bytes: number;
  readonly maxBytes: number;
  readonly evictions: number;
}

export interface StoreOptions {
  /** Total bytes kept. */
  readonly maxBytes: number;
  /** Largest single entry (StoredResponse.size) accepted. */
  readonly maxEntryBytes: number;
  /** Clock used for expiry (ms); Date.now by default. */
  readonly now?: () => number;
  /** How often expired entries are swept (ms); 0 disables the timer. */
  readonly sweepIntervalMs?: number;
}

/** What the index above a store needs to know of an entry. */
export interface EntrySummary {
  readonly key: string;
  readonly url: string;
  readonly tags: readonly string[];
}

/** How a store tells the index above it what it holds. */
export interface StoreListener {
  /** An entry the store holds without having been given it now (a persistent store, at start). */
  found(entry: EntrySummary): void;
  /** An entry left on its own: evicted, expired, or found unreadable. */
  lost(key: string): void;
}

export interface CacheStore {
  /**
   * The entry stored under `key` (marking it recently used), or undefined. A store that keeps its
   * entries in memory answers synchronously, so that a cache hit costs no promise and no microtask.
   */
  get(key: string): StoredResponse | undefined | Promise<StoredResponse | undefined>;
  /**
   * Stores (or replaces) an entry; false when it was refused (too big, or a body it cannot keep). An
   * entry whose body is this store's BodyWriter commits what was written.
   */
  set(entry: StoredResponse): Promise<boolean>;
  /**
   * A store that keeps bodies in files writes a response's body as it arrives (so that a large one is
   * never held in memory): the writer goes into the entry given to set(). Absent for memory stores.
   */
  openWrite?(): BodyWriter;
  /** Removes an entry; false when there was none. Not reported to the listener. */
  delete(key: string): Promise<boolean>;
  /** Called once, before any other call: the listener hears of every entry found and lost from then on. */
  listen(listener: StoreListener): void;
  /** Resolves once the store can answer (a persistent store has read what it holds). */
  ready(): Promise<void>;
  /** Drops expired entries now; returns how many went. */
  sweep(): Promise<number>;
  stats(): StoreStats;
  close(): Promise<void>;
}
