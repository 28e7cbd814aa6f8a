/**
 * The reverse door's part of the request phases (src/pipeline/runner.ts): where a request goes — the
 * route (host + longest path prefix) to a pool — what the rules see of it (reverse.rules: method, path,
 * headers, client), and the route's own rate limit. Everything else is the shared pipeline's.
 */
import type { Pool } from '../balance/pool.js';
import { ProxyError } from '../core/errors.js';
import type { Timeouts } from '../core/messages.js';
import type { RequestGuard } from '../pipeline/admission.js';
import type { Door, Resolution } from '../pipeline/runner.js';
import type { Session } from '../pipeline/session.js';
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
}

export interface ReverseDoorOptions {
  readonly routes: RouteTable<ReverseRoute>;
  readonly admission: RequestGuard;
  readonly rules: RuleSet;
}

export class ReverseDoor implements Door<ReverseDestination> {
  readonly rules: RuleSet;
  readonly admission: RequestGuard;
  private readonly routes: RouteTable<ReverseRoute>;

  constructor(options: ReverseDoorOptions) {
    this.routes = options.routes;
    this.admission = options.admission;
    this.rules = options.rules;
  }

  admitClient(): null {
    return null;
  }

  resolve(session: Session): Resolution<ReverseDestination> {
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
    return { dest: { route: route.target, path, pathname, host, authorityFromTarget: host !== session.req.headers.host } };
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
