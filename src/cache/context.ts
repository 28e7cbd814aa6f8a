/**
 * What the parts of the cache engine share (src/cache/engine.ts builds it once): the tiers, the clock,
 * the storage policy, request collapsing, the hit-for-miss memo and the counters.
 */
import type { Logger } from '../core/log.js';
import type { UseCounter } from './cache-rule.js';
import type { Collapser } from './collapse.js';
import type { LocalTier } from './local-tier.js';
import type { PolicyOptions } from './shared-cache-policy.js';
import type { SharedTier } from './shared-tier.js';
import type { UncacheableMemo } from './uncacheable-memo.js';

export interface CacheCounters {
  hits: number;
  misses: number;
  stores: number;
}

export interface CacheContext {
  readonly tier: LocalTier;
  /** The tier shared with other processes and machines (Redis), or null. */
  readonly shared: SharedTier | null;
  readonly log: Logger;
  /** Clock (ms since the epoch). */
  readonly now: () => number;
  readonly policy: PolicyOptions;
  /** Lower-case name of the response header whose tags can be purged together. */
  readonly tagHeader: string;
  readonly maxObjectSize: number;
  /** Fraction of a response after which it is finished into the cache when its client leaves (above 1: never). */
  readonly quickAbort: number;
  readonly collapser: Collapser;
  readonly uncacheable: UncacheableMemo;
  readonly counters: CacheCounters;
  /** Requests per URL, for rules with min_uses. */
  readonly uses: UseCounter;
  /**
   * Told of every URL an unsafe request invalidated (the other workers' caches drop it too); the answer
   * to the unsafe request waits for its promise.
   */
  readonly onInvalidate: ((url: string) => Promise<void>) | undefined;
}
