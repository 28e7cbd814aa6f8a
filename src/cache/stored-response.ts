/**
 * A stored response: what the store keeps for one variant of one URL. Immutable; updates (a 304 or
 * HEAD freshening) make a new object. Headers are kept as the raw list that is sent on a hit, already
 * cleaned (no Age, no Set-Cookie, no fields the origin excluded), with Content-Length set to the
 * body's length, so a hit only appends Age and Cache-Status.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { headersFromRaw } from '../core/hop-by-hop.js';
import type { CacheRule } from './cache-rule.js';
import { headerBytes } from '../core/header-list.js';
import { decideStorage, type FreshnessInfo, hasValidator, NEVER_STORED, type PolicyOptions, type RequestDirectives } from './shared-cache-policy.js';
import { selectingValues, variantKey } from './vary.js';

/** A body kept in a file of a disk store: large bodies are never read into memory, only streamed. */
export interface FileBody {
  readonly kind: 'file';
  readonly path: string;
  readonly length: number;
}

/**
 * A body being written into a store as it arrives (a disk store's streaming write): handed to the
 * store's set(), which commits it, once the response is complete.
 */
export interface BodyWriter {
  readonly kind: 'writer';
  /** Bytes written so far. */
  readonly length: number;
  /** Writes a chunk; a promise when the caller must wait before writing more (the disk is behind). */
  write(chunk: Buffer): Promise<void> | null;
  /** Gives up: nothing is stored, the partial file goes. */
  abort(): void;
}

export type StoredBody = Buffer | FileBody | BodyWriter;

export interface StoredResponse {
  /** `url` + "\n" + the secondary (Vary) key: unique per variant, and starts with the URL. */
  readonly key: string;
  /** The primary cache key (normalised absolute URL). */
  readonly url: string;
  /** Lower-case names from Vary, and the normalised values the storing request had for them. */
  readonly vary: readonly string[];
  readonly varyValues: readonly (string | null)[];
  readonly status: number;
  readonly statusMessage: string;
  readonly rawHeaders: readonly string[];
  /** In memory, or (disk store, large bodies) in a file. */
  readonly body: StoredBody;
  readonly tags: readonly string[];
  readonly info: FreshnessInfo;
  /** Lower-case fields never to store for this response (kept out again when headers are updated). */
  readonly omit: readonly string[];
  /** When the entry becomes useless and may be dropped (ms); far future while it can be revalidated. */
  readonly expiresAt: number;
  /** Bytes counted against the store's bound: headers, body and bookkeeping. */
  readonly size: number;
}

/** A stored response whose body is in memory (the memory store's, and the shared tier's records). */
export type InMemoryResponse = StoredResponse & { readonly body: Buffer };

export const NEVER = Number.MAX_SAFE_INTEGER;

/**
 * What an entry costs beyond its key, headers and body, counted against the store's bound: its objects,
 * arrays and strings, the store's and the index's bookkeeping. test/cache/entry-memory.test.ts measures
 * the real cost: 2.9 KB per 1 KiB response (3.1 KB, 1.2 KB more than counted, when this was 512: a
 * cache of small responses took about twice its configured size).
 */
const ENTRY_OVERHEAD = 2048;

/** Fields a 304 or HEAD response never changes in a stored response (RFC 9111 §3.2). */
const NOT_UPDATED: ReadonlySet<string> = new Set(['content-length', 'content-encoding', 'content-range', 'transfer-encoding', 'age', 'set-cookie']);

/** The URL part of a stored entry's key (`url + "\n" + variant key`). */
export function primaryKeyOf(key: string): string {
  const i = key.indexOf('\n');
  return i < 0 ? key : key.slice(0, i);
}

/** Tags from the configured tag header: space- or comma-separated. */
export function parseTags(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  const text = Array.isArray(value) ? value.join(' ') : value;
  const tags: string[] = [];
  for (const t of text.split(/[\s,]+/)) if (t !== '' && !tags.includes(t)) tags.push(t);
  return tags;
}

/** Stored headers: without Age, Set-Cookie and the omitted fields, with Content-Length matching the body. */
export function cleanHeaders(raw: readonly string[], omit: ReadonlySet<string>, status: number, bodyLength: number): string[] {
  const out: string[] = [];
  let lengthSet = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (lower === 'age' || lower === 'set-cookie' || lower === 'transfer-encoding' || omit.has(lower)) continue;
    if (lower === 'content-length') {
      if (lengthSet || status === 204 || status === 304) continue;
      out.push(name, String(bodyLength));
      lengthSet = true;
      continue;
    }
    out.push(name, raw[i + 1]!);
  }
  if (!lengthSet && status !== 204 && status !== 304) out.push('Content-Length', String(bodyLength));
  return out;
}

/** Applies the header fields of a 304 (or a HEAD 200) to stored headers (RFC 9111 §3.2). */
export function mergeHeaders(stored: readonly string[], update: readonly string[], omit: ReadonlySet<string>): string[] {
  const replaced = new Set<string>();
  for (let i = 0; i < update.length; i += 2) {
    const lower = update[i]!.toLowerCase();
    if (!NOT_UPDATED.has(lower) && !omit.has(lower)) replaced.add(lower);
  }
  if (replaced.size === 0) return stored.slice();
  const out: string[] = [];
  for (let i = 0; i < stored.length; i += 2) {
    if (!replaced.has(stored[i]!.toLowerCase())) out.push(stored[i]!, stored[i + 1]!);
  }
  for (let i = 0; i < update.length; i += 2) {
    if (replaced.has(update[i]!.toLowerCase())) out.push(update[i]!, update[i + 1]!);
  }
  return out;
}

/**
 * How long a stale response without validators is kept: it can still answer requests whose
 * max-stale allows it, or stand in for an error under stale-if-error, or be freshened by a HEAD.
 */
export const STALE_RETENTION_MS = 10 * 60 * 1000;

function expiryOf(info: FreshnessInfo): number {
  if (hasValidator(info)) return NEVER;
  const freshUntil = info.responseTime + info.lifetime - info.correctedInitialAge;
  return freshUntil + Math.max(info.staleWhileRevalidate, info.staleIfError, STALE_RETENTION_MS);
}

/**
 * The `omit` of a stored entry: one shared array for the usual case, where only the fields never stored
 * are left out (a copy per entry cost 136 bytes).
 */
function omitList(omit: ReadonlySet<string>): readonly string[] {
  return omit.size === NEVER_STORED.length && NEVER_STORED.every((f) => omit.has(f)) ? NEVER_STORED : [...omit];
}

/** What a stored response is made of; the rest (expiry, size) is derived from it by assemble(). */
type Parts = Omit<StoredResponse, 'expiresAt' | 'size'>;

export function assemble(p: Parts): StoredResponse {
  const size = ENTRY_OVERHEAD + p.key.length * 2 + headerBytes(p.rawHeaders) + p.body.length;
  return storedEntry(p, expiryOf(p.info), size);
}

/**
 * The one shape of every stored response: an object literal with every field in this order. Not a
 * spread: V8 gives an object made by `{ ...p }` at a site that has seen several shapes of `p` a hidden
 * class of its own, and that class with its descriptors cost 0.4 KB per stored entry (measured in a
 * heap snapshot of 66,700 1 KiB entries: 28.8 MB of object shapes, one per entry).
 */
export function storedEntry(p: Parts, expiresAt: number, size: number): StoredResponse {
  return {
    key: p.key,
    url: p.url,
    vary: p.vary,
    varyValues: p.varyValues,
    status: p.status,
    statusMessage: p.statusMessage,
    rawHeaders: p.rawHeaders,
    body: p.body,
    tags: p.tags,
    info: p.info,
    omit: p.omit,
    expiresAt,
    size,
  };
}

export interface NewEntryInput {
  readonly url: string;
  readonly requestHeaders: IncomingHttpHeaders;
  readonly status: number;
  readonly statusMessage: string;
  readonly rawHeaders: readonly string[];
  readonly headers: IncomingHttpHeaders;
  readonly body: StoredBody;
  readonly info: FreshnessInfo;
  readonly vary: readonly string[];
  readonly omit: ReadonlySet<string>;
  readonly tagHeader: string;
}

/** Builds the stored form of a complete response that `decideStorage` accepted. */
export function newStoredResponse(input: NewEntryInput): StoredResponse {
  const varyValues = selectingValues(input.vary, input.requestHeaders);
  return assemble({
    key: `${input.url}\n${variantKey(input.vary, varyValues)}`,
    url: input.url,
    vary: input.vary,
    varyValues,
    status: input.status,
    statusMessage: input.statusMessage,
    rawHeaders: cleanHeaders(input.rawHeaders, input.omit, input.status, input.body.length),
    body: input.body,
    tags: parseTags(input.headers[input.tagHeader]),
    info: input.info,
    omit: omitList(input.omit),
  });
}

export interface FreshenInput {
  readonly entry: StoredResponse;
  /** Headers of the 304 (or HEAD 200) response. */
  readonly update: readonly string[];
  readonly requestHeaders: IncomingHttpHeaders;
  readonly request: RequestDirectives;
  readonly requestTime: number;
  readonly responseTime: number;
  readonly tagHeader: string;
  /** The operator's rule for this response's status (its TTLs apply again), or null. */
  readonly rule: CacheRule | null;
}

/**
 * Freshens a stored response with a validating response's headers (RFC 9111 §4.3.4, §4.3.5). The
 * result answers the current request; `storable` is false when the updated headers no longer allow
 * keeping it (e.g. now no-store or private), and the stored copy must then be dropped.
 */
export function freshen(input: FreshenInput, options: PolicyOptions): { entry: StoredResponse; storable: boolean } {
  const { entry } = input;
  const omit = new Set(entry.omit);
  const merged = mergeHeaders(entry.rawHeaders, input.update, omit);
  const headers = headersFromRaw(merged);
  const decision = decideStorage(
    {
      method: 'GET',
      status: entry.status,
      requestHeaders: input.requestHeaders,
      request: input.request,
      headers,
      // The update's Age (if any) is the age information for the new freshness.
      rawHeaders: input.update,
      requestTime: input.requestTime,
      responseTime: input.responseTime,
    },
    { ...options, maxObjectSize: Number.POSITIVE_INFINITY },
    input.rule,
  );
  let info: FreshnessInfo;
  if (decision.store) {
    for (const f of decision.omit) omit.add(f);
    info = decision.info;
  } else {
    info = { ...entry.info, responseTime: input.responseTime, correctedInitialAge: 0 };
  }
  const updated = assemble({
    key: entry.key,
    url: entry.url,
    vary: entry.vary,
    varyValues: entry.varyValues,
    status: entry.status,
    statusMessage: entry.statusMessage,
    rawHeaders: cleanHeaders(merged, omit, entry.status, entry.body.length),
    body: entry.body,
    tags: parseTags(headers[input.tagHeader]),
    info,
    omit: omitList(omit),
  });
  return { entry: updated, storable: decision.store };
}
