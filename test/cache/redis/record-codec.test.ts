/** The Redis record format and the life of a record in Redis: pure functions, no server. */
import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { redisTtlMs } from '../../../src/cache/redis/expiry.js';
import { decodeRecord, encodeRecord, RECORD_VERSION } from '../../../src/cache/redis/record-codec.js';
import { NEVER } from '../../../src/cache/stored-response.js';
import { entry } from './fixtures.js';

describe('record codec', () => {
  const e = entry('http://example.test/x', { body: Buffer.from([0, 1, 2, 255, 254]), tags: 'a b', language: 'de' });

  it('round-trips a stored response, the body a slice of the record', () => {
    const record = encodeRecord(e);
    expect(record.subarray(0, 3).toString('latin1')).toBe('PTC');
    expect(record[3]).toBe(RECORD_VERSION);
    const decoded = decodeRecord(record);
    expect(decoded.ok).toBe(true);
    if (!decoded.ok) return;
    expect(decoded.entry).toEqual(e);
    expect(decoded.entry.body.buffer).toBe(record.buffer);
  });

  it('round-trips an empty body, a 304-less 204 and NEVER expiry', () => {
    const empty = { ...entry('http://example.test/e', { body: '' }), status: 204, expiresAt: NEVER };
    const decoded = decodeRecord(encodeRecord(empty));
    expect(decoded).toEqual({ ok: true, entry: empty });
  });

  const reasons: [string, (r: Buffer) => Buffer, string][] = [
    ['too short', (r) => r.subarray(0, 11), 'short'],
    ['not our magic', (r) => patch(r, 0, [0x58]), 'magic'],
    ['another version', (r) => patch(r, 3, [RECORD_VERSION + 1]), 'version'],
    ['a head longer than the record', (r) => withCrc(patch(r, 4, [0x7f, 0, 0, 0])), 'length'],
    ['a flipped body byte', (r) => patch(r, r.length - 6, [r[r.length - 6]! ^ 1]), 'checksum'],
    ['a truncated record', (r) => r.subarray(0, r.length - 1), 'checksum'],
    ['a head that is not JSON', (r) => withCrc(patch(r, 8, [0x7b, 0x7b])), 'json'],
  ];
  for (const [what, damage, reason] of reasons) {
    it(`refuses ${what} (${reason})`, () => {
      expect(decodeRecord(damage(encodeRecord(e)))).toEqual({ ok: false, reason });
    });
  }

  const shapes: [string, Record<string, unknown>][] = [
    ['a status that is not a number', { status: '200' }],
    ['headers of odd length', { rawHeaders: ['A'] }],
    ['vary values not matching vary', { varyValues: [] }],
    ['a key not starting with the URL', { key: 'http://other.test/\n' }],
    ['freshness without numbers', { info: { ...e.info, lifetime: 'long' } }],
    ['freshness with a bad etag', { info: { ...e.info, etag: 5 } }],
    ['tags that are not strings', { tags: [1] }],
  ];
  for (const [what, change] of shapes) {
    it(`refuses a well-framed record with ${what}`, () => {
      expect(decodeRecord(encodeRecord({ ...e, ...change } as never))).toEqual({ ok: false, reason: 'shape' });
    });
  }

  it('refuses a body length that does not match the head', () => {
    const record = encodeRecord(e);
    const metaLength = record.readUInt32BE(4);
    const meta = JSON.parse(record.toString('utf8', 8, 8 + metaLength)) as Record<string, unknown>;
    const forged = Buffer.from(JSON.stringify({ ...meta, bodyLength: 99 }));
    const head = Buffer.alloc(8);
    record.copy(head, 0, 0, 4);
    head.writeUInt32BE(forged.length, 4);
    const body = record.subarray(8 + metaLength, record.length - 4);
    expect(decodeRecord(withCrc(Buffer.concat([head, forged, body, Buffer.alloc(4)])))).toEqual({ ok: false, reason: 'shape' });
  });
});

describe('a record’s life in Redis', () => {
  const now = 1_000_000;
  const base = entry('http://example.test/t');
  const at = (info: Partial<typeof base.info>) => ({ ...base, info: { ...base.info, responseTime: now, correctedInitialAge: 0, ...info } });

  it('is its freshness plus the longer stale window', () => {
    expect(redisTtlMs(at({ lifetime: 60_000, etag: null }), now, 3_600_000)).toBe(60_000);
    expect(redisTtlMs(at({ lifetime: 60_000, etag: null, staleWhileRevalidate: 5_000, staleIfError: 20_000 }), now, 0)).toBe(80_000);
  });

  it('counts the age the response had when it arrived', () => {
    expect(redisTtlMs(at({ lifetime: 60_000, etag: null, correctedInitialAge: 45_000 }), now + 5_000, 0)).toBe(10_000);
  });

  it('keeps a revalidatable response keepRevalidatableMs past its freshness', () => {
    expect(redisTtlMs(at({ lifetime: 60_000, etag: '"x"' }), now, 3_600_000)).toBe(3_660_000);
    expect(redisTtlMs(at({ lifetime: 0, etag: null, lastModified: 'Mon, 01 Jan 2024 00:00:00 GMT' }), now, 1_000)).toBe(1_000);
  });

  it('is never past the entry’s own expiry, and is nothing for a stale response without a validator', () => {
    expect(redisTtlMs({ ...at({ lifetime: 60_000, etag: null }), expiresAt: now + 10 }, now, 0)).toBe(10);
    expect(redisTtlMs(at({ lifetime: 1_000, etag: null }), now + 2_000, 3_600_000)).toBeLessThanOrEqual(0);
  });
});

function patch(record: Buffer, offset: number, bytes: number[]): Buffer {
  const copy = Buffer.from(record);
  Buffer.from(bytes).copy(copy, offset);
  return copy;
}

/** The record with its checksum made right again, so that a later check is reached. */
function withCrc(record: Buffer): Buffer {
  const copy = Buffer.from(record);
  copy.writeUInt32BE(crc32(copy.subarray(0, copy.length - 4)), copy.length - 4);
  return copy;
}
