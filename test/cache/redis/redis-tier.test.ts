/** The Redis tier against a real redis-server: sharing, variants, purges across instances, expiry, bad data. */
import { describe, expect, it } from 'vitest';
import { encodeRecord } from '../../../src/cache/redis/record-codec.js';
import type { PurgeNotice } from '../../../src/cache/shared-tier.js';
import { recordingLogger } from '../../balance/logs.js';
import { entry, ready, redisServerForFile, sleep, tiersClosedAfterEach } from './fixtures.js';

const redis = redisServerForFile();

// A generous command timeout: these tests are about behaviour, not about a busy machine's latency.
const tier = tiersClosedAfterEach(() => ({ url: redis.server.url, commandTimeoutMs: 2_000 }));

async function twoInstances(options = {}) {
  const a = tier(options);
  const b = tier(options);
  await Promise.all([ready(a), ready(b)]);
  return { a, b };
}

describe('sharing stored responses', () => {
  it('reads back, on another instance, the variant one stored, byte for byte', async () => {
    const { a, b } = await twoInstances();
    const body = Buffer.alloc(100 * 1024);
    for (let i = 0; i < body.length; i++) body[i] = (i * 31) & 0xff;
    const e = entry('http://example.test/a', { body, tags: 'one two' });
    expect(await a.store(e)).toBe(true);
    const got = await b.variants(e.url);
    expect(got).toHaveLength(1);
    expect(Buffer.from(got[0]!.body as Buffer).equals(body)).toBe(true);
    expect({ ...got[0]!, body: null }).toEqual({ ...e, body: null });
    expect(a.state()).toMatchObject({ writes: 1 });
    expect(b.state()).toMatchObject({ reads: 1, hits: 1 });
  });

  it('keeps the Vary variants of a URL side by side, oldest first', async () => {
    const { a, b } = await twoInstances();
    const en = entry('http://example.test/page', { language: 'en', body: 'hello' });
    await sleep(2);
    const fr = entry('http://example.test/page', { language: 'fr', body: 'bonjour' });
    expect(en.key).not.toBe(fr.key);
    expect(await a.store(fr)).toBe(true);
    expect(await b.store(en)).toBe(true);
    const got = await a.variants('http://example.test/page');
    expect(got.map((v) => v.body.toString())).toEqual(['hello', 'bonjour']);
    expect(got.map((v) => v.varyValues)).toEqual([['en'], ['fr']]);
    // Replacing a variant keeps one record for it.
    expect(await a.store(entry('http://example.test/page', { language: 'en', body: 'hello again' }))).toBe(true);
    expect((await b.variants('http://example.test/page')).map((v) => v.body.toString()).sort()).toEqual(['bonjour', 'hello again']);
    // One variant can go alone.
    expect(await b.delete(fr.key)).toBe(true);
    expect((await a.variants('http://example.test/page')).map((v) => v.body.toString())).toEqual(['hello again']);
  });

  it('is a miss for a URL never stored', async () => {
    const { a } = await twoInstances();
    expect(await a.variants('http://example.test/none')).toEqual([]);
    expect(a.state()).toMatchObject({ reads: 1, hits: 0 });
  });

  it('never writes a record larger than maxObjectBytes', async () => {
    const { a, b } = await twoInstances({ maxObjectBytes: 4096 });
    const big = entry('http://example.test/big', { body: Buffer.alloc(5000, 1) });
    const nearly = entry('http://example.test/nearly', { body: Buffer.alloc(4000, 1) }); // + head: over 4096
    const small = entry('http://example.test/small', { body: Buffer.alloc(1000, 1) });
    expect(await a.store(big)).toBe(false);
    expect(await a.store(nearly)).toBe(false);
    expect(await a.store(small)).toBe(true);
    expect(await redis.admin.exists([`portico:r:${big.key}`, `portico:r:${nearly.key}`, `portico:u:${big.url}`])).toBe(0);
    expect(await b.variants(big.url)).toEqual([]);
    expect(a.state().skipped).toBe(2);
  });

  it('keeps each door in its own namespace', async () => {
    const reverse = tier({ keyPrefix: 'portico:reverse:' });
    const forward = tier({ keyPrefix: 'portico:forward:' });
    await Promise.all([ready(reverse), ready(forward)]);
    const e = entry('http://bank.test/');
    expect(await reverse.store(e)).toBe(true);
    expect(await forward.variants(e.url)).toEqual([]);
    expect(await reverse.variants(e.url)).toHaveLength(1);
  });
});

describe('expiry in Redis', () => {
  it('expires a record when its freshness and stale windows are over', async () => {
    const { a, b } = await twoInstances();
    const e = entry('http://example.test/short', { etag: null, lifetimeMs: 500 });
    expect(await a.store(e)).toBe(true);
    const ttl = await redis.admin.pTTL(`portico:r:${e.key}`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(500);
    expect(await redis.admin.pTTL(`portico:u:${e.url}`)).toBeLessThanOrEqual(500);
    expect(await b.variants(e.url)).toHaveLength(1);
    await sleep(ttl + 30);
    expect(await b.variants(e.url)).toEqual([]);
    expect(await redis.admin.exists(`portico:u:${e.url}`)).toBe(0);
  });

  it('keeps a record for stale-if-error, and a revalidatable one for keepRevalidatableMs, past freshness', async () => {
    const { a } = await twoInstances({ keepRevalidatableMs: 120_000 });
    const sie = entry('http://example.test/sie', { etag: null, lifetimeMs: 10_000, staleIfErrorMs: 50_000 });
    const reval = entry('http://example.test/reval', { lifetimeMs: 10_000 });
    await a.store(sie);
    await a.store(reval);
    const sieTtl = await redis.admin.pTTL(`portico:r:${sie.key}`);
    const revalTtl = await redis.admin.pTTL(`portico:r:${reval.key}`);
    expect(sieTtl).toBeGreaterThan(55_000);
    expect(sieTtl).toBeLessThanOrEqual(60_000);
    expect(revalTtl).toBeGreaterThan(125_000);
    expect(revalTtl).toBeLessThanOrEqual(130_000);
  });

  it('does not write what has no life left', async () => {
    const { a } = await twoInstances();
    const e = entry('http://example.test/old', { etag: null, lifetimeMs: 0 });
    expect(await a.store(e)).toBe(false);
  });

  it('extends the sets of a URL and a tag to the longest-lived member', async () => {
    const { a } = await twoInstances({ keepRevalidatableMs: 0 });
    await a.store(entry('http://example.test/x', { language: 'en', lifetimeMs: 100_000, tags: 't' }));
    await a.store(entry('http://example.test/x', { language: 'fr', lifetimeMs: 5_000, tags: 't' }));
    expect(await redis.admin.pTTL('portico:u:http://example.test/x')).toBeGreaterThan(95_000);
    expect(await redis.admin.pTTL('portico:t:t')).toBeGreaterThan(95_000);
  });
});

describe('purges reach every instance', () => {
  async function threeWithListeners() {
    const { a, b } = await twoInstances();
    const c = tier();
    await ready(c);
    const seen: Record<string, PurgeNotice[]> = { a: [], b: [], c: [] };
    const dropped: Record<string, PurgeNotice[]> = { a: [], b: [], c: [] };
    for (const [name, t] of [['a', a], ['b', b], ['c', c]] as const) {
      t.onPurge(async (notice) => {
        seen[name]!.push(notice);
        await sleep(30); // the local tier's deletion takes a moment
        dropped[name]!.push(notice);
      });
    }
    return { a, b, c, seen, dropped };
  }

  it('purges a URL: gone from Redis, and every other instance dropped it before the call answers', async () => {
    const { a, b, c, dropped } = await threeWithListeners();
    await a.store(entry('http://example.test/p', { language: 'en' }));
    await a.store(entry('http://example.test/p', { language: 'fr' }));
    await a.store(entry('http://example.test/other'));
    const result = await a.purgeUrl('http://example.test/p');
    expect(result).toEqual({ deleted: 2, instances: 3, acknowledged: 3, reachedAll: true });
    expect(dropped.b).toEqual([{ kind: 'url', value: 'http://example.test/p' }]);
    expect(dropped.c).toEqual([{ kind: 'url', value: 'http://example.test/p' }]);
    expect(dropped.a).toEqual([]); // its own purge is the engine's to apply locally
    expect(await b.variants('http://example.test/p')).toEqual([]);
    expect(await b.variants('http://example.test/other')).toHaveLength(1);
    expect(c.state().purgesReceived).toBe(1);
  });

  it('purges by prefix with SCAN, even when the prefix has glob characters', async () => {
    const { a, b, dropped } = await threeWithListeners();
    for (const p of ['/static/a.css', '/static/b.js', '/static/sub/c.png', '/staticx', '/other']) await a.store(entry(`http://example.test${p}`));
    await a.store(entry('http://example.test/[x]*/1'));
    await a.store(entry('http://example.test/[x]y/1'));
    const result = await b.purgePrefix('http://example.test/static/');
    expect(result).toMatchObject({ deleted: 3, reachedAll: true, acknowledged: 3 });
    expect(dropped.a).toEqual([{ kind: 'prefix', value: 'http://example.test/static/' }]);
    expect(await a.variants('http://example.test/static/b.js')).toEqual([]);
    expect(await a.variants('http://example.test/staticx')).toHaveLength(1);
    expect((await b.purgePrefix('http://example.test/[x]*')).deleted).toBe(1);
    expect(await a.variants('http://example.test/[x]y/1')).toHaveLength(1);
  });

  it('purges by prefix under a key prefix that has glob characters itself', async () => {
    const odd = tier({ keyPrefix: 'p*[1]:' });
    const plain = tier({ keyPrefix: 'p1:' });
    await Promise.all([ready(odd), ready(plain)]);
    await odd.store(entry('http://example.test/a'));
    await plain.store(entry('http://example.test/a'));
    expect((await odd.purgePrefix('http://example.test/')).deleted).toBe(1);
    expect(await plain.variants('http://example.test/a')).toHaveLength(1);
  });

  it('purges by tag, in batches, and leaves the URL sets consistent', async () => {
    const { a, b, c, dropped } = await threeWithListeners();
    for (let i = 0; i < 1200; i++) await a.store(entry(`http://example.test/t/${i}`, { tags: i % 2 === 0 ? 'even all' : 'odd all' }));
    const result = await c.purgeTag('even');
    expect(result).toMatchObject({ deleted: 600, reachedAll: true });
    expect(dropped.a).toEqual([{ kind: 'tag', value: 'even' }]);
    expect(dropped.b).toEqual([{ kind: 'tag', value: 'even' }]);
    expect(await b.variants('http://example.test/t/2')).toEqual([]);
    expect(await redis.admin.exists('portico:u:http://example.test/t/2')).toBe(0);
    expect(await b.variants('http://example.test/t/3')).toHaveLength(1);
    expect((await c.purgeTag('all')).deleted).toBe(600);
    expect(await redis.admin.exists(['portico:t:even', 'portico:t:all'])).toBe(0);
  });

  it('says so when an instance does not acknowledge in time', async () => {
    const { a, b } = await twoInstances({ purgeAckTimeoutMs: 200 });
    b.onPurge(() => new Promise<void>(() => undefined)); // never finishes; b acks after its own bound
    const slow = tier({ purgeAckTimeoutMs: 5_000 });
    await ready(slow);
    slow.onPurge(() => new Promise<void>(() => undefined));
    const t0 = Date.now();
    const result = await a.purgeUrl('http://example.test/nothing');
    expect(Date.now() - t0).toBeLessThan(1_000);
    expect(result.reachedAll).toBe(false);
    expect(result.instances).toBe(3);
  });
});

describe('values under our keys that are not records', () => {
  it('treats garbage as a miss, deletes it, and logs it once per kind', async () => {
    const { log, lines } = recordingLogger();
    const a = tier({}, log);
    await ready(a);
    const url = 'http://example.test/g';
    for (const member of [`${url}\n1`, `${url}\n2`, `${url}\n3`]) await redis.admin.sAdd(`portico:u:${url}`, member);
    await redis.admin.set(`portico:r:${url}\n1`, 'hello, not a record');
    await redis.admin.set(`portico:r:${url}\n2`, Buffer.from([0x50, 0x54, 0x43, 1, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]));
    await redis.admin.lPush(`portico:r:${url}\n3`, 'a list');
    expect(await a.variants(url)).toEqual([]);
    expect(a.state().garbage).toBe(3);
    await sleep(20); // deletions are sent after the answer
    expect(await redis.admin.exists([`portico:r:${url}\n1`, `portico:r:${url}\n2`, `portico:r:${url}\n3`])).toBe(0);
    expect(await a.variants(url)).toEqual([]);
    expect(a.state().garbage).toBe(3);
    // Another bad record of a kind already logged is counted, not logged again.
    await redis.admin.sAdd(`portico:u:${url}`, `${url}\n4`);
    await redis.admin.set(`portico:r:${url}\n4`, 'more garbage');
    expect(await a.variants(url)).toEqual([]);
    const logged = lines.filter((l) => l.msg.includes('not a valid record'));
    expect(logged.map((l) => l.kind).sort()).toEqual(['record-length', 'record-magic', 'record-type']);
    expect(a.state().garbage).toBe(4);
  });

  it('treats a URL set of the wrong type as a miss, and stores over it', async () => {
    const { a } = await twoInstances();
    const e = entry('http://example.test/wrong');
    await redis.admin.set(`portico:u:${e.url}`, 'not a set');
    expect(await a.variants(e.url)).toEqual([]);
    await redis.admin.set(`portico:u:${e.url}`, 'not a set');
    await redis.admin.set(`portico:t:x`, 'not a set either');
    expect(await a.store(entry(e.url, { tags: 'x' }))).toBe(true);
    expect(await a.variants(e.url)).toHaveLength(1);
  });

  it('treats a record whose checksum fails as a miss', async () => {
    const { a, b } = await twoInstances();
    const e = entry('http://example.test/crc', { body: 'a body to flip a byte in' });
    await a.store(e);
    const record = encodeRecord(e);
    const key = `portico:r:${e.key}`;
    expect((await redis.admin.get(key))!.equals(record)).toBe(true);
    await redis.admin.setRange(key, record.length - 10, 'X'); // inside the body
    expect(await b.variants(e.url)).toEqual([]);
    expect(b.state().garbage).toBe(1);
    await sleep(20);
    expect(await redis.admin.exists(key)).toBe(0);
  });

  it('leaves alone a record written by another format version', async () => {
    const { a, b } = await twoInstances();
    const e = entry('http://example.test/v2');
    await a.store(e);
    const key = `portico:r:${e.key}`;
    await redis.admin.setRange(key, 3, Buffer.from([2]));
    expect(await b.variants(e.url)).toEqual([]);
    expect(b.state().garbage).toBe(0);
    expect(await redis.admin.exists(key)).toBe(1);
  });

  it('treats a record stored under the wrong key as garbage', async () => {
    const { a, b } = await twoInstances();
    const e = entry('http://example.test/right');
    const other = entry('http://example.test/wrong-one');
    await a.store(e);
    await redis.admin.set(`portico:r:${e.key}`, encodeRecord(other));
    expect(await b.variants(e.url)).toEqual([]);
    expect(b.state().garbage).toBe(1);
  });
});
