/**
 * Parsing what a proxy client asks for: an absolute-form request target (`http://host:port/path?q`,
 * RFC 9112 §3.2.2) or a CONNECT authority (`host:port`, §3.2.3). Hand-written and allocation-light:
 * the path is relayed exactly as the client sent it (no dot-segment or percent re-encoding), userinfo
 * is dropped, the host is normalised for matching.
 */
import { isIP } from 'node:net';
import { isHostName, normalizeHost } from '../policy/host-matcher.js';

export interface AbsoluteTarget {
  readonly scheme: 'http' | 'https';
  /** Normalised host name or address, no brackets: for rules, DNS and connecting. */
  readonly hostname: string;
  readonly port: number;
  /** `host[:port]` as it goes in the Host header (brackets kept, default port omitted). */
  readonly authority: string;
  /** `scheme://authority`, as URL#origin would spell it. */
  readonly origin: string;
  /** origin-form: `/path?query`. */
  readonly path: string;
}

export interface ConnectTarget {
  readonly hostname: string;
  readonly port: number;
}

const ABSOLUTE = /^(https?):\/\/([^/?#]*)([^#]*)/i;

/** null when `url` is not an absolute http(s) URL with a valid host. */
export function parseAbsoluteTarget(url: string): AbsoluteTarget | null {
  const m = ABSOLUTE.exec(url);
  if (m === null) return null;
  const scheme = m[1]!.toLowerCase() as 'http' | 'https';
  let authority = m[2]!;
  const at = authority.lastIndexOf('@');
  if (at >= 0) authority = authority.slice(at + 1);
  const hostPort = splitHostPort(authority, scheme === 'https' ? 443 : 80);
  if (hostPort === null) return null;
  const defaultPort = scheme === 'https' ? 443 : 80;
  const bracketed = isIP(hostPort.hostname) === 6 ? `[${hostPort.hostname}]` : hostPort.hostname;
  const hostHeader = hostPort.port === defaultPort ? bracketed : `${bracketed}:${hostPort.port}`;
  let path = m[3]!;
  if (path === '') path = '/';
  else if (path.charCodeAt(0) === 63 /* ? */) path = `/${path}`;
  return {
    scheme,
    hostname: hostPort.hostname,
    port: hostPort.port,
    authority: hostHeader,
    origin: `${scheme}://${hostHeader}`,
    path,
  };
}

/** `host:port` or `[v6]:port`; the port is required. */
export function parseConnectTarget(authority: string): ConnectTarget | null {
  return splitHostPort(authority, 0);
}

function splitHostPort(authority: string, defaultPort: number): ConnectTarget | null {
  let host: string;
  let portText: string | undefined;
  if (authority.charCodeAt(0) === 91 /* [ */) {
    const close = authority.indexOf(']');
    if (close < 0) return null;
    host = authority.slice(1, close);
    const rest = authority.slice(close + 1);
    if (rest !== '' && rest.charCodeAt(0) !== 58 /* : */) return null;
    portText = rest === '' ? undefined : rest.slice(1);
    if (isIP(host) !== 6) return null;
  } else {
    const colon = authority.lastIndexOf(':');
    host = colon < 0 ? authority : authority.slice(0, colon);
    portText = colon < 0 ? undefined : authority.slice(colon + 1);
  }
  const hostname = canonicalIPv4(normalizeHost(host));
  if (hostname === null || hostname === '' || (!isHostName(hostname) && isIP(hostname) === 0)) return null;
  let port = defaultPort;
  if (portText !== undefined && portText !== '') {
    if (!/^\d{1,5}$/.test(portText)) return null;
    port = Number(portText);
  }
  if (port < 1 || port > 65535) return null;
  return { hostname, port };
}

/** A last label that makes a host name an IPv4 address for URL parsers and resolvers alike. */
const NUMERIC_LABEL = /(?:^|\.)(?:0x[0-9a-f]*|[0-9]+)\.?$/i;

/**
 * `127.1`, `2130706433`, `0x7f.0.0.1`: other spellings of an IPv4 address, which resolvers and URL
 * parsers turn into 127.0.0.1. They become that address here, so that access rules and the destination
 * checks see what will be connected to. Null for a numeric host that is no address (`1.2.3.4.5`).
 */
function canonicalIPv4(hostname: string): string | null {
  if (isIP(hostname) !== 0 || !NUMERIC_LABEL.test(hostname)) return hostname;
  try {
    const parsed = new URL(`http://${hostname}/`).hostname;
    return isIP(parsed) === 4 ? parsed : null;
  } catch {
    return null;
  }
}
