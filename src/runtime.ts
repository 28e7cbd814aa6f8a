/**
 * Compiles a validated Config into the runtime objects that serve traffic: pools (with their pickers
 * and health checks), the route table, the front doors. A reload builds a new Runtime completely and
 * swaps it in; health state (HealthRegistry) and the cache outlive runtimes.
 */
import type { BlockedRequest } from './policy/rules.js';
import { Pool, type PoolDeps } from './balance/pool.js';
import type { HealthRegistry } from './balance/health-registry.js';
import type { PoolSpec } from './balance/types.js';
import type { CacheEngine } from './cache/types.js';
import { doorCacheRules } from './config/cache-rules.js';
import { ConfigError } from './config/errors.js';
import type { DoorCacheSettings } from './cache/door-caches.js';
import type { CacheConfig } from './config/cache-schema.js';
import type { Config, LimitsConfig, PoolConfig, RateLimitConfig, TimeoutsConfig } from './config/schema.js';
import type { Logger } from './core/log.js';
import { CidrList } from './policy/cidr-list.js';
import { RateLimiter, type RateLimitSpec } from './policy/rate-limiter.js';
import { RuleSet } from './policy/rules.js';
import { RequestGuard } from './pipeline/admission.js';
import type { ExchangeRecord, SessionSink } from './pipeline/session.js';
import { ownListenersOf, type OwnListener } from './forward/destination-guard.js';
import { ForwardProxy } from './forward/forward-proxy.js';
import type { RecentBlocks } from './forward/recent-blocks.js';
import { closeBackendClients } from './reverse/backend-client.js';
import { ReverseGateway } from './reverse/gateway.js';
import type { PurgeStored } from './reverse/purge.js';
import { ReverseDoor, type ReverseRoute } from './reverse/reverse-door.js';
import { RouteTable } from './reverse/routes.js';
import type { Timeouts } from './core/messages.js';

export interface RuntimeDeps {
  readonly registry: HealthRegistry;
  /** Each door's own cache (src/cache/door-caches.ts); null for none. */
  readonly reverseCache: CacheEngine | null;
  readonly forwardCache: CacheEngine | null;
  readonly log: Logger;
  readonly onDone?: (record: ExchangeRecord, status: number) => void;
  /** Told about every finished upstream attempt of every pool (admin statistics). */
  readonly onAttempt?: PoolDeps['onAttempt'];
  /** Told about every request an access rule refused (admin dashboard and metrics). */
  readonly onBlocked?: (blocked: BlockedRequest) => void;
  /** What the forward proxy refused lately, per client (its `/blocked` page). */
  readonly recentBlocks?: RecentBlocks;
  /** Drops a URL's entries from the reverse cache everywhere (every worker, the shared tier): PURGE. */
  readonly purgeReverse?: PurgeStored | null;
  /** The clock the rules' time-of-day conditions read (ms since the epoch); Date.now by default. */
  readonly now?: (() => number) | undefined;
  /** This process's listeners, where the forward proxy never connects; default: those `config` names with a port. */
  readonly ownListeners?: () => readonly OwnListener[];
}

export interface Runtime {
  readonly config: Config;
  readonly pools: ReadonlyMap<string, Pool>;
  readonly reverse: ReverseGateway | null;
  readonly forward: ForwardProxy | null;
  /** Admission checks of the front doors (rate-limit tables), stopped with the runtime. */
  readonly guards: readonly { stop(): void }[];
}

export function buildRuntime(config: Config, deps: RuntimeDeps): Runtime {
  const pools = new Map<string, Pool>();
  for (const [name, pc] of Object.entries(config.pools)) {
    try {
      pools.set(name, new Pool(poolSpec(name, pc), { registry: deps.registry, log: deps.log, onAttempt: deps.onAttempt }));
    } catch (err) {
      throw new ConfigError([(err as Error).message]);
    }
  }
  // The front doors write the access log: with log.anonymize it leaves out the client address.
  const doorLog = config.log.anonymize ? deps.log.child({}, { redact: { paths: ['client'], remove: true } }) : deps.log;
  const sink: SessionSink = { log: doorLog, onDone: deps.onDone, onBlocked: deps.onBlocked };
  const clock = deps.now;
  const now = clock === undefined ? undefined : () => new Date(clock());
  const guards: { stop(): void }[] = [];
  const limits = config.limits;
  const guardFor = (rate: RateLimitConfig | undefined, what: string) => {
    const guard = admissionCheck(limits, rate, what);
    guards.push(guard);
    return guard;
  };
  let reverse: ReverseGateway | null = null;
  if (config.reverse) {
    const rc = config.reverse;
    const routes = new RouteTable<ReverseRoute>(
      rc.routes.map((r, i) => {
        const pc = config.pools[r.pool]!;
        const rateLimiter = r.rate_limit ? new RateLimiter(rateLimitSpec(r.rate_limit)) : null;
        if (rateLimiter) guards.push(rateLimiter);
        return {
          host: r.host,
          path: r.path,
          target: {
            pool: pools.get(r.pool)!,
            cache: r.cache,
            preserveHost: r.preserve_host ?? pc.preserve_host ?? rc.preserve_host,
            timeouts: toTimeouts(pc.timeouts ?? rc.timeouts),
            rateLimiter,
            maxBodySize: r.max_body_size ?? limits.max_body_size,
            label: `reverse.routes[${i}] (${r.host ?? ''}${r.path})`,
          },
        };
      }),
    );
    reverse = new ReverseGateway({
      door: new ReverseDoor({
        routes,
        admission: guardFor(rc.rate_limit, 'the reverse proxy'),
        rules: new RuleSet(rc.rules, { keyPath: 'reverse.rules', now }),
        purgeClients: rc.purge ? new CidrList(rc.purge.clients) : null,
      }),
      trustedProxies: new CidrList(rc.trusted_proxies),
      cache: deps.reverseCache,
      cacheRules: doorCacheRules(config.cache.rules, 'reverse'),
      purge: deps.purgeReverse ?? null,
      sink,
    });
  }
  let forward: ForwardProxy | null = null;
  if (config.forward) {
    forward = new ForwardProxy({
      config: config.forward,
      admission: guardFor(config.forward.rate_limit, 'the forward proxy'),
      cache: deps.forwardCache,
      cacheRules: doorCacheRules(config.cache.rules, 'forward'),
      sink,
      ownAddresses: deps.ownListeners ?? ownListenersOf(config),
      recentBlocks: deps.recentBlocks,
      now,
    });
  }
  return { config, pools, reverse, forward, guards };
}

export function startRuntime(runtime: Runtime): void {
  for (const pool of runtime.pools.values()) pool.start();
}

export function stopRuntime(runtime: Runtime): void {
  for (const pool of runtime.pools.values()) pool.stop();
  // The backends' upstream connections: idle ones close now, the others once their request is done.
  void closeBackendClients(runtime.pools.values());
  runtime.forward?.stop();
  for (const guard of runtime.guards) guard.stop();
}

/** A front door's admission check from `limits` and its `rate_limit`. */
export function admissionCheck(limits: LimitsConfig, rate: RateLimitConfig | undefined, what: string): RequestGuard {
  const requestLimits = { maxUrlLength: limits.max_url_length, maxHeaderCount: limits.max_header_count, maxBodySize: limits.max_body_size };
  return new RequestGuard(requestLimits, rate && rateLimitSpec(rate), what);
}

function rateLimitSpec(rate: RateLimitConfig): RateLimitSpec {
  return { rate: rate.rate, burst: rate.burst ?? Math.max(1, Math.ceil(rate.rate)) };
}

function toTimeouts(t: TimeoutsConfig): Timeouts {
  return { connectMs: t.connect, responseHeaderMs: t.response_header, idleMs: t.idle };
}

function poolSpec(name: string, pc: PoolConfig): PoolSpec {
  return {
    name,
    balance: pc.balance,
    hashKey: pc.hash_key,
    retries: pc.retries,
    servers: pc.servers.map((s) => ({ url: s.url, weight: s.weight, maxConns: s.max_conns, backup: s.backup })),
    health: pc.health && {
      path: pc.health.path,
      intervalMs: pc.health.interval,
      timeoutMs: pc.health.timeout,
      rise: pc.health.rise,
      fall: pc.health.fall,
      expectStatus: pc.health.status ?? [],
      host: pc.health.host,
    },
    passive: { maxFails: pc.passive.max_fails, failTimeoutMs: pc.passive.fail_timeout },
    sticky: pc.sticky,
    queue: { size: pc.queue.size, timeoutMs: pc.queue.timeout },
    slowStartMs: pc.slow_start,
  };
}

/** The caches' settings from `cache`. */
export function doorCacheSettings(cache: CacheConfig): DoorCacheSettings {
  return {
    maxBytes: cache.max_size,
    store: cache.store,
    dir: cache.dir,
    redis: cache.redis && {
      url: cache.redis.url,
      keyPrefix: cache.redis.key_prefix,
      commandTimeoutMs: cache.redis.command_timeout,
      maxObjectBytes: cache.redis.max_object_size,
    },
    maxObjectSize: cache.max_object_size,
    largestObject: Math.max(cache.max_object_size, ...cache.rules.map((r) => r.max_object_size ?? 0)),
    heuristicMaxMs: cache.heuristic_max,
    tagHeader: cache.tag_header,
    quickAbort: cache.quick_abort,
    targetedFields: cache.targeted_fields,
  };
}
