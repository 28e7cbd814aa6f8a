/**
 * Hop-by-hop header handling (RFC 9110 §7.6.1): these headers describe one connection and are never
 * relayed, nor are the headers that a `Connection` header names.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
]);

/** Lower-case names listed in a Connection header value (`close` and `keep-alive` are ignored). */
export function connectionTokens(value: string | string[] | undefined): ReadonlySet<string> | null {
  if (!value) return null;
  const text = Array.isArray(value) ? value.join(',') : value;
  let tokens: Set<string> | null = null;
  for (const part of text.split(',')) {
    const token = part.trim().toLowerCase();
    if (token && token !== 'close' && token !== 'keep-alive') (tokens ??= new Set()).add(token);
  }
  return tokens;
}

/**
 * Copies request headers without hop-by-hop ones, and without `Expect`: the proxy answers
 * `100-continue` itself before it reads the body.
 */
export function endToEndRequestHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const extra = connectionTokens(headers.connection);
  const out: OutgoingHttpHeaders = {};
  for (const name in headers) {
    if (HOP_BY_HOP.has(name) || name === 'expect' || (extra !== null && extra.has(name))) continue;
    out[name] = headers[name];
  }
  return out;
}

/** Filters a flat raw header list ([name, value, …]) down to end-to-end headers. */
export function endToEndRawHeaders(raw: readonly string[]): string[] {
  let extra: ReadonlySet<string> | null = null;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.length === 10 && raw[i]!.toLowerCase() === 'connection') {
      extra = connectionTokens(raw[i + 1]);
      break;
    }
  }
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (HOP_BY_HOP.has(name) || (extra !== null && extra.has(name))) continue;
    out.push(raw[i]!, raw[i + 1]!);
  }
  return out;
}

/** Builds the lower-case header object matching a filtered raw list (duplicates joined, set-cookie kept as a list). */
export function headersFromRaw(raw: readonly string[]): IncomingHttpHeaders {
  const out: IncomingHttpHeaders = {};
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    const value = raw[i + 1]!;
    if (name === 'set-cookie') {
      (out['set-cookie'] ??= []).push(value);
    } else {
      const prev = out[name] as string | undefined;
      out[name] = prev === undefined ? value : `${prev}, ${value}`;
    }
  }
  return out;
}

/** True when the request carries a body (RFC 9112 §6.3). */
export function hasRequestBody(headers: IncomingHttpHeaders): boolean {
  if (headers['transfer-encoding'] !== undefined) return true;
  const length = headers['content-length'];
  return length !== undefined && length !== '0';
}
