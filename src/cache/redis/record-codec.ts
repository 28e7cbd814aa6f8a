/**
 * The binary form of one stored variant in the Redis tier: serialised once when it is written, so a
 * hit read back costs one CRC pass and one small JSON parse, and the body is a zero-copy slice of the
 * reply buffer.
 *
 *   offset  size  field
 *   0       3     magic "PTC"
 *   3       1     format version (1)
 *   4       4     M: length of the metadata, unsigned big-endian
 *   8       M     metadata: UTF-8 JSON of the StoredResponse without `body`, plus `bodyLength`
 *   8+M     B     body (B = bodyLength)
 *   8+M+B   4     CRC-32 (zlib.crc32) of bytes [0, 8+M+B), unsigned big-endian
 *
 * decodeRecord() never throws: anything that is not a well-formed record of this version comes back
 * as a reason (`DecodeFailure`), so the caller can tell garbage (delete it, log it) from a record of
 * another format version written by a newer or older Portico during a rolling upgrade (leave it be).
 * A change to the StoredResponse fields that older readers cannot take needs a new version number.
 */
import { crc32 } from 'node:zlib';
import { storedEntry, type InMemoryResponse, type StoredResponse } from '../stored-response.js';

const MAGIC = Buffer.from('PTC', 'latin1');
export const RECORD_VERSION = 1;
const HEAD_BYTES = 8;
const CRC_BYTES = 4;

export type DecodeFailure = 'short' | 'magic' | 'version' | 'length' | 'checksum' | 'json' | 'shape';

export type DecodeResult = { readonly ok: true; readonly entry: InMemoryResponse } | { readonly ok: false; readonly reason: DecodeFailure };

/** The record for an entry whose body is in memory: one buffer, ready to be written as a Redis string value. */
export function encodeRecord(entry: InMemoryResponse): Buffer {
  const { body, ...rest } = entry;
  const meta = JSON.stringify({ ...rest, bodyLength: body.length });
  const metaLength = Buffer.byteLength(meta);
  const out = Buffer.allocUnsafe(HEAD_BYTES + metaLength + body.length + CRC_BYTES);
  MAGIC.copy(out, 0);
  out[3] = RECORD_VERSION;
  out.writeUInt32BE(metaLength, 4);
  out.write(meta, HEAD_BYTES, 'utf8');
  body.copy(out, HEAD_BYTES + metaLength);
  const end = HEAD_BYTES + metaLength + body.length;
  out.writeUInt32BE(crc32(out.subarray(0, end)), end);
  return out;
}

/** The entry in a record, after checking its framing, checksum and shape. */
export function decodeRecord(data: Buffer): DecodeResult {
  if (data.length < HEAD_BYTES + CRC_BYTES) return fail('short');
  if (data[0] !== MAGIC[0] || data[1] !== MAGIC[1] || data[2] !== MAGIC[2]) return fail('magic');
  if (data[3] !== RECORD_VERSION) return fail('version');
  const metaLength = data.readUInt32BE(4);
  const end = data.length - CRC_BYTES;
  if (HEAD_BYTES + metaLength > end) return fail('length');
  if (crc32(data.subarray(0, end)) !== data.readUInt32BE(end)) return fail('checksum');
  let meta: unknown;
  try {
    meta = JSON.parse(data.toString('utf8', HEAD_BYTES, HEAD_BYTES + metaLength));
  } catch {
    return fail('json');
  }
  const body = data.subarray(HEAD_BYTES + metaLength, end);
  if (!isStoredMeta(meta) || meta.bodyLength !== body.length) return fail('shape');
  return { ok: true, entry: storedEntry({ ...meta, body }, meta.expiresAt, meta.size) as InMemoryResponse };
}

function fail(reason: DecodeFailure): DecodeResult {
  return { ok: false, reason };
}

type StoredMeta = Omit<StoredResponse, 'body'> & { readonly bodyLength: number };

/** Every field the engine reads has the type it expects (unknown extra fields are ignored). */
function isStoredMeta(m: unknown): m is StoredMeta {
  if (typeof m !== 'object' || m === null) return false;
  const r = m as Record<string, unknown>;
  if (typeof r.key !== 'string' || typeof r.url !== 'string' || !r.key.startsWith(r.url)) return false;
  if (!isStringArray(r.vary) || !Array.isArray(r.varyValues) || r.varyValues.length !== r.vary.length) return false;
  if (!r.varyValues.every((v) => v === null || typeof v === 'string')) return false;
  if (!Number.isInteger(r.status) || (r.status as number) < 100 || (r.status as number) > 999) return false;
  if (typeof r.statusMessage !== 'string') return false;
  if (!isStringArray(r.rawHeaders) || r.rawHeaders.length % 2 !== 0) return false;
  if (!isStringArray(r.tags) || !isStringArray(r.omit)) return false;
  if (!isFiniteNumber(r.expiresAt) || !isFiniteNumber(r.size) || !Number.isInteger(r.bodyLength)) return false;
  return isFreshnessInfo(r.info);
}

function isFreshnessInfo(i: unknown): boolean {
  if (typeof i !== 'object' || i === null) return false;
  const r = i as Record<string, unknown>;
  for (const f of ['correctedInitialAge', 'responseTime', 'lifetime', 'staleWhileRevalidate', 'staleIfError', 'date']) {
    if (!isFiniteNumber(r[f])) return false;
  }
  for (const f of ['heuristic', 'alwaysRevalidate', 'noStale']) if (typeof r[f] !== 'boolean') return false;
  for (const f of ['etag', 'lastModified']) if (r[f] !== null && typeof r[f] !== 'string') return false;
  return true;
}

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((s) => typeof s === 'string');
}

function isFiniteNumber(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}
