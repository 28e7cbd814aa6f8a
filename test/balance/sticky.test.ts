import { describe, expect, it } from 'vitest';
import { Backend } from '../../src/balance/backend.js';
import { HealthRegistry } from '../../src/balance/health-registry.js';
import { Pool } from '../../src/balance/pool.js';
import { silentLogger } from '../../src/core/log.js';
import type { BalanceRequest } from '../../src/balance/types.js';
import { poolSpec, request, server, servers, setActive } from './helpers.js';

function makePool(): Pool {
  return new Pool(poolSpec({ sticky: { cookie: 'PORTICO_SRV' }, servers: servers(3) }), { registry: new HealthRegistry(), log: silentLogger });
}

/** One request as a browser would send it: acquire, release, and keep the cookie it was given. */
class Client {
  cookie: string | undefined;
  constructor(private readonly pool: Pool) {}
  visit(): Backend {
    const req: BalanceRequest = request({ headers: this.cookie ? { cookie: `theme=dark; ${this.cookie}` } : {} });
    const backend = this.pool.acquire(req, null) as Backend;
    this.pool.release(backend, 'ok', 1);
    const setCookie = this.pool.stickyCookie(req, backend);
    if (setCookie !== undefined) this.cookie = setCookie.split(';')[0];
    return backend;
  }
}

describe('sticky sessions', () => {
  it('balances a client without the cookie and sets one that names its backend', () => {
    const pool = makePool();
    const req = request();
    const backend = pool.acquire(req, null) as Backend;
    expect(pool.stickyCookie(req, backend)).toBe(`PORTICO_SRV=${backend.id}; Path=/; HttpOnly`);
  });

  it('pins a client to its backend and does not re-send the cookie', () => {
    const pool = makePool();
    const client = new Client(pool);
    const home = client.visit();
    for (let i = 0; i < 10; i++) {
      const req = request({ headers: { cookie: client.cookie! } });
      const b = pool.acquire(req, null) as Backend;
      expect(b).toBe(home);
      expect(pool.stickyCookie(req, b)).toBeUndefined();
      pool.release(b, 'ok', 1);
    }
  });

  it('pins different clients to different backends', () => {
    const pool = makePool();
    const homes = Array.from({ length: 6 }, () => new Client(pool).visit());
    expect(new Set(homes).size).toBe(3);
  });

  it('moves (and re-cookies) a client whose backend is down, and keeps it on the new one', () => {
    const pool = makePool();
    const client = new Client(pool);
    const home = client.visit();
    const oldCookie = client.cookie;
    setActive(home, false);
    const moved = client.visit();
    expect(moved).not.toBe(home);
    expect(client.cookie).not.toBe(oldCookie);
    expect(client.cookie).toBe(`PORTICO_SRV=${moved.id}`);
    setActive(home, true);
    for (let i = 0; i < 5; i++) expect(client.visit()).toBe(moved);
  });

  it('moves sticky clients off a drained backend', () => {
    const pool = makePool();
    const client = new Client(pool);
    const home = client.visit();
    pool.drain(home.id);
    const moved = client.visit();
    expect(moved).not.toBe(home);
    expect(client.cookie).toBe(`PORTICO_SRV=${moved.id}`);
  });

  it('sends a retry elsewhere even with the cookie', () => {
    const pool = makePool();
    const client = new Client(pool);
    const home = client.visit();
    const b = pool.acquire(request({ headers: { cookie: client.cookie! } }), [home]) as Backend;
    expect(b).not.toBe(home);
  });

  it('balances a client whose cookie names no backend', () => {
    const pool = makePool();
    const req = request({ headers: { cookie: 'PORTICO_SRV=0123456789abcdef' } });
    const b = pool.acquire(req, null) as Backend;
    expect(pool.stickyCookie(req, b)).toBe(`PORTICO_SRV=${b.id}; Path=/; HttpOnly`);
  });

  it('never puts the backend address in the cookie', () => {
    const pool = new Pool(poolSpec({ sticky: { cookie: 'S' }, servers: [server('http://192.168.7.21:8080')] }), {
      registry: new HealthRegistry(),
      log: silentLogger,
    });
    const req = request();
    const cookie = pool.stickyCookie(req, pool.acquire(req, null) as Backend)!;
    expect(cookie).toMatch(/^S=[0-9a-f]{16}; Path=\/; HttpOnly$/);
    const value = cookie.split(';')[0]!.slice('S='.length);
    const encodings = ['192.168.7.21', '8080', 'c0a80715', Buffer.from('http://192.168.7.21:8080').toString('base64').slice(0, 8)];
    for (const encoding of encodings) expect(value).not.toContain(encoding);
  });

  it('sets no cookie when the pool has no sticky sessions', () => {
    const pool = new Pool(poolSpec(), { registry: new HealthRegistry(), log: silentLogger });
    const req = request();
    expect(pool.stickyCookie(req, pool.acquire(req, null) as Backend)).toBeUndefined();
  });
});
