/** What the Redis tier tests share: one redis-server per file, stored responses to write, tiers closed after each test, awaiting a state. */
import { afterAll, afterEach, beforeAll } from 'vitest';
import { silentLogger, type Logger } from '../../../src/core/log.js';
import { RedisTier, type RedisTierOptions } from '../../../src/cache/redis/redis-tier.js';
import type { SharedTierState as RedisTierState } from '../../../src/cache/shared-tier.js';
import type { FreshnessInfo } from '../../../src/cache/shared-cache-policy.js';
import { newStoredResponse, type InMemoryResponse } from '../../../src/cache/stored-response.js';
import { startRedisServer, type AdminClient, type RedisServer } from '../../helpers/redis-server.js';

export interface EntryOptions {
  readonly body?: string | Buffer;
  readonly language?: string;
  readonly tags?: string;
  readonly etag?: string | null;
  readonly lifetimeMs?: number;
  readonly staleIfErrorMs?: number;
}

export function entry(url: string, o: EntryOptions = {}): InMemoryResponse {
  const now = Date.now();
  const info: FreshnessInfo = {
    correctedInitialAge: 0,
    responseTime: now,
    lifetime: o.lifetimeMs ?? 60_000,
    heuristic: false,
    alwaysRevalidate: false,
    noStale: false,
    staleWhileRevalidate: 0,
    staleIfError: o.staleIfErrorMs ?? 0,
    etag: o.etag === undefined ? '"v1"' : o.etag,
    lastModified: null,
    date: now,
  };
  const raw = ['Content-Type', 'text/plain; charset=utf-8', 'X-Test', 'ü'];
  const headers: Record<string, string> = { 'content-type': 'text/plain; charset=utf-8' };
  if (o.tags !== undefined) {
    raw.push('Surrogate-Key', o.tags);
    headers['surrogate-key'] = o.tags;
  }
  if (o.language !== undefined) raw.push('Vary', 'Accept-Language');
  const e = newStoredResponse({
    url,
    requestHeaders: o.language !== undefined ? { 'accept-language': o.language } : {},
    status: 200,
    statusMessage: 'OK',
    rawHeaders: raw,
    headers,
    body: Buffer.isBuffer(o.body) ? o.body : Buffer.from(o.body ?? `body of ${url}`),
    info,
    vary: o.language !== undefined ? ['accept-language'] : [],
    omit: new Set(),
    tagHeader: 'surrogate-key',
  });
  return e as InMemoryResponse;
}

/** Tiers made by `make` are closed after each test. */
export function tiersClosedAfterEach(defaults: () => Partial<RedisTierOptions> & { url: string }) {
  const open: RedisTier[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((t) => t.close()));
  });
  return (options: Partial<RedisTierOptions> = {}, log: Logger = silentLogger): RedisTier => {
    const t = new RedisTier({ maxObjectBytes: 1 << 20, log, ...defaults(), ...options });
    open.push(t);
    return t;
  };
}

/** Resolves once `test(state)` holds (checked now and on every state change); rejects after `ms`. */
export function until(tier: RedisTier, test: (s: RedisTierState) => boolean, ms = 5_000): Promise<RedisTierState> {
  return new Promise((resolve, reject) => {
    if (test(tier.state())) return resolve(tier.state());
    const timer = setTimeout(() => {
      remove();
      reject(new Error(`state not reached within ${ms} ms: ${JSON.stringify(tier.state())}`));
    }, ms);
    const remove = tier.onStateChange((s) => {
      if (!test(s)) return;
      remove();
      clearTimeout(timer);
      resolve(s);
    });
  });
}

/** Up, with the pub/sub bus subscribed. */
export function ready(tier: RedisTier): Promise<RedisTierState> {
  return until(tier, (s) => s.status === 'up' && s.bus === 'up');
}

export function down(tier: RedisTier): Promise<RedisTierState> {
  return until(tier, (s) => s.status === 'down');
}

export async function elapsed<T>(f: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const t0 = performance.now();
  const value = await f();
  return { value, ms: performance.now() - t0 };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export { silentLogger };

export interface RedisFixture {
  server: RedisServer;
  admin: AdminClient;
}

/**
 * One redis-server for the test file, emptied after each test; `reset` runs first (restart a server a
 * test killed, undo its config) and may replace `admin`.
 */
export function redisServerForFile(reset?: (redis: RedisFixture) => Promise<void>): RedisFixture {
  const redis = {} as RedisFixture;
  beforeAll(async () => {
    redis.server = await startRedisServer();
    redis.admin = await redis.server.admin();
  });
  afterAll(async () => {
    await redis.server?.stop();
  });
  afterEach(async () => {
    await reset?.(redis);
    await redis.admin.flushAll();
  });
  return redis;
}
