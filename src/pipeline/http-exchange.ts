/**
 * The proxy phase of a plain HTTP request, shared by both doors: the cache (or, without one, the
 * upstream directly) answers, and the reply is written to the client. Never throws: failures become
 * error pages. A reply the cache has at hand (a hit in the memory store) is written before this
 * returns, with no promise in between.
 *
 * A streamed body is written only once its first bytes (or its end) arrived: a response whose body
 * fails before that is answered with a 502 and its Proxy-Status, not a connection dropped with nothing
 * sent; one that fails later cuts the client connection, so the client sees a truncated transfer and
 * never a short response passed off as complete.
 */
import type { Readable } from 'node:stream';
import { NO_RULES, type CacheRule } from '../cache/cache-rule.js';
import type { CacheEngine } from '../cache/types.js';
import { asProxyError, ProxyError } from '../core/errors.js';
import type { Reply, UpstreamFetch, UpstreamResponse } from '../core/messages.js';
import { cacheResultOf } from '../observe/cache-result.js';
import type { HttpSession } from './session.js';

export interface ExchangeHooks {
  /** Headers the door adds to the reply once it is known (e.g. a sticky-session cookie). */
  readonly decorate?: (reply: Reply) => readonly string[] | null;
}

export const NO_HOOKS: ExchangeHooks = {};

/**
 * Answers the request through `cache` under `cacheKey` (with the operator's cache `rules` it meets), or
 * straight from the upstream when either is null.
 */
export function exchange(
  session: HttpSession,
  cache: CacheEngine | null,
  cacheKey: string | null,
  fetch: UpstreamFetch,
  hooks: ExchangeHooks = NO_HOOKS,
  rules: readonly CacheRule[] = NO_RULES,
): void {
  let answer: Reply | Promise<Reply>;
  try {
    answer =
      cache !== null && cacheKey !== null
        ? cache.handle({ method: session.method, url: cacheKey, headers: session.req.headers, rules }, fetch)
        : fromUpstream(fetch);
  } catch (err) {
    answer = Promise.reject(err);
  }
  if (answer instanceof Promise) {
    answer.then(
      (reply) => deliver(session, reply, hooks),
      (err: unknown) => session.refuse(asProxyError(err)),
    );
  } else {
    deliver(session, answer, hooks);
  }
}

async function fromUpstream(fetch: UpstreamFetch): Promise<Reply> {
  const response: UpstreamResponse = await fetch(null);
  return { status: response.status, statusMessage: response.statusMessage, rawHeaders: response.rawHeaders as string[], body: response.body, cacheResult: 'bypass' };
}

function deliver(session: HttpSession, reply: Reply, hooks: ExchangeHooks): void {
  session.cache = cacheResultOf(reply.rawHeaders, reply.cacheResult);
  const res = session.res;
  const body = reply.body;
  if (res.destroyed || res.headersSent) {
    // The client went away, or the request was already answered (e.g. 413 for a body over the limit).
    if (body !== null && !Buffer.isBuffer(body)) body.destroy();
    return;
  }
  const extra = hooks.decorate ? hooks.decorate(reply) : null;
  const headers = headersFor(reply, extra);
  if (body === null || Buffer.isBuffer(body)) {
    if (writeHead(session, reply, headers)) res.end(body ?? undefined);
  } else {
    streamWhenReady(session, reply, headers, body);
  }
}

/** The reply's headers for the client: the door's additions, and no Content-Length on a 204. */
function headersFor(reply: Reply, extra: readonly string[] | null): string[] {
  const headers = extra === null ? reply.rawHeaders : reply.rawHeaders.concat(extra);
  if (reply.status !== 204) return headers;
  // RFC 9110 §8.6: never a Content-Length on a 204, whatever the upstream sent.
  const out: string[] = [];
  for (let i = 0; i < headers.length; i += 2) if (headers[i]!.toLowerCase() !== 'content-length') out.push(headers[i]!, headers[i + 1]!);
  return out;
}

/** Writes the head; false (after answering 502) when Node refuses it. */
function writeHead(session: HttpSession, reply: Reply, headers: string[]): boolean {
  try {
    session.res.writeHead(reply.status, reply.statusMessage || undefined, headers);
    return true;
  } catch (err) {
    session.refuse(new ProxyError('bad_response', `${session.upstream ?? 'the upstream'} sent a response head that cannot be relayed`, { cause: err }));
    return false;
  }
}

/**
 * Commits to the head once the body's first chunk (or its end) is in; a body that fails before that is
 * answered with a 502. From then on the body is piped, and a failure cuts the client connection.
 */
function streamWhenReady(session: HttpSession, reply: Reply, headers: string[], body: Readable): void {
  const res = session.res;
  let started = false;
  const start = (): boolean => {
    started = true;
    body.off('data', onFirst);
    body.off('end', onEnd);
    return writeHead(session, reply, headers);
  };
  const onFirst = (chunk: Buffer) => {
    body.pause();
    if (!start()) {
      body.destroy();
      return;
    }
    res.write(chunk);
    pipeRest(body, session);
  };
  const onEnd = () => {
    if (start()) res.end();
  };
  const onFailure = (err?: unknown) => {
    if (started) return;
    started = true;
    body.off('data', onFirst);
    body.destroy();
    session.refuse(err instanceof ProxyError ? err : new ProxyError('bad_response', `${session.upstream ?? 'the upstream'} broke off its response before the body`, { cause: err }));
  };
  body.on('data', onFirst);
  body.once('end', onEnd);
  body.once('error', onFailure);
  // Closed without 'end' or 'error' (destroyed by the upstream side).
  body.once('close', () => {
    if (!body.readableEnded) onFailure();
  });
  // The client leaving first cancels the upstream body (unless it is being finished into the cache).
  res.once('close', () => {
    if (!body.readableEnded && !(reply.abandon?.() ?? false)) body.destroy();
  });
}

const TE_TRAILERS = /(^|,)\s*trailers\s*(,|;|$)/i;

/** Fields never taken from trailers (RFC 9110 §6.5.1): framing, routing, and what a cache or proxy acts on. */
const NOT_IN_TRAILERS: ReadonlySet<string> = new Set([
  'content-length', 'content-type', 'content-encoding', 'content-range', 'transfer-encoding', 'trailer', 'te', 'host',
  'connection', 'keep-alive', 'upgrade', 'cache-control', 'expires', 'age', 'date', 'authorization', 'set-cookie',
]);

/**
 * Passes the backend's trailer fields (after a chunked body) on to a client that can take them: an
 * HTTP/2 client, or an HTTP/1.1 client that sent `TE: trailers` (whose response is then chunked).
 */
function relayTrailers(body: Readable, session: HttpSession): void {
  const raw = (body as Readable & { trailers?: readonly string[] | null }).trailers;
  if (raw === undefined || raw === null) return;
  const fields: Record<string, string> = {};
  let any = false;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = String(raw[i]).toLowerCase();
    if (NOT_IN_TRAILERS.has(name)) continue;
    fields[name] = fields[name] === undefined ? String(raw[i + 1]) : `${fields[name]}, ${String(raw[i + 1])}`;
    any = true;
  }
  if (!any) return;
  try {
    session.res.addTrailers(fields);
  } catch {
    // A field Node will not send: trailers are advisory, the body is complete.
  }
}

/** Pipes the rest of a body whose head is written; a body that breaks off cuts the client connection. */
function pipeRest(body: Readable, session: HttpSession): void {
  const res = session.res;
  const onBroken = () => {
    body.unpipe(res);
    res.destroy();
  };
  body.once('error', onBroken);
  // Ends without 'end' (destroyed by the upstream side): the client must not see a clean end.
  body.once('close', () => {
    if (!body.readableEnded && !res.writableEnded) onBroken();
  });
  // Before pipe()'s own 'end' listener ends the response.
  if (session.req.httpVersionMajor >= 2 || TE_TRAILERS.test(String(session.req.headers.te ?? ''))) body.once('end', () => relayTrailers(body, session));
  body.pipe(res);
}
