/**
 * Where stored responses live. The engine (HttpCache) is the only user; it never assumes anything
 * beyond this interface, and one conformance suite (test/cache/store-conformance.test.ts) runs against
 * every implementation.
 *
 * Keys are `url + "\n" + variant key` (see StoredResponse.key), so all variants of a URL share the
 * URL as a prefix. Every store is bounded in bytes (StoredResponse.size), evicts least recently used
 * entries, refuses entries larger than its per-entry bound, and drops entries past their expiresAt
 * lazily on access and in a periodic sweep.
 */
import type { StoredResponse } from './stored-response.js';

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

export interface CacheStore {
  /** The entry stored under `key` (marking it recently used), or undefined. */
  get(key: string): Promise<StoredResponse | undefined>;
  /**
   * Every stored variant of a URL (primary key), most recently stored last. A store that keeps its
   * entries in memory answers synchronously, so that a cache hit costs no promise and no microtask.
   */
  variants(url: string): StoredResponse[] | Promise<StoredResponse[]>;
  /** Stores (or replaces) an entry; false when it was refused (too big). */
  set(entry: StoredResponse): Promise<boolean>;
  delete(key: string): Promise<boolean>;
  /** Deletes every variant of a URL; returns how many entries went. */
  deleteUrl(url: string): Promise<number>;
  /** Keys that start with `prefix`. */
  keys(prefix: string): Promise<string[]>;
  /** Deletes every entry carrying `tag`; returns how many went. */
  purgeTag(tag: string): Promise<number>;
  /** Drops expired entries now; returns how many went. */
  sweep(): Promise<number>;
  stats(): StoreStats;
  close(): Promise<void>;
}
