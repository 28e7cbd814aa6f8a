/**
 * The in-memory store: an LRU bounded in bytes (headers + body + bookkeeping of every entry) on
 * `lru-cache`. Answers get() synchronously.
 */
import { LRUCache } from 'lru-cache';
import type { CacheStore, StoreListener, StoreOptions, StoreStats } from './store.js';
import type { StoredResponse } from './stored-response.js';

const NOBODY: StoreListener = { found() {}, lost() {} };

export class MemoryStore implements CacheStore {
  private readonly lru: LRUCache<string, StoredResponse>;
  private readonly now: () => number;
  private readonly maxBytes: number;
  private readonly timer: NodeJS.Timeout | null;
  private listener: StoreListener = NOBODY;
  private evictions = 0;

  constructor(options: StoreOptions) {
    this.now = options.now ?? Date.now;
    this.maxBytes = options.maxBytes;
    this.lru = new LRUCache<string, StoredResponse>({
      maxSize: options.maxBytes,
      maxEntrySize: Math.min(options.maxEntryBytes, options.maxBytes),
      sizeCalculation: (entry) => entry.size,
      dispose: (_entry, key, reason) => {
        if (reason === 'set') return; // replaced: the writer tells the index
        if (reason === 'evict') this.evictions++;
        this.listener.lost(key);
      },
    });
    const interval = options.sweepIntervalMs ?? 60_000;
    this.timer = interval > 0 ? setInterval(() => void this.sweep(), interval) : null;
    this.timer?.unref();
  }

  listen(listener: StoreListener): void {
    this.listener = listener;
  }

  ready(): Promise<void> {
    return Promise.resolve();
  }

  get(key: string): StoredResponse | undefined {
    const entry = this.lru.get(key);
    if (entry !== undefined && entry.expiresAt <= this.now()) {
      this.lru.delete(key);
      return undefined;
    }
    return entry;
  }

  async set(entry: StoredResponse): Promise<boolean> {
    if (!Buffer.isBuffer(entry.body)) return false; // bodies in memory only
    this.lru.set(entry.key, entry);
    return this.lru.peek(entry.key) === entry;
  }

  async delete(key: string): Promise<boolean> {
    return this.lru.delete(key);
  }

  async sweep(): Promise<number> {
    const now = this.now();
    const expired: string[] = [];
    for (const [key, entry] of this.lru.entries()) if (entry.expiresAt <= now) expired.push(key);
    for (const key of expired) this.lru.delete(key);
    return expired.length;
  }

  stats(): StoreStats {
    return { entries: this.lru.size, bytes: this.lru.calculatedSize, maxBytes: this.maxBytes, evictions: this.evictions };
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.listener = NOBODY;
    this.lru.clear();
  }
}
