/**
 * Revalidating a stored response with the origin (RFC 9111 §4.3): a 304 freshens it (and every other
 * variant its strong validator names), a 5xx may be answered from it under stale-if-error, anything
 * else replaces it. A 200 to a HEAD freshens the stored GET responses it could stand for.
 */
import { ProxyError } from '../core/errors.js';
import { fieldLines, firstValue } from '../core/header-list.js';
import type { Reply, UpstreamFetch, UpstreamResponse } from '../core/messages.js';
import { discard } from '../core/streams.js';
import { cacheStatus, type ForwardReason } from './cache-status.js';
import { parseEntityTag, strongMatch, validationHeaders, validatorsIdentify } from './conditional-request.js';
import { ruleForStatus } from './cache-rule.js';
import { releaseLeader } from './collapse.js';
import type { CacheContext } from './context.js';
import { ERROR_STATUSES, fetchAndFill, relayAndStore } from './fill.js';
import { passThrough, withCacheStatus } from './pass-through.js';
import { serveStored } from './serve.js';
import { mayServeStaleOnError, type RequestDirectives, ttlSeconds } from './shared-cache-policy.js';
import { freshen, type StoredResponse } from './stored-response.js';
import type { CacheRequest } from './types.js';
import { varyMatches } from './vary.js';

/** Revalidates `entry` for the client's request; `fwd` says why it went upstream. */
export async function revalidate(
  ctx: CacheContext,
  req: CacheRequest,
  fetch: UpstreamFetch,
  directives: RequestDirectives,
  entry: StoredResponse,
  variants: readonly StoredResponse[],
  fwd: ForwardReason,
): Promise<Reply> {
  const leader = req.method === 'GET' ? ctx.collapser.lead(req.url) : null;
  let settledByLeader = false;
  try {
    const requestTime = ctx.now();
    let res: UpstreamResponse;
    try {
      res = await fetch({ headers: validationHeaders(entry.info) });
    } catch (err) {
      const now = ctx.now();
      if (isUpstreamFailure(err) && mayServeStaleOnError(entry.info, directives, now)) {
        ctx.counters.hits++;
        return serveStored(req, entry, now, { result: 'stale', status: { fwd, ttl: ttlSeconds(entry.info, now), detail: 'stale-if-error' } });
      }
      throw withCacheStatus(err, { fwd });
    }
    const responseTime = ctx.now();

    if (res.status === 304) {
      discard(res.body);
      if (!validatorsIdentify(res.headers, entry.info)) {
        // The 304 is about some other representation: get the full response instead.
        settledByLeader = true;
        return await fetchAndFill(ctx, req, fetch, directives, fwd, leader, STRIP_VALIDATORS);
      }
      const updated = await applyValidation(ctx, req, directives, entry, variants, res, requestTime, responseTime);
      ctx.counters.hits++;
      return serveStored(req, updated, responseTime, {
        result: 'revalidated',
        status: { fwd, fwdStatus: 304, ttl: ttlSeconds(updated.info, responseTime) },
        cookies: fieldLines(res.rawHeaders, 'set-cookie'),
      });
    }

    if (ERROR_STATUSES.has(res.status) && mayServeStaleOnError(entry.info, directives, responseTime)) {
      discard(res.body);
      ctx.counters.hits++;
      return serveStored(req, entry, responseTime, {
        result: 'stale',
        status: { fwd, fwdStatus: res.status, ttl: ttlSeconds(entry.info, responseTime), detail: 'stale-if-error' },
      });
    }

    if (req.method === 'HEAD') {
      if (res.status === 200) await freshenWithHead(ctx, req, directives, variants, res, requestTime, responseTime);
      return passThrough(res, cacheStatus({ fwd, fwdStatus: res.status }), 'miss');
    }

    settledByLeader = true;
    return relayAndStore(ctx, req, directives, res, fwd, requestTime, responseTime, leader, entry);
  } finally {
    if (!settledByLeader) releaseLeader(leader);
  }
}

/** Applies a 304 to the validated entry and to every other variant its strong validator names. */
async function applyValidation(
  ctx: CacheContext,
  req: CacheRequest,
  directives: RequestDirectives,
  entry: StoredResponse,
  variants: readonly StoredResponse[],
  res: UpstreamResponse,
  requestTime: number,
  responseTime: number,
): Promise<StoredResponse> {
  const result = freshenEntry(ctx, req, directives, entry, res.rawHeaders, requestTime, responseTime);
  await saveFreshened(ctx, entry, result);
  const etag = firstValue(res.headers.etag);
  if (etag !== undefined) {
    const tag = parseEntityTag(etag);
    for (const other of variants) {
      if (other === entry || other.info.etag === null || !strongMatch(tag, parseEntityTag(other.info.etag))) continue;
      await saveFreshened(ctx, other, freshenEntry(ctx, req, directives, other, res.rawHeaders, requestTime, responseTime));
    }
  }
  return result.entry;
}

export function freshenEntry(
  ctx: CacheContext,
  req: CacheRequest,
  directives: RequestDirectives,
  entry: StoredResponse,
  update: readonly string[],
  requestTime: number,
  responseTime: number,
): ReturnType<typeof freshen> {
  const rule = req.rules === undefined ? null : ruleForStatus(req.rules, entry.status);
  return freshen({ entry, update, requestHeaders: req.headers, request: directives, requestTime, responseTime, tagHeader: ctx.tagHeader, rule }, ctx.policy);
}

/** Keeps a freshened entry (in both tiers), or drops the old one when it may no longer be stored. */
export async function saveFreshened(ctx: CacheContext, old: StoredResponse, result: ReturnType<typeof freshen>): Promise<void> {
  try {
    if (result.storable) await ctx.tier.set(result.entry);
    else await ctx.tier.delete(old.key);
  } catch (err) {
    ctx.log.warn({ err, url: old.url }, 'cache store update failed');
  }
  if (ctx.shared !== null) void (result.storable ? ctx.shared.store(result.entry) : ctx.shared.delete(old.key));
}

/**
 * RFC 9111 §4.3.5: a 200 to a HEAD freshens the stored GET responses it could stand for when its
 * validators (and Content-Length) agree with them; otherwise they are no longer trusted.
 */
async function freshenWithHead(
  ctx: CacheContext,
  req: CacheRequest,
  directives: RequestDirectives,
  variants: readonly StoredResponse[],
  res: UpstreamResponse,
  requestTime: number,
  responseTime: number,
): Promise<void> {
  const length = firstValue(res.headers['content-length']);
  const etag = firstValue(res.headers.etag);
  const lastModified = firstValue(res.headers['last-modified']);
  for (const entry of variants) {
    if (entry.vary.length > 0 && !varyMatches(entry.vary, entry.varyValues, req.headers)) continue;
    const agrees =
      (etag === undefined || (entry.info.etag !== null && parseEntityTag(etag).opaque === parseEntityTag(entry.info.etag).opaque)) &&
      (lastModified === undefined || lastModified === entry.info.lastModified) &&
      (length === undefined || Number(length) === entry.body.length);
    if (agrees) await saveFreshened(ctx, entry, freshenEntry(ctx, req, directives, entry, res.rawHeaders, requestTime, responseTime));
    else {
      await ctx.tier.delete(entry.key).catch(() => false);
      void ctx.shared?.delete(entry.key);
    }
  }
}

const STRIP_VALIDATORS = { headers: { 'if-none-match': null, 'if-modified-since': null, 'if-match': null, 'if-unmodified-since': null } } as const;

/** A failure to get any response from upstream (connect errors, timeouts): eligible for stale-if-error. */
function isUpstreamFailure(err: unknown): boolean {
  return err instanceof ProxyError ? err.source === 'upstream' : true;
}
