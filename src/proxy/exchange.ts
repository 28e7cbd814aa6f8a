/**
 * The shared middle of the request pipeline, called by both front doors once they know how to reach
 * the upstream: cache lookup (or bypass), the upstream exchange, writing the reply, mapping failures
 * to error responses, and the one access-log line per request.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { CacheEngine, CacheReply, UpstreamFetch, UpstreamResponse } from '../cache/types.js';
import type { Logger } from '../log.js';
import { writeAccess } from '../observe/access-log.js';
import { cacheResultOf } from '../observe/cache-result.js';
import { asProxyError, writeError, writeReply } from './reply.js';

export type FrontDoor = 'reverse' | 'forward';

/** What one request did: filled in as it goes, read by the access log and the stats. */
export interface ExchangeRecord {
  readonly door: FrontDoor;
  readonly startedAt: number;
  readonly clientAddress: string;
  upstream: string | undefined;
  cache: string | undefined;
  error: string | undefined;
  /** Set by logWhenDone when the response is done: the request method and the bytes sent to the client. */
  method?: string | undefined;
  bytes?: number | undefined;
}

/** A fresh record for a request that just arrived on `door`. */
export function newExchangeRecord(door: FrontDoor, clientAddress: string): ExchangeRecord {
  return { door, startedAt: performance.now(), clientAddress, upstream: undefined, cache: undefined, error: undefined };
}

export interface ExchangeHooks {
  /** Headers the door adds to the reply once it is known (e.g. a sticky-session cookie). */
  readonly decorate?: (reply: CacheReply) => readonly string[] | null;
}

export const NO_HOOKS: ExchangeHooks = {};

/**
 * Answers `req` through the cache (when `cacheKey` is given and a cache exists) or straight from the
 * upstream. Never throws: failures become error responses. A reply the cache has at hand (a hit in
 * the memory store) is written before this returns, with no promise in between.
 */
export function exchange(
  req: IncomingMessage,
  res: ServerResponse,
  record: ExchangeRecord,
  cache: CacheEngine | null,
  cacheKey: string | null,
  fetch: UpstreamFetch,
  hooks: ExchangeHooks = NO_HOOKS,
): void {
  let answer: CacheReply | Promise<CacheReply>;
  try {
    answer = cache !== null && cacheKey !== null ? cache.handle({ method: req.method ?? 'GET', url: cacheKey, headers: req.headers }, fetch) : fromUpstream(fetch);
  } catch (err) {
    answer = Promise.reject(err);
  }
  if (answer instanceof Promise) void deliverWhenReady(answer, req, res, record, hooks);
  else deliver(req, res, record, answer, hooks);
}

async function fromUpstream(fetch: UpstreamFetch): Promise<CacheReply> {
  return passThrough(await fetch(null));
}

async function deliverWhenReady(answer: Promise<CacheReply>, req: IncomingMessage, res: ServerResponse, record: ExchangeRecord, hooks: ExchangeHooks): Promise<void> {
  let reply: CacheReply;
  try {
    reply = await answer;
  } catch (err) {
    const error = asProxyError(err);
    record.error = error.code;
    writeError(req, res, error);
    return;
  }
  deliver(req, res, record, reply, hooks);
}

function deliver(req: IncomingMessage, res: ServerResponse, record: ExchangeRecord, reply: CacheReply, hooks: ExchangeHooks): void {
  record.cache = cacheResultOf(reply.rawHeaders, reply.cacheResult);
  if (res.destroyed || res.headersSent) {
    // The client went away, or the request was already answered (e.g. 413 for a body over the limit).
    if (reply.body !== null && !Buffer.isBuffer(reply.body)) reply.body.destroy();
    return;
  }
  writeReply(res, reply, hooks.decorate ? hooks.decorate(reply) : null);
}

function passThrough(response: UpstreamResponse): CacheReply {
  return {
    status: response.status,
    statusMessage: response.statusMessage,
    rawHeaders: response.rawHeaders as string[],
    body: response.body,
    cacheResult: 'bypass',
  };
}

/** Logs one line when the response is done (or the client went away). */
export function logWhenDone(res: ServerResponse, req: IncomingMessage, record: ExchangeRecord, log: Logger, onDone?: (record: ExchangeRecord, status: number) => void): void {
  // Bytes written on this connection before this response (keep-alive connections carry several).
  const socket = req.socket;
  const bytesBefore = socket.bytesWritten;
  // Node emits 'close' once per response (guarded by _closed): `on` is enough and saves once()'s wrapper per request.
  res.on('close', () => {
    const status = res.headersSent ? res.statusCode : 499;
    record.method = req.method;
    record.bytes = socket.bytesWritten - bytesBefore;
    onDone?.(record, status);
    writeAccess(log, {
      door: record.door,
      client: record.clientAddress,
      method: req.method ?? '',
      url: req.url ?? '',
      status,
      cache: record.cache,
      upstream: record.upstream,
      bytes: record.bytes,
      error: record.error,
      complete: res.writableFinished,
      ms: Math.round(performance.now() - record.startedAt),
      httpVersion: req.httpVersion,
      referer: req.headers.referer,
      userAgent: req.headers['user-agent'],
    });
  });
}
