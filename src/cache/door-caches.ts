/**
 * One cache per front door. The reverse and the forward proxy never share entries: a client of the
 * reverse proxy chooses the Host header, so what the backends answer for `Host: bank.example` must
 * never reach a forward-proxy user as http://bank.example/ (nor a forward-proxy user's fetch reach
 * reverse clients). With both doors running each gets half of the byte bound (a disk cache lives in
 * `dir/reverse` and `dir/forward`). The admin API sees them as one cache. This is where stores are made.
 */
import { join } from 'node:path';
import type { Logger } from '../core/log.js';
import { DiskStore } from './disk-store.js';
import { HttpCache, type CacheSettings } from './engine.js';
import { entryDetails, listEntries, type CacheDoor, type DoorTier, type EntryDetail, type EntryListQuery, type EntryPage } from './entry-listing.js';
import { LocalTier } from './local-tier.js';
import { MemoryStore } from './memory-store.js';
import type { SharedTier, SharedTierState } from './shared-tier.js';
import type { CacheStore } from './store.js';
import type { CacheStats } from './types.js';

export interface DoorCacheSettings extends CacheSettings {
  /** Bytes kept by all doors' stores together. */
  readonly maxBytes: number;
  readonly store: 'memory' | 'disk';
  /** Directory of the disk store. */
  readonly dir: string | undefined;
  /** The shared tier on Redis/Valkey, or undefined for none. */
  readonly redis: RedisSettings | undefined;
  /** The largest object any rule lets be stored (the stores' per-entry bound). */
  readonly largestObject: number;
}

export interface RedisSettings {
  readonly url: string;
  /** Each door's keys start with `${keyPrefix}${door}:`. */
  readonly keyPrefix: string;
  readonly commandTimeoutMs: number;
  /** Larger entries stay in the local tier. */
  readonly maxObjectBytes: number;
}

export interface DoorCacheOptions {
  readonly log: Logger;
  readonly now?: () => number;
  /** Told of every URL an unsafe request invalidated (the other workers' caches drop it too). */
  readonly onInvalidate?: (url: string) => Promise<void>;
}

let redisTierModule: Promise<typeof import('./redis/redis-tier.js')> | undefined;

/**
 * The Redis tier's code, with node-redis: loaded once, and only by a process whose config has a
 * `cache.redis` (about 15 MB of RSS otherwise). A spare calls it while it waits (src/serving.ts), so
 * that taking a worker's place does not wait for the load (about 0.2 s).
 */
export async function loadRedisTier(): Promise<typeof import('./redis/redis-tier.js').RedisTier> {
  redisTierModule ??= import('./redis/redis-tier.js');
  return (await redisTierModule).RedisTier;
}

/** Bytes allowed for an entry's headers and bookkeeping on top of the body limit. */
const ENTRY_HEADER_ALLOWANCE = 64 * 1024;

export class DoorCaches {
  private constructor(
    readonly reverse: HttpCache | null,
    readonly forward: HttpCache | null,
    /** Each door's local tier, for the admin listing. */
    private readonly tiers: readonly DoorTier[],
    private readonly sharedTiers: readonly SharedTier[],
    private readonly now: () => number,
  ) {}

  /**
   * The caches of the doors that run. The Redis tier's code (and node-redis) is loaded only when the
   * settings ask for it.
   */
  static async create(doors: { readonly reverse: boolean; readonly forward: boolean }, settings: DoorCacheSettings, options: DoorCacheOptions): Promise<DoorCaches> {
    const RedisTier = settings.redis === undefined ? null : await loadRedisTier();
    const share = Math.max(1, Math.floor(settings.maxBytes / Math.max(1, Number(doors.reverse) + Number(doors.forward))));
    const tiers: DoorTier[] = [];
    const sharedTiers: SharedTier[] = [];
    const forDoor = (door: 'reverse' | 'forward'): HttpCache => {
      const storeOptions = { maxBytes: share, maxEntryBytes: settings.largestObject + ENTRY_HEADER_ALLOWANCE, now: options.now };
      const store: CacheStore =
        settings.store === 'disk' && settings.dir !== undefined ? new DiskStore(join(settings.dir, door), storeOptions) : new MemoryStore(storeOptions);
      const redis = settings.redis;
      const shared =
        redis === undefined || RedisTier === null
          ? null
          : new RedisTier({
              url: redis.url,
              keyPrefix: `${redis.keyPrefix}${door}:`,
              commandTimeoutMs: redis.commandTimeoutMs,
              maxObjectBytes: redis.maxObjectBytes,
              log: options.log.child({ tier: 'redis', door }),
              now: options.now,
            });
      const tier = new LocalTier(store);
      tiers.push({ door, tier });
      if (shared !== null) sharedTiers.push(shared);
      return new HttpCache({ settings, tier, shared, log: options.log, now: options.now, onInvalidate: options.onInvalidate });
    };
    const reverse = doors.reverse ? forDoor('reverse') : null;
    const forward = doors.forward ? forDoor('forward') : null;
    return new DoorCaches(reverse, forward, tiers, sharedTiers, options.now ?? Date.now);
  }

  /** Resolves once every shared tier has connected or failed to (see SharedTier.settled), at most `timeoutMs`. */
  async sharedTiersSettled(timeoutMs: number): Promise<void> {
    await Promise.all(this.sharedTiers.map((t) => t.settled(timeoutMs)));
  }

  stats(): CacheStats {
    const all = this.each().map((c) => c.stats());
    const sum = (field: 'entries' | 'bytes' | 'maxBytes' | 'hits' | 'misses' | 'stores' | 'evictions') => all.reduce((n, s) => n + s[field], 0);
    return {
      entries: sum('entries'),
      bytes: sum('bytes'),
      maxBytes: sum('maxBytes'),
      hits: sum('hits'),
      misses: sum('misses'),
      stores: sum('stores'),
      evictions: sum('evictions'),
      shared: mergeSharedStates(all.map((s) => s.shared).filter((s): s is SharedTierState => s !== null)),
    };
  }

  /** Purges drop matching entries from both doors' caches (or one door's); the answer is how many went in all. */
  purgeUrl(url: string, door?: CacheDoor): Promise<number> {
    if (door !== undefined) return this[door]?.purgeUrl(url) ?? Promise.resolve(0);
    return this.total((c) => c.purgeUrl(url));
  }

  purgePrefix(prefix: string): Promise<number> {
    return this.total((c) => c.purgePrefix(prefix));
  }

  purgeTag(tag: string): Promise<number> {
    return this.total((c) => c.purgeTag(tag));
  }

  /** One page of the doors' local entries (src/cache/entry-listing.ts); the shared tier's are not listed. */
  listEntries(query: EntryListQuery): EntryPage {
    return listEntries(this.tiers, query, this.now());
  }

  /** Every variant of one URL stored in the doors' local tiers, with its stored headers. */
  entryDetails(url: string, door?: CacheDoor): Promise<EntryDetail[]> {
    return entryDetails(this.tiers, url, door, this.now());
  }

  async close(): Promise<void> {
    await Promise.all(this.each().map((c) => c.close()));
  }

  private each(): HttpCache[] {
    return [this.reverse, this.forward].filter((c): c is HttpCache => c !== null);
  }

  private async total(purge: (cache: HttpCache) => Promise<number>): Promise<number> {
    return (await Promise.all(this.each().map(purge))).reduce((a, b) => a + b, 0);
  }
}

/** The doors' shared tiers (one Redis) as one: the worse status, counters added. */
function mergeSharedStates(states: readonly SharedTierState[]): SharedTierState | null {
  if (states.length === 0) return null;
  return states.reduce((a, b) => {
    const rank = { down: 0, connecting: 1, up: 2 } as const;
    const worse = rank[b.status] < rank[a.status] ? b : a;
    return {
      ...worse,
      bus: a.bus === 'down' || b.bus === 'down' ? 'down' : 'up',
      reads: a.reads + b.reads,
      hits: a.hits + b.hits,
      writes: a.writes + b.writes,
      skipped: a.skipped + b.skipped,
      errors: a.errors + b.errors,
      timeouts: a.timeouts + b.timeouts,
      garbage: a.garbage + b.garbage,
      purgesSent: a.purgesSent + b.purgesSent,
      purgesReceived: a.purgesReceived + b.purgesReceived,
      fillsLed: a.fillsLed + b.fillsLed,
      fillsFollowed: a.fillsFollowed + b.fillsFollowed,
    };
  });
}
