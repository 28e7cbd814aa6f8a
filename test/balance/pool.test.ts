import { describe, expect, it } from 'vitest';
import { Backend } from '../../src/balance/backend.js';
import { HealthRegistry } from '../../src/balance/health-registry.js';
import { Pool } from '../../src/balance/pool.js';
import { ProxyError } from '../../src/core/errors.js';
import { silentLogger } from '../../src/core/log.js';
import type { BalanceRequest, PoolSpec } from '../../src/balance/types.js';
import { label, poolSpec, request, server, servers, setActive, tally } from './helpers.js';

function makePool(overrides: Partial<PoolSpec> = {}, registry = new HealthRegistry()): Pool {
  return new Pool(poolSpec(overrides), { registry, log: silentLogger });
}

/** Acquires synchronously and releases at once; returns the label. */
function once(pool: Pool, req: BalanceRequest = request()): string {
  const backend = pool.acquire(req, null);
  if (!(backend instanceof Backend)) throw new Error('expected a synchronous pick');
  pool.release(backend, 'ok', 1);
  return label(backend);
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof ProxyError ? err.code : String(err);
  }
  return undefined;
}

describe('Pool', () => {
  it('balances 30 requests 10/10/10 with round robin', () => {
    const pool = makePool();
    expect(tally(Array.from({ length: 30 }, () => once(pool)))).toEqual({ 1: 10, 2: 10, 3: 10 });
  });

  it('counts requests, in-flight requests, errors and latency per backend', () => {
    const pool = makePool({ servers: servers(1) });
    const a = pool.acquire(request(), null) as Backend;
    const b = pool.acquire(request(), null) as Backend;
    expect(a).toBe(b);
    expect(a.inflight).toBe(2);
    pool.release(a, 'ok', 40);
    pool.release(b, 'failure', 1000);
    expect(pool.snapshot()).toEqual([
      { id: a.id, url: 'http://10.0.0.1:3000', weight: 1, backup: false, state: 'up', inflight: 0, requests: 2, errors: 1, latencyEwmaMs: 40 },
    ]);
  });

  it('skips down backends and uses backups only when every primary is down', () => {
    const pool = makePool({ servers: [...servers(2), server('http://10.0.0.9:3000', { backup: true })] });
    expect(new Set(Array.from({ length: 10 }, () => once(pool)))).toEqual(new Set(['1', '2']));
    setActive(pool.backends[0]!, false);
    expect(new Set(Array.from({ length: 10 }, () => once(pool)))).toEqual(new Set(['2']));
    setActive(pool.backends[1]!, false);
    expect(new Set(Array.from({ length: 10 }, () => once(pool)))).toEqual(new Set(['9']));
    setActive(pool.backends[0]!, true);
    expect(new Set(Array.from({ length: 10 }, () => once(pool)))).toEqual(new Set(['1']));
    expect(pool.snapshot().map((s) => s.state)).toEqual(['up', 'down', 'up']);
  });

  it('uses backups when every primary is at max_conns', () => {
    const pool = makePool({ servers: [server('http://10.0.0.1:3000', { maxConns: 1 }), server('http://10.0.0.9:3000', { backup: true })] });
    const first = pool.acquire(request(), null) as Backend;
    expect(label(first)).toBe('1');
    expect(label(pool.acquire(request(), null) as Backend)).toBe('9');
  });

  it('goes to the next backend on a retry, then to backups, then fails with no_backend', () => {
    const pool = makePool({ servers: [...servers(2), server('http://10.0.0.9:3000', { backup: true })] });
    const tried: Backend[] = [];
    for (let i = 0; i < 3; i++) {
      const b = pool.acquire(request(), tried) as Backend;
      expect(tried).not.toContain(b);
      tried.push(b);
      pool.release(b, 'failure', 1);
    }
    expect(tried.map(label).sort()).toEqual(['1', '2', '9']);
    expect(codeOf(() => pool.acquire(request(), tried))).toBe('no_backend');
  });

  it('throws no_backend (503) when every backend including backups is down', () => {
    const pool = makePool({ servers: [...servers(2), server('http://10.0.0.9:3000', { backup: true })] });
    for (const b of pool.backends) setActive(b, false);
    let error: unknown;
    try {
      pool.acquire(request(), null);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ProxyError);
    expect((error as ProxyError).code).toBe('no_backend');
    expect((error as ProxyError).status).toBe(503);
  });

  it('drains a backend (no new requests) and enables it again', () => {
    const pool = makePool();
    const target = pool.backends[0]!;
    expect(pool.drain(target.id)).toBe(true);
    expect(pool.drain('nope')).toBe(false);
    expect(pool.snapshot()[0]!.state).toBe('drained');
    expect(Array.from({ length: 10 }, () => once(pool))).not.toContain('1');
    expect(pool.enable(target.id)).toBe(true);
    expect(pool.enable('nope')).toBe(false);
    expect(Array.from({ length: 10 }, () => once(pool))).toContain('1');
  });

  it('keeps health across a reload: a new Pool on the same registry sees the old state', () => {
    const registry = new HealthRegistry();
    const before = makePool({}, registry);
    setActive(before.backends[1]!, false);
    before.drain(before.backends[2]!.id);
    before.stop();
    const after = makePool({ servers: [...servers(3), server('http://10.0.0.4:3000')] }, registry);
    expect(after.snapshot().map((s) => s.state)).toEqual(['up', 'down', 'drained', 'up']);
  });

  it('gives backends stable opaque ids that do not reveal the address', () => {
    const a = makePool();
    const b = makePool();
    expect(a.backends.map((x) => x.id)).toEqual(b.backends.map((x) => x.id));
    for (const backend of a.backends) {
      expect(backend.id).toMatch(/^[0-9a-f]{16}$/);
      expect(backend.id).not.toContain('10.0.0');
      expect(backend.id).not.toContain('3000');
    }
    expect(new Set(a.backends.map((x) => x.id)).size).toBe(3);
    const other = makePool({ name: 'other' });
    expect(other.backends[0]!.id).not.toBe(a.backends[0]!.id);
    const secret = new Pool(poolSpec(), { registry: new HealthRegistry(), log: silentLogger, idSecret: 's3cret' });
    expect(secret.backends[0]!.id).not.toBe(a.backends[0]!.id);
  });

  it('rejects a server listed twice', () => {
    expect(() => makePool({ servers: [server('http://10.0.0.1:3000'), server('http://10.0.0.1:3000/')] })).toThrow(/listed twice/);
  });

  it('builds every algorithm from its name', () => {
    for (const balance of ['round-robin', 'weighted-round-robin', 'least-connections', 'ip-hash', 'random', 'least-time'] as const) {
      const pool = makePool({ balance });
      expect(Array.from({ length: 3 }, () => once(pool)).length).toBe(3);
    }
    expect(once(makePool({ balance: 'hash', hashKey: 'uri' }))).toMatch(/^[123]$/);
    expect(() => makePool({ balance: 'hash', hashKey: undefined })).toThrow(/hash_key/);
  });
});
