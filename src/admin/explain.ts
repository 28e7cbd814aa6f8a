/**
 * `GET /api/explain`: which forward-proxy check or rule would decide a request, and why, without
 * sending it. Follows the forward proxy's order: client allow-list → CONNECT port (https) → rules
 * (first match wins; no match allows).
 */
import { isIP } from 'node:net';
import type { ForwardConfig } from '../config/schema.js';
import { CidrList, normalizeAddress } from '../policy/cidr-list.js';
import type { RuleEvaluator } from './sources.js';

export interface ExplainQuery {
  readonly url: string;
  readonly client: string;
  readonly userAgent: string | undefined;
  readonly user: string | undefined;
  /** Method of a plain-HTTP request (https URLs are CONNECTs). */
  readonly method: string;
}

export interface Explanation {
  readonly decision: 'allow' | 'deny';
  /** The rule that decided (its label), or null when a built-in check or the default did. */
  readonly rule: string | null;
  readonly reason: string;
  readonly request: { readonly method: string; readonly host: string; readonly port: number; readonly client: string; readonly userAgent: string | null; readonly user: string | null };
}

/** Throws a TypeError with a readable message when the URL cannot be a forward-proxy target. */
export function explainForward(config: ForwardConfig, rules: RuleEvaluator, q: ExplainQuery): Explanation {
  const target = parseTarget(q.url);
  const client = normalizeAddress(q.client);
  const method = target.scheme === 'https' ? 'CONNECT' : q.method.toUpperCase();
  const request = { method, host: target.host, port: target.port, client, userAgent: q.userAgent ?? null, user: q.user ?? null };
  if (!new CidrList(config.clients).has(client)) {
    return { decision: 'deny', rule: null, reason: `${client} is not in forward.clients (${config.clients.join(', ') || 'empty'}): the proxy refuses it with 403`, request };
  }
  if (method === 'CONNECT' && !config.connect_ports.includes(target.port)) {
    return { decision: 'deny', rule: null, reason: `CONNECT to port ${target.port} is not allowed (forward.connect_ports: ${config.connect_ports.join(', ') || 'none'})`, request };
  }
  const verdict = rules.evaluate({ host: target.host, port: target.port, method, clientAddress: client, userAgent: q.userAgent, user: q.user });
  if (verdict === null) {
    return {
      decision: 'allow',
      rule: null,
      reason: rules.size === 0 ? 'forward.rules is empty: everything the client allow-list lets in is allowed' : `none of the ${rules.size} rules matches: allowed by default`,
      request,
    };
  }
  return { decision: verdict.action, rule: verdict.label, reason: `${verdict.label} is the first rule that matches; its action is ${verdict.action}`, request };
}

interface Target {
  readonly scheme: 'http' | 'https';
  readonly host: string;
  readonly port: number;
}

function parseTarget(text: string): Target {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `https://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new TypeError(`url: expected an http:// or https:// URL or host:port, got "${text}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`url: expected an http:// or https:// URL, got "${text}"`);
  const scheme = url.protocol === 'http:' ? 'http' : 'https';
  let host = url.hostname.toLowerCase();
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  if (host.endsWith('.') && isIP(host) === 0) host = host.slice(0, -1);
  const port = url.port === '' ? (scheme === 'http' ? 80 : 443) : Number(url.port);
  return { scheme, host, port };
}
