import { afterEach, describe, expect, it, vi } from 'vitest';
import { Backend } from '../../src/balance/backend.js';
import { HealthRegistry } from '../../src/balance/health-registry.js';
import { Pool } from '../../src/balance/pool.js';
import { ProxyError } from '../../src/core/errors.js';
import { silentLogger } from '../../src/core/log.js';
import type { PoolSpec } from '../../src/balance/types.js';
import { poolSpec, request, server, setActive } from './helpers.js';

function makePool(overrides: Partial<PoolSpec> = {}): Pool {
  return new Pool(
    poolSpec({
      servers: [server('http://10.0.0.1:3000', { maxConns: 1 }), server('http://10.0.0.2:3000', { maxConns: 2 })],
      queue: { size: 2, timeoutMs: 3_000 },
      ...overrides,
    }),
    { registry: new HealthRegistry(), log: silentLogger },
  );
}

function fill(pool: Pool): Backend[] {
  return Array.from({ length: 3 }, () => {
    const b = pool.acquire(request(), null);
    if (!(b instanceof Backend)) throw new Error('expected a free backend');
    return b;
  });
}

function thrown(fn: () => unknown): ProxyError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ProxyError) return err;
    throw err;
  }
  throw new Error('expected a ProxyError');
}

afterEach(() => {
  vi.useRealTimers();
});

describe('max_conns and the request queue', () => {
  it('skips a backend at max_conns', () => {
    const pool = makePool();
    const [a, b, c] = fill(pool);
    expect([a!.url.hostname, b!.url.hostname, c!.url.hostname].sort()).toEqual(['10.0.0.1', '10.0.0.2', '10.0.0.2']);
    expect(pool.backends.map((x) => x.inflight)).toEqual([1, 2]);
  });

  it('queues when every backend is full and resolves on release', async () => {
    const pool = makePool();
    const [first] = fill(pool);
    const waiting = pool.acquire(request(), null);
    expect(waiting).toBeInstanceOf(Promise);
    expect(pool.queued).toBe(1);
    pool.release(first!, 'ok', 5);
    const got = await waiting;
    expect(got).toBe(first);
    expect(got.inflight).toBe(1);
    expect(pool.queued).toBe(0);
  });

  it('serves queued requests first in, first out', async () => {
    const pool = makePool();
    const held = fill(pool);
    const order: number[] = [];
    const one = (pool.acquire(request(), null) as Promise<Backend>).then(() => order.push(1));
    const two = (pool.acquire(request(), null) as Promise<Backend>).then(() => order.push(2));
    pool.release(held[0]!, 'ok', 1);
    pool.release(held[1]!, 'ok', 1);
    await Promise.all([one, two]);
    expect(order).toEqual([1, 2]);
  });

  it('rejects with queue_full and Retry-After when the queue overflows', () => {
    const pool = makePool();
    fill(pool);
    void (pool.acquire(request(), null) as Promise<Backend>).catch(() => {});
    void (pool.acquire(request(), null) as Promise<Backend>).catch(() => {});
    const error = thrown(() => pool.acquire(request(), null));
    expect(error.code).toBe('queue_full');
    expect(error.status).toBe(503);
    expect(error.headers).toEqual({ 'retry-after': '3' });
  });

  it('rejects at once when the queue size is 0', () => {
    const pool = makePool({ queue: { size: 0, timeoutMs: 1_000 } });
    fill(pool);
    const error = thrown(() => pool.acquire(request(), null));
    expect(error.code).toBe('queue_full');
    expect(error.headers?.['retry-after']).toBe('1');
  });

  it('rejects with queue_full when no backend frees up in time', async () => {
    vi.useFakeTimers();
    const pool = makePool();
    fill(pool);
    const waiting = pool.acquire(request(), null) as Promise<Backend>;
    const outcome = waiting.then(
      () => 'resolved',
      (err: ProxyError) => err,
    );
    await vi.advanceTimersByTimeAsync(2_999);
    expect(pool.queued).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    const error = await outcome;
    expect(error).toBeInstanceOf(ProxyError);
    expect((error as ProxyError).code).toBe('queue_full');
    expect((error as ProxyError).headers).toEqual({ 'retry-after': '3' });
    expect(pool.queued).toBe(0);
  });

  it('takes a request out of the queue when its signal aborts', async () => {
    const pool = makePool();
    fill(pool);
    const controller = new AbortController();
    const waiting = pool.acquire(request(), null, controller.signal) as Promise<Backend>;
    controller.abort(new Error('client went away'));
    await expect(waiting).rejects.toThrow('client went away');
    expect(pool.queued).toBe(0);
  });

  it('rejects queued requests with no_backend when the backends they wait for go down', async () => {
    const pool = makePool();
    const held = fill(pool);
    const waiting = pool.acquire(request(), null) as Promise<Backend>;
    for (const b of pool.backends) setActive(b, false);
    pool.release(held[0]!, 'ok', 1);
    await expect(waiting).rejects.toMatchObject({ code: 'no_backend' });
  });

  it('does not queue when nothing is merely full: every backend down is no_backend', () => {
    const pool = makePool();
    for (const b of pool.backends) setActive(b, false);
    expect(thrown(() => pool.acquire(request(), null)).code).toBe('no_backend');
  });
});
