/**
 * The admin view of one process's cache (GET /api/cache/entries and /api/cache/entry): the entries of
 * each door's local tier, as plain data — URL, Vary'd request header values, HTTP status, size, age,
 * freshness left and hits — in a stable order (door, then key) that pages can continue from. Entries
 * that only the shared tier (Redis) holds are not listed: listing them would mean scanning Redis.
 *
 * Reads only the index (src/cache/store-index.ts) for a listing; one URL's variants are read from the
 * store, for their stored headers (a disk store reads its files; the memory store counts it as a use).
 */
import { cacheKeyFromUrl } from './cache-key.js';
import type { LocalTier } from './local-tier.js';
import { currentAge, type FreshnessInfo, ttlSeconds } from './shared-cache-policy.js';
import type { IndexedEntry } from './store-index.js';
import type { StoredResponse } from './stored-response.js';

export type CacheDoor = 'reverse' | 'forward';

/** A door's local tier, named. */
export interface DoorTier {
  readonly door: CacheDoor;
  readonly tier: LocalTier;
}

/** A position in the listing order: entries after it come next. */
export interface ListPosition {
  readonly door: CacheDoor;
  readonly key: string;
}

export interface EntryListQuery {
  /** A URL prefix as an operator types it (`http://Example.com/static/`, `example.com/st`); '' for all. */
  readonly prefix: string;
  /** One door's entries only. */
  readonly door?: CacheDoor | undefined;
  readonly after?: ListPosition | undefined;
  readonly limit: number;
}

export interface ListedEntry {
  readonly door: CacheDoor;
  /** The entry's key: the URL and its Vary'd values (unique per stored variant). */
  readonly key: string;
  readonly url: string;
  /** The request header values this variant was stored for (lower-case names; null: absent). */
  readonly vary: Readonly<Record<string, string | null>>;
  /** HTTP status; null (and age, ttl) for an entry a disk store found at start and has not stored since. */
  readonly status: number | null;
  /** Bytes counted against the cache's bound (headers, body, bookkeeping). */
  readonly size: number | null;
  /** Seconds since the response was generated (its Age on a hit). */
  readonly age: number | null;
  /** Seconds of freshness left; negative once stale. */
  readonly ttl: number | null;
  readonly state: 'fresh' | 'stale' | 'unknown';
  /** Hits served from this entry while it has been stored. */
  readonly hits: number;
  readonly tags: readonly string[];
}

export interface EntryPage {
  readonly entries: ListedEntry[];
  /** Entries matching the prefix (and door), wherever the page is. */
  readonly total: number;
  /** True when entries follow the last one of this page. */
  readonly more: boolean;
}

/** One stored variant with the headers a hit sends (before Age and Cache-Status); never the body. */
export interface EntryDetail extends ListedEntry {
  readonly statusMessage: string;
  readonly headers: readonly (readonly [string, string])[];
  /** The response's Date (or when it was received), ISO 8601. */
  readonly date: string;
}

/** (door, key) order: the order of every listing and of its cursors. */
export function compareEntries(a: ListPosition, b: ListPosition): number {
  if (a.door !== b.door) return a.door < b.door ? -1 : 1;
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

/** One page of the entries of `tiers` that match `query`. */
export function listEntries(tiers: readonly DoorTier[], query: EntryListQuery, now: number): EntryPage {
  const prefixes = keyPrefixes(query.prefix);
  const after = query.after;
  const candidates: { door: CacheDoor; entry: IndexedEntry; key: string }[] = [];
  let total = 0;
  for (const { door, tier } of tiers) {
    if (query.door !== undefined && query.door !== door) continue;
    for (const entry of tier.index.all()) {
      if (!matches(entry.key, prefixes)) continue;
      total++;
      if (after === undefined || compareEntries({ door, key: entry.key }, after) > 0) candidates.push({ door, entry, key: entry.key });
    }
  }
  candidates.sort(compareEntries);
  const page = candidates.slice(0, query.limit).map((c) => describe(c.door, c.entry, now));
  return { entries: page, total, more: candidates.length > query.limit };
}

/** Every stored variant of one URL (as an operator writes it: a default port or upper case are fine). */
export async function entryDetails(tiers: readonly DoorTier[], url: string, door: CacheDoor | undefined, now: number): Promise<EntryDetail[]> {
  const key = cacheKeyFromUrl(url);
  if (key === null) return [];
  const out: EntryDetail[] = [];
  for (const t of tiers) {
    if (door !== undefined && door !== t.door) continue;
    const variants = await t.tier.variants(key);
    for (const v of variants) out.push(detail(t.door, v, t.tier.index.get(v.key)?.hits ?? 0, now));
  }
  return out.sort(compareEntries);
}

function describe(door: CacheDoor, e: IndexedEntry, now: number): ListedEntry {
  return {
    door,
    key: e.key,
    url: e.url,
    vary: varyRecord(e.vary, e.varyValues),
    status: e.status,
    size: e.size,
    ...freshness(e.info, now),
    hits: e.hits,
    tags: e.tags,
  };
}

function detail(door: CacheDoor, v: StoredResponse, hits: number, now: number): EntryDetail {
  const headers: [string, string][] = [];
  for (let i = 0; i < v.rawHeaders.length; i += 2) headers.push([v.rawHeaders[i]!, v.rawHeaders[i + 1]!]);
  return {
    door,
    key: v.key,
    url: v.url,
    vary: varyRecord(v.vary, v.varyValues),
    status: v.status,
    size: v.size,
    ...freshness(v.info, now),
    hits,
    tags: v.tags,
    statusMessage: v.statusMessage,
    headers,
    date: new Date(v.info.date).toISOString(),
  };
}

function freshness(info: FreshnessInfo | null, now: number): Pick<ListedEntry, 'age' | 'ttl' | 'state'> {
  if (info === null) return { age: null, ttl: null, state: 'unknown' };
  const ttl = ttlSeconds(info, now);
  const fresh = !info.alwaysRevalidate && info.lifetime > currentAge(info, now);
  return { age: Math.floor(currentAge(info, now) / 1000), ttl, state: fresh ? 'fresh' : 'stale' };
}

function varyRecord(names: readonly string[], values: readonly (string | null)[]): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  for (let i = 0; i < names.length; i++) out[names[i]!] = values[i] ?? null;
  return out;
}

function matches(key: string, prefixes: readonly string[]): boolean {
  if (prefixes.length === 0) return true;
  for (const p of prefixes) if (key.startsWith(p)) return true;
  return false;
}

const DEFAULT_PORTS: Readonly<Record<string, string>> = { http: '80', https: '443' };

/**
 * The key prefixes an operator's prefix stands for. With a path it is normalised as a cache key is
 * (`HTTP://Example.com:80/%7e` → `http://example.com/~`); without one it may be a partial host
 * (`http://exa`), so only case and a complete default port are normalised. Without a scheme it stands
 * for both `http://` and `https://`.
 */
export function keyPrefixes(prefix: string): string[] {
  const text = prefix.trim();
  if (text === '') return [];
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(text);
  if (scheme === null) return [...keyPrefixes(`http://${text}`), ...keyPrefixes(`https://${text}`)];
  const s = scheme[1]!.toLowerCase();
  const rest = text.slice(scheme[0].length);
  const slash = rest.indexOf('/');
  if (slash >= 0) return [cacheKeyFromUrl(text) ?? `${s}://${rest.slice(0, slash).toLowerCase()}${rest.slice(slash)}`];
  let authority = rest.toLowerCase();
  const port = DEFAULT_PORTS[s];
  if (port !== undefined && authority.endsWith(`:${port}`)) authority = `${authority.slice(0, -port.length - 1)}/`;
  return [`${s}://${authority}`];
}
