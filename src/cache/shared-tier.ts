/**
 * A cache tier shared by every process and machine that points at it (src/cache/redis/redis-tier.ts is
 * the one there is: Redis or Valkey), behind each process's own tier (LocalTier). What the engine needs
 * of it: variants of a URL, writes, purges that reach every instance, and request collapsing across
 * instances. No method ever rejects: a shared tier that is away is a miss, never an error.
 */
import type { StoredResponse } from './stored-response.js';

export type PurgeKind = 'url' | 'prefix' | 'tag';

/** A purge made elsewhere, to apply to the local tier; 'all' after the bus was interrupted. */
export interface PurgeNotice {
  readonly kind: PurgeKind | 'all';
  readonly value: string;
}

export type PurgeListener = (notice: PurgeNotice) => void | Promise<void>;

export interface PurgeResult {
  /** Records deleted from Redis. */
  readonly deleted: number;
  /** Instances subscribed to the purge channel when it was published (this one included). */
  readonly instances: number;
  /** Of those, how many acknowledged (this one included). */
  readonly acknowledged: number;
  /** Deleted from Redis and acknowledged by every instance that received it. */
  readonly reachedAll: boolean;
}

export type FillClaim = 'leader' | 'follower' | 'unavailable';
export type FillWait = 'released' | 'timeout' | 'unavailable';

export interface SharedTierState {
  readonly status: 'connecting' | 'up' | 'down';
  /** When the status last changed (ms). */
  readonly since: number;
  readonly lastError?: string;
  /** The pub/sub connection (purges from others, fill wake-ups). */
  readonly bus: 'up' | 'down';
  /** This instance's id on the bus. */
  readonly instance: string;
  /** variants() calls sent to Redis, and those that found at least one usable variant. */
  readonly reads: number;
  readonly hits: number;
  /** Records written, and store() calls skipped (too big, no life left, down, full). */
  readonly writes: number;
  readonly skipped: number;
  /** Failed commands (timeouts included), and of them timeouts. */
  readonly errors: number;
  readonly timeouts: number;
  /** Values under our keys that were not valid records (deleted). */
  readonly garbage: number;
  readonly purgesSent: number;
  readonly purgesReceived: number;
  readonly fillsLed: number;
  readonly fillsFollowed: number;
}

export interface SharedTier {
  state(): SharedTierState;
  /**
   * Resolves once the first connection is up with its pub/sub bus, or has failed, or after
   * `timeoutMs`: an instance that starts serving before then misses what the others stored.
   */
  settled(timeoutMs: number): Promise<void>;
  /** Every usable variant of a URL, verified; [] on a miss or any failure. */
  variants(url: string): Promise<StoredResponse[]>;
  /** Writes a variant; false when skipped (too big, down, full). */
  store(entry: StoredResponse): Promise<boolean>;
  /** Drops one variant (not announced to the other instances). */
  delete(key: string): Promise<boolean>;
  /** Purges, resolved once every other instance has dropped them from its own tier (or a timeout). */
  purgeUrl(url: string): Promise<PurgeResult>;
  purgePrefix(prefix: string): Promise<PurgeResult>;
  purgeTag(tag: string): Promise<PurgeResult>;
  /** Purges made by other instances, to apply to the local tier; returns a remover. */
  onPurge(listener: PurgeListener): () => void;
  /** Request collapsing across instances: one leader per key fetches, the others wait for it. */
  claimFill(key: string, ttlMs: number): Promise<FillClaim>;
  releaseFill(key: string): Promise<void>;
  waitForFill(key: string, timeoutMs: number): Promise<FillWait>;
  close(): Promise<void>;
}
