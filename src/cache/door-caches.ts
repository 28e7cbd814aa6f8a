/**
 * One cache per front door. The reverse and the forward proxy never share entries: a client of the
 * reverse proxy chooses the Host header, so what the backends answer for `Host: bank.example` must
 * never reach a forward-proxy user as http://bank.example/ (nor a forward-proxy user's fetch reach
 * reverse clients). With both doors running each gets half of `cache.max_size` (a disk cache lives in
 * `cache.dir/reverse` and `cache.dir/forward`). The admin API sees them as one cache.
 */
import { join } from 'node:path';
import type { CacheConfig, Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import { createCache, type HttpCache } from './http-cache.js';
import type { CacheStats } from './types.js';

export class DoorCaches {
  private constructor(
    readonly reverse: HttpCache | null,
    readonly forward: HttpCache | null,
  ) {}

  /** The caches of the doors `config` runs; null when the cache is off. */
  static create(config: Config, log: Logger, onInvalidate?: (url: string) => void): DoorCaches | null {
    const cache = config.cache;
    if (!cache.enabled) return null;
    const doors = (config.reverse ? 1 : 0) + (config.forward ? 1 : 0);
    const forDoor = (door: 'reverse' | 'forward'): CacheConfig => ({
      ...cache,
      max_size: Math.max(1, Math.floor(cache.max_size / Math.max(1, doors))),
      dir: cache.dir === undefined ? undefined : join(cache.dir, door),
    });
    return new DoorCaches(
      config.reverse ? createCache(forDoor('reverse'), log, onInvalidate) : null,
      config.forward ? createCache(forDoor('forward'), log, onInvalidate) : null,
    );
  }

  stats(): CacheStats {
    const all = this.each().map((c) => c.stats());
    const sum = (field: keyof CacheStats) => all.reduce((n, s) => n + s[field], 0);
    return {
      entries: sum('entries'),
      bytes: sum('bytes'),
      maxBytes: sum('maxBytes'),
      hits: sum('hits'),
      misses: sum('misses'),
      stores: sum('stores'),
      evictions: sum('evictions'),
    };
  }

  /** Purges drop matching entries from both doors' caches; the answer is how many went in all. */
  purgeUrl(url: string): Promise<number> {
    return this.total((c) => c.purgeUrl(url));
  }

  purgePrefix(prefix: string): Promise<number> {
    return this.total((c) => c.purgePrefix(prefix));
  }

  purgeTag(tag: string): Promise<number> {
    return this.total((c) => c.purgeTag(tag));
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
