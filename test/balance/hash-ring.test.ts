import { describe, expect, it } from 'vitest';
import { HashPicker, parseHashKey } from '../../src/balance/hash.js';
import { HashRing, hashString } from '../../src/balance/hash-ring.js';
import { IpHashPicker } from '../../src/balance/ip-hash.js';
import { label, makeBackends, request, server, servers, setActive, tally } from './helpers.js';

const KEYS = Array.from({ length: 10_000 }, (_, i) => `key-${i}`);

function assign(ring: HashRing): string[] {
  return KEYS.map((key) => label(ring.pick(hashString(key), null)));
}

describe('hashString', () => {
  it('is stable and hashes a range like the substring', () => {
    expect(hashString('127.0.0.1')).toBe(hashString('127.0.0.1'));
    expect(hashString('::ffff:127.0.0.1', 7)).toBe(hashString('127.0.0.1'));
    expect(hashString('a=b; c=d', 2, 3)).toBe(hashString('b'));
    expect(hashString('a')).not.toBe(hashString('b'));
  });
});

describe('HashRing (consistent hashing)', () => {
  it('spreads keys roughly evenly', () => {
    const counts = tally(assign(new HashRing(makeBackends(servers(3)))));
    for (const n of Object.values(counts)) expect(n).toBeGreaterThan(2_300);
  });

  it('spreads keys in proportion to weight', () => {
    const ring = new HashRing(makeBackends([server('http://10.0.0.1:3000', { weight: 3 }), server('http://10.0.0.2:3000')]));
    const counts = tally(assign(ring));
    expect(counts['1']! / KEYS.length).toBeGreaterThan(0.65);
    expect(counts['1']! / KEYS.length).toBeLessThan(0.85);
  });

  it.each([
    { from: 3, to: 4, where: 'last' },
    { from: 4, to: 5, where: 'last' },
    { from: 3, to: 4, where: 'first' },
  ])('adding a backend ($where) to $from moves only about 1/$to of 10,000 keys, all to the new one', ({ from, to, where }) => {
    const all = servers(to);
    const added = all[to - 1]!;
    const before = assign(new HashRing(makeBackends(all.slice(0, from))));
    const after = assign(new HashRing(makeBackends(where === 'last' ? all : [added, ...all.slice(0, from)])));
    let moved = 0;
    for (let i = 0; i < KEYS.length; i++) {
      if (before[i] !== after[i]) {
        moved++;
        expect(after[i]).toBe(String(to));
      }
    }
    expect(moved / KEYS.length).toBeGreaterThan(0.1);
    expect(moved / KEYS.length).toBeLessThan(0.4);
  });

  it('moves only the keys of a down backend, to the next usable one on the ring', () => {
    const backends = makeBackends(servers(3));
    const ring = new HashRing(backends);
    const before = assign(ring);
    setActive(backends[1]!, false);
    const after = assign(ring);
    for (let i = 0; i < KEYS.length; i++) {
      if (before[i] === '2') expect(after[i]).not.toBe('2');
      else expect(after[i]).toBe(before[i]);
    }
    expect(new Set(after.filter((_, i) => before[i] === '2')).size).toBe(2);
  });

  it('returns null when no backend is usable', () => {
    const backends = makeBackends(servers(3));
    for (const b of backends) setActive(b, false);
    expect(new HashRing(backends).pick(hashString('x'), null)).toBeNull();
  });
});

describe('IpHashPicker', () => {
  const addresses = Array.from({ length: 20 }, (_, i) => `127.0.0.${i + 1}`);

  it('keeps each of 20 client addresses on one backend, and uses more than one', () => {
    const picker = new IpHashPicker(makeBackends(servers(3)));
    const first = addresses.map((clientAddress) => label(picker.pick(request({ clientAddress }), null)));
    for (let round = 0; round < 5; round++) {
      expect(addresses.map((clientAddress) => label(picker.pick(request({ clientAddress }), null)))).toEqual(first);
    }
    expect(new Set(first).size).toBeGreaterThan(1);
  });

  it('hashes IPv4-mapped IPv6 addresses as IPv4', () => {
    const picker = new IpHashPicker(makeBackends(servers(5)));
    for (const address of addresses) {
      expect(picker.pick(request({ clientAddress: `::ffff:${address}` }), null)).toBe(picker.pick(request({ clientAddress: address }), null));
    }
  });

  it('moves a client whose backend goes down, and brings it back when it recovers', () => {
    const backends = makeBackends(servers(3));
    const picker = new IpHashPicker(backends);
    const req = request({ clientAddress: '192.0.2.7' });
    const home = picker.pick(req, null)!;
    setActive(home, false);
    const elsewhere = picker.pick(req, null)!;
    expect(elsewhere).not.toBe(home);
    setActive(home, true);
    expect(picker.pick(req, null)).toBe(home);
  });
});

describe('HashPicker', () => {
  it.each([
    { hashKey: 'uri', kind: 'uri' },
    { hashKey: 'header:X-User', kind: 'header', name: 'x-user' },
    { hashKey: 'cookie:user', kind: 'cookie', name: 'user' },
  ])('parses $hashKey', ({ hashKey, ...expected }) => {
    expect(parseHashKey(hashKey)).toEqual(expected);
  });

  it.each([undefined, '', 'header:', 'query:x', 'cookie'])('rejects the hash_key %j', (hashKey) => {
    expect(() => parseHashKey(hashKey)).toThrow(/hash_key/);
  });

  it.each([
    { hashKey: 'uri', make: (k: string) => request({ url: `/users/${k}?page=1` }) },
    { hashKey: 'header:X-User', make: (k: string) => request({ headers: { 'x-user': k } }) },
    { hashKey: 'cookie:user', make: (k: string) => request({ headers: { cookie: `theme=dark; user=${k}; lang=en` } }) },
  ])('keeps each $hashKey value on one backend and spreads the values', ({ hashKey, make }) => {
    const picker = new HashPicker(makeBackends(servers(3)), { hashKey });
    const values = Array.from({ length: 30 }, (_, i) => `u${i}`);
    const first = values.map((v) => label(picker.pick(make(v), null)));
    expect(values.map((v) => label(picker.pick(make(v), null)))).toEqual(first);
    expect(new Set(first).size).toBe(3);
  });

  it('hashes a quoted cookie value like the bare value', () => {
    const picker = new HashPicker(makeBackends(servers(5)), { hashKey: 'cookie:user' });
    for (let i = 0; i < 20; i++) {
      expect(picker.pick(request({ headers: { cookie: `user="v${i}"` } }), null)).toBe(
        picker.pick(request({ headers: { cookie: `user=v${i}` } }), null),
      );
    }
  });

  it.each([
    { hashKey: 'header:X-User', headers: {} },
    { hashKey: 'header:X-User', headers: { 'x-user': '' } },
    { hashKey: 'cookie:user', headers: {} },
    { hashKey: 'cookie:user', headers: { cookie: 'theme=dark; username=x' } },
  ])('falls back to round robin when $hashKey is missing ($headers)', ({ hashKey, headers }) => {
    const picker = new HashPicker(makeBackends(servers(3)), { hashKey });
    const picks = Array.from({ length: 30 }, () => label(picker.pick(request({ headers }), null)));
    expect(tally(picks)).toEqual({ 1: 10, 2: 10, 3: 10 });
  });
});
