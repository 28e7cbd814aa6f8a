/**
 * X-Forwarded-For/-Proto/-Host, X-Real-IP and Forwarded (RFC 7239) for requests going to a backend.
 * An incoming chain is extended only when the peer is a trusted proxy; otherwise it is replaced,
 * so a client cannot forge its address.
 *
 * Headers that frameworks use to rewrite the URL, host, port or method are not in the cache key; from
 * a client that is not a trusted proxy they would let one request poison the cached answer for
 * everyone (web cache poisoning), so they are removed.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { CidrList } from '../policy/cidr-list.js';

const UNTRUSTED_OVERRIDES = [
  'x-original-url',
  'x-rewrite-url',
  'x-forwarded-port',
  'x-forwarded-prefix',
  'x-forwarded-server',
  'x-forwarded-scheme',
  'x-forwarded-ssl',
  'x-host',
  'x-http-method-override',
  'x-http-method',
  'x-method-override',
] as const;

export function addForwardedHeaders(
  out: OutgoingHttpHeaders,
  incoming: IncomingHttpHeaders,
  peer: string,
  proto: 'http' | 'https',
  trusted: CidrList,
): void {
  const fromTrusted = trusted.size > 0 && trusted.has(peer);
  if (!fromTrusted) for (const name of UNTRUSTED_OVERRIDES) if (out[name] !== undefined) delete out[name];
  const host = incoming.host;
  const chain = fromTrusted ? incoming['x-forwarded-for'] : undefined;
  out['x-forwarded-for'] = chain ? `${chain}, ${peer}` : peer;
  out['x-forwarded-proto'] = (fromTrusted && incoming['x-forwarded-proto']) || proto;
  const forwardedHost = (fromTrusted && incoming['x-forwarded-host']) || host;
  if (forwardedHost) out['x-forwarded-host'] = forwardedHost;
  else delete out['x-forwarded-host'];
  out['x-real-ip'] = (fromTrusted && incoming['x-real-ip']) || peer;
  const element = `for=${forwardedNode(peer)}${host ? `;host=${forwardedValue(host)}` : ''};proto=${proto}`;
  const previous = fromTrusted ? incoming.forwarded : undefined;
  out.forwarded = previous ? `${previous}, ${element}` : element;
}

/** RFC 7239 node: IPv6 addresses are bracketed and quoted. */
function forwardedNode(address: string): string {
  return address.includes(':') ? `"[${address}]"` : address;
}

/** RFC 7239 value: a token as is, anything else (e.g. `host:port`) quoted. */
function forwardedValue(value: string): string {
  for (let i = 0; i < value.length; i++) {
    if (!TOKEN_CHAR[value.charCodeAt(i)]) return `"${value.replace(/["\\]/g, '\\$&')}"`;
  }
  return value;
}

const TOKEN_CHAR: readonly boolean[] = Array.from({ length: 128 }, (_, c) => /[!#$%&'*+.^_`|~0-9A-Za-z-]/.test(String.fromCharCode(c)));
