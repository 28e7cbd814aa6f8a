/**
 * The process: the runtime it serves (swapped whole on reload), its listeners (src/listeners.ts), and
 * graceful shutdown. Health state, statistics and the cache live here, across reloads.
 */
import { AdminHandler } from './admin/admin-handler.js';
import type { AdminPeers } from './admin/admin-commands.js';
import { BlockedLog } from './admin/blocked-log.js';
import { diffConfig } from './admin/config-diff.js';
import type { AdminTarget, ReloadHistory, ReloadOutcome } from './admin/sources.js';
import { StatsSummary } from './admin/stats-summary.js';
import { TrafficStats } from './admin/traffic-stats.js';
import { VERSION } from './admin/version.js';
import { HealthRegistry } from './balance/health-registry.js';
import { DoorCaches } from './cache/door-caches.js';
import { ConfigError } from './config/errors.js';
import { isLoopbackHost } from './config/fields.js';
import type { Config } from './config/schema.js';
import { RecentBlocks } from './forward/recent-blocks.js';
import type { Logger } from './core/log.js';
import { listenerSpecs, type ListeningAddresses, type SharedSockets } from './listener-specs.js';
import { Listeners, tlsOptions, type ListenerHost } from './listeners.js';
import type { OwnListener } from './forward/destination-guard.js';
import { parseListenAddress } from './config/units.js';
import { buildRuntime, doorCacheSettings, startRuntime, stopRuntime, type Runtime, type RuntimeDeps } from './runtime.js';

/** How long a start waits for the shared cache tier (Redis) to connect before serving without it. */
const SHARED_TIER_START_WAIT_MS = 1_000;

export interface PorticoOptions {
  readonly log: Logger;
  /** Re-reads the config (file + flags) for a reload; absent when there is nothing to re-read. */
  readonly loadConfig?: () => Config;
  /** Told after every successful reload. */
  readonly onReloaded?: (() => void) | undefined;
  /** Under the supervisor (src/workers): the other workers, for the admin API and cache invalidations. */
  readonly peers?: WorkerPeers;
  /** Under the supervisor: the listening sockets it bound, to listen on instead of binding. */
  readonly shared?: SharedSockets;
  /**
   * The clock (ms since the epoch) that the caches' freshness and expiry and the rules' time-of-day
   * conditions read; Date.now by default. Tests pass one they can move forward instead of sleeping.
   */
  readonly now?: () => number;
}

export interface WorkerPeers extends AdminPeers {
  /** Told of every URL an unsafe request invalidated in this worker's cache; resolves once the others dropped it. */
  readonly announceInvalidation: (url: string) => Promise<void>;
}

export class Portico implements AdminTarget, ListenerHost {
  readonly registry = new HealthRegistry();
  /** One cache per front door (never shared: see DoorCaches); null when the cache is off. */
  readonly cache: DoorCaches | null;
  readonly startedAt = Date.now();
  /** Request, upstream and tunnel statistics (admin dashboard, /metrics, the stats summary); outlive reloads. */
  readonly traffic = new TrafficStats();
  /** The recent requests blocked by a rule and counts per rule; outlive reloads. */
  readonly blocked = new BlockedLog();
  /** The forward proxy's recent blocks per client, for its `/blocked` page; outlive reloads. */
  private readonly recentBlocks = new RecentBlocks();
  readonly reloads: ReloadHistory = { succeeded: 0, failed: 0, lastSuccessAt: 0, lastFailureAt: 0, lastProblems: [] };
  /** Set by close(): responses stop keeping connections alive. */
  closing = false;
  private current: Runtime;
  private readonly listeners: Listeners;
  private readonly log: Logger;
  private readonly loadConfig: (() => Config) | undefined;
  /** Under the supervisor: the other workers (a PURGE reaches their caches too). */
  private readonly peers: WorkerPeers | undefined;
  private readonly onReloaded: (() => void) | undefined;
  private readonly summary: StatsSummary;
  private readonly now: (() => number) | undefined;
  /** This process's listeners where they are bound (a port 0 in the config is known only then). */
  private bound: readonly OwnListener[] = [];
  /** Where the forward proxy must never connect: asked at each check, so it sees the bound ports. */
  private readonly ownListeners = (): readonly OwnListener[] => this.bound;

  private constructor(config: Config, options: PorticoOptions, cache: DoorCaches | null) {
    this.log = options.log;
    this.now = options.now;
    this.loadConfig = options.loadConfig;
    this.peers = options.peers;
    this.onReloaded = options.onReloaded;
    this.cache = cache;
    this.current = buildRuntime(config, this.runtimeDeps());
    this.listeners = new Listeners(this, options.log);
    this.summary = new StatsSummary(this, options.log);
  }

  private runtimeDeps(): RuntimeDeps {
    return {
      registry: this.registry,
      reverseCache: this.cache?.reverse ?? null,
      forwardCache: this.cache?.forward ?? null,
      log: this.log,
      onDone: this.traffic.recordRequest,
      onAttempt: this.traffic.recordAttempt,
      onBlocked: (blocked) => {
        this.blocked.record(blocked);
        if (blocked.door === 'forward') this.recentBlocks.record(blocked);
      },
      recentBlocks: this.recentBlocks,
      purgeReverse: this.cache?.reverse ? this.purgeReverse : null,
      now: this.now,
      ownListeners: this.ownListeners,
    };
  }

  /**
   * A PURGE on the reverse door: the engine's purge (this tier, the shared tier and every instance
   * on it) in every worker — the other workers have caches of their own — resolved once all have.
   */
  private readonly purgeReverse = async (url: string): Promise<number> => {
    if (this.peers === undefined) return (await this.cache?.purgeUrl(url, 'reverse')) ?? 0;
    const counts = await this.peers.run({ op: 'purge', kind: 'url', value: url, door: 'reverse' });
    return counts.reduce((a, b) => a + b, 0);
  };

  /** Builds the runtime, opens every listener, starts health checks. Rejects with ConfigError on bind problems. */
  static async start(config: Config, options: PorticoOptions): Promise<Portico> {
    const cache = config.cache.enabled
      ? await DoorCaches.create({ reverse: config.reverse !== undefined, forward: config.forward !== undefined }, doorCacheSettings(config.cache), {
          log: options.log,
          now: options.now,
          onInvalidate: options.peers?.announceInvalidation,
        })
      : null;
    const portico = new Portico(config, options, cache);
    try {
      const admin = config.admin
        ? new AdminHandler(portico, { exposed: !isLoopbackHost(config.admin.listen.host), log: options.log, version: VERSION, peers: options.peers }).handle
        : null;
      // The shared tier first (a second at most: Redis is never waited for longer), so that the first
      // requests already find what the other instances stored.
      await portico.cache?.sharedTiersSettled(SHARED_TIER_START_WAIT_MS);
      await portico.listeners.open(config, admin, options.shared);
      portico.bound = boundListeners(config, portico.listeners.addresses());
    } catch (err) {
      await portico.close(0);
      throw err;
    }
    startRuntime(portico.current);
    portico.summary.start(config.log.stats_interval);
    return portico;
  }

  /** The runtime serving now. */
  get runtime(): Runtime {
    return this.current;
  }

  get config(): Config {
    return this.current.config;
  }

  get pools(): Runtime['pools'] {
    return this.current.pools;
  }

  get forward(): Runtime['forward'] {
    return this.current.forward;
  }

  get reverse(): Runtime['reverse'] {
    return this.current.reverse;
  }

  /** Whether reload() has a config file to re-read. */
  get canReload(): boolean {
    return this.loadConfig !== undefined;
  }

  addresses(): ListeningAddresses {
    return this.listeners.addresses();
  }

  /**
   * Swaps in a new config: the new runtime is built completely first; if anything is wrong the old one
   * keeps serving and the error is thrown. In-flight requests finish on the runtime they started on.
   */
  reload(next?: Config): ReloadOutcome {
    let config: Config | undefined;
    let fresh: Runtime;
    let tls: ReturnType<typeof tlsOptions> | undefined;
    try {
      config = next ?? this.loadConfig?.();
      if (!config) throw new ConfigError(['nothing to reload from: Portico was started without --config']);
      fresh = buildRuntime(config, this.runtimeDeps());
      try {
        tls = config.reverse?.tls && this.listeners.hasTls ? tlsOptions(config.reverse.tls) : undefined;
      } catch (err) {
        stopRuntime(fresh);
        throw err;
      }
    } catch (err) {
      this.reloads.failed++;
      this.reloads.lastFailureAt = Date.now();
      this.reloads.lastProblems = err instanceof ConfigError ? err.problems : [(err as Error).message];
      throw err;
    }
    const old = this.current;
    const outcome = diffConfig(old.config, config);
    this.listeners.apply(config, tls);
    this.current = fresh;
    startRuntime(fresh);
    stopRuntime(old);
    // Health state of servers the new config no longer lists is forgotten (a later re-add starts fresh).
    const addresses: string[] = [];
    for (const pool of fresh.pools.values()) for (const b of pool.backends) addresses.push(b.address);
    this.registry.retainOnly(addresses);
    this.summary.start(config.log.stats_interval);
    this.reloads.succeeded++;
    this.reloads.lastSuccessAt = Date.now();
    this.reloads.lastProblems = [];
    this.log.info({ pools: [...fresh.pools.keys()], changes: outcome.changes }, 'config reloaded');
    this.onReloaded?.();
    if (outcome.restartNeeded.length > 0) {
      this.log.warn({ keys: outcome.restartNeeded }, 'config reloaded, but these changes take effect only after a restart');
    }
    return outcome;
  }

  /**
   * Stops accepting, closes idle keep-alive connections, lets in-flight requests and open tunnels
   * finish for up to `drainMs` (default `shutdown.drain_timeout`), then cuts what is left. Responses
   * started while closing do not keep their connection alive.
   */
  async close(drainMs = this.config.shutdown.drain_timeout): Promise<void> {
    this.closing = true;
    this.summary.stop();
    stopRuntime(this.current);
    await this.listeners.close(drainMs);
    await this.cache?.close();
  }
}

/** The listeners `config` asks for, at the addresses they are bound to. */
function boundListeners(config: Config, addresses: ListeningAddresses): OwnListener[] {
  const out: OwnListener[] = [];
  for (const spec of listenerSpecs(config)) {
    const address = addresses[spec.name];
    const bound = address === undefined ? null : parseListenAddress(address);
    if (bound !== null) out.push({ key: spec.key, host: bound.host, port: bound.port });
  }
  return out;
}
