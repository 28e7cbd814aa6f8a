/**
 * The load-balancing algorithms as a user meets them: three origins on loopback, a YAML config with
 * one route and one pool per algorithm, requests through the real reverse proxy.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readConfigFile, validateConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/core/log.js';
import { Portico } from '../../src/server.js';
import { request } from '../helpers/http.js';
import { startOrigin, type Origin } from '../helpers/origin.js';

let origins: Origin[] = [];
let portico: Portico;
let base: string;
const holds: Array<() => void> = [];

beforeAll(async () => {
  origins = await Promise.all(
    ['a', 'b', 'c'].map((name) =>
      startOrigin((req, res) => {
        if (req.url?.startsWith('/lc/slow')) {
          holds.push(() => res.end(name));
          return;
        }
        res.end(name);
      }),
    ),
  );
  const [a, b, c] = origins.map((o) => o.url);
  const servers = `[{ url: "${a}" }, { url: "${b}" }, { url: "${c}" }]`;
  const yaml = `
reverse:
  listen: 127.0.0.1:0
  routes:
    - { path: /rr/, pool: rr }
    - { path: /wrr/, pool: wrr }
    - { path: /lc/, pool: lc }
    - { path: /iph/, pool: iph }
    - { path: /hash/, pool: hashed }
    - { path: /random/, pool: rand }
    - { path: /lt/, pool: lt }
    - { path: /sticky/, pool: sticky }
pools:
  rr: { balance: round-robin, servers: ${servers} }
  wrr:
    balance: weighted-round-robin
    servers:
      - { url: "${a}", weight: 5 }
      - { url: "${b}", weight: 3 }
      - { url: "${c}", weight: 2 }
  lc: { balance: least-connections, servers: ${servers} }
  iph: { balance: ip-hash, servers: ${servers} }
  hashed: { balance: hash, hash_key: "header:x-user", servers: ${servers} }
  rand: { balance: random, servers: ${servers} }
  lt: { balance: least-time, servers: ${servers} }
  sticky: { balance: round-robin, sticky: { cookie: PORTICO_SRV }, servers: ${servers} }
cache: { enabled: false }
`;
  const dir = mkdtempSync(join(tmpdir(), 'portico-'));
  const file = join(dir, 'portico.yaml');
  writeFileSync(file, yaml);
  portico = await Portico.start(validateConfig(readConfigFile(file), file), { log: silentLogger });
  base = `http://${portico.addresses().reverse}`;
});

afterAll(async () => {
  for (const release of holds) release();
  await portico?.close(100);
  await Promise.all(origins.map((o) => o.close()));
});

async function tally(path: string, n: number, options: Parameters<typeof request>[1] = {}): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const reply = await request(base + path, options);
    expect(reply.status).toBe(200);
    counts[reply.body] = (counts[reply.body] ?? 0) + 1;
  }
  return counts;
}

describe('load balancing through the reverse proxy', () => {
  it('round robin spreads 30 requests 10/10/10', async () => {
    expect(await tally('/rr/x', 30)).toEqual({ a: 10, b: 10, c: 10 });
  });

  it('weights 5:3:2 give 50/30/20 of 100 requests, interleaved', async () => {
    const order: string[] = [];
    for (let i = 0; i < 100; i++) order.push((await request(`${base}/wrr/x`)).body);
    const counts = Object.fromEntries(['a', 'b', 'c'].map((n) => [n, order.filter((x) => x === n).length]));
    expect(counts).toEqual({ a: 50, b: 30, c: 20 });
    const longestRun = Math.max(...order.map((_, i) => order.slice(i).findIndex((x) => x !== order[i])));
    expect(longestRun).toBeLessThanOrEqual(2);
  });

  it('least-connections avoids a backend that holds a slow request', async () => {
    const slow = request(`${base}/lc/slow`);
    await new Promise<void>((resolve) => {
      const t = setInterval(() => {
        if (holds.length > 0) {
          clearInterval(t);
          resolve();
        }
      }, 5);
    });
    const busy = origins.find((o) => o.requests.some((r) => r.url === '/lc/slow'))!;
    const busyName = ['a', 'b', 'c'][origins.indexOf(busy)]!;
    const counts = await tally('/lc/fast', 12);
    expect(counts[busyName] ?? 0).toBe(0);
    holds.shift()!();
    expect((await slow).body).toBe(busyName);
  });

  it('ip-hash keeps each of 20 client addresses on one backend, and uses more than one', async () => {
    const seen = new Set<string>();
    for (let i = 1; i <= 20; i++) {
      const counts = await tally('/iph/x', 3, { localAddress: `127.0.0.${i}` });
      expect(Object.keys(counts)).toHaveLength(1);
      seen.add(Object.keys(counts)[0]!);
    }
    expect(seen.size).toBeGreaterThan(1);
  });

  it('hash on a header keeps each key on one backend', async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 10; i++) {
      const counts = await tally('/hash/x', 3, { headers: { 'x-user': `user-${i}` } });
      expect(Object.keys(counts)).toHaveLength(1);
      seen.add(Object.keys(counts)[0]!);
    }
    expect(seen.size).toBeGreaterThan(1);
  });

  it('random and least-time use every backend', async () => {
    expect(Object.keys(await tally('/random/x', 60)).sort()).toEqual(['a', 'b', 'c']);
    expect(Object.keys(await tally('/lt/x', 60)).length).toBeGreaterThanOrEqual(2);
  });

  it('a sticky cookie pins a client; the cookie does not reveal the address', async () => {
    const first = await request(`${base}/sticky/x`);
    const setCookie = first.headers['set-cookie']?.[0] ?? '';
    expect(setCookie).toMatch(/^PORTICO_SRV=[^;]+; Path=\/; HttpOnly/);
    expect(setCookie).not.toContain('127.0.0.1');
    const cookie = setCookie.split(';')[0]!;
    const counts = await tally('/sticky/x', 10, { headers: { cookie } });
    expect(counts).toEqual({ [first.body]: 10 });
    const again = await request(`${base}/sticky/x`, { headers: { cookie } });
    expect(again.headers['set-cookie']).toBeUndefined();
  });
});
