/**
 * Reading an upstream response head: the end-to-end headers as strings (hop-by-hop ones and those the
 * Connection header names removed), and the framing a proxy must refuse to relay.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { connectionTokens, HOP_BY_HOP } from '../core/hop-by-hop.js';

/**
 * Response framing that a parser accepts but a proxy must not relay (as nginx refuses it): a
 * Transfer-Encoding other than one plain `chunked`. Node and undici decode only `chunked`, so any other
 * coding would reach the client undecoded with its Transfer-Encoding header (hop-by-hop) removed, and a
 * repeated or non-final `chunked` means the body can be delimited in more than one way. Content-Length
 * conflicts are refused by the parsers themselves.
 */
function transferCodingProblem(codings: string | null): string | null {
  if (codings === null || codings.trim().toLowerCase() === 'chunked') return null;
  return `an unsupported Transfer-Encoding "${codings.slice(0, 64)}"`;
}

/**
 * Why a status line cannot be relayed, or null: a status code outside 1xx–5xx (RFC 9110 §15), or a
 * reason phrase with control characters (RFC 9112 §4 allows HTAB, SP, VCHAR and obs-text only).
 */
export function statusProblem(status: number, reason: string): string | null {
  if (status < 100 || status > 599) return `an invalid status code ${status}`;
  return /[\x00-\x08\x0a-\x1f\x7f]/.test(reason) ? 'a reason phrase with control characters' : null;
}

/**
 * The reason phrase as it may be relayed: visible ASCII and spaces only (Node refuses what undici decodes
 * obs-text into); anything else is dropped, and the client gets the standard phrase instead.
 */
export function relayableReason(text: string): string {
  return /^[\t\x20-\x7e]*$/.test(text) ? text : '';
}

/** The framing problem of a raw head ([name, value, …] strings, as node:http gives them), or null. */
export function framingProblemOf(raw: readonly string[]): string | null {
  let codings: string | null = null;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length !== 17 || name.toLowerCase() !== 'transfer-encoding') continue;
    if (codings !== null) return 'more than one Transfer-Encoding header';
    codings = raw[i + 1]!;
  }
  return transferCodingProblem(codings);
}

interface ResponseHead {
  /** End-to-end headers, names as the backend spelled them. */
  readonly raw: string[];
  /** The same, lower-case names (duplicates joined, set-cookie a list). */
  readonly headers: IncomingHttpHeaders;
}

/**
 * The backend's response head (undici's raw Buffers) without hop-by-hop headers (and those its Connection
 * header names); or why its framing must not be relayed: a Transfer-Encoding other than one plain
 * `chunked` (undici, like Node, decodes only chunked: any other coding would reach the client undecoded
 * without its Transfer-Encoding header, and a repeated or non-final `chunked` means the body can be
 * delimited in more than one way). Content-Length conflicts are refused by undici's parser.
 */
export function readHead(buffers: readonly Buffer[]): ResponseHead | string {
  const count = buffers.length >> 1;
  const names = new Array<HeaderName>(count);
  const values = new Array<string>(count);
  let connection: string | null = null;
  let codings: string | null = null;
  for (let i = 0; i < count; i++) {
    const name = headerName(buffers[2 * i]!);
    const value = buffers[2 * i + 1]!.toString('latin1');
    names[i] = name;
    values[i] = value;
    if (name.kind === CONNECTION) connection = connection === null ? value : `${connection}, ${value}`;
    else if (name.kind === TRANSFER_ENCODING) {
      if (codings !== null) return 'more than one Transfer-Encoding header';
      codings = value;
    }
  }
  const framing = transferCodingProblem(codings);
  if (framing !== null) return framing;
  const extra = connection === null || connection === 'keep-alive' || connection === 'close' ? null : connectionTokens(connection);
  const raw: string[] = [];
  const headers: IncomingHttpHeaders = {};
  for (let i = 0; i < count; i++) {
    const name = names[i]!;
    if (name.hopByHop || (extra !== null && extra.has(name.lower))) continue;
    const value = values[i]!;
    raw.push(name.text, value);
    if (name.kind === SET_COOKIE) {
      (headers['set-cookie'] ??= []).push(value);
    } else {
      const prev = headers[name.lower] as string | undefined;
      headers[name.lower] = prev === undefined ? value : `${prev}, ${value}`;
    }
  }
  return { raw, headers };
}

const OTHER = 0;
const CONNECTION = 1;
const TRANSFER_ENCODING = 2;
const SET_COOKIE = 3;

/** A response header name as decoded once: turning Buffers into strings is most of the cost of a head. */
class HeaderName {
  readonly lower: string;
  readonly hopByHop: boolean;
  readonly kind: number;
  next: HeaderName | null = null;

  constructor(
    readonly bytes: Buffer,
    readonly text: string,
  ) {
    const lower = text.toLowerCase();
    this.lower = lower;
    this.hopByHop = HOP_BY_HOP.has(lower);
    this.kind = lower === 'connection' ? CONNECTION : lower === 'transfer-encoding' ? TRANSFER_ENCODING : lower === 'set-cookie' ? SET_COOKIE : OTHER;
  }
}

/**
 * Names seen so far, by length and first and last byte (a few per key at most). Bounded: a backend sends
 * few distinct names, and one that sends many only fills the table once.
 */
const headerNames = new Map<number, HeaderName>();
const HEADER_NAMES_MAX = 512;
const HEADER_NAMES_PER_KEY = 4;
let headerNameCount = 0;

function headerName(buf: Buffer): HeaderName {
  const length = buf.length;
  const key = length === 0 ? 0 : (length << 16) | (buf[0]! << 8) | buf[length - 1]!;
  const first = headerNames.get(key) ?? null;
  let depth = 0;
  for (let known = first; known !== null; known = known.next, depth++) {
    const bytes = known.bytes;
    let i = 0;
    while (i < length && bytes[i] === buf[i]) i++;
    if (i === length) return known;
  }
  const name = new HeaderName(Buffer.from(buf), buf.toString('latin1'));
  if (headerNameCount < HEADER_NAMES_MAX && depth < HEADER_NAMES_PER_KEY) {
    headerNameCount++;
    name.next = first;
    headerNames.set(key, name);
  }
  return name;
}
