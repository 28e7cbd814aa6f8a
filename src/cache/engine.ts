/**
 * The shared HTTP cache engine (RFC 9111): every request of a cache-enabled route goes through
 * `handle()`, which answers from the store, revalidates, or forwards, and stores what it may on the way.
 *
 * - GET/HEAD (src/cache/lookup.ts): lookup by URL, variant selection by Vary, freshness and request
 *   directives, conditional revalidation with 304 merging (revalidate.ts), client conditionals and
 *   Range answered from stored responses (serve.ts), stale-while-revalidate (background-revalidation.ts),
 *   stale-if-error, request collapsing (collapse.ts), filling while relaying (fill.ts).
 * - Other methods are forwarded; a successful unsafe one invalidates its target and same-origin
 *   Location / Content-Location (invalidate.ts).
 * - Every reply carries Cache-Status (RFC 9211). No Warning is ever added, the origin's Date is kept.
 *
 * The engine knows the store only through its tiers: its own (local-tier.ts) and, optionally, one shared
 * with other processes and machines (shared-tier.ts, on Redis); both are made by its owner.
 */
import type { Logger } from '../core/log.js';
import { SAFE_METHODS, type Reply, type UpstreamFetch } from '../core/messages.js';
import { BackgroundRevalidations } from './background-revalidation.js';
import { cacheKeyFromUrl } from './cache-key.js';
import { UseCounter } from './cache-rule.js';
import { Collapser } from './collapse.js';
import type { CacheContext } from './context.js';
import { forwardUnsafe } from './invalidate.js';
import type { LocalTier } from './local-tier.js';
import { Lookup } from './lookup.js';
import { forwardUncached } from './pass-through.js';
import { type PolicyOptions, type RequestDirectives, requestDirectives } from './shared-cache-policy.js';
import type { CacheEngine, CacheRequest, CacheStats } from './types.js';
import type { SharedTier } from './shared-tier.js';
import { UncacheableMemo } from './uncacheable-memo.js';

/** What the engine is told: the storage policy and the tag header. */
export interface CacheSettings extends PolicyOptions {
  /** Response header whose space- or comma-separated tags can be purged together. */
  readonly tagHeader: string;
  /** Fraction of a response after which it is finished into the cache when its client leaves (Squid's quick_abort_pct). */
  readonly quickAbort: number;
}

export interface HttpCacheOptions {
  readonly settings: CacheSettings;
  readonly tier: LocalTier;
  /** A tier shared with other processes and machines (Redis), behind the local one. */
  readonly shared?: SharedTier | null;
  readonly log: Logger;
  /** Clock (ms since the epoch); Date.now by default. */
  readonly now?: () => number;
  /** How long a request waits for a concurrent request to the same URL before going upstream itself. */
  readonly collapseTimeoutMs?: number;
  /** Told of every URL an unsafe request invalidated (the other workers' caches drop it too). */
  readonly onInvalidate?: (url: string) => Promise<void>;
}

/** A client's reload (no-cache, max-age=0) taken out, for a rule with ignore_client_no_cache (Squid's ignore-reload). */
function withoutReload(directives: RequestDirectives): RequestDirectives {
  if (!directives.noCache && directives.maxAge !== 0) return directives;
  return { ...directives, noCache: false, maxAge: directives.maxAge === 0 ? undefined : directives.maxAge };
}

/** How long requests for a URL whose response could not be stored skip request collapsing (Varnish: 120 s). */
const UNCACHEABLE_MEMO_MS = 30_000;
const UNCACHEABLE_MEMO_ENTRIES = 10_000;

export class HttpCache implements CacheEngine {
  private readonly ctx: CacheContext;
  private readonly lookup: Lookup;

  constructor(options: HttpCacheOptions) {
    const now = options.now ?? Date.now;
    const { settings } = options;
    this.ctx = {
      tier: options.tier,
      shared: options.shared ?? null,
      log: options.log,
      now,
      policy: { targetedFields: settings.targetedFields.map((f) => f.toLowerCase()), heuristicMaxMs: settings.heuristicMaxMs, maxObjectSize: settings.maxObjectSize },
      tagHeader: settings.tagHeader.toLowerCase(),
      maxObjectSize: settings.maxObjectSize,
      quickAbort: settings.quickAbort,
      collapser: new Collapser(options.collapseTimeoutMs ?? 10_000),
      uncacheable: new UncacheableMemo(UNCACHEABLE_MEMO_MS, UNCACHEABLE_MEMO_ENTRIES, now),
      counters: { hits: 0, misses: 0, stores: 0 },
      uses: new UseCounter(),
      onInvalidate: options.onInvalidate,
    };
    this.lookup = new Lookup(this.ctx, new BackgroundRevalidations(this.ctx));
    // Purges made by another instance: drop the same entries here (the shared tier has already).
    this.ctx.shared?.onPurge((notice) => {
      const tier = this.ctx.tier;
      if (notice.kind === 'url') return tier.deleteUrl(notice.value).then(() => undefined);
      if (notice.kind === 'tag') return tier.purgeTag(notice.value).then(() => undefined);
      // A prefix, or '' for everything (purges may have been missed while the bus was down).
      return tier.purgePrefix(notice.kind === 'all' ? '' : notice.value).then(() => undefined);
    });
  }

  /**
   * A reply from a store that answers synchronously (the memory store) comes back as it is, not in a
   * promise, so that the pipeline writes a hit in the same tick; failures are always rejections.
   */
  handle(req: CacheRequest, fetch: UpstreamFetch): Reply | Promise<Reply> {
    const method = req.method;
    const rule = req.rules?.[0];
    if (rule?.bypass) return forwardUncached(fetch, 'bypass', rule.detail);
    if (method === 'GET' || method === 'HEAD') {
      try {
        const directives = requestDirectives(req.headers);
        return this.lookup.lookup(req, fetch, rule?.ignoreClientNoCache ? withoutReload(directives) : directives, true);
      } catch (err) {
        return Promise.reject(err);
      }
    }
    if (SAFE_METHODS.has(method)) return forwardUncached(fetch, 'method');
    return forwardUnsafe(this.ctx, req, fetch);
  }

  /**
   * Drops every stored variant of an absolute URL, here and — with a shared tier — in it and in every
   * other instance (resolved once they all have). Answers how many entries went, in both tiers.
   */
  async purgeUrl(url: string): Promise<number> {
    const key = cacheKeyFromUrl(url);
    if (key === null) return 0;
    const [local, shared] = await Promise.all([this.ctx.tier.deleteUrl(key), this.ctx.shared?.purgeUrl(key)]);
    return local + (shared?.deleted ?? 0);
  }

  /** Drops every entry whose URL starts with `prefix` (an absolute URL prefix, e.g. `http://host/static/`). */
  async purgePrefix(prefix: string): Promise<number> {
    const normalised = cacheKeyFromUrl(prefix) ?? prefix;
    const [local, shared] = await Promise.all([this.ctx.tier.purgePrefix(normalised), this.ctx.shared?.purgePrefix(normalised)]);
    return local + (shared?.deleted ?? 0);
  }

  /** Drops every entry tagged `tag` (from the configured tag header). */
  async purgeTag(tag: string): Promise<number> {
    const [local, shared] = await Promise.all([this.ctx.tier.purgeTag(tag), this.ctx.shared?.purgeTag(tag)]);
    return local + (shared?.deleted ?? 0);
  }

  stats(): CacheStats {
    const s = this.ctx.tier.stats();
    const { hits, misses, stores } = this.ctx.counters;
    return { entries: s.entries, bytes: s.bytes, maxBytes: s.maxBytes, hits, misses, stores, evictions: s.evictions, shared: this.ctx.shared?.state() ?? null };
  }

  async close(): Promise<void> {
    this.ctx.collapser.releaseAll();
    await Promise.all([this.ctx.tier.close(), this.ctx.shared?.close()]);
  }
}
