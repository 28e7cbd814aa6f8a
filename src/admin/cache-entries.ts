/**
 * GET /api/cache/entries and GET /api/cache/entry: the query parameters, the cursor, and — with
 * `--workers N`, where every worker has a cache of its own — one listing out of every worker's page.
 *
 * Workers are merged by entry (door + URL + Vary'd values): a variant that several workers hold is one
 * row with `copies` (how many hold it), `hits` added up, and the age and ttl of the oldest copy (the
 * largest age, the smallest ttl). Each worker answers the first `limit` entries after the cursor in the
 * same order, so the first `limit` merged entries are exact. One URL's variants are listed per worker
 * (`worker` is its pid): copies can differ (each worker fetched its own).
 */
import type { CacheDoor, EntryDetail, EntryListQuery, EntryPage, ListedEntry, ListPosition } from '../cache/entry-listing.js';
import { HttpProblem } from './http-io.js';

export const DEFAULT_LIMIT = 100;
export const MAX_LIMIT = 1000;

/** A listed entry as the API shows it (without the internal key). */
export type EntryRow = Omit<ListedEntry, 'key'> & { readonly copies: number };

export interface EntriesAnswer {
  readonly prefix: string;
  readonly door: CacheDoor | null;
  readonly limit: number;
  /** Matching entries in all (with workers: every worker's copies counted). */
  readonly total: number;
  readonly entries: readonly EntryRow[];
  /** Pass as `cursor` for the next page; null on the last page. */
  readonly next: string | null;
  /** Processes whose cache is listed. */
  readonly workers: number;
  /** Set when a shared tier is configured: its entries are not listed. */
  readonly sharedTier?: string;
}

/** The listing query from `?prefix=&door=&limit=&cursor=`. */
export function entriesQuery(params: URLSearchParams): EntryListQuery {
  if (params.has('offset')) throw new HttpProblem(400, 'offset: not supported; page with cursor=… (the "next" of the previous page), which stays right while entries come and go');
  const limitText = params.get('limit');
  let limit = DEFAULT_LIMIT;
  if (limitText !== null) {
    limit = /^\d+$/.test(limitText) ? Number(limitText) : NaN;
    if (!(limit >= 1 && limit <= MAX_LIMIT)) throw new HttpProblem(400, `limit: expected a whole number from 1 to ${MAX_LIMIT}, got "${limitText}"`);
  }
  const cursor = params.get('cursor');
  return { prefix: params.get('prefix') ?? '', door: doorParam(params), limit, after: cursor === null || cursor === '' ? undefined : decodeCursor(cursor) };
}

export function doorParam(params: URLSearchParams): CacheDoor | undefined {
  const door = params.get('door');
  if (door === null || door === '') return undefined;
  if (door !== 'reverse' && door !== 'forward') throw new HttpProblem(400, `door: expected "reverse" or "forward", got "${door}"`);
  return door;
}

/** One listing out of every process's page (see the top of this file). */
export function mergeEntryPages(pages: readonly EntryPage[], query: EntryListQuery): Omit<EntriesAnswer, 'sharedTier'> {
  const byKey = new Map<string, { entry: ListedEntry; copies: number; hits: number; age: number | null; ttl: number | null }>();
  for (const page of pages) {
    for (const e of page.entries) {
      const id = `${e.door}\u0000${e.key}`;
      const seen = byKey.get(id);
      if (seen === undefined) {
        byKey.set(id, { entry: e, copies: 1, hits: e.hits, age: e.age, ttl: e.ttl });
        continue;
      }
      seen.copies++;
      seen.hits += e.hits;
      if (e.age !== null && (seen.age === null || e.age > seen.age)) seen.age = e.age;
      if (e.ttl !== null && (seen.ttl === null || e.ttl < seen.ttl)) {
        seen.ttl = e.ttl;
        seen.entry = { ...seen.entry, state: e.state };
      }
    }
  }
  const merged = [...byKey.values()].sort((a, b) => compare(a.entry, b.entry));
  const page = merged.slice(0, query.limit);
  const more = merged.length > query.limit || pages.some((p) => p.more);
  const last = page.at(-1)?.entry;
  return {
    prefix: query.prefix,
    door: query.door ?? null,
    limit: query.limit,
    total: pages.reduce((n, p) => n + p.total, 0),
    entries: page.map(({ entry, copies, hits, age, ttl }) => {
      const { key: _key, ...row } = entry;
      return { ...row, age, ttl, hits, copies };
    }),
    next: more && last !== undefined ? encodeCursor(last) : null,
    workers: pages.length,
  };
}

/** One URL's variants from every process, by door, then key, then worker. */
export function mergeEntryDetails(answers: readonly (readonly (EntryDetail & { readonly worker: number })[])[]): Omit<EntryDetail & { worker: number }, 'key'>[] {
  return answers
    .flat()
    .sort((a, b) => compare(a, b) || a.worker - b.worker)
    .map(({ key: _key, ...rest }) => rest);
}

function compare(a: ListPosition, b: ListPosition): number {
  if (a.door !== b.door) return a.door < b.door ? -1 : 1;
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

/** The cursor is the last entry's position, opaque to clients (base64url of JSON). */
export function encodeCursor(position: ListPosition): string {
  return Buffer.from(JSON.stringify([position.door, position.key]), 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string): ListPosition {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(value) && value.length === 2 && (value[0] === 'reverse' || value[0] === 'forward') && typeof value[1] === 'string') {
      return { door: value[0], key: value[1] };
    }
  } catch {
    // below
  }
  throw new HttpProblem(400, 'cursor: expected the "next" value of a previous page');
}
