/**
 * The reverse door's PURGE (as Varnish and Squid offer it): `PURGE /path HTTP/1.1` with the site's Host
 * drops every stored variant of that URL from the reverse cache — in every worker, the shared tier and
 * every other instance — and answers 200 with how many went, or 404 when nothing was stored.
 *
 * It runs the request phases like every request (admission, the door's own check of who may PURGE —
 * reverse-door.ts —, the route, reverse.rules, the route's rate limit) and is logged like one; this is
 * its proxy step, which never reaches a backend. The key is the site's URL under both schemes: the
 * http:// and https:// listeners serve one site, and a purge sent to either drops both.
 */
import { cacheKeyUrl } from '../cache/cache-key.js';
import { asProxyError, ProxyError } from '../core/errors.js';
import { discard } from '../core/streams.js';
import type { Page } from '../pipeline/pages.js';
import type { HttpSession } from '../pipeline/session.js';
import type { ReverseDestination } from './reverse-door.js';

/** Drops every variant of a URL (a cache key) wherever it is stored; resolves to how many went. */
export type PurgeStored = (url: string) => Promise<number>;

export function answerPurge(session: HttpSession, dest: ReverseDestination, purge: PurgeStored | null): void {
  discard(session.req);
  const host = dest.host;
  if (!host) {
    session.refuse(new ProxyError('bad_request', 'PURGE needs a Host header: the cache key includes the host'));
    return;
  }
  const url = cacheKeyUrl(session.scheme, host, dest.path);
  // The same site under the other scheme: the authority without this scheme's default port (a Host of
  // site:80 on the http listener is https://site/ there, not https://site:80/).
  const other = `${session.scheme === 'http' ? 'https' : 'http'}${url.slice(url.indexOf('://'))}`;
  session.cache = 'local';
  if (purge === null) {
    session.respond(purgePage(0, url, session.req.headers.accept, 'the cache is off'));
    return;
  }
  Promise.all([purge(url), purge(other)]).then(
    ([a, b]) => {
      const purged = a + b;
      session.log.info({ door: 'reverse', url, client: session.clientAddress, purged }, 'cache purged by PURGE');
      session.respond(purgePage(purged, url, session.req.headers.accept));
    },
    (err: unknown) => session.refuse(asProxyError(err)),
  );
}

/** 200 with the count, or 404 when nothing was stored; JSON for clients that ask for it, else text. */
function purgePage(purged: number, url: string, accept: string | undefined, why?: string): Page {
  const status = purged > 0 ? 200 : 404;
  const json = accept !== undefined && accept.includes('application/json');
  const text = purged > 0 ? `Purged ${purged} ${purged === 1 ? 'entry' : 'entries'} for ${url}` : `Nothing stored for ${url}${why ? ` (${why})` : ''}`;
  return {
    status,
    title: status === 200 ? 'OK' : 'Not Found',
    headers: { 'content-type': json ? 'application/json' : 'text/plain; charset=utf-8', 'cache-control': 'no-store' },
    body: json ? `${JSON.stringify({ purged, url })}\n` : `${status} ${status === 200 ? 'OK' : 'Not Found'}: ${text}.\n`,
  };
}
