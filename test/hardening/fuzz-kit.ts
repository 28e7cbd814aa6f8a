/**
 * The seeded fuzzer's parts: a small deterministic PRNG, valid HTTP/1.1 responses and requests to
 * start from, byte- and token-level mutations, and a strict reference reading of a response's framing
 * (what a cache may store from it, if anything).
 */

// --- PRNG ------------------------------------------------------------------------------------------

export type Rng = () => number;

/** mulberry32: 32-bit state, good enough to pick mutations, and the same on every machine. */
export function mulberry32(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The PRNG of one case: depends only on the run's seed and the case's index, so a case replays alone. */
export function caseRng(seed: number, index: number): Rng {
  let h = (seed ^ 0x9e3779b9) >>> 0;
  h = Math.imul(h ^ index, 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return mulberry32((h ^ (h >>> 16)) >>> 0);
}

/** A seed from the UTC date (YYYYMMDD): the same all day, so a re-run of a red job replays the same cases. */
export function dateSeed(now = new Date()): number {
  const ymd = now.getUTCFullYear() * 10_000 + (now.getUTCMonth() + 1) * 100 + now.getUTCDate();
  return Math.imul(ymd ^ 0x5bd1e995, 0x27d4eb2d) >>> 0;
}

export const int = (rng: Rng, n: number): number => Math.floor(rng() * n);
export const pick = <T>(rng: Rng, list: readonly T[]): T => list[int(rng, list.length)]!;
export function weighted<T>(rng: Rng, table: ReadonlyArray<readonly [T, number]>): T {
  const total = table.reduce((s, [, w]) => s + w, 0);
  let r = rng() * total;
  for (const [v, w] of table) if ((r -= w) < 0) return v;
  return table[table.length - 1]![0];
}

// --- valid responses ----------------------------------------------------------------------------------

export interface ResponseTemplate {
  readonly name: string;
  readonly bytes: string;
}

function chunks(rng: Rng, body: string): string {
  let out = '';
  let rest = body;
  while (rest.length > 0) {
    const n = Math.min(rest.length, 1 + int(rng, Math.max(1, rest.length)));
    out += `${n.toString(16)}\r\n${rest.slice(0, n)}\r\n`;
    rest = rest.slice(n);
  }
  return `${out}0\r\n`;
}

/** Valid responses carrying `body` (storable: max-age=60). `etag` is the stored entry's, for 304s. */
export function responseTemplates(rng: Rng, body: string, etag: string): readonly ResponseTemplate[] {
  // No Date: the bytes of a case must be the same on every run, or a failure could not be replayed.
  const h = 'Content-Type: text/plain\r\nCache-Control: max-age=60\r\nETag: "fz"\r\n';
  return [
    { name: 'content-length', bytes: `HTTP/1.1 200 OK\r\n${h}Content-Length: ${body.length}\r\n\r\n${body}` },
    { name: 'chunked', bytes: `HTTP/1.1 200 OK\r\n${h}Transfer-Encoding: chunked\r\n\r\n${chunks(rng, body)}\r\n` },
    { name: 'chunked+trailer', bytes: `HTTP/1.1 200 OK\r\n${h}Transfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n${chunks(rng, body)}X-T: 1\r\n\r\n` },
    { name: 'close-delimited', bytes: `HTTP/1.1 200 OK\r\n${h}Connection: close\r\n\r\n${body}` },
    { name: 'http/1.0', bytes: `HTTP/1.0 200 OK\r\n${h}Content-Length: ${body.length}\r\n\r\n${body}` },
    { name: '100+content-length', bytes: `HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n${h}Content-Length: ${body.length}\r\n\r\n${body}` },
    { name: '103+chunked', bytes: `HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\n${h}Transfer-Encoding: chunked\r\n\r\n${chunks(rng, body)}\r\n` },
    { name: '404', bytes: `HTTP/1.1 404 Not Found\r\n${h}Content-Length: ${body.length}\r\n\r\n${body}` },
    { name: '304', bytes: `HTTP/1.1 304 Not Modified\r\nETag: ${etag}\r\nCache-Control: max-age=60\r\n\r\n` },
    { name: '204', bytes: `HTTP/1.1 204 No Content\r\nCache-Control: max-age=60\r\n\r\n` },
  ];
}

// --- valid requests ----------------------------------------------------------------------------------

/** `{T}` is the request target, `{H}` the Host value. */
export const REQUEST_TEMPLATES: readonly ResponseTemplate[] = [
  { name: 'get', bytes: 'GET {T} HTTP/1.1\r\nHost: {H}\r\nUser-Agent: fuzz/1\r\nAccept: */*\r\n\r\n' },
  { name: 'get-close', bytes: 'GET {T} HTTP/1.1\r\nHost: {H}\r\nConnection: close\r\n\r\n' },
  { name: 'head', bytes: 'HEAD {T} HTTP/1.1\r\nHost: {H}\r\n\r\n' },
  { name: 'conditional', bytes: 'GET {T} HTTP/1.1\r\nHost: {H}\r\nIf-None-Match: "x"\r\nCache-Control: max-age=0\r\n\r\n' },
  { name: 'range', bytes: 'GET {T} HTTP/1.1\r\nHost: {H}\r\nRange: bytes=0-3\r\n\r\n' },
  { name: 'post-cl', bytes: 'POST {T} HTTP/1.1\r\nHost: {H}\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nhello world' },
  { name: 'post-chunked', bytes: 'POST {T} HTTP/1.1\r\nHost: {H}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n' },
  { name: 'pipelined', bytes: 'GET {T} HTTP/1.1\r\nHost: {H}\r\n\r\nGET {T} HTTP/1.1\r\nHost: {H}\r\n\r\n' },
  { name: 'http/1.0', bytes: 'GET {T} HTTP/1.0\r\nHost: {H}\r\n\r\n' },
  { name: 'expect-continue', bytes: 'PUT {T} HTTP/1.1\r\nHost: {H}\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc' },
  { name: 'delete', bytes: 'DELETE {T} HTTP/1.1\r\nHost: {H}\r\nContent-Length: 0\r\n\r\n' },
];

// --- mutations ------------------------------------------------------------------------------------------

/** Header lines spliced into messages (from other responses and requests, and some that change framing). */
const SPLICE_LINES: readonly string[] = [
  'Content-Length: 0',
  'Content-Length: 5',
  'Content-Length: 99999999999999999999',
  'Content-Length: -1',
  'Transfer-Encoding: chunked',
  'Transfer-Encoding: gzip',
  'Transfer-Encoding: identity',
  'Transfer-Encoding: chunked, chunked',
  'Connection: close',
  'Connection: keep-alive',
  'Connection: Upgrade',
  'Upgrade: websocket',
  'Cache-Control: no-store',
  'Cache-Control: private',
  'Cache-Control: max-age=60, must-revalidate',
  'Vary: *',
  'Vary: Accept-Encoding',
  'Set-Cookie: a=b',
  'Content-Encoding: gzip',
  'ETag: "v1"',
  'Expires: 0',
  'Age: 999999',
  'Content-Range: bytes 0-1/2',
  'Trailer: X-T',
  ' folded-continuation',
  'X-Nul: a\0b',
  'X-Cr: a\rb',
  'Bad Name: v',
  'NoColon',
  'Host: 127.0.0.1',
  'Expect: 100-continue',
  'Range: bytes=0-1',
  'If-None-Match: *',
  'Authorization: Basic eDp5',
];

const INSERTS: readonly string[] = ['\r', '\n', '\0', '\r\n', ' ', '\t', ':', '\r\n\r\n', '\x7f', '\xff', ';', '0', '-'];

function numberVariants(rng: Rng, digits: string, hex: boolean): string {
  const n = Number.parseInt(digits, hex ? 16 : 10);
  const fmt = (v: number) => (hex ? v.toString(16) : String(v));
  return pick(rng, [
    fmt(n + 1),
    fmt(Math.max(0, n - 1)),
    '0',
    fmt(n * 2 + 1),
    fmt(int(rng, 1000)),
    '99999999999999999999',
    'fffffffffffffffff',
    '-1',
    ` ${digits}`,
    `${digits} `,
    `0x${digits}`,
    `+${digits}`,
    `${digits},${digits}`,
    '',
  ]);
}

const STATUSES = ['100', '101', '103', '199', '200', '204', '205', '206', '299', '304', '404', '500', '600', '999', '20', '2000', 'abc'];

export type Mutation = (rng: Rng, s: string) => string;

const at = (rng: Rng, s: string) => int(rng, s.length + 1);

export const MUTATIONS: ReadonlyArray<readonly [string, Mutation, number]> = [
  ['truncate', (rng, s) => s.slice(0, at(rng, s)), 3],
  [
    'drop',
    (rng, s) => {
      const i = at(rng, s);
      return s.slice(0, i) + s.slice(i + 1 + int(rng, 8));
    },
    3,
  ],
  [
    'duplicate',
    (rng, s) => {
      const i = at(rng, s);
      const j = Math.min(s.length, i + 1 + int(rng, 24));
      return s.slice(0, j) + s.slice(i, j) + s.slice(j);
    },
    2,
  ],
  [
    'flip',
    (rng, s) => {
      if (s.length === 0) return s;
      const i = int(rng, s.length);
      return s.slice(0, i) + String.fromCharCode(s.charCodeAt(i) ^ (1 << int(rng, 8))) + s.slice(i + 1);
    },
    3,
  ],
  [
    'insert',
    (rng, s) => {
      const i = at(rng, s);
      return s.slice(0, i) + pick(rng, INSERTS) + s.slice(i);
    },
    3,
  ],
  [
    'splice-header',
    (rng, s) => {
      const lines = [...s.matchAll(/\r\n/g)].map((m) => m.index! + 2);
      const head = s.indexOf('\r\n\r\n');
      const inHead = lines.filter((i) => head < 0 || i <= head + 2);
      const i = inHead.length ? pick(rng, inHead) : at(rng, s);
      return `${s.slice(0, i)}${pick(rng, SPLICE_LINES)}\r\n${s.slice(i)}`;
    },
    4,
  ],
  [
    'number',
    (rng, s) => {
      const spots: Array<{ index: number; text: string; hex: boolean }> = [];
      for (const m of s.matchAll(/\d+/g)) spots.push({ index: m.index!, text: m[0], hex: false });
      for (const m of s.matchAll(/(?<=\r\n)[0-9a-fA-F]+(?=\r\n)/g)) spots.push({ index: m.index!, text: m[0], hex: true });
      if (spots.length === 0) return s;
      const spot = pick(rng, spots);
      return s.slice(0, spot.index) + numberVariants(rng, spot.text, spot.hex) + s.slice(spot.index + spot.text.length);
    },
    5,
  ],
  [
    'status',
    (rng, s) => {
      const m = /^(HTTP\/\d\.\d )(\d{3})/.exec(s);
      return m ? m[1] + pick(rng, STATUSES) + s.slice(m[0].length) : s;
    },
    2,
  ],
];

/** Applies 1-3 mutations (or, rarely, none: a control case). Returns the bytes and the names applied. */
export function mutate(rng: Rng, input: string): { readonly bytes: string; readonly applied: readonly string[] } {
  if (rng() < 0.04) return { bytes: input, applied: [] };
  let s = input;
  const applied: string[] = [];
  const n = 1 + int(rng, 3);
  for (let k = 0; k < n; k++) {
    const [name, fn] = weighted(
      rng,
      MUTATIONS.map(([name, fn, w]) => [[name, fn] as const, w] as const),
    );
    s = fn(rng, s);
    applied.push(name);
  }
  return { bytes: s, applied };
}

// --- the reference reading of a response ---------------------------------------------------------------

export type Framed =
  | { readonly kind: 'complete'; readonly status: number; readonly body: string }
  | { readonly kind: 'truncated'; readonly status: number | null }
  | { readonly kind: 'invalid'; readonly reason: string };

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
const STATUS_LINE = /^HTTP\/1\.[01] (\d{3})(?: [\t\x20-\x7e\x80-\xff]*)?$/;

/**
 * What a strict HTTP/1.1 recipient (RFC 9112) reads from `raw`, sent in answer to `method` and ended by
 * a FIN or a reset: the final response's status and body when its framing is valid and complete;
 * `truncated` when it is valid so far but ends before its declared end; `invalid` when no correct
 * reading exists. Lenient only where the RFC lets a
 * recipient repair without ambiguity (obs-fold, a missing reason phrase, repeated equal Content-Lengths).
 */
export function frameResponse(raw: string, method: string, _ending: 'fin' | 'reset'): Framed {
  let pos = 0;
  for (;;) {
    const head = readHead(raw, pos);
    if (head.kind !== 'head') return head;
    const { status, fields } = head;
    pos = head.end;
    if (status === 101) return { kind: 'invalid', reason: '101 to a request that asked for no upgrade' };
    if (status < 200) continue; // interim
    const lengths: string[] = [];
    const codings: string[] = [];
    for (const [name, value] of fields) {
      if (name === 'content-length') lengths.push(...value.split(',').map((v) => v.trim()));
      if (name === 'transfer-encoding') codings.push(value);
    }
    let length: number | null = null;
    if (lengths.length > 0) {
      if (!lengths.every((v) => /^\d+$/.test(v)) || new Set(lengths.map((v) => BigInt(v))).size !== 1) return { kind: 'invalid', reason: 'bad Content-Length' };
      const big = BigInt(lengths[0]!);
      if (big > BigInt(Number.MAX_SAFE_INTEGER)) return { kind: 'invalid', reason: 'Content-Length too large' };
      length = Number(big);
    }
    if (method === 'HEAD' || status === 204 || status === 304) return { kind: 'complete', status, body: '' };
    if (codings.length > 0) {
      if (codings.length !== 1 || codings[0]!.trim().toLowerCase() !== 'chunked') return { kind: 'invalid', reason: 'Transfer-Encoding other than one chunked' };
      if (length !== null) return { kind: 'invalid', reason: 'Content-Length with Transfer-Encoding' };
      return readChunked(raw, pos, status);
    }
    if (length !== null) {
      if (raw.length - pos < length) return { kind: 'truncated', status };
      return { kind: 'complete', status, body: raw.slice(pos, pos + length) };
    }
    // Close-delimited: a FIN ends it, a reset cuts it (RFC 9112 §8). But a reset sent right after the
    // last bytes may reach the proxy as a plain FIN (the kernel's choice, seen here), and then the
    // proxy rightly takes the body as complete: the fuzzer cannot tell the two apart, so it accepts the
    // complete reading. origin-corpus.ts checks a reset-cut body deterministically.
    return { kind: 'complete', status, body: raw.slice(pos) };
  }
}

type Head = { readonly kind: 'head'; readonly status: number; readonly fields: Array<[string, string]>; readonly end: number } | Exclude<Framed, { kind: 'complete' }>;

function readHead(raw: string, start: number): Head {
  const end = raw.indexOf('\r\n\r\n', start);
  // A head that never ended: nothing may be made of it (its status is not even known to be final).
  if (end < 0) return { kind: 'truncated', status: null };
  const lines = raw.slice(start, end).split('\r\n');
  const statusLine = STATUS_LINE.exec(lines[0]!);
  if (statusLine === null) return { kind: 'invalid', reason: 'bad status line' };
  const status = Number(statusLine[1]);
  if (status < 100 || status > 599) return { kind: 'invalid', reason: 'status out of range' };
  const fields: Array<[string, string]> = [];
  for (const line of lines.slice(1)) {
    if (line.includes('\n') || line.includes('\r')) return { kind: 'invalid', reason: 'bare CR or LF' };
    if (line.startsWith(' ') || line.startsWith('\t')) {
      if (fields.length === 0) return { kind: 'invalid', reason: 'whitespace before the first field' };
      if (!FIELD_VALUE.test(line)) return { kind: 'invalid', reason: 'bad field value' };
      fields[fields.length - 1]![1] += ` ${line.trim()}`; // obs-fold, replaced by SP
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0 || !TOKEN.test(line.slice(0, colon))) return { kind: 'invalid', reason: 'bad field name' };
    const value = line.slice(colon + 1);
    if (!FIELD_VALUE.test(value)) return { kind: 'invalid', reason: 'bad field value' };
    fields.push([line.slice(0, colon).toLowerCase(), value.trim()]);
  }
  return { kind: 'head', status, fields, end: end + 4 };
}

function readChunked(raw: string, start: number, status: number): Framed {
  let pos = start;
  let body = '';
  for (;;) {
    const eol = raw.indexOf('\r\n', pos);
    if (eol < 0) return /^[0-9a-fA-F]*(;[\t\x20-\x7e\x80-\xff]*)?$/.test(raw.slice(pos)) ? { kind: 'truncated', status } : { kind: 'invalid', reason: 'bad chunk line' };
    const line = raw.slice(pos, eol);
    const m = /^([0-9a-fA-F]{1,13})(?:[\t ]*;[\t\x20-\x7e\x80-\xff]*)?$/.exec(line);
    if (m === null) return { kind: 'invalid', reason: 'bad chunk size' };
    const size = Number.parseInt(m[1]!, 16);
    pos = eol + 2;
    if (size === 0) break;
    if (raw.length < pos + size + 2) {
      return raw.length <= pos + size || raw.slice(pos + size) === '\r' ? { kind: 'truncated', status } : { kind: 'invalid', reason: 'chunk data too long' };
    }
    if (raw.slice(pos + size, pos + size + 2) !== '\r\n') return { kind: 'invalid', reason: 'chunk data too long' };
    body += raw.slice(pos, pos + size);
    pos += size + 2;
  }
  // Trailer section, then the final CRLF.
  for (;;) {
    const eol = raw.indexOf('\r\n', pos);
    if (eol < 0) return { kind: 'truncated', status };
    const line = raw.slice(pos, eol);
    pos = eol + 2;
    if (line === '') return { kind: 'complete', status, body };
    const colon = line.indexOf(':');
    if (colon <= 0 || !TOKEN.test(line.slice(0, colon)) || !FIELD_VALUE.test(line.slice(colon + 1))) return { kind: 'invalid', reason: 'bad trailer field' };
  }
}

/** For messages: printable, with control bytes escaped. */
export function escapeBytes(s: string, max = 400): string {
  const json = JSON.stringify(s.length > max ? `${s.slice(0, max)}…(${s.length} bytes)` : s);
  return json.replace(/[\u007f-\u00ff]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
