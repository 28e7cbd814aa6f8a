/**
 * What a store holds, above the store: the variant keys of each URL and the keys of each tag. One
 * index for any store (memory, disk), kept current by the tier that writes to the store and by the
 * store's own reports of entries it found or lost.
 */
import type { EntrySummary, StoreListener } from './store.js';

export class StoreIndex implements StoreListener {
  private readonly entries = new Map<string, EntrySummary>();
  private readonly byUrl = new Map<string, Set<string>>();
  private readonly byTag = new Map<string, Set<string>>();

  /** Variant keys of a URL, in the order they were stored. */
  keysOf(url: string): ReadonlySet<string> | undefined {
    return this.byUrl.get(url);
  }

  keysTagged(tag: string): readonly string[] {
    const keys = this.byTag.get(tag);
    return keys === undefined ? [] : [...keys];
  }

  /** Keys whose URL starts with `prefix`. */
  keysUnder(prefix: string): string[] {
    const out: string[] = [];
    for (const [url, keys] of this.byUrl) if (url.startsWith(prefix)) out.push(...keys);
    return out;
  }

  /** Every entry, for listings (the admin view of the cache). */
  all(): IterableIterator<EntrySummary> {
    return this.entries.values();
  }

  get size(): number {
    return this.entries.size;
  }

  found(entry: EntrySummary): void {
    this.lost(entry.key);
    this.entries.set(entry.key, entry);
    addTo(this.byUrl, entry.url, entry.key);
    for (const tag of entry.tags) addTo(this.byTag, tag, entry.key);
  }

  lost(key: string): void {
    const entry = this.entries.get(key);
    if (entry === undefined) return;
    this.entries.delete(key);
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
