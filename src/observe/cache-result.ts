/**
 * The one-word cache result of a response (access log `cache`, /metrics `cache` label, the
 * dashboard's "cache results"), read from the `Cache-Status` member Portico put on it (RFC 9211), so
 * the log and the header never disagree:
 *
 * | word          | Cache-Status                                                        |
 * |---------------|---------------------------------------------------------------------|
 * | `hit`         | `hit` (fresh), or `fwd=…; collapsed` (shared another request's fetch) |
 * | `stale`       | stale content served: `detail=stale-while-revalidate` / `stale-if-error`, or a hit with a negative `ttl` (the client's `max-stale`) |
 * | `revalidated` | `fwd=stale` or `fwd=request` with `fwd-status=304`: the origin said the stored copy is good |
 * | `miss`        | `fwd=uri-miss`, `vary-miss`, `miss`, `stale` (replaced), `partial`  |
 * | `bypass`      | `fwd=request` (the client's no-cache/no-store), `fwd=method` (POST, …), `fwd=bypass` |
 * | `local`       | no Cache-Status: answered by Portico itself (PAC file, OPTIONS with Max-Forwards: 0) |
 * | `none`        | no Cache-Status: the cache was off for it, or the request failed or was refused first |
 */
import { CACHE_NAME } from '../cache/cache-status.js';

const CACHE_WORDS = ['hit', 'stale', 'revalidated', 'miss', 'bypass', 'local', 'none'] as const;
export type CacheWord = (typeof CACHE_WORDS)[number];

const OUR_MEMBER = `${CACHE_NAME};`;

/** The cache word for a reply with these raw headers; `fallback` when it carries no Cache-Status of ours. */
export function cacheResultOf(rawHeaders: readonly string[], fallback: string | undefined): string | undefined {
  // Cache-Status is appended last by the cache: look from the end.
  for (let i = rawHeaders.length - 2; i >= 0; i -= 2) {
    const name = rawHeaders[i]!;
    if (name.length !== 12 || name.toLowerCase() !== 'cache-status') continue;
    const value = rawHeaders[i + 1]!;
    const at = value.lastIndexOf(OUR_MEMBER);
    if (at < 0 || (at > 0 && value[at - 1] !== ' ' && value[at - 1] !== ',')) continue;
    return cacheWordOf(value.slice(at + OUR_MEMBER.length));
  }
  return fallback;
}

/**
 * Maps the parameters of our member (`hit; ttl=5`, `fwd=stale; fwd-status=304`, …) to a word. Read
 * in place, once per request: a hit's `hit; ttl=N` allocates nothing.
 */
function cacheWordOf(params: string): CacheWord {
  let hit = false;
  let collapsed = false;
  let negativeTtl = false;
  let fwd = '';
  let fwdStatus = '';
  let detail = '';
  for (let start = 0; start < params.length; ) {
    let end = params.indexOf(';', start);
    if (end < 0) end = params.length;
    let a = start;
    let b = end;
    start = end + 1;
    while (a < b && params.charCodeAt(a) <= 32) a++;
    while (b > a && params.charCodeAt(b - 1) <= 32) b--;
    const eq = params.indexOf('=', a);
    const keyEnd = eq < 0 || eq > b ? b : eq;
    const keyIs = (name: string) => keyEnd - a === name.length && params.startsWith(name, a);
    if (keyIs('hit')) hit = true;
    else if (keyIs('collapsed')) collapsed = true;
    else if (keyEnd < b) {
      let v0 = keyEnd + 1;
      let v1 = b;
      if (params.charCodeAt(v0) === 34 && params.charCodeAt(v1 - 1) === 34 && v1 - v0 >= 2) {
        v0++;
        v1--;
      }
      if (keyIs('ttl')) negativeTtl = params.charCodeAt(v0) === 45; // '-'
      else if (keyIs('fwd')) fwd = params.slice(v0, v1);
      else if (keyIs('fwd-status')) fwdStatus = params.slice(v0, v1);
      else if (keyIs('detail')) detail = params.slice(v0, v1);
    }
  }
  if (detail === 'stale-while-revalidate' || detail === 'stale-if-error') return 'stale';
  // A negative ttl: stale content the client allowed (max-stale).
  if (hit || collapsed) return negativeTtl ? 'stale' : 'hit';
  if (fwdStatus === '304' && (fwd === 'stale' || fwd === 'request')) return 'revalidated';
  if (fwd === 'request' || fwd === 'method' || fwd === 'bypass') return 'bypass';
  return 'miss';
}
