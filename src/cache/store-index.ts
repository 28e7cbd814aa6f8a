/**
 * What a store holds, above the store: the variant keys of each URL and the keys of each tag. One
 * index for any store (memory, disk), kept current by the tier that writes to the store and by the
 * store's own reports of entries it found or lost.
 *
 * For the admin view of the cache it also keeps, per entry, what a listing shows (never the body or the
 * headers) and how many hits the entry has served while stored.
 */
import type { FreshnessInfo } from './shared-cache-policy.js';
import type { EntrySummary, StoreListener } from './store.js';
import type { StoredResponse } from './stored-response.js';

/**
 * One indexed entry. The description fields are null for an entry a persistent store found at start
 * (a disk store reports only key, URL, tags, size and expiry) until the entry is stored again.
 */
export interface IndexedEntry {
  readonly key: string;
  readonly url: string;
  readonly tags: readonly string[];
  readonly status: number | null;
  readonly vary: readonly string[];
  readonly varyValues: readonly (string | null)[];
  readonly info: FreshnessInfo | null;
  readonly size: number | null;
  readonly expiresAt: number | null;
  /** Responses served from this entry while it is stored; kept when it is replaced in place (freshened). */
  hits: number;
}

const NO_VARY: readonly string[] = [];

export class StoreIndex implements StoreListener {
  private readonly entries = new Map<string, IndexedEntry>();
  /**
   * Variant keys per URL: the key itself for a URL with one variant (most URLs), a Set from the second
   * on. A Set for every URL cost about 150 bytes of every stored entry.
   */
  private readonly byUrl = new Map<string, string | Set<string>>();
  private readonly byTag = new Map<string, Set<string>>();

  /** Variant keys of a URL: its one key, or all of them in the order they were stored. */
  keysOf(url: string): string | ReadonlySet<string> | undefined {
    return this.byUrl.get(url);
  }

  keysTagged(tag: string): readonly string[] {
    const keys = this.byTag.get(tag);
    return keys === undefined ? [] : [...keys];
  }

  /** Keys whose URL starts with `prefix`. */
  keysUnder(prefix: string): string[] {
    const out: string[] = [];
    for (const [url, keys] of this.byUrl) {
      if (!url.startsWith(prefix)) continue;
      if (typeof keys === 'string') out.push(keys);
      else out.push(...keys);
    }
    return out;
  }

  /** Every entry, for listings (the admin view of the cache). */
  all(): IterableIterator<IndexedEntry> {
    return this.entries.values();
  }

  get(key: string): IndexedEntry | undefined {
    return this.entries.get(key);
  }

  get size(): number {
    return this.entries.size;
  }

  /** A hit served from the entry under `key`: one map lookup, nothing allocated. */
  hit(key: string): void {
    const entry = this.entries.get(key);
    if (entry !== undefined) entry.hits++;
  }

  found(entry: EntrySummary): void {
    const hits = this.entries.get(entry.key)?.hits ?? 0;
    this.lost(entry.key);
    this.entries.set(entry.key, indexed(entry, hits));
    this.addVariant(entry.url, entry.key);
    for (const tag of entry.tags) addTo(this.byTag, tag, entry.key);
  }

  lost(key: string): void {
    const entry = this.entries.get(key);
    if (entry === undefined) return;
    this.entries.delete(key);
    this.removeVariant(entry.url, key);
    for (const tag of entry.tags) removeFrom(this.byTag, tag, key);
  }

  private addVariant(url: string, key: string): void {
    const keys = this.byUrl.get(url);
    if (keys === undefined) this.byUrl.set(url, key);
    else if (keys instanceof Set) keys.add(key);
    else if (keys !== key) this.byUrl.set(url, new Set([keys, key]));
  }

  private removeVariant(url: string, key: string): void {
    const keys = this.byUrl.get(url);
    if (keys === key) {
      this.byUrl.delete(url);
    } else if (keys instanceof Set) {
      keys.delete(key);
      if (keys.size === 0) this.byUrl.delete(url);
    }
  }
}

/**
 * What the index keeps of an entry: a stored response's description, without its body and headers (a
 * disk store's bodies must not stay in memory), or what a store reported of an entry it found.
 */
function indexed(entry: EntrySummary, hits: number): IndexedEntry {
  const e = entry as Partial<StoredResponse> & EntrySummary;
  const stored = e.info !== undefined;
  return {
    key: e.key,
    url: e.url,
    tags: e.tags,
    status: stored ? e.status! : null,
    vary: stored ? e.vary! : NO_VARY,
    varyValues: stored ? e.varyValues! : NO_VARY,
    info: stored ? e.info! : null,
    size: typeof e.size === 'number' ? e.size : null,
    expiresAt: typeof e.expiresAt === 'number' ? e.expiresAt : null,
    hits,
  };
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
