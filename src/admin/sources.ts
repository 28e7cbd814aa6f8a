/**
 * What the admin layer reads and steers, as small interfaces: the server (src/server.ts) provides
 * them; nothing here knows how pools, the cache or the forward proxy work inside.
 */
import type { BackendSnapshot, PoolSpec } from '../balance/types.js';
import type { CacheDoor, EntryDetail, EntryListQuery, EntryPage } from '../cache/entry-listing.js';
import type { CacheStats } from '../cache/types.js';
import type { Config } from '../config/schema.js';
import type { Door } from '../pipeline/runner.js';
import type { BlockedLog } from './blocked-log.js';
import type { TrafficStats } from './traffic-stats.js';

/** A pool of backends (the balance layer's Pool). */
export interface PoolView {
  readonly name: string;
  readonly spec: PoolSpec;
  /** Requests waiting for a backend with capacity. */
  readonly queued: number;
  snapshot(): BackendSnapshot[];
  /** False for an unknown backend id. */
  drain(id: string): boolean;
  enable(id: string): boolean;
}

/** The doors' caches (src/cache DoorCaches). */
export interface CacheView {
  stats(): CacheStats;
  /** Both doors' entries for the URL, or one door's. */
  purgeUrl(url: string, door?: CacheDoor): Promise<number>;
  purgePrefix(prefix: string): Promise<number>;
  purgeTag(tag: string): Promise<number>;
  /** One page of this process's stored entries (the local tiers; entries only in Redis are not listed). */
  listEntries(query: EntryListQuery): EntryPage;
  /** Every variant of one URL stored in this process, with its stored headers. */
  entryDetails(url: string, door?: CacheDoor): Promise<EntryDetail[]>;
}

/** A front door (src/forward ForwardProxy, src/reverse ReverseGateway): its phases, for /api/explain. */
export interface DoorView {
  readonly door: Door<unknown>;
}

/** What a successful reload changed. */
export interface ReloadOutcome {
  /** Human-readable changes, e.g. `pools.app.servers: changed`, `pools.api: added`. */
  readonly changes: readonly string[];
  /** Keys that changed but only take effect after a restart (listen addresses, the cache store). */
  readonly restartNeeded: readonly string[];
}

export interface ReloadHistory {
  succeeded: number;
  failed: number;
  /** Epoch ms of the last successful (and failed) reload; 0 for never. */
  lastSuccessAt: number;
  lastFailureAt: number;
  lastProblems: readonly string[];
}

/** The running process as the admin layer sees it. */
export interface AdminTarget {
  readonly startedAt: number;
  /** The config currently serving. */
  readonly config: Config;
  readonly pools: ReadonlyMap<string, PoolView>;
  readonly cache: CacheView | null;
  readonly forward: DoorView | null;
  readonly reverse: DoorView | null;
  readonly traffic: TrafficStats;
  readonly blocked: BlockedLog;
  readonly reloads: ReloadHistory;
  /** Whether there is a config file to re-read. */
  readonly canReload: boolean;
  addresses(): { readonly reverse?: string; readonly reverseTls?: string; readonly forward?: string; readonly admin?: string };
  /** Re-reads the config; throws ConfigError (every problem) and keeps the old config on failure. */
  reload(): ReloadOutcome;
}
