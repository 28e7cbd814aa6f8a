/**
 * Unsafe methods (RFC 9111 §4.4): forwarded, and a non-error answer invalidates the target URL and the
 * same-origin URLs its Location and Content-Location name.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { firstValue } from '../core/header-list.js';
import type { Reply, UpstreamFetch, UpstreamResponse } from '../core/messages.js';
import { cacheKeyFromUrl } from './cache-key.js';
import { cacheStatus } from './cache-status.js';
import type { CacheContext } from './context.js';
import { passThrough, withCacheStatus } from './pass-through.js';
import type { CacheRequest } from './types.js';

export async function forwardUnsafe(ctx: CacheContext, req: CacheRequest, fetch: UpstreamFetch): Promise<Reply> {
  let res: UpstreamResponse;
  try {
    res = await fetch(null);
  } catch (err) {
    throw withCacheStatus(err, { fwd: 'method' });
  }
  if (res.status >= 200 && res.status < 400) await invalidate(ctx, req.url, res.headers);
  return passThrough(res, cacheStatus({ fwd: 'method', fwdStatus: res.status }), 'bypass');
}

async function invalidate(ctx: CacheContext, url: string, headers: IncomingHttpHeaders): Promise<void> {
  const targets = new Set<string>([url]);
  const origin = originOf(url);
  for (const name of ['location', 'content-location'] as const) {
    const value = firstValue(headers[name]);
    if (value === undefined) continue;
    const key = cacheKeyFromUrl(value.trim(), url);
    if (key !== null && originOf(key) === origin) targets.add(key);
  }
  // The targets at once: each may wait for the other workers.
  await Promise.all([...targets].map((target) => invalidateOne(ctx, target)));
}

async function invalidateOne(ctx: CacheContext, target: string): Promise<void> {
  try {
    await ctx.tier.deleteUrl(target);
    // The shared tier tells every other process and machine. Without one, the other workers are told,
    // and the answer waits for them: the client's next request, whichever worker takes it, must not
    // get the page its unsafe request has just changed.
    if (ctx.shared !== null) void ctx.shared.purgeUrl(target);
    else await ctx.onInvalidate?.(target);
  } catch (err) {
    ctx.log.warn({ err, url: target }, 'cache invalidation failed');
  }
}

function originOf(url: string): string {
  const i = url.indexOf('/', url.indexOf('//') + 2);
  return i < 0 ? url : url.slice(0, i);
}
