/** Request collapsing across instances: one leader per key, followers woken by its release, bounded by timeouts. */
import { describe, expect, it } from 'vitest';
import { elapsed, entry, ready, redisServerForFile, sleep, tiersClosedAfterEach } from './fixtures.js';

const redis = redisServerForFile();

// A generous command timeout: these tests are about behaviour, not about a busy machine's latency.
const tier = tiersClosedAfterEach(() => ({ url: redis.server.url, commandTimeoutMs: 2_000 }));

async function instances(n: number, options = {}) {
  const all = Array.from({ length: n }, () => tier(options));
  await Promise.all(all.map(ready));
  return all;
}

describe('claimFill', () => {
  it('makes exactly one leader per key among instances claiming at once', async () => {
    const all = await instances(4);
    for (let k = 0; k < 25; k++) {
      const claims = await Promise.all(all.map((t) => t.claimFill(`http://example.test/${k}`, 5_000)));
      expect(claims.filter((c) => c === 'leader')).toHaveLength(1);
      expect(claims.filter((c) => c === 'follower')).toHaveLength(3);
    }
  });

  it('lets a new leader in once the leader released', async () => {
    const [a, b] = await instances(2);
    expect(await a!.claimFill('k', 5_000)).toBe('leader');
    expect(await b!.claimFill('k', 5_000)).toBe('follower');
    await a!.releaseFill('k');
    expect(await b!.claimFill('k', 5_000)).toBe('leader');
  });
});

describe('waitForFill', () => {
  it('wakes the follower when the leader releases (by pub/sub, not polling), and it then reads what the leader stored', async () => {
    const [leader, follower] = await instances(2, { fillPollMs: 10_000 });
    const url = 'http://example.test/collapsed';
    expect(await leader!.claimFill(url, 5_000)).toBe('leader');
    expect(await follower!.claimFill(url, 5_000)).toBe('follower');
    const waiting = elapsed(() => follower!.waitForFill(url, 5_000));
    await sleep(50);
    await leader!.store(entry(url));
    await leader!.releaseFill(url);
    const woke = await waiting;
    expect(woke.value).toBe('released');
    expect(woke.ms).toBeLessThan(1_000);
    expect(await follower!.variants(url)).toHaveLength(1);
  });

  it('does not miss a release that came before the follower started waiting', async () => {
    const [leader, follower] = await instances(2, { fillPollMs: 10_000 });
    expect(await leader!.claimFill('k', 5_000)).toBe('leader');
    expect(await follower!.claimFill('k', 5_000)).toBe('follower');
    await leader!.releaseFill('k');
    const woke = await elapsed(() => follower!.waitForFill('k', 5_000));
    expect(woke.value).toBe('released');
    expect(woke.ms).toBeLessThan(1_000);
  });

  it('lets the follower go on after its own timeout when the leader never releases', async () => {
    const [leader, follower] = await instances(2);
    expect(await leader!.claimFill('k', 60_000)).toBe('leader');
    expect(await follower!.claimFill('k', 60_000)).toBe('follower');
    const waited = await elapsed(() => follower!.waitForFill('k', 300));
    expect(waited.value).toBe('timeout');
    expect(waited.ms).toBeGreaterThanOrEqual(290);
    expect(waited.ms).toBeLessThan(900);
  });

  it('wakes the follower when a dead leader’s lock expires (seen by polling)', async () => {
    const [a, b] = await instances(2, { fillPollMs: 50 });
    // Claimed together, so that a busy machine cannot let the short lock expire between the claims.
    const claims = await Promise.all([a!.claimFill('k', 300), b!.claimFill('k', 300)]);
    expect([...claims].sort()).toEqual(['follower', 'leader']);
    const follower = claims[0] === 'follower' ? a! : b!;
    const waited = await elapsed(() => follower.waitForFill('k', 5_000));
    expect(waited.value).toBe('released'); // the leader never released: its lock expired
    expect(waited.ms).toBeLessThan(2_000);
  });
});

describe('releaseFill', () => {
  it('deletes only a lock it holds', async () => {
    const [a, b] = await instances(2);
    expect(await a!.claimFill('k', 100)).toBe('leader');
    await sleep(150); // a's lock expired: a is slow, b takes over
    expect(await b!.claimFill('k', 5_000)).toBe('leader');
    await a!.releaseFill('k');
    expect(await redis.admin.exists('portico:l:k')).toBe(1);
    await b!.releaseFill('k');
    expect(await redis.admin.exists('portico:l:k')).toBe(0);
  });

  it('releases what an instance still leads when it closes', async () => {
    const [a, b] = await instances(2);
    expect(await a!.claimFill('k', 60_000)).toBe('leader');
    const waiting = b!.waitForFill('k', 5_000);
    await a!.close();
    expect(await waiting).toBe('released');
    expect(await redis.admin.exists('portico:l:k')).toBe(0);
  });
});
