/**
 * The Cache-Status response field (RFC 9211): one list member per cache, ours named `portico`.
 * Upstream caches' members stay in front of ours (the field is ordered origin-first).
 */

export const CACHE_NAME = 'portico';

/** RFC 9211 §2.2 forward reasons. */
export type ForwardReason = 'bypass' | 'method' | 'uri-miss' | 'vary-miss' | 'miss' | 'request' | 'stale' | 'partial';

export interface CacheStatusParams {
  readonly hit?: boolean;
  readonly fwd?: ForwardReason;
  readonly fwdStatus?: number;
  /** Remaining freshness in seconds (negative when stale). */
  readonly ttl?: number;
  readonly stored?: boolean;
  readonly collapsed?: boolean;
  /** A token naming why the response was not stored (or another implementation-specific note). */
  readonly detail?: string;
}

export function cacheStatus(p: CacheStatusParams): string {
  let s = CACHE_NAME;
  if (p.hit) s += '; hit';
  if (p.fwd !== undefined) s += `; fwd=${p.fwd}`;
  if (p.fwdStatus !== undefined) s += `; fwd-status=${p.fwdStatus}`;
  if (p.ttl !== undefined) s += `; ttl=${Math.trunc(p.ttl)}`;
  if (p.stored) s += '; stored';
  if (p.collapsed) s += '; collapsed';
  if (p.detail !== undefined) s += `; detail=${p.detail}`;
  return s;
}
