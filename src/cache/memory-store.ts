/**
 * The in-memory store: an LRU bounded in bytes (headers + body + bookkeeping of every entry) on
 * `lru-cache`, with indexes by URL (for variant lookup and purge) and by tag.
 */
import { LRUCache } from 'lru-cache';
import type { CacheStore, StoreOptions, StoreStats } from './store.js';
import type { StoredResponse } from './stored-response.js';

export class MemoryStore implements CacheStore {
  private readonly lru: LRUCache<string, StoredResponse>;
  private readonly byUrl = new Map<string, Set<string>>();
  private readonly byTag = new Map<string, Set<string>>();
  private readonly now: () => number;
  private readonly maxBytes: number;
  private readonly timer: NodeJS.Timeout | null;
  private evictions = 0;

  constructor(options: StoreOptions) {
    this.now = options.now ?? Date.now;
    this.maxBytes = options.maxBytes;
    this.lru = new LRUCache<string, StoredResponse>({
      maxSize: options.maxBytes,
      maxEntrySize: Math.min(options.maxEntryBytes, options.maxBytes),
      sizeCalculation: (entry) => entry.size,
      dispose: (entry, key, reason) => {
        if (reason === 'evict') this.evictions++;
        this.unindex(key, entry);
      },
    });
    const interval = options.sweepIntervalMs ?? 60_000;
    this.timer = interval > 0 ? setInterval(() => void this.sweep(), interval) : null;
    this.timer?.unref();
  }

  async get(key: string): Promise<StoredResponse | undefined> {
    return this.getSync(key);
  }

  variants(url: string): StoredResponse[] {
    const keys = this.byUrl.get(url);
    if (keys === undefined) return [];
    const out: StoredResponse[] = [];
    // No copy of the set needed: getSync may drop an expired key from it, and a Set iterator skips
    // deleted entries.
    for (const key of keys) {
      const entry = this.getSync(key);
      if (entry !== undefined) out.push(entry);
    }
    return out;
  }

  async set(entry: StoredResponse): Promise<boolean> {
    this.lru.set(entry.key, entry);
    if (this.lru.peek(entry.key) !== entry) return false;
    this.index(entry);
    return true;
  }

  async delete(key: string): Promise<boolean> {
    return this.lru.delete(key);
  }

  async deleteUrl(url: string): Promise<number> {
    const keys = this.byUrl.get(url);
    if (keys === undefined) return 0;
    let n = 0;
    for (const key of [...keys]) if (this.lru.delete(key)) n++;
    return n;
  }

  async keys(prefix: string): Promise<string[]> {
    const out: string[] = [];
    for (const key of this.lru.keys()) if (key.startsWith(prefix)) out.push(key);
    return out;
  }

  async purgeTag(tag: string): Promise<number> {
    const keys = this.byTag.get(tag);
    if (keys === undefined) return 0;
    let n = 0;
    for (const key of [...keys]) if (this.lru.delete(key)) n++;
    return n;
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
    this.lru.clear();
  }

  private getSync(key: string): StoredResponse | undefined {
    const entry = this.lru.get(key);
    if (entry !== undefined && entry.expiresAt <= this.now()) {
      this.lru.delete(key);
      return undefined;
    }
    return entry;
  }

  private index(entry: StoredResponse): void {
    addTo(this.byUrl, entry.url, entry.key);
    for (const tag of entry.tags) addTo(this.byTag, tag, entry.key);
  }

  private unindex(key: string, entry: StoredResponse): void {
    removeFrom(this.byUrl, entry.url, key);
    for (const tag of entry.tags) removeFrom(this.byTag, tag, key);
  }
}

function addTo(map: Map<string, Set<string>>, name: string, key: string): void {
  let set = map.get(name);
  if (set === undefined) map.set(name, (set = new Set()));
  set.add(key);
}

function removeFrom(map: Map<string, Set<string>>, name: string, key: string): void {
  const set = map.get(name);
  if (set === undefined) return;
  set.delete(key);
  if (set.size === 0) map.delete(name);
}
