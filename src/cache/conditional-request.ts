/**
 * Validators and conditional requests (RFC 9110 §8.8, §13): entity-tag comparison, the client's
 * If-None-Match / If-Modified-Since evaluated against a stored response (RFC 9111 §4.3.2), and the
 * validators the cache sends when it revalidates (RFC 9111 §4.3.1).
 */
import type { IncomingHttpHeaders } from 'node:http';
import { firstValue } from '../core/header-list.js';
import { parseHttpDate } from './http-date.js';
import type { FreshnessInfo } from './shared-cache-policy.js';

interface EntityTag {
  readonly weak: boolean;
  readonly opaque: string;
}

/** Parses one entity-tag leniently: `W/"x"`, `w/"x"`, `"x"`, and an unquoted `x` are accepted. */
export function parseEntityTag(text: string): EntityTag {
  let t = text.trim();
  let weak = false;
  if (t.length > 2 && (t.charCodeAt(0) === 0x57 || t.charCodeAt(0) === 0x77) && t.charCodeAt(1) === 0x2f) {
    weak = true;
    t = t.slice(2);
  }
  if (t.length >= 2 && t.charCodeAt(0) === 0x22 && t.charCodeAt(t.length - 1) === 0x22) t = t.slice(1, -1);
  return { weak, opaque: t };
}

/** Splits an If-None-Match / If-Match list; entity-tags may contain commas only inside quotes. */
export function parseEntityTagList(value: string): EntityTag[] | '*' {
  if (value.trim() === '*') return '*';
  const tags: EntityTag[] = [];
  let i = 0;
  while (i < value.length) {
    while (i < value.length && (value[i] === ' ' || value[i] === '\t' || value[i] === ',')) i++;
    if (i >= value.length) break;
    const start = i;
    let quoted = false;
    while (i < value.length) {
      const c = value[i];
      if (c === '"') quoted = !quoted;
      else if (c === ',' && !quoted) break;
      i++;
    }
    const text = value.slice(start, i).trim();
    if (text !== '') tags.push(parseEntityTag(text));
  }
  return tags;
}

/** Weak comparison (RFC 9110 §8.8.3.2). */
export function weakMatch(a: EntityTag, b: EntityTag): boolean {
  return a.opaque === b.opaque;
}

/** Strong comparison: neither weak and the same opaque tag. */
export function strongMatch(a: EntityTag, b: EntityTag): boolean {
  return !a.weak && !b.weak && a.opaque === b.opaque;
}

/** The conditional headers that revalidate a stored response (null removes a client's own). */
export function validationHeaders(info: FreshnessInfo): Record<string, string | null> {
  return {
    // Sent back exactly as the origin spelled it: it is the origin's to compare.
    'if-none-match': info.etag,
    'if-modified-since': info.lastModified,
    'if-match': null,
    'if-unmodified-since': null,
  };
}

/** Conditional request headers with client-side meaning the cache does not evaluate itself. */
export function hasOriginOnlyPreconditions(headers: IncomingHttpHeaders): boolean {
  return headers['if-match'] !== undefined || headers['if-unmodified-since'] !== undefined;
}

/** True when the request carries If-None-Match or If-Modified-Since. */
export function isConditional(headers: IncomingHttpHeaders): boolean {
  return headers['if-none-match'] !== undefined || headers['if-modified-since'] !== undefined;
}

/**
 * Evaluates a GET/HEAD request's If-None-Match (or, without it, If-Modified-Since) against a stored
 * response (RFC 9110 §13.2.2): true when the answer is 304 Not Modified.
 */
export function notModified(headers: IncomingHttpHeaders, info: FreshnessInfo): boolean {
  const inm = firstValue(headers['if-none-match']);
  if (inm !== undefined) {
    if (info.etag === null) return false;
    const list = parseEntityTagList(inm);
    if (list === '*') return true;
    const stored = parseEntityTag(info.etag);
    return list.some((t) => weakMatch(t, stored));
  }
  const ims = parseHttpDate(firstValue(headers['if-modified-since']));
  if (ims === null) return false;
  // Without Last-Modified, the Date (or the time the response was received) is the last modification time.
  const lastModified = info.lastModified !== null ? parseHttpDate(info.lastModified) : info.date;
  return lastModified !== null && lastModified <= ims;
}

/**
 * RFC 9111 §4.3.4: does a 304 (or HEAD response) with these validators identify this stored response?
 * Entity-tags must match (strongly when both are strong), else Last-Modified must match. A response
 * that carries no validator the stored one can be compared with is taken to answer the validators
 * the cache sent for it (many origins omit ETag in a 304).
 */
export function validatorsIdentify(updateHeaders: IncomingHttpHeaders, info: FreshnessInfo): boolean {
  const etag = firstValue(updateHeaders.etag);
  if (etag !== undefined && info.etag !== null) {
    const a = parseEntityTag(etag);
    const b = parseEntityTag(info.etag);
    return a.weak || b.weak ? weakMatch(a, b) : strongMatch(a, b);
  }
  const lm = firstValue(updateHeaders['last-modified']);
  if (lm !== undefined && info.lastModified !== null) {
    const a = parseHttpDate(lm);
    return a !== null && a === parseHttpDate(info.lastModified);
  }
  // Nothing to compare: the response answers the validators we sent for this stored response.
  return true;
}
