/**
 * A Redis tier's URL: what the config accepts, and how logs show it. Kept apart from the client
 * (redis-link.ts) so that checking a config never loads node-redis: it is loaded only by a process
 * whose config has a `cache.redis` (about 15 MB of RSS in each process otherwise).
 */

/**
 * Why `url` cannot be a Redis tier's URL, or null when it can: redis:// or rediss://, a host, a port
 * in range, and an optional database number (`/2`). For the config schema, so that a mistake is a
 * config error naming the key rather than a failure at start.
 */
export function redisUrlProblem(url: string): string | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'expected a URL like redis://host:6379 or rediss://user:password@host:6380/0';
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') return `expected redis:// or rediss://, got ${u.protocol}//`;
  if (u.hostname === '') return 'expected a host name or address';
  if (!/^(\/(\d+)?)?$/.test(u.pathname)) return `expected a database number after the host (/0), got ${u.pathname}`;
  if (u.search !== '' || u.hash !== '') return 'expected no query or fragment';
  return null;
}

/** The URL without its password, for logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return u.toString();
  } catch {
    return 'redis://(unparsable URL)';
  }
}
