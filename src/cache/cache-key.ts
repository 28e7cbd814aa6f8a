/**
 * The primary cache key: the normalised absolute URL of a request (RFC 9111 §2, RFC 3986 §6.2.2).
 * Scheme and host are lower-cased, a default port is dropped, percent-encoded unreserved characters
 * are decoded and the hex digits of the remaining percent-encodings are upper-cased, so that
 * `HTTP://Example.COM:80/%7euser` and `http://example.com/~user` share one entry.
 */

const DEFAULT_PORTS: Readonly<Record<string, string>> = { http: '80', https: '443' };

/** `scheme://host[:port]/path?query`, normalised. `pathAndQuery` is the origin-form request target. */
export function cacheKeyUrl(scheme: string, host: string, pathAndQuery: string): string {
  const s = scheme.endsWith(':') ? scheme.slice(0, -1).toLowerCase() : scheme.toLowerCase();
  const path = pathAndQuery === '' ? '/' : pathAndQuery.indexOf('%') < 0 ? pathAndQuery : normalisePercentEncoding(pathAndQuery);
  return `${s}://${normaliseHost(host, s)}${path}`;
}

/** Parses an absolute URL (as given to the purge API, or a Location header) into a cache key; null if it is not http(s). */
export function cacheKeyFromUrl(url: string, base?: string): string | null {
  let parsed: URL;
  try {
    parsed = base === undefined ? new URL(url) : new URL(url, base);
  } catch {
    return null;
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return null;
  return cacheKeyUrl(parsed.protocol, parsed.host, parsed.pathname + parsed.search);
}

function normaliseHost(host: string, scheme: string): string {
  let h = host.toLowerCase();
  // The port is whatever follows the last ':' outside an IPv6 literal.
  const close = h.lastIndexOf(']');
  const colon = h.lastIndexOf(':');
  if (colon > close) {
    const port = h.slice(colon + 1);
    if (port === '' || port === DEFAULT_PORTS[scheme]) h = h.slice(0, colon);
  }
  if (h.endsWith('.') && h.length > 1 && close < 0) h = h.slice(0, -1);
  return h;
}

function isUnreserved(code: number): boolean {
  return (
    (code >= 0x41 && code <= 0x5a) || // A-Z
    (code >= 0x61 && code <= 0x7a) || // a-z
    (code >= 0x30 && code <= 0x39) || // 0-9
    code === 0x2d || // -
    code === 0x2e || // .
    code === 0x5f || // _
    code === 0x7e // ~
  );
}

function hexValue(code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  if (code >= 0x41 && code <= 0x46) return code - 0x37;
  if (code >= 0x61 && code <= 0x66) return code - 0x57;
  return -1;
}

function normalisePercentEncoding(path: string): string {
  let out = '';
  let last = 0;
  for (let i = path.indexOf('%'); i >= 0; i = path.indexOf('%', i + 1)) {
    if (i + 2 >= path.length) break;
    const hi = hexValue(path.charCodeAt(i + 1));
    const lo = hexValue(path.charCodeAt(i + 2));
    if (hi < 0 || lo < 0) continue;
    const code = hi * 16 + lo;
    out += path.slice(last, i) + (isUnreserved(code) ? String.fromCharCode(code) : `%${path[i + 1]!.toUpperCase()}${path[i + 2]!.toUpperCase()}`);
    last = i + 3;
    i += 2;
  }
  return last === 0 ? path : out + path.slice(last);
}

/**
 * What part of the query an operator's key rule keeps (cache-rule.ts `key.query`): only some
 * parameters, all but some, none, or all of them in a canonical order. Kept parameters are sorted by
 * name (stable for repeated names), so that `?b=2&a=1` and `?a=1&b=2` share one entry.
 */
export type QueryKey =
  | { readonly kind: 'keep'; readonly names: ReadonlySet<string> }
  | { readonly kind: 'ignore'; readonly names: ReadonlySet<string> }
  | { readonly kind: 'none' }
  | { readonly kind: 'sort' };

/** `pathAndQuery` with its query reduced as `query` says (unchanged when null or without a query). */
export function keyedPath(pathAndQuery: string, query: QueryKey | null): string {
  const q = pathAndQuery.indexOf('?');
  if (query === null || q < 0) return pathAndQuery;
  const path = pathAndQuery.slice(0, q);
  if (query.kind === 'none') return path;
  const params = pathAndQuery
    .slice(q + 1)
    .split('&')
    .filter((p) => p !== '')
    .map((p, i) => ({ p, name: decodeName(p.slice(0, p.indexOf('=') < 0 ? p.length : p.indexOf('='))), i }));
  const kept = query.kind === 'keep' ? params.filter((x) => query.names.has(x.name)) : query.kind === 'ignore' ? params.filter((x) => !query.names.has(x.name)) : params;
  kept.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.i - b.i));
  return kept.length === 0 ? path : `${path}?${kept.map((x) => x.p).join('&')}`;
}

function decodeName(raw: string): string {
  try {
    return decodeURIComponent(raw.replace(/\+/g, ' '));
  } catch {
    return raw;
  }
}
