/**
 * What a forward proxy tells the origin about its clients.
 *
 * - anonymize `true` (default): the origin sees no trace of the client: every header that carries a
 *   client address or identity, or that reveals a proxy chain, is removed.
 * - anonymize `'strict'`: the same, and User-Agent and Accept-Language are replaced by common values,
 *   and a cross-origin Referer is trimmed to its origin.
 * - anonymize `false`: like Squid by default: `Via: 1.1 <token>` is appended and the client's address
 *   is appended to X-Forwarded-For.
 *
 * Loop detection: each policy has a token of its own (`portico-<random>`); a request whose Via already
 * carries it has been through this proxy before. (With anonymize on nothing is added, so the forward
 * proxy also refuses targets that are its own listening address.)
 */
import { randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

export type AnonymizeMode = boolean | 'strict';

/** Headers that identify the client, its address, or the proxies it came through. */
export const CLIENT_IDENTIFYING_HEADERS: readonly string[] = [
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
  'x-forwarded-port',
  'x-forwarded-server',
  'x-forwarded',
  'forwarded-for',
  'forwarded',
  'via',
  'x-real-ip',
  'x-client-ip',
  'client-ip',
  'x-cluster-client-ip',
  'true-client-ip',
  'cf-connecting-ip',
  'fastly-client-ip',
  'x-originating-ip',
  'x-remote-ip',
  'x-remote-addr',
  'x-proxyuser-ip',
  'x-proxy-id',
  'from',
  'proxy-authorization',
  'proxy-connection',
];

/** A common desktop browser identity (Tor Browser's approach: look like many others). */
export const STRICT_USER_AGENT = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0';
export const STRICT_ACCEPT_LANGUAGE = 'en-US,en;q=0.5';

export interface OutboundContext {
  /** Normalised client address. */
  readonly clientAddress: string;
  /** `scheme://host[:port]` of the request's target, for the Referer rule. */
  readonly targetOrigin: string;
  /** The client's HTTP version (`1.1`, `1.0`), for the Via entry. */
  readonly httpVersion: string;
}

export class HeaderPolicy {
  readonly mode: AnonymizeMode;
  /** The pseudonym this proxy uses in Via: unique per policy instance. */
  readonly viaToken: string;

  constructor(mode: AnonymizeMode, viaToken = `portico-${randomBytes(5).toString('hex')}`) {
    this.mode = mode;
    this.viaToken = viaToken;
  }

  /** True when the request already went through this proxy (its Via names our token). */
  seenBefore(headers: IncomingHttpHeaders): boolean {
    const via = headers.via;
    return via !== undefined && via.includes(this.viaToken);
  }

  /** Applies the policy to the outbound request headers (already free of hop-by-hop headers). */
  apply(out: OutgoingHttpHeaders, ctx: OutboundContext): void {
    delete out['proxy-authorization'];
    delete out['proxy-connection'];
    if (this.mode === false) {
      const entry = `${ctx.httpVersion} ${this.viaToken}`;
      const via = out.via;
      out.via = via ? `${String(via)}, ${entry}` : entry;
      const xff = out['x-forwarded-for'];
      out['x-forwarded-for'] = xff ? `${String(xff)}, ${ctx.clientAddress}` : ctx.clientAddress;
      return;
    }
    for (const name of CLIENT_IDENTIFYING_HEADERS) {
      if (out[name] !== undefined) delete out[name];
    }
    if (this.mode === 'strict') {
      out['user-agent'] = STRICT_USER_AGENT;
      if (out['accept-language'] !== undefined) out['accept-language'] = STRICT_ACCEPT_LANGUAGE;
      const referer = out.referer;
      if (typeof referer === 'string') {
        const trimmed = trimReferer(referer, ctx.targetOrigin);
        if (trimmed === null) delete out.referer;
        else out.referer = trimmed;
      }
    }
  }
}

/** Same-origin: unchanged; cross-origin: the referring origin only; unparseable: dropped (null). */
export function trimReferer(referer: string, targetOrigin: string): string | null {
  let url: URL;
  try {
    url = new URL(referer);
  } catch {
    return null;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return null;
  if (url.origin === targetOrigin) return referer;
  return `${url.origin}/`;
}
