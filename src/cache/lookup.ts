/**
 * GET and HEAD: look the URL up, select the variant (Vary), and decide from its freshness and the
 * request's directives: serve it, serve it stale while revalidating in the background, revalidate it,
 * or go upstream — waiting first for a request already fetching the same URL (collapsing).
 *
 * With a shared tier (Redis), what the local tier lacks — or holds only stale — is looked for there
 * before going upstream (another instance may have stored or revalidated it; Cache-Status then says
 * `detail=redis`), and a miss first claims the fill across instances: one instance fetches, the others
 * wait for it and read its response from the shared tier.
 *
 * Answers synchronously when the local store does (a memory hit costs no promise); on that path an
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
  /** Entries read from the shared tier (to say so in Cache-Status, and to copy the one used locally). */
  private readonly fromShared = new WeakSet<StoredResponse>();

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

  /**
   * Answers from the stored variants of the URL: a stored response, a revalidation, or the upstream.
   * `consulted` is true once the shared tier's variants are among `variants`.
   */
  private answer(
    req: CacheRequest,
    fetch: UpstreamFetch,
    directives: RequestDirectives,
    variants: readonly StoredResponse[],
    mayWait: boolean,
    collapsedFrom: ForwardReason | undefined,
    consulted = false,
  ): Reply | Promise<Reply> {
    const { ctx } = this;
    const entry = selectVariant(variants, req.headers);
    const now = ctx.now();
    const verdict = entry === undefined ? null : reuseVerdict(entry.info, directives, now);
    if (!consulted && ctx.shared !== null && (verdict === null || verdict === 'revalidate')) {
      return this.withShared(req, fetch, directives, variants, mayWait, collapsedFrom);
    }
    if (entry === undefined || verdict === null) {
      const fwd: ForwardReason = variants.length > 0 ? 'vary-miss' : 'uri-miss';
      if (directives.onlyIfCached) throw onlyIfCachedMiss(fwd);
      const leader = mayWait ? this.leaderToWaitFor(req, directives) : undefined;
      if (leader !== undefined) return this.lookupAfter(leader, req, fetch, directives, fwd);
      ctx.counters.misses++;
      if (ctx.shared !== null && mayWait && this.collapsible(req, directives)) return this.missAcrossInstances(req, fetch, directives, fwd);
      return fetchAndFill(ctx, req, fetch, directives, fwd, null);
    }
    if (this.fromShared.has(entry)) void this.copyLocally(entry);

    switch (verdict) {
      case 'fresh':
      case 'stale-allowed':
        ctx.counters.hits++;
        ctx.tier.hit(entry.key);
        return serveStored(req, entry, now, {
          result: verdict === 'fresh' ? 'hit' : 'stale',
          status: { hit: true, ttl: ttlSeconds(entry.info, now), detail: this.fromShared.has(entry) ? 'redis' : undefined },
          collapsedFrom,
        });
      case 'stale-while-revalidate':
        ctx.counters.hits++;
        ctx.tier.hit(entry.key);
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
    return this.collapsible(req, directives) ? this.ctx.collapser.leaderOf(req.url) : undefined;
  }

  /** Whether requests for this URL may wait for one another's fetch. */
  private collapsible(req: CacheRequest, directives: RequestDirectives): boolean {
    return req.method === 'GET' && !directives.noCache && !this.ctx.uncacheable.has(req.url);
  }

  /** Answers again with the shared tier's variants of the URL added to the local ones. */
  private async withShared(
    req: CacheRequest,
    fetch: UpstreamFetch,
    directives: RequestDirectives,
    local: readonly StoredResponse[],
    mayWait: boolean,
    collapsedFrom: ForwardReason | undefined,
  ): Promise<Reply> {
    const remote = await this.ctx.shared!.variants(req.url);
    for (const entry of remote) this.fromShared.add(entry);
    return this.answer(req, fetch, directives, remote.length === 0 ? local : [...local, ...remote], mayWait, collapsedFrom, true);
  }

  /**
   * A miss with a shared tier: this request leads here, and claims the fill across instances. The
   * instance that leads fetches (its waiters are released once the shared tier has the response); the
   * others wait for it and answer from the shared tier, or fetch themselves when it has nothing usable
   * (or the shared tier is away, or the wait times out).
   */
  private async missAcrossInstances(req: CacheRequest, fetch: UpstreamFetch, directives: RequestDirectives, fwd: ForwardReason): Promise<Reply> {
    const { ctx } = this;
    const shared = ctx.shared!;
    const leader = ctx.collapser.lead(req.url);
    if (leader === null) return fetchAndFill(ctx, req, fetch, directives, fwd, null);
    const timeoutMs = ctx.collapser.timeoutMs;
    const claim = await shared.claimFill(req.url, timeoutMs);
    if (claim === 'leader') {
      // Another instance may have stored it and released its lock between our miss and our claim:
      // read again before fetching (measured: 6-20 % of a URL set fetched twice by two instances without it).
      const stored = await this.servedFromShared(req, directives, fwd);
      if (stored !== null) {
        void shared.releaseFill(req.url);
        leader.release();
        return stored;
      }
      leader.sharedRelease = () => void shared.releaseFill(req.url);
    } else if (claim === 'follower' && (await shared.waitForFill(req.url, timeoutMs)) === 'released') {
      const stored = await this.servedFromShared(req, directives, fwd);
      if (stored !== null) {
        leader.release();
        return stored;
      }
    }
    return fetchAndFill(ctx, req, fetch, directives, fwd, leader);
  }

  /** The shared tier's usable variant of the URL, served (and copied locally), or null. */
  private async servedFromShared(req: CacheRequest, directives: RequestDirectives, fwd: ForwardReason): Promise<Reply | null> {
    const { ctx } = this;
    const entry = selectVariant(await ctx.shared!.variants(req.url), req.headers);
    const now = ctx.now();
    const verdict = entry === undefined ? null : reuseVerdict(entry.info, directives, now);
    if (entry === undefined || (verdict !== 'fresh' && verdict !== 'stale-allowed')) return null;
    await this.copyLocally(entry);
    ctx.counters.hits++;
    ctx.tier.hit(entry.key);
    return serveStored(req, entry, now, { result: 'hit', status: { ttl: ttlSeconds(entry.info, now), detail: 'redis' }, collapsedFrom: fwd });
  }

  /** Keeps a copy of an entry read from the shared tier in the local tier (from then on it is local). */
  private async copyLocally(entry: StoredResponse): Promise<void> {
    try {
      await this.ctx.tier.set(entry);
    } catch (err) {
      this.ctx.log.warn({ err, url: entry.url }, 'cache store write failed');
    }
    this.fromShared.delete(entry);
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
