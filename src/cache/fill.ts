/**
 * Filling the cache: a full response fetched from upstream is relayed to the client while a copy is
 * kept, and stored only when the body arrived complete and the storage rules allow it. A response
 * that fails half-way is never stored and never replaces a good stored one.
 */
import { firstValue } from '../core/header-list.js';
import type { UpstreamOverrides, Reply, UpstreamFetch, UpstreamResponse } from '../core/messages.js';
import { discard } from '../core/streams.js';
import { BodyRecorder } from './body-recorder.js';
import { cacheStatus, type ForwardReason } from './cache-status.js';
import { releaseLeader, type Leader } from './collapse.js';
import type { CacheContext } from './context.js';
import { passThrough, withCacheStatus } from './pass-through.js';
import { decideStorage, type RequestDirectives, type StorageDecision, ttlSeconds } from './shared-cache-policy.js';
import { ruleForStatus } from './cache-rule.js';
import { newStoredResponse, type StoredBody, type StoredResponse } from './stored-response.js';
import type { CacheRequest } from './types.js';

/** Statuses that count as an upstream error (stale-if-error, RFC 5861 §4; never replace a good entry). */
export const ERROR_STATUSES: ReadonlySet<number> = new Set([500, 502, 503, 504]);

/**
 * Fetches a full response and stores it when it may. With `overrides` null the client's request is
 * sent as it is (its own conditionals and Range included).
 */
export async function fetchAndFill(
  ctx: CacheContext,
  req: CacheRequest,
  fetch: UpstreamFetch,
  directives: RequestDirectives,
  fwd: ForwardReason,
  existingLeader: Leader | null,
  overrides: UpstreamOverrides | null = null,
): Promise<Reply> {
  // Nobody waits behind a URL marked uncacheable (lookup.ts), so there is nothing to lead.
  const leader = existingLeader ?? (req.method === 'GET' && !ctx.uncacheable.has(req.url) ? ctx.collapser.lead(req.url) : null);
  let res: UpstreamResponse;
  const requestTime = ctx.now();
  try {
    res = await fetch(overrides);
  } catch (err) {
    releaseLeader(leader);
    throw withCacheStatus(err, { fwd });
  }
  return relayAndStore(ctx, req, directives, res, fwd, requestTime, ctx.now(), leader, null);
}

/** Turns an upstream response into the reply, storing it on the way when it may be stored. */
export function relayAndStore(
  ctx: CacheContext,
  req: CacheRequest,
  directives: RequestDirectives,
  res: UpstreamResponse,
  fwd: ForwardReason,
  requestTime: number,
  responseTime: number,
  leader: Leader | null,
  replacing: StoredResponse | null,
): Reply {
  const decision = decideResponse(ctx, req, directives, res, requestTime, responseTime);
  let detail: string | undefined;
  if (!decision.store) detail = req.method === 'HEAD' ? undefined : decision.detail;
  else if (ERROR_STATUSES.has(res.status) && replacing !== null && !ERROR_STATUSES.has(replacing.status)) detail = 'error-kept-stored';
  else if (decision.rule !== null && decision.rule.minUses > 1 && ctx.uses.count(req.url) < decision.rule.minUses) detail = decision.rule.detail;
  if (!decision.store && req.method === 'GET') ctx.uncacheable.mark(req.url);
  if (!decision.store || detail !== undefined) {
    releaseLeader(leader);
    return passThrough(res, cacheStatus({ fwd, fwdStatus: res.status, detail }), 'miss');
  }
  const declared = firstValue(res.headers['content-length']);
  const options = {
    limit: decision.rule?.maxObjectSize ?? ctx.maxObjectSize,
    // A store that keeps bodies in files is written as the body arrives: never held in memory.
    writer: ctx.tier.store.openWrite?.() ?? null,
    expectedLength: declared === undefined ? null : Number(declared),
    quickAbort: ctx.quickAbort,
  };
  const recorder = new BodyRecorder(res.body, options, async (body) => {
    let sharedWrite: Promise<unknown> | undefined;
    try {
      if (body !== null) sharedWrite = (await storeResponse(ctx, req, res, body, decision)).shared;
    } finally {
      releaseLeader(leader, sharedWrite);
    }
  });
  const status = cacheStatus({ fwd, fwdStatus: res.status, stored: true, ttl: ttlSeconds(decision.info, responseTime), detail: decision.rule?.detail });
  return {
    status: res.status,
    statusMessage: res.statusMessage,
    rawHeaders: [...res.rawHeaders, 'Cache-Status', status],
    body: recorder,
    cacheResult: 'miss',
    abandon: () => recorder.abandon(),
  };
}

/** Whether (and how) a response may be stored: RFC 9111, with the operator's rule for its status. */
export function decideResponse(
  ctx: CacheContext,
  req: CacheRequest,
  directives: RequestDirectives,
  res: UpstreamResponse,
  requestTime: number,
  responseTime: number,
): StorageDecision {
  return decideStorage(
    { method: req.method, status: res.status, requestHeaders: req.headers, request: directives, headers: res.headers, rawHeaders: res.rawHeaders, requestTime, responseTime },
    ctx.policy,
    req.rules === undefined ? null : ruleForStatus(req.rules, res.status),
  );
}

/** Reads a whole response (no client waits for it: background revalidation) and stores it when it may. */
export async function storeInBackground(ctx: CacheContext, req: CacheRequest, res: UpstreamResponse, decision: StorageDecision): Promise<void> {
  if (!decision.store) {
    discard(res.body);
    return;
  }
  const body = await readBody(res, decision.rule?.maxObjectSize ?? ctx.maxObjectSize);
  if (body !== null) await storeResponse(ctx, req, res, body, decision);
}

/**
 * Stores a complete response in the local tier (awaited: the next request finds it) and sends it to the
 * shared tier; resolves with `shared`, the shared write, which nobody needs to wait for but a leader
 * across instances (its waiters read it from there).
 */
export async function storeResponse(
  ctx: CacheContext,
  req: CacheRequest,
  res: UpstreamResponse,
  body: StoredBody,
  decision: Extract<StorageDecision, { store: true }>,
): Promise<{ readonly shared: Promise<unknown> | undefined }> {
  const entry = newStoredResponse({
    url: req.url,
    requestHeaders: req.headers,
    status: res.status,
    statusMessage: res.statusMessage,
    rawHeaders: res.rawHeaders,
    headers: res.headers,
    body,
    info: decision.info,
    vary: decision.vary,
    omit: decision.omit,
    tagHeader: ctx.tagHeader,
  });
  try {
    if (await ctx.tier.set(entry)) {
      ctx.counters.stores++;
      ctx.uncacheable.clear(req.url);
    }
  } catch (err) {
    ctx.log.warn({ err, url: req.url }, 'cache store write failed');
  }
  return { shared: ctx.shared?.store(entry) };
}

/** Reads a whole body; null when it fails, ends early or exceeds `limit`. */
function readBody(res: UpstreamResponse, limit: number): Promise<Buffer | null> {
  const source = res.body;
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    let done = false;
    const finish = (body: Buffer | null) => {
      if (done) return;
      done = true;
      resolve(body);
    };
    source.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > limit) {
        source.destroy();
        finish(null);
      } else {
        chunks.push(chunk);
      }
    });
    source.once('end', () => finish(Buffer.concat(chunks, bytes)));
    source.once('error', () => finish(null));
    source.once('close', () => {
      if (!source.readableEnded) finish(null);
    });
  });
}
