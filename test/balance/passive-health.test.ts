import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Backend } from '../../src/balance/backend.js';
import { HealthRegistry } from '../../src/balance/health-registry.js';
import { Pool } from '../../src/balance/pool.js';
import { silentLogger } from '../../src/core/log.js';
import { label, poolSpec, request, servers } from './helpers.js';

function makePool(): Pool {
  return new Pool(poolSpec({ servers: servers(2), passive: { maxFails: 3, failTimeoutMs: 10_000 } }), {
    registry: new HealthRegistry(),
    log: silentLogger,
  });
}

/** Sends `count` requests and returns the labels of the backends they reached. */
function send(pool: Pool, count: number, outcomeFor: (b: Backend) => 'ok' | 'failure'): string[] {
  return Array.from({ length: count }, () => {
    const b = pool.acquire(request(), null) as Backend;
    pool.release(b, outcomeFor(b), 1);
    return label(b);
  });
}

beforeEach(() => {
  vi.useFakeTimers({ now: 1_000_000 });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('passive health (max_fails within fail_timeout)', () => {
  it('takes a backend out after max_fails failures within fail_timeout, for fail_timeout, then tries it again', () => {
    const pool = makePool();
    const bad = pool.backends[0]!;
    const outcome = (b: Backend) => (b === bad ? 'failure' : 'ok');
    send(pool, 6, outcome); // three failures on backend 1
    expect(bad.errors).toBe(3);
    expect(pool.snapshot()[0]!.state).toBe('down');
    expect(send(pool, 10, outcome)).not.toContain('1');

    vi.advanceTimersByTime(9_999);
    expect(send(pool, 4, outcome)).not.toContain('1');
    vi.advanceTimersByTime(1);
    expect(pool.snapshot()[0]!.state).toBe('up');
    // Back on probation: it is tried again; one more failure takes it out for another fail_timeout.
    expect(send(pool, 2, outcome)).toContain('1');
    expect(send(pool, 10, outcome)).not.toContain('1');
    vi.advanceTimersByTime(10_000);
    // Recovered: a success clears it and single failures no longer take it out.
    expect(send(pool, 2, () => 'ok')).toContain('1');
    send(pool, 4, outcome); // two more failures on backend 1: below max_fails
    expect(send(pool, 4, () => 'ok')).toContain('1');
  });

  it('forgets failures older than fail_timeout', () => {
    const pool = makePool();
    const bad = pool.backends[0]!;
    const outcome = (b: Backend) => (b === bad ? 'failure' : 'ok');
    send(pool, 4, outcome); // two failures
    vi.advanceTimersByTime(10_000);
    send(pool, 4, outcome); // two more, in a new window
    expect(pool.snapshot()[0]!.state).toBe('up');
    send(pool, 2, outcome); // the third within the window
    expect(pool.snapshot()[0]!.state).toBe('down');
  });

  it('is off with max_fails 0', () => {
    const pool = new Pool(poolSpec({ servers: servers(2), passive: { maxFails: 0, failTimeoutMs: 10_000 } }), {
      registry: new HealthRegistry(),
      log: silentLogger,
    });
    send(pool, 20, () => 'failure');
    expect(pool.snapshot().map((s) => s.state)).toEqual(['up', 'up']);
  });

  it('with every backend out, still sends requests to them in turn (panic), and a success puts a backend back', () => {
    const pool = makePool();
    send(pool, 6, () => 'failure');
    expect(pool.snapshot().map((s) => s.state)).toEqual(['down', 'down']);
    expect(new Set(send(pool, 4, () => 'failure'))).toEqual(new Set(['1', '2']));
    vi.advanceTimersByTime(1_000);
    // A request sent while the backend was out, that succeeds, disproves the failure at once.
    const b = pool.acquire(request(), null) as Backend;
    pool.release(b, 'ok', 1);
    expect(pool.snapshot().find((s) => s.id === b.id)!.state).toBe('up');
    // Now a backend is usable: no more panic, the other one stays out.
    expect(new Set(send(pool, 4, () => 'ok'))).toEqual(new Set([label(b)]));
  });

  it('never sends to a drained or actively-down backend, even in panic', () => {
    const pool = makePool();
    send(pool, 6, () => 'failure');
    pool.drain(pool.backends[0]!.id);
    expect(new Set(send(pool, 4, () => 'failure'))).toEqual(new Set(['2']));
    pool.drain(pool.backends[1]!.id);
    expect(() => pool.acquire(request(), null)).toThrow(expect.objectContaining({ code: 'no_backend' }));
  });
});
