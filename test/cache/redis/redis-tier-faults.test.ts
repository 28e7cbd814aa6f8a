/**
 * Redis is a cache, never a dependency: down at start, killed mid-run, restarted, slow, full. Every
 * call answers within about the command timeout (at once while down), never rejects, and the tier
 * comes back by itself.
 */
import { describe, expect, it } from 'vitest';
import type { PurgeNotice } from '../../../src/cache/shared-tier.js';
import { recordingLogger } from '../../balance/logs.js';
import { down, elapsed, entry, ready, redisServerForFile, tiersClosedAfterEach, until } from './fixtures.js';

const TIMEOUT_MS = 100;
/** "Within about twice the command timeout", with room for a busy 2-core machine. */
const BOUND_MS = 2 * TIMEOUT_MS + 60;
/** "At once": well under one command timeout, so no call waited on Redis (the rest is a busy machine's jitter). */
const AT_ONCE_MS = TIMEOUT_MS / 2;

const redis = redisServerForFile(async (r) => {
  if (r.server.pid() === null) await r.server.restart();
  r.admin = await r.server.admin();
  await r.admin.configSet({ maxmemory: '0' });
});

const tier = tiersClosedAfterEach(() => ({ url: redis.server.url, commandTimeoutMs: TIMEOUT_MS, reconnectMaxDelayMs: 200 }));

/** Every call of the tier, as a caller would make them while Redis is unwell. */
async function everyCall(t: ReturnType<typeof tier>) {
  const e = entry('http://example.test/any');
  return {
    variants: await elapsed(() => t.variants(e.url)),
    store: await elapsed(() => t.store(e)),
    purge: await elapsed(() => t.purgeUrl(e.url)),
    claim: await elapsed(() => t.claimFill('k', 1000)),
    wait: await elapsed(() => t.waitForFill('k', 1000)),
  };
}

function expectAllFailedFast(calls: Awaited<ReturnType<typeof everyCall>>, bound = BOUND_MS) {
  expect(calls.variants.value).toEqual([]);
  expect(calls.store.value).toBe(false);
  expect(calls.purge.value.reachedAll).toBe(false);
  expect(calls.claim.value).toBe('unavailable');
  expect(calls.wait.value).toBe('unavailable');
  for (const c of Object.values(calls)) expect(c.ms).toBeLessThan(bound);
}

describe('Redis down at start', () => {
  it('answers every call at once as a miss, then comes up when Redis does', async () => {
    await redis.server.kill();
    const { log, lines } = recordingLogger();
    const t = tier({}, log);
    await down(t);
    expect(t.state().lastError).toMatch(/ECONNREFUSED/);
    expectAllFailedFast(await everyCall(t), AT_ONCE_MS);
    await redis.server.restart();
    await ready(t);
    expect(await t.store(entry('http://example.test/after'))).toBe(true);
    expect(await t.variants('http://example.test/after')).toHaveLength(1);
    // One line per change, not one per reconnect attempt.
    expect(lines.filter((l) => l.msg.startsWith('redis cache tier down')).length).toBe(1);
    expect(lines.filter((l) => l.msg === 'redis cache tier up').length).toBe(1);
  });
});

describe('Redis killed mid-run', () => {
  it('turns calls into quick misses, goes down, and comes back up after a restart', async () => {
    const a = tier();
    const b = tier();
    await Promise.all([ready(a), ready(b)]);
    const e = entry('http://example.test/k');
    expect(await a.store(e)).toBe(true);

    await redis.server.kill();
    // The first calls may still be on their way out when the socket closes: bounded all the same.
    expectAllFailedFast(await everyCall(a));
    await down(a);
    expect(a.state().status).toBe('down');
    expectAllFailedFast(await everyCall(a), AT_ONCE_MS);

    const notices: PurgeNotice[] = [];
    b.onPurge((n) => void notices.push(n));
    await redis.server.restart();
    await Promise.all([ready(a), ready(b)]);
    // The data went with the server; writes work again.
    expect(await b.variants(e.url)).toEqual([]);
    expect(await a.store(e)).toBe(true);
    expect(await b.variants(e.url)).toHaveLength(1);
    // b's bus was interrupted: it may have missed purges, so it is told to drop everything local.
    expect(notices).toContainEqual({ kind: 'all', value: '' });
    // And purges reach it again.
    expect((await a.purgeUrl(e.url)).reachedAll).toBe(true);
    expect(notices).toContainEqual({ kind: 'url', value: e.url });
  });
});

describe('Redis killed while a purge waits for acknowledgements', () => {
  it('ends the wait at once, reporting that the purge may not have reached everyone', async () => {
    const a = tier({ purgeAckTimeoutMs: 5_000 });
    const b = tier({ purgeAckTimeoutMs: 5_000 });
    await Promise.all([ready(a), ready(b)]);
    let heard!: () => void;
    const bHeard = new Promise<void>((resolve) => (heard = resolve));
    b.onPurge(() => {
      heard();
      return new Promise<void>(() => undefined); // b's local tier never finishes
    });
    const purging = elapsed(() => a.purgeUrl('http://example.test/p'));
    await bHeard;
    await redis.server.kill();
    const purge = await purging;
    expect(purge.value).toMatchObject({ reachedAll: false, instances: 2, acknowledged: 1 });
    expect(purge.ms).toBeLessThan(1_000);
  });
});

describe('slow Redis', () => {
  it('bounds every call by the command timeout, opens the breaker, and closes it when Redis answers again', async () => {
    const { log, lines } = recordingLogger();
    const t = tier({}, log);
    await ready(t);
    await t.store(entry('http://example.test/s'));
    const sleeper = await redis.server.admin();
    const sleeping = sleeper.sendCommand(['DEBUG', 'SLEEP', '0.6']);
    await new Promise((r) => setTimeout(r, 10));
    const first = await elapsed(() => t.variants('http://example.test/s'));
    expect(first.value).toEqual([]);
    expect(first.ms).toBeLessThan(BOUND_MS);
    expect(first.ms).toBeGreaterThanOrEqual(TIMEOUT_MS - 5);
    const second = await elapsed(() => t.store(entry('http://example.test/s2')));
    expect(second.value).toBe(false);
    expect(second.ms).toBeLessThan(BOUND_MS);
    await elapsed(() => t.claimFill('x', 1000));
    // Three timeouts in a row: the tier counts as down, and calls cost nothing.
    expect(t.state()).toMatchObject({ status: 'down' });
    expect(t.state().lastError).toMatch(/slow/);
    expect(t.state().timeouts).toBeGreaterThanOrEqual(3);
    expectAllFailedFast(await everyCall(t), AT_ONCE_MS);
    await sleeping;
    await until(t, (s) => s.status === 'up');
    expect(await t.variants('http://example.test/s')).toHaveLength(1);
    expect(lines.filter((l) => l.msg.startsWith('redis cache tier down')).length).toBe(1);
  });
});

describe('full Redis (maxmemory, noeviction)', () => {
  it('skips writes while Redis refuses them (OOM), logs it once, and writes again when there is room', async () => {
    const { log, lines } = recordingLogger();
    const t = tier({}, log);
    await ready(t);
    expect(await t.store(entry('http://example.test/f/before'))).toBe(true);
    // Redis is over its limit: every write is refused with OOM.
    const used = Number(/used_memory:(\d+)/.exec(await redis.admin.info('memory'))![1]);
    await redis.admin.configSet({ maxmemory: String(Math.floor(used / 2)), 'maxmemory-policy': 'noeviction' });
    for (let i = 0; i < 5; i++) {
      const stored = await elapsed(() => t.store(entry(`http://example.test/f/${i}`, { body: Buffer.alloc(64 * 1024, i) })));
      expect(stored.value).toBe(false);
    }
    expect(await redis.admin.exists(['portico:u:http://example.test/f/0', 'portico:u:http://example.test/f/4'])).toBe(0);
    expect(t.state().status).toBe('up'); // full is not down: reads still work
    expect(await t.variants('http://example.test/f/before')).toHaveLength(1);
    expect(lines.filter((l) => l.msg.includes('is full')).length).toBe(1);
    await redis.admin.configSet({ maxmemory: '0' });
    expect(await t.store(entry('http://example.test/f/after'))).toBe(true);
    expect(lines.filter((l) => l.msg.includes('accepts writes again')).length).toBe(1);
  });
});
