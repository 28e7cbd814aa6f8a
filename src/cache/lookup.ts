/**
 * GET and HEAD: look the URL up, select the variant (Vary), and decide from its freshness and the
 * request's directives: serve it, serve it stale while revalidating in the background, revalidate it,
 * or go upstream — waiting first for a request already fetching the same URL (collapsing).
 *
 * Answers synchronously when the store does (a memory hit costs no promise); on that path an
 * only-if-cached miss throws (the engine turns it into a rejection).
 */
import { ProxyError } from '../core/errors.js';
import type { Reply, UpstreamFetch } from '../core/messages.js';
import type { BackgroundRevalidations } from './background-revalidation.js';
import { cacheStatus, type ForwardReason } from './cache-status.js';
import type { Leader } from './collapse.js';
import { hasOriginOnlyPreconditions } from './conditional-request.js';
import type { CacheContext } from './context.js';
import { fetchAndFill } from './fill.js';
import { forwardUncached } from './pass-through.js';
import { revalidate } from './revalidate.js';
import { serveStored } from './serve.js';
import { type RequestDirectives, reuseVerdict, ttlSeconds } from './shared-cache-policy.js';
import type { StoredResponse } from './stored-response.js';
import type { CacheRequest } from './types.js';
import { varyMatches } from './vary.js';

export class Lookup {
  constructor(
    private readonly ctx: CacheContext,
    private readonly background: BackgroundRevalidations,
  ) {}

  /** `mayWait` is false for a request that has already waited for another one's fetch. */
  lookup(req: CacheRequest, fetch: UpstreamFetch, directives: RequestDirectives, mayWait: boolean, collapsedFrom?: ForwardReason): Reply | Promise<Reply> {
    if (directives.noStore) return forwardUncached(fetch, 'request', 'request-no-store');
    if (hasOriginOnlyPreconditions(req.headers)) return fetchAndFill(this.ctx, req, fetch, directives, 'request', null);
    const variants = this.readVariants(req.url);
    if (variants instanceof Promise) return variants.then((v) => this.answer(req, fetch, directives, v, mayWait, collapsedFrom));
    return this.answer(req, fetch, directives, variants, mayWait, collapsedFrom);
  }

  /** A store that cannot be read is a miss, never a failed request. */
  private readVariants(url: string): StoredResponse[] | Promise<StoredResponse[]> {
    try {
      const variants = this.ctx.tier.variants(url);
      return variants instanceof Promise ? variants.catch((err: unknown) => this.readFailed(err, url)) : variants;
    } catch (err) {
      return this.readFailed(err, url);
    }
  }

  private readFailed(err: unknown, url: string): StoredResponse[] {
    this.ctx.log.warn({ err, url }, 'cache store read failed');
    return [];
  }

  /** Answers from the stored variants of the URL: a stored response, a revalidation, or the upstream. */
  private answer(
    req: CacheRequest,
    fetch: UpstreamFetch,
    directives: RequestDirectives,
    variants: readonly StoredResponse[],
    mayWait: boolean,
    collapsedFrom: ForwardReason | undefined,
  ): Reply | Promise<Reply> {
    const { ctx } = this;
    const entry = selectVariant(variants, req.headers);
    const now = ctx.now();
    if (entry === undefined) {
      const fwd: ForwardReason = variants.length > 0 ? 'vary-miss' : 'uri-miss';
      if (directives.onlyIfCached) throw onlyIfCachedMiss(fwd);
      const leader = mayWait ? this.leaderToWaitFor(req, directives) : undefined;
      if (leader !== undefined) return this.lookupAfter(leader, req, fetch, directives, fwd);
      ctx.counters.misses++;
      return fetchAndFill(ctx, req, fetch, directives, fwd, null);
    }

    const verdict = reuseVerdict(entry.info, directives, now);
    switch (verdict) {
      case 'fresh':
      case 'stale-allowed':
        ctx.counters.hits++;
        return serveStored(req, entry, now, {
          result: verdict === 'fresh' ? 'hit' : 'stale',
          status: { hit: true, ttl: ttlSeconds(entry.info, now) },
          collapsedFrom,
        });
      case 'stale-while-revalidate':
        ctx.counters.hits++;
        this.background.start(req, fetch, entry, directives);
        return serveStored(req, entry, now, {
          result: 'stale',
          status: { hit: true, ttl: ttlSeconds(entry.info, now), detail: 'stale-while-revalidate' },
          collapsedFrom,
        });
      case 'revalidate-request':
      case 'revalidate': {
        if (directives.onlyIfCached) throw onlyIfCachedMiss('stale');
        const leader = verdict === 'revalidate' && mayWait ? this.leaderToWaitFor(req, directives) : undefined;
        if (leader !== undefined) return this.lookupAfter(leader, req, fetch, directives, 'stale');
        ctx.counters.misses++;
        return revalidate(ctx, req, fetch, directives, entry, variants, verdict === 'revalidate' ? 'stale' : 'request');
      }
    }
  }

  /** The request already fetching this URL, when this one may wait for it. */
  private leaderToWaitFor(req: CacheRequest, directives: RequestDirectives): Leader | undefined {
    if (req.method !== 'GET' || directives.noCache || this.ctx.uncacheable.has(req.url)) return undefined;
    return this.ctx.collapser.leaderOf(req.url);
  }

  /** Waits for the request that is fetching the URL, then looks again (without waiting a second time). */
  private async lookupAfter(leader: Leader, req: CacheRequest, fetch: UpstreamFetch, directives: RequestDirectives, fwd: ForwardReason): Promise<Reply> {
    await this.ctx.collapser.waitFor(leader);
    return this.lookup(req, fetch, directives, false, fwd);
  }
}

/** The most recent stored response whose Vary'd request headers match (RFC 9111 §4.1). */
function selectVariant(variants: readonly StoredResponse[], headers: CacheRequest['headers']): StoredResponse | undefined {
  let best: StoredResponse | undefined;
  for (const v of variants) {
    if (v.vary.length > 0 && !varyMatches(v.vary, v.varyValues, headers)) continue;
    if (best === undefined || v.info.date > best.info.date || (v.info.date === best.info.date && v.info.responseTime > best.info.responseTime)) best = v;
  }
  return best;
}

function onlyIfCachedMiss(fwd: ForwardReason): ProxyError {
  const status = cacheStatus({ detail: `only-if-cached-${fwd}` });
  return new ProxyError('only_if_cached', 'no stored response can answer this only-if-cached request', { headers: { 'Cache-Status': status } });
}
