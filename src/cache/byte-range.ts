/**
 * Range requests answered from a stored complete response (RFC 9110 §14): a single byte range gives
 * 206 with Content-Range, an unsatisfiable one 416; several ranges, other units or malformed values
 * are ignored (the full response is sent, which RFC 9110 §14.2 allows). If-Range is honoured.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { parseEntityTag, strongMatch } from './conditional-request.js';
import { firstValue } from '../core/header-list.js';
import { parseHttpDate } from './http-date.js';
import type { FreshnessInfo } from './shared-cache-policy.js';

export type RangeOutcome =
  | { readonly kind: 'full' }
  | { readonly kind: 'unsatisfiable' }
  | { readonly kind: 'partial'; readonly start: number; readonly end: number };

const FULL: RangeOutcome = { kind: 'full' };
const UNSATISFIABLE: RangeOutcome = { kind: 'unsatisfiable' };
const SINGLE_RANGE = /^bytes[ \t]*=[ \t]*(\d*)[ \t]*-[ \t]*(\d*)[ \t]*$/i;

/** Evaluates the request's Range (and If-Range) against a stored body of `length` bytes. */
export function evaluateRange(headers: IncomingHttpHeaders, length: number, info: FreshnessInfo): RangeOutcome {
  const range = firstValue(headers.range);
  if (range === undefined) return FULL;
  if (!ifRangeHolds(firstValue(headers['if-range']), info)) return FULL;
  const m = SINGLE_RANGE.exec(range);
  if (!m) return FULL;
  const first = m[1]!;
  const last = m[2]!;
  if (first === '' && last === '') return FULL;
  if (first === '') {
    const suffix = Number(last);
    if (suffix === 0 || length === 0) return UNSATISFIABLE;
    return { kind: 'partial', start: Math.max(0, length - suffix), end: length - 1 };
  }
  const start = Number(first);
  const end = last === '' ? length - 1 : Number(last);
  if (last !== '' && end < start) return FULL; // invalid range-spec: ignore the header
  if (start >= length) return UNSATISFIABLE;
  return { kind: 'partial', start, end: Math.min(end, length - 1) };
}

/** If-Range (RFC 9110 §13.1.5): a strong entity-tag match, or an exact, strong Last-Modified date. */
function ifRangeHolds(value: string | undefined, info: FreshnessInfo): boolean {
  if (value === undefined) return true;
  const v = value.trim();
  if (v.startsWith('"') || v.startsWith('W/')) {
    return info.etag !== null && strongMatch(parseEntityTag(v), parseEntityTag(info.etag));
  }
  const date = parseHttpDate(v);
  if (date === null || info.lastModified === null) return false;
  const lastModified = parseHttpDate(info.lastModified);
  // A Last-Modified is only a strong validator when it is at least a second older than Date.
  return lastModified !== null && lastModified === date && lastModified <= info.date - 1000;
}
