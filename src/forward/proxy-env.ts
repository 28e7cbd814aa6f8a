/**
 * Which upstream proxy (if any) a request goes through: the configured `forward.upstream_proxy`, or
 * the standard environment variables read once at startup, as curl reads them:
 * `http_proxy` / `HTTP_PROXY` for http URLs, `https_proxy` / `HTTPS_PROXY` for https URLs and CONNECT
 * tunnels, `all_proxy` / `ALL_PROXY` as the fallback for both, and `no_proxy` / `NO_PROXY`: a comma- or
 * space-separated list of `*` (no proxy at all), host names (matching the name and its subdomains;
 * a leading `.` or `*.` is allowed), optional `:port`, and IP addresses or CIDR ranges.
 * Lower-case names win over upper-case ones. A value without a scheme means `http://`.
 */
import { isIP } from 'node:net';
import { isCidr } from '../config/fields.js';
import { CidrList } from '../policy/cidr-list.js';
import { normalizeHost } from '../policy/host-matcher.js';

export const UPSTREAM_PROXY_PROTOCOLS: readonly string[] = ['http:', 'https:', 'socks:', 'socks4:', 'socks4a:', 'socks5:', 'socks5h:'];

interface NoProxyName {
  readonly name: string;
  readonly port: number;
}

export class NoProxyList {
  readonly all: boolean;
  private readonly names: readonly NoProxyName[];
  private readonly cidrs: CidrList;

  constructor(value: string) {
    const names: NoProxyName[] = [];
    const cidrs: string[] = [];
    let all = false;
    for (const raw of value.split(/[,\s]+/)) {
      const entry = raw.trim().toLowerCase();
      if (entry === '') continue;
      if (entry === '*') {
        all = true;
        continue;
      }
      if (isCidr(entry)) {
        cidrs.push(entry);
        continue;
      }
      const m = /^(.*?)(?::(\d+))?$/.exec(entry)!;
      const name = normalizeHost((m[1] ?? '').replace(/^\*?\./, ''));
      if (name !== '') names.push({ name, port: m[2] ? Number(m[2]) : 0 });
    }
    this.all = all;
    this.names = names;
    this.cidrs = new CidrList(cidrs);
  }

  /** `host` normalised (lower case, no brackets). */
  bypasses(host: string, port: number): boolean {
    if (this.all) return true;
    if (this.cidrs.size > 0 && isIP(host) !== 0 && this.cidrs.has(host)) return true;
    for (const entry of this.names) {
      if (entry.port !== 0 && entry.port !== port) continue;
      if (host === entry.name || (host.endsWith(entry.name) && host.charCodeAt(host.length - entry.name.length - 1) === 46)) return true;
    }
    return false;
  }
}

export interface ProxyChoice {
  /** For http:// requests. */
  readonly http: string | null;
  /** For https:// requests and CONNECT tunnels. */
  readonly https: string | null;
  readonly noProxy: NoProxyList | null;
  /** Where the choice came from, for logs and errors. */
  readonly source: 'config' | 'environment' | 'none';
}

function envValue(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = env[name.toLowerCase()] ?? env[name.toUpperCase()];
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

function withScheme(value: string): string {
  return value.includes('://') ? value : `http://${value}`;
}

/** `configured` is forward.upstream_proxy: a URL, `direct` (ignore the environment), or undefined. */
export function chooseUpstreamProxy(configured: string | undefined, env: NodeJS.ProcessEnv): ProxyChoice {
  if (configured === 'direct') return { http: null, https: null, noProxy: null, source: 'none' };
  if (configured !== undefined) return { http: configured, https: configured, noProxy: null, source: 'config' };
  const all = envValue(env, 'all_proxy');
  const http = envValue(env, 'http_proxy') ?? all;
  const https = envValue(env, 'https_proxy') ?? all;
  if (http === undefined && https === undefined) return { http: null, https: null, noProxy: null, source: 'none' };
  const noProxy = envValue(env, 'no_proxy');
  return {
    http: http === undefined ? null : withScheme(http),
    https: https === undefined ? null : withScheme(https),
    noProxy: noProxy === undefined ? null : new NoProxyList(noProxy),
    source: 'environment',
  };
}

/** A proxy URL with its password hidden, for logs and error messages. */
export function redactProxyUrl(proxy: string): string {
  try {
    const url = new URL(proxy);
    if (url.password) url.password = '***';
    return `${url.protocol}//${url.username ? `${url.username}${url.password ? ':***' : ''}@` : ''}${url.host}`;
  } catch {
    return '(invalid proxy URL)';
  }
}
