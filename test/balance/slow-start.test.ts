import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Backend } from '../../src/balance/backend.js';
import { HealthRegistry } from '../../src/balance/health-registry.js';
import { Pool } from '../../src/balance/pool.js';
import { silentLogger } from '../../src/core/log.js';
import { label, makeBackends, poolSpec, request, server, servers, setActive, tally } from './helpers.js';

beforeEach(() => {
  vi.useFakeTimers({ now: 5_000_000 });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('slow start', () => {
  it('ramps the weight of a recovered backend up over slow_start', () => {
    const [backend] = makeBackends([server('http://10.0.0.1:3000', { weight: 10 })], new HealthRegistry(), 10_000);
    const b = backend!;
    expect(b.effectiveWeight(Date.now())).toBe(10); // never down: full weight from the start
    setActive(b, false);
    setActive(b, true);
    const up = Date.now();
    expect(b.effectiveWeight(up)).toBeLessThan(0.5);
    expect(b.effectiveWeight(up + 2_500)).toBeCloseTo(2.5);
    expect(b.effectiveWeight(up + 5_000)).toBeCloseTo(5);
    expect(b.effectiveWeight(up + 10_000)).toBe(10);
    expect(b.effectiveWeight(up + 60_000)).toBe(10);
  });

  it('is off with slow_start 0', () => {
    const [b] = makeBackends([server('http://10.0.0.1:3000', { weight: 3 })], new HealthRegistry(), 0);
    setActive(b!, false);
    setActive(b!, true);
    expect(b!.effectiveWeight(Date.now())).toBe(3);
  });

  it('sends a recovered backend a growing share of weighted round robin', () => {
    const pool = new Pool(poolSpec({ balance: 'weighted-round-robin', servers: servers(2), slowStartMs: 10_000 }), {
      registry: new HealthRegistry(),
      log: silentLogger,
    });
    const recovering = pool.backends[0]!;
    setActive(recovering, false);
    setActive(recovering, true);
    const share = (): number => {
      const picks = Array.from({ length: 100 }, () => {
        const b = pool.acquire(request(), null) as Backend;
        pool.release(b, 'ok', 1);
        return label(b);
      });
      return (tally(picks)['1'] ?? 0) / 100;
    };
    vi.advanceTimersByTime(1_000);
    const early = share();
    vi.advanceTimersByTime(4_000);
    const middle = share();
    vi.advanceTimersByTime(5_000);
    const late = share();
    expect(early).toBeLessThan(0.15);
    expect(middle).toBeGreaterThan(early);
    expect(late).toBeCloseTo(0.5, 1);
  });

  it('also ramps up after a passive failure window ends', () => {
    const pool = new Pool(poolSpec({ balance: 'least-connections', servers: servers(2), slowStartMs: 10_000, passive: { maxFails: 1, failTimeoutMs: 1_000 } }), {
      registry: new HealthRegistry(),
      log: silentLogger,
    });
    const b = pool.backends[0]!;
    pool.release(pool.acquire(request(), null) as Backend, 'failure', 1);
    expect(pool.snapshot()[0]!.state).toBe('down');
    vi.advanceTimersByTime(1_000);
    expect(b.effectiveWeight(Date.now())).toBeLessThan(0.1);
    vi.advanceTimersByTime(10_000);
    expect(b.effectiveWeight(Date.now())).toBe(1);
  });
});
