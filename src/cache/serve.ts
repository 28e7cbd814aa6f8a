/**
 * Replies made from a stored response: the response itself (HEAD without its body), a 304 to a client's
 * own conditional request, or a 206/416 to a Range request — each with Age and Cache-Status.
 */
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { withoutFields } from '../core/header-list.js';
import type { Reply } from '../core/messages.js';
import { evaluateRange } from './byte-range.js';
import { cacheStatus, type CacheStatusParams, type ForwardReason } from './cache-status.js';
import { isConditional, notModified } from './conditional-request.js';
import { currentAge } from './shared-cache-policy.js';
import type { StoredBody, StoredResponse } from './stored-response.js';
import type { CacheRequest } from './types.js';

/** Representation metadata left out of a 304 answered from cache (RFC 9110 §15.4.5). */
const NOT_IN_304: ReadonlySet<string> = new Set(['content-length', 'content-type', 'content-encoding', 'content-language', 'content-range', 'transfer-encoding']);

/** Fields replaced in a 206 answered from cache. */
const LENGTH_FIELDS: ReadonlySet<string> = new Set(['content-length', 'content-range']);

export interface ServeOptions {
  /** What the Cache-Status says (the reply's own story). */
  readonly status: CacheStatusParams;
  /** For logs and metrics: hit, stale, revalidated… */
  readonly result: string;
  /** Set when the request waited for another one's fetch: the Cache-Status then says so. */
  readonly collapsedFrom?: ForwardReason | undefined;
  /** Set-Cookie lines from a validating response, passed on to this client only. */
  readonly cookies?: readonly string[] | undefined;
}

/** The reply for a stored response: 200/206/416/304 with Age and Cache-Status. */
export function serveStored(req: CacheRequest, entry: StoredResponse, now: number, options: ServeOptions): Reply {
  const { collapsedFrom, cookies, result } = options;
  const params: CacheStatusParams = collapsedFrom === undefined ? options.status : { ...options.status, hit: false, fwd: collapsedFrom, collapsed: true };
  const age = String(Math.floor(currentAge(entry.info, now) / 1000));
  const cacheStatusValue = cacheStatus(params);

  if (isConditional(req.headers) && (entry.status === 200 || entry.status === 203) && notModified(req.headers, entry.info)) {
    const headers = withoutFields(entry.rawHeaders, NOT_IN_304);
    appendCookies(headers, cookies);
    headers.push('Age', age, 'Cache-Status', cacheStatusValue);
    return { status: 304, statusMessage: 'Not Modified', rawHeaders: headers, body: null, cacheResult: result };
  }

  const head = req.method === 'HEAD';
  if (!head && entry.status === 200 && req.headers.range !== undefined) {
    const length = entry.body.length;
    const range = evaluateRange(req.headers, length, entry.info);
    if (range.kind === 'partial') {
      const headers = withoutFields(entry.rawHeaders, LENGTH_FIELDS);
      appendCookies(headers, cookies);
      headers.push(
        'Content-Range', `bytes ${range.start}-${range.end}/${length}`,
        'Content-Length', String(range.end - range.start + 1),
        'Age', age,
        'Cache-Status', cacheStatusValue,
      );
      return { status: 206, statusMessage: 'Partial Content', rawHeaders: headers, body: bodyBytes(entry.body, range.start, range.end), cacheResult: result };
    }
    if (range.kind === 'unsatisfiable') {
      const headers = ['Content-Range', `bytes */${length}`, 'Content-Length', '0', 'Age', age, 'Cache-Status', cacheStatusValue];
      return { status: 416, statusMessage: 'Range Not Satisfiable', rawHeaders: headers, body: null, cacheResult: result };
    }
  }

  const headers = entry.rawHeaders.slice();
  appendCookies(headers, cookies);
  headers.push('Age', age, 'Cache-Status', cacheStatusValue);
  return { status: entry.status, statusMessage: entry.statusMessage, rawHeaders: headers, body: head ? null : bodyBytes(entry.body, 0, entry.body.length - 1), cacheResult: result };
}

/**
 * Bytes `start`…`end` (inclusive) of a stored body: a slice of it in memory, or a stream read from its
 * file (a disk store's large body: never read whole into memory).
 */
function bodyBytes(body: StoredBody, start: number, end: number): Buffer | Readable {
  if (Buffer.isBuffer(body)) return start === 0 && end === body.length - 1 ? body : body.subarray(start, end + 1);
  if (body.kind === 'writer') throw new Error('a body still being written is not served');
  if (body.length === 0) return Buffer.alloc(0);
  const stream = createReadStream(body.path, { start, end });
  return stream;
}

function appendCookies(headers: string[], cookies: readonly string[] | undefined): void {
  if (cookies === undefined) return;
  for (const c of cookies) headers.push('Set-Cookie', c);
}
