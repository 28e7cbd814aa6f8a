/**
 * Operators' cache rules (`cache.rules[]`), as the engine applies them: what nginx users write as
 * proxy_cache_valid / proxy_cache_key / proxy_cache_bypass / proxy_cache_min_uses, Squid users as
 * refresh_pattern, Varnish users in vcl_recv / vcl_backend_response. Matching a request against the
 * rules' conditions is the pipeline's (src/pipeline/cache-rules.ts); the engine is handed the rules
 * whose request conditions matched, in order, and:
 *
 * - takes the request's part (bypass, the client's reload, the key) from the first of them;
 * - takes the response's part (TTLs, what may be stored anyway, size, min_uses) from the first of them
 *   whose `status` condition (if any) the response meets.
 *
 * RFC 9111 still decides what is storable, except where an override says what it breaks
 * (`cache_private`, `cache_set_cookie`); a rule that decided is named in Cache-Status (`detail=rule:NAME`).
 */
import type { QueryKey } from './cache-key.js';

export interface CacheRule {
  /** `"debs" (cache.rules[0])`: how a person refers to the rule. */
  readonly label: string;
  /** The Cache-Status detail token when this rule decided: `rule:debs`, or `rule:0` without a name. */
  readonly detail: string;
  /** The response statuses the response part applies to; null for any. */
  readonly statuses: ReadonlySet<number> | null;
  /** Neither look up nor store. */
  readonly bypass: boolean;
  /** A client's reload (no-cache, max-age=0, Pragma: no-cache) does not skip a fresh stored response. */
  readonly ignoreClientNoCache: boolean;
  /** Freshness for responses that carry none: one lifetime, or per status (ms). */
  readonly defaultTtlMs: number | ReadonlyMap<number, number> | null;
  /** Clamps on the freshness lifetime, whatever its source (ms). */
  readonly minTtlMs: number | null;
  readonly maxTtlMs: number | null;
  /** Store responses marked `private` anyway. */
  readonly cachePrivate: boolean;
  /** Store responses with Set-Cookie anyway (the Set-Cookie is never stored). */
  readonly cacheSetCookie: boolean;
  /** Largest response stored under this rule (bytes), instead of cache.max_object_size. */
  readonly maxObjectSize: number | null;
  /** Store only from the Nth request for the URL on (1: the first). */
  readonly minUses: number;
  /** Request headers and cookies that select a stored response, on top of the response's Vary. */
  readonly keyFields: readonly string[];
  /** What of the query is part of the key (null: all of it, as sent). */
  readonly query: QueryKey | null;
}

export const NO_RULES: readonly CacheRule[] = Object.freeze([]);

/** The rule whose response part applies to a response with `status`, or null. */
export function ruleForStatus(rules: readonly CacheRule[], status: number): CacheRule | null {
  for (const rule of rules) if (rule.statuses === null || rule.statuses.has(status)) return rule;
  return null;
}

/** The rule's default lifetime for `status`, or null when it has none for it. */
export function defaultTtlFor(rule: CacheRule, status: number): number | null {
  const ttl = rule.defaultTtlMs;
  if (ttl === null || typeof ttl === 'number') return ttl;
  return ttl.get(status) ?? null;
}

/** The key field name that selects on cookie `name` (see vary.ts selectingValue). */
export function cookieKeyField(name: string): string {
  return `cookie:${name}`;
}

/**
 * How many requests each URL has had, for `min_uses` (nginx's proxy_cache_min_uses): bounded, the
 * least recently counted URL forgotten first.
 */
export class UseCounter {
  private readonly counts = new Map<string, number>();

  constructor(private readonly max = 100_000) {}

  /** Counts one more request for `url`; returns how many there have been. */
  count(url: string): number {
    const n = (this.counts.get(url) ?? 0) + 1;
    this.counts.delete(url);
    if (this.counts.size >= this.max) this.counts.delete(this.counts.keys().next().value!);
    this.counts.set(url, n);
    return n;
  }
}
