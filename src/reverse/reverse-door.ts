/**
 * The reverse door's part of the request phases (src/pipeline/runner.ts): where a request goes — the
 * route (host + longest path prefix) to a pool — what the rules see of it (reverse.rules: method, path,
 * headers, client), and the route's own rate limit. Everything else is the shared pipeline's.
 *
 * A PURGE is checked here too (phase 3, before the route: 405 unless reverse.purge is configured, 403
 * from a client it does not list); it then meets the rules and the rate limit like any request, and
 * its proxy step drops the URL's cache entries instead of reaching a backend (purge.ts).
 */
import type { Pool } from '../balance/pool.js';
import { ProxyError } from '../core/errors.js';
import type { Timeouts } from '../core/messages.js';
import type { RequestGuard } from '../pipeline/admission.js';
import type { Door, Resolution } from '../pipeline/runner.js';
import type { Session } from '../pipeline/session.js';
import type { CidrList } from '../policy/cidr-list.js';
import type { RateLimiter } from '../policy/rate-limiter.js';
import type { RuleRequest, RuleSet } from '../policy/rules.js';
import { hostName, type RouteTable } from './routes.js';

export interface ReverseRoute {
  readonly pool: Pool;
  readonly cache: boolean;
  readonly preserveHost: boolean;
  readonly timeouts: Timeouts;
  /** Per-route rate limit on top of the front door's, or null. */
  readonly rateLimiter: RateLimiter | null;
  /** Per-route body limit (bytes, 0 = none) replacing the front door's. */
  readonly maxBodySize: number;
  /** Shown in 429 messages: `reverse.routes[0] (/api/)`. */
  readonly label: string;
}

/** Where a reverse request goes. */
export interface ReverseDestination {
  readonly route: ReverseRoute;
  /** Path and query, origin-form. */
  readonly path: string;
  readonly pathname: string;
  /** The host the client asked for: from an absolute-form target (RFC 9112 §3.2.2), else Host. */
  readonly host: string | undefined;
  /** Set when the authority came from an absolute-form target: it replaces Host upstream. */
  readonly authorityFromTarget: boolean;
  /** A PURGE from an allowed client: proxying it means dropping the URL's cache entries (src/reverse/purge.ts). */
  readonly purge: boolean;
}

/** The methods the reverse door names in Allow when it refuses one. */
export const REVERSE_METHODS = 'GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS';

export interface ReverseDoorOptions {
  readonly routes: RouteTable<ReverseRoute>;
  readonly admission: RequestGuard;
  readonly rules: RuleSet;
  /** Who may PURGE (reverse.purge.clients); null: nobody, and PURGE is refused as an unknown method. */
  readonly purgeClients: CidrList | null;
}

export class ReverseDoor implements Door<ReverseDestination> {
  readonly rules: RuleSet;
  readonly admission: RequestGuard;
  private readonly routes: RouteTable<ReverseRoute>;
  private readonly purgeClients: CidrList | null;

  constructor(options: ReverseDoorOptions) {
    this.routes = options.routes;
    this.purgeClients = options.purgeClients;
    this.admission = options.admission;
    this.rules = options.rules;
  }

  admitClient(): null {
    return null;
  }

  resolve(session: Session): Resolution<ReverseDestination> {
    const purge = session.method === 'PURGE';
    if (purge) {
      const refused = this.purgeRefusal(session);
      if (refused !== null) return refused;
    }
    const url = session.url || '/';
    let path: string;
    let pathname: string;
    let host: string | undefined;
    if (url.charCodeAt(0) === 47 /* / */) {
      const q = url.indexOf('?');
      path = url;
      pathname = q < 0 ? url : url.slice(0, q);
      host = session.req.headers.host;
    } else {
      const parsed = absoluteTarget(url);
      if (parsed === null) return new ProxyError('bad_request', 'the request target is not a valid path');
      path = parsed.pathname + parsed.search;
      pathname = parsed.pathname;
      host = parsed.host;
    }
    const route = this.routes.match(host, pathname);
    if (route === undefined) return new ProxyError('not_found', `no route for ${host ?? '(no host)'}${pathname}`);
    return { dest: { route: route.target, path, pathname, host, authorityFromTarget: host !== session.req.headers.host, purge } };
  }

  /**
   * The door's own check of a PURGE, before the route is looked up: 405 (as for a method it does not
   * know) unless reverse.purge is configured, 403 from a client it does not list. The client is the
   * connection's peer address: a forwarded-for header never grants it.
   */
  private purgeRefusal(session: Session): ProxyError | null {
    if (this.purgeClients === null) return new ProxyError('method_not_allowed', 'PURGE is not allowed here', { headers: { allow: REVERSE_METHODS } });
    if (session.kind !== 'http') return new ProxyError('bad_request', 'a PURGE cannot upgrade the connection');
    if (this.purgeClients.has(session.clientAddress)) return null;
    return new ProxyError('forbidden', `${session.clientAddress || 'this client'} may not PURGE here (see reverse.purge.clients)`);
  }

  ruleRequest(session: Session, dest: ReverseDestination): RuleRequest {
    const headers = session.req.headers;
    return {
      host: dest.host ? hostName(dest.host) : '',
      port: session.req.socket.localPort ?? 0,
      method: session.method,
      clientAddress: session.clientAddress,
      userAgent: headers['user-agent'],
      user: undefined,
      path: dest.path,
      headers,
    };
  }

  blockedTarget(_session: Session, dest: ReverseDestination): string {
    return `${dest.host ?? ''}${dest.path}`;
  }

  limitOf(dest: ReverseDestination): { limiter: RateLimiter; label: string } | null {
    const limiter = dest.route.rateLimiter;
    return limiter === null ? null : { limiter, label: dest.route.label };
  }
}

/** An absolute-form target (`http://h/a?b`), or null. */
function absoluteTarget(url: string): URL | null {
  if (!/^https?:\/\//i.test(url)) return null;
  try {
    return new URL(url);
  } catch {
    return null;
  }
}
