/** Upstream responses and failures relayed as they are, with the cache's Cache-Status added. */
import { ProxyError } from '../core/errors.js';
import type { Reply, UpstreamFetch, UpstreamResponse } from '../core/messages.js';
import { cacheStatus, type CacheStatusParams, type ForwardReason } from './cache-status.js';

export function passThrough(res: UpstreamResponse, status: string, result: string): Reply {
  return { status: res.status, statusMessage: res.statusMessage, rawHeaders: [...res.rawHeaders, 'Cache-Status', status], body: res.body, cacheResult: result };
}

/** Sends the request upstream as the client sent it, storing nothing. */
export async function forwardUncached(fetch: UpstreamFetch, fwd: ForwardReason, detail?: string): Promise<Reply> {
  let res: UpstreamResponse;
  try {
    res = await fetch(null);
  } catch (err) {
    throw withCacheStatus(err, { fwd, detail });
  }
  return passThrough(res, cacheStatus({ fwd, fwdStatus: res.status, detail }), 'bypass');
}

/** Adds Cache-Status to an upstream error so that the error reply carries it too. */
export function withCacheStatus(err: unknown, params: CacheStatusParams): unknown {
  if (!(err instanceof ProxyError)) return err;
  return new ProxyError(err.code, err.message, {
    retryable: err.retryable,
    headers: { ...err.headers, 'Cache-Status': cacheStatus(params) },
    cause: err.cause,
  });
}
