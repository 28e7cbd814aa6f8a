/**
 * The decisions of a shared cache (RFC 9111, RFC 5861, RFC 9213): may a response be stored, how long
 * is it fresh, how old is it, may it be reused for a request, may it be served stale.
 *
 * `http-cache-semantics` gets the broad strokes right but not the details a conformance suite checks
 * (its Cache-Control parser splits quoted strings, it ignores Date for the age, it does not store
 * 5xx/unknown statuses with explicit freshness, treats `private="x"` as `private`, has no targeted
 * fields, and lets max-stale override must-revalidate). So this module decides from our own parsed
 * directives; see cache-control.ts for the parsing rules. All times are milliseconds.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { CacheDirectives, MAX_DELTA_SECONDS, parseCacheControl, parseTargetedCacheControl } from './cache-control.js';
import { firstValue } from '../core/header-list.js';
import { parseHttpDate } from './http-date.js';
import { defaultTtlFor, type CacheRule } from './cache-rule.js';
import { parseVary, type VaryNames } from './vary.js';

export interface PolicyOptions {
  /** Targeted cache-control fields this cache obeys, most specific first (lower-case), e.g. ['cdn-cache-control']. */
  readonly targetedFields: readonly string[];
  /** Cap on heuristic freshness. */
  readonly heuristicMaxMs: number;
  /** Responses with a larger Content-Length are not stored. */
  readonly maxObjectSize: number;
}

/** Statuses that are heuristically cacheable (RFC 9110 §15.1). */
export const HEURISTICALLY_CACHEABLE: ReadonlySet<number> = new Set([200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501]);

/** Fields a shared cache never keeps (a Set-Cookie is for one client; the rest are hop-by-hop). */
/** Fields never stored with a response: every stored entry's `omit` starts with these. */
export const NEVER_STORED: readonly string[] = ['set-cookie', 'proxy-authentication-info', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection', 'keep-alive', 'connection', 'te', 'trailer', 'transfer-encoding', 'upgrade'];

/** Statuses whose semantics this cache understands (for `must-understand`, RFC 9111 §5.2.2.3). */
const UNDERSTOOD: ReadonlySet<number> = new Set([
  200, 203, 204, 300, 301, 302, 303, 307, 308, 400, 403, 404, 405, 410, 414, 421, 451, 500, 501, 502, 503, 504,
]);

/** Everything about a stored response's freshness that is fixed when it is stored (or freshened). */
export interface FreshnessInfo {
  /** corrected_initial_age (RFC 9111 §4.2.3). */
  readonly correctedInitialAge: number;
  readonly responseTime: number;
  /** freshness_lifetime (RFC 9111 §4.2.1). */
  readonly lifetime: number;
  readonly heuristic: boolean;
  /** Must be validated before every reuse (`no-cache`). */
  readonly alwaysRevalidate: boolean;
  /** Must never be served stale: must-revalidate, proxy-revalidate, s-maxage or no-cache. */
  readonly noStale: boolean;
  /** RFC 5861 windows (0 when absent). */
  readonly staleWhileRevalidate: number;
  readonly staleIfError: number;
  readonly etag: string | null;
  readonly lastModified: string | null;
  /** date_value: the Date header, or the response time when it is absent or invalid. */
  readonly date: number;
}

/** The directives that govern this cache for a response: the first valid targeted field, else Cache-Control. */
export function responseDirectives(headers: IncomingHttpHeaders, targetedFields: readonly string[]): { cc: CacheDirectives; targeted: boolean } {
  for (const name of targetedFields) {
    const value = headers[name];
    if (value === undefined) continue;
    const parsed = parseTargetedCacheControl(value);
    if (parsed !== null) return { cc: parsed, targeted: true };
  }
  return { cc: parseCacheControl(headers['cache-control']), targeted: false };
}

/**
 * The Age header value in seconds. Only the first field line, and in it the first list member, counts
 * (parameters after ";" are ignored); a value that is not a non-negative integer is ignored (0).
 */
export function ageValue(rawHeaders: readonly string[]): number {
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    if (name.length !== 3 || name.toLowerCase() !== 'age') continue;
    let v = rawHeaders[i + 1]!;
    const comma = v.indexOf(',');
    if (comma >= 0) v = v.slice(0, comma);
    const semi = v.indexOf(';');
    if (semi >= 0) v = v.slice(0, semi);
    v = v.trim();
    return AGE_VALUE.test(v) ? Math.min(Number(v), MAX_DELTA_SECONDS) : 0;
  }
  return 0;
}

const AGE_VALUE = /^\d+$/;

interface FreshnessInput {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly rawHeaders: readonly string[];
  readonly cc: CacheDirectives;
  readonly requestTime: number;
  readonly responseTime: number;
}

/**
 * Computes the freshness of a response as received (or as freshened by a 304/HEAD). An operator's rule
 * gives a lifetime to a response that carries none (instead of the heuristic), and clamps any lifetime.
 */
export function computeFreshness(input: FreshnessInput, options: PolicyOptions, rule: CacheRule | null = null): FreshnessInfo {
  const { headers, cc, requestTime, responseTime } = input;
  const parsedDate = parseHttpDate(firstValue(headers.date));
  const date = parsedDate ?? responseTime;
  const apparentAge = Math.max(0, responseTime - date);
  const responseDelay = Math.max(0, responseTime - requestTime);
  const correctedAgeValue = ageValue(input.rawHeaders) * 1000 + responseDelay;
  const correctedInitialAge = Math.max(apparentAge, correctedAgeValue);

  const lastModifiedRaw = firstValue(headers['last-modified']) ?? null;
  let lifetime = 0;
  let heuristic = false;
  const sMaxAge = cc.seconds('s-maxage');
  const maxAge = cc.seconds('max-age');
  if (sMaxAge !== undefined) {
    lifetime = Number.isNaN(sMaxAge) ? 0 : sMaxAge * 1000;
  } else if (maxAge !== undefined) {
    lifetime = Number.isNaN(maxAge) ? 0 : maxAge * 1000;
  } else if (headers.expires !== undefined) {
    const expires = parseHttpDate(firstValue(headers.expires));
    lifetime = expires === null ? 0 : Math.max(0, expires - date);
  } else if (rule !== null && defaultTtlFor(rule, input.status) !== null) {
    lifetime = defaultTtlFor(rule, input.status)!;
  } else if (HEURISTICALLY_CACHEABLE.has(input.status) || cc.has('public')) {
    const lastModified = parseHttpDate(lastModifiedRaw);
    if (lastModified !== null && lastModified < date) {
      lifetime = Math.min(options.heuristicMaxMs, Math.floor((date - lastModified) / 10));
      heuristic = true;
    }
  }
  if (rule !== null) {
    if (rule.minTtlMs !== null && lifetime < rule.minTtlMs) lifetime = rule.minTtlMs;
    if (rule.maxTtlMs !== null && lifetime > rule.maxTtlMs) lifetime = rule.maxTtlMs;
  }

  const noCache = cc.has('no-cache') && cc.fieldNames('no-cache') === null;
  const swr = cc.seconds('stale-while-revalidate');
  const sie = cc.seconds('stale-if-error');
  const etag = firstValue(headers.etag)?.trim() || null;
  return {
    correctedInitialAge,
    responseTime,
    lifetime,
    heuristic,
    alwaysRevalidate: noCache,
    noStale: noCache || cc.has('must-revalidate') || cc.has('proxy-revalidate') || cc.has('s-maxage'),
    staleWhileRevalidate: swr === undefined || Number.isNaN(swr) ? 0 : swr * 1000,
    staleIfError: sie === undefined || Number.isNaN(sie) ? 0 : sie * 1000,
    etag,
    lastModified: lastModifiedRaw,
    date,
  };
}

/** current_age (RFC 9111 §4.2.3). */
export function currentAge(info: FreshnessInfo, now: number): number {
  return info.correctedInitialAge + Math.max(0, now - info.responseTime);
}

/** True when the response has something a conditional request can use. */
export function hasValidator(info: FreshnessInfo): boolean {
  return info.etag !== null || info.lastModified !== null;
}

// ---------------------------------------------------------------------------------------------
// Storing (RFC 9111 §3)

export type StorageDecision =
  | { readonly store: false; readonly detail: string }
  | {
      readonly store: true;
      readonly info: FreshnessInfo;
      readonly vary: readonly string[];
      /** Lower-case fields to leave out of the stored copy (Set-Cookie, `private="…"`, `no-cache="…"`). */
      readonly omit: ReadonlySet<string>;
      /** The operator's rule that applied to this response (named in Cache-Status), or null. */
      readonly rule: CacheRule | null;
    };

export interface StorageInput {
  readonly method: string;
  readonly status: number;
  readonly requestHeaders: IncomingHttpHeaders;
  readonly request: RequestDirectives;
  readonly headers: IncomingHttpHeaders;
  readonly rawHeaders: readonly string[];
  readonly requestTime: number;
  readonly responseTime: number;
}

/**
 * Decides whether a response to a GET may be stored by this shared cache, and how. `rule` is the
 * operator's rule for this response (cache-rule.ts): its TTLs, and what it says to store anyway.
 */
export function decideStorage(input: StorageInput, options: PolicyOptions, rule: CacheRule | null = null): StorageDecision {
  const { status, headers } = input;
  if (input.method !== 'GET') return { store: false, detail: 'method' };
  if (status < 200) return { store: false, detail: 'interim' };
  if (status === 206) return { store: false, detail: 'partial' };
  if (status === 304) return { store: false, detail: 'not-modified' };
  if (input.request.noStore) return { store: false, detail: 'request-no-store' };

  const { cc } = responseDirectives(headers, options.targetedFields);
  if (cc.has('must-understand')) {
    if (!UNDERSTOOD.has(status)) return { store: false, detail: 'must-understand' };
  } else if (cc.has('no-store')) {
    return { store: false, detail: 'no-store' };
  }

  const omit = new Set<string>(NEVER_STORED);
  const privateFields = cc.fieldNames('private');
  if (privateFields === null && rule?.cachePrivate !== true) return { store: false, detail: 'private' };
  if (privateFields) for (const f of privateFields) omit.add(f);
  const noCacheFields = cc.fieldNames('no-cache');
  if (noCacheFields) for (const f of noCacheFields) omit.add(f);

  const isPublic = cc.has('public');
  if (input.requestHeaders.authorization !== undefined && !isPublic && !cc.has('must-revalidate') && !cc.has('s-maxage')) {
    return { store: false, detail: 'auth' };
  }

  const vary: VaryNames = parseVary(headers.vary);
  if (vary === '*') return { store: false, detail: 'vary-star' };

  const explicit = cc.has('s-maxage') || cc.has('max-age') || headers.expires !== undefined;
  const ruleTtl = rule === null || explicit ? null : defaultTtlFor(rule, status);
  if (!explicit && !isPublic && !HEURISTICALLY_CACHEABLE.has(status) && ruleTtl === null) return { store: false, detail: 'no-freshness' };

  const contentLength = firstValue(headers['content-length']);
  if (contentLength !== undefined && Number(contentLength) > (rule?.maxObjectSize ?? options.maxObjectSize)) return { store: false, detail: 'too-big' };

  // A Set-Cookie is for one client: unless the origin says the response is public (or names
  // Set-Cookie in private="…" / no-cache="…", asking for it to be left out), the response is not shared.
  // (A rule's cache_set_cookie stores it anyway; Set-Cookie is never part of a stored response.)
  if (headers['set-cookie'] !== undefined && !isPublic && !(privateFields?.includes('set-cookie') || noCacheFields?.includes('set-cookie')) && rule?.cacheSetCookie !== true) {
    return { store: false, detail: 'set-cookie' };
  }

  const info = computeFreshness(
    { status, headers, rawHeaders: input.rawHeaders, cc, requestTime: input.requestTime, responseTime: input.responseTime },
    options,
    rule,
  );
  const validator = hasValidator(info);
  if (info.alwaysRevalidate && !validator) return { store: false, detail: 'no-cache' };
  const freshFor = info.lifetime - info.correctedInitialAge;
  if (freshFor <= 0 && !validator && (info.noStale || (info.staleIfError <= -freshFor && info.staleWhileRevalidate <= -freshFor))) {
    return { store: false, detail: 'no-freshness' };
  }
  const keyed = rule === null || rule.keyFields.length === 0 ? vary : [...vary, ...rule.keyFields.filter((f) => !vary.includes(f))];
  return { store: true, info, vary: keyed, omit, rule };
}

// ---------------------------------------------------------------------------------------------
// Reusing (RFC 9111 §4, §5.2.1)

export interface RequestDirectives {
  readonly noCache: boolean;
  readonly noStore: boolean;
  readonly onlyIfCached: boolean;
  /** Seconds; undefined when absent or invalid. */
  readonly maxAge: number | undefined;
  /** Seconds; Infinity for a bare `max-stale`. */
  readonly maxStale: number | undefined;
  readonly minFresh: number | undefined;
  readonly staleIfError: number | undefined;
}

const NO_REQUEST_DIRECTIVES: RequestDirectives = Object.freeze({
  noCache: false,
  noStore: false,
  onlyIfCached: false,
  maxAge: undefined,
  maxStale: undefined,
  minFresh: undefined,
  staleIfError: undefined,
});

function validSeconds(n: number | undefined): number | undefined {
  return n === undefined || Number.isNaN(n) ? undefined : n;
}

/** Request directives; `Pragma: no-cache` counts only when the request has no Cache-Control (RFC 9111 §5.4). */
export function requestDirectives(headers: IncomingHttpHeaders): RequestDirectives {
  const value = headers['cache-control'];
  if (value === undefined) {
    const pragma = headers.pragma;
    if (pragma !== undefined && /(^|,)\s*no-cache\s*(,|$)/i.test(pragma)) return { ...NO_REQUEST_DIRECTIVES, noCache: true };
    return NO_REQUEST_DIRECTIVES;
  }
  const cc = parseCacheControl(value);
  if (cc.size === 0) return NO_REQUEST_DIRECTIVES;
  const maxStaleArg = cc.argument('max-stale');
  return {
    noCache: cc.has('no-cache'),
    noStore: cc.has('no-store'),
    onlyIfCached: cc.has('only-if-cached'),
    maxAge: validSeconds(cc.seconds('max-age')),
    maxStale: maxStaleArg === undefined ? undefined : maxStaleArg === null ? Number.POSITIVE_INFINITY : validSeconds(cc.seconds('max-stale')),
    minFresh: validSeconds(cc.seconds('min-fresh')),
    staleIfError: validSeconds(cc.seconds('stale-if-error')),
  };
}

/**
 * How a stored response may be used for a request:
 * - 'fresh': serve it;
 * - 'stale-allowed': serve it stale (the request's max-stale allows it);
 * - 'stale-while-revalidate': serve it stale and revalidate in the background;
 * - 'revalidate-request': it would do, but the request's directives ask for validation;
 * - 'revalidate': it must be validated (stale, or no-cache).
 */
export type ReuseVerdict = 'fresh' | 'stale-allowed' | 'stale-while-revalidate' | 'revalidate-request' | 'revalidate';

export function reuseVerdict(info: FreshnessInfo, req: RequestDirectives, now: number): ReuseVerdict {
  if (req.noCache) return 'revalidate-request';
  if (info.alwaysRevalidate) return 'revalidate';
  const age = currentAge(info, now);
  const ttl = info.lifetime - age;
  if (ttl > 0) {
    if (req.maxAge !== undefined && (req.maxAge === 0 || age > req.maxAge * 1000)) {
      if (req.maxStale === undefined) return 'revalidate-request';
    }
    if (req.minFresh !== undefined && ttl < req.minFresh * 1000) return 'revalidate-request';
    return 'fresh';
  }
  if (info.noStale) return 'revalidate';
  const staleness = -ttl;
  if (req.maxStale !== undefined && staleness <= req.maxStale * 1000 && req.minFresh === undefined) return 'stale-allowed';
  if (staleness < info.staleWhileRevalidate && req.maxAge === undefined && req.minFresh === undefined) return 'stale-while-revalidate';
  return 'revalidate';
}

/** Whether a stale stored response may stand in for an error (RFC 5861 §4, RFC 9111 §4.2.4). */
export function mayServeStaleOnError(info: FreshnessInfo, req: RequestDirectives, now: number): boolean {
  if (info.noStale) return false;
  const staleness = currentAge(info, now) - info.lifetime;
  if (staleness <= 0) return !req.noCache;
  if (info.staleIfError > 0 && staleness <= info.staleIfError) return true;
  if (req.staleIfError !== undefined && staleness <= req.staleIfError * 1000) return true;
  if (req.maxStale !== undefined && staleness <= req.maxStale * 1000) return true;
  return false;
}

/** Remaining freshness in whole seconds (negative when stale), for Cache-Status ttl. */
export function ttlSeconds(info: FreshnessInfo, now: number): number {
  return Math.round((info.lifetime - currentAge(info, now)) / 1000);
}
