/**
 * How long a stored response lives in the Redis tier (the record's PX).
 *
 * - Until it stops being fresh, plus the longer of its stale-while-revalidate and stale-if-error
 *   windows: past that no request can be answered from it without the origin.
 * - A response with a validator (ETag or Last-Modified) is worth keeping a while longer even when it is
 *   stale: a revalidation then costs a 304 instead of the whole body. It is kept `keepRevalidatableMs`
 *   past its freshness (1 hour by default) — bounded, where the memory tier keeps it until evicted.
 * - Never past the entry's own `expiresAt`.
 *
 * Times are absolute (ms since the epoch) and shared by every instance, so clocks should agree to
 * within a second or so; a skewed clock only shortens or lengthens a record's life in Redis.
 */
import type { StoredResponse } from '../stored-response.js';

export const DEFAULT_KEEP_REVALIDATABLE_MS = 60 * 60 * 1000;

/** The record's time to live in ms from `now`; 0 or less means: not worth writing. */
export function redisTtlMs(entry: StoredResponse, now: number, keepRevalidatableMs: number): number {
  const info = entry.info;
  const freshUntil = info.responseTime + info.lifetime - info.correctedInitialAge;
  const revalidatable = info.etag !== null || info.lastModified !== null;
  const window = Math.max(info.staleWhileRevalidate, info.staleIfError, revalidatable ? keepRevalidatableMs : 0);
  const until = Math.min(freshUntil + window, entry.expiresAt);
  return Math.floor(until - now);
}
