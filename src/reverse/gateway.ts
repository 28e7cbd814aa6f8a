/**
 * The reverse proxy's front door: route the request (host + path) to a pool, set the forwarding
 * headers, and hand it to the shared exchange (cache → pool → client). Also the WebSocket/Upgrade path.
 */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Backend } from '../balance/backend.js';
import type { Pool } from '../balance/pool.js';
import { cacheKeyUrl } from '../cache/cache-key.js';
import type { CacheEngine, UpstreamOverrides, UpstreamResponse } from '../cache/types.js';
import type { Logger } from '../log.js';
import type { CidrList } from '../policy/cidr-list.js';
import type { RateLimiter } from '../policy/rate-limiter.js';
import type { RuleSet } from '../policy/rules.js';
import { normalizeAddress } from '../policy/cidr-list.js';
import { ProxyError } from '../proxy/errors.js';
import { exchange, logWhenDone, newExchangeRecord, NO_HOOKS, type ExchangeHooks, type ExchangeRecord } from '../proxy/exchange.js';
import { endToEndRequestHeaders } from '../proxy/hop-by-hop.js';
import { admitBody, rateLimited, requestBody, type RequestGuard } from '../proxy/request-guard.js';
import { writeError } from '../proxy/reply.js';
import type { Timeouts } from '../proxy/upstream-request.js';
import { addForwardedHeaders } from './forwarded-headers.js';
import { fetchFromPool, type PoolRequest } from './pool-fetch.js';
import { hostName, RouteTable } from './routes.js';
import { tunnelUpgrade } from './upgrade-tunnel.js';

export interface ReverseRoute {
  readonly pool: Pool;
  readonly cache: boolean;
  readonly preserveHost: boolean;
  readonly timeouts: Timeouts;
  /** Per-route rate limit on top of the front door's, or null. */
  readonly rateLimiter: RateLimiter | null;
  /** Per-route body limit (bytes, 0 = none) replacing the front door's. */
  readonly maxBodySize: number;
  /** Shown in 429 messages: `route /api/`. */
  readonly label: string;
}

export interface ReverseGatewayOptions {
  readonly routes: RouteTable<ReverseRoute>;
  /** Well-formedness, size limits and the door's rate limit. */
  readonly guard: RequestGuard;
  /** L7 filtering (reverse.rules): a deny verdict answers 403. */
  readonly rules: RuleSet;
  readonly trustedProxies: CidrList;
  readonly cache: CacheEngine | null;
  readonly log: Logger;
  readonly onDone?: (record: ExchangeRecord, status: number) => void;
}

export class ReverseGateway {
  constructor(private readonly options: ReverseGatewayOptions) {}

  handleRequest(req: IncomingMessage, res: ServerResponse, scheme: 'http' | 'https'): void {
    const { options } = this;
    const clientAddress = normalizeAddress(req.socket.remoteAddress);
    const record = newExchangeRecord('reverse', clientAddress);
    logWhenDone(res, req, record, options.log, options.onDone);

    const refused = options.guard.admit(req, clientAddress);
    if (refused) return fail(req, res, record, refused);
    const target = originForm(req.url ?? '/');
    if (target === null) return fail(req, res, record, new ProxyError('bad_request', 'the request target is not a valid path'));
    const host = target.host ?? req.headers.host;
    const route = options.routes.match(host, target.pathname);
    if (!route) return fail(req, res, record, new ProxyError('not_found', `no route for ${host ?? '(no host)'}${target.pathname}`));
    const denied = this.deniedByRule(req, clientAddress, host, target.path);
    if (denied) return fail(req, res, record, denied);
    const limiter = route.target.rateLimiter;
    const overRate = limiter && rateLimited(limiter, clientAddress, route.target.label);
    if (overRate) return fail(req, res, record, overRate);
    const tooBig = admitBody(req, res, route.target.maxBodySize);
    if (tooBig) return fail(req, res, record, tooBig);
    const cacheKey = options.cache !== null && route.target.cache && host ? cacheKeyUrl(scheme, host, target.path) : null;
    const upstream = new UpstreamCall(this, req, res, record, route.target, target, clientAddress, scheme);
    exchange(req, res, record, options.cache, cacheKey, upstream.fetch, upstream.hooks);
  }

  /** What goes to the backend: end-to-end headers, Host as configured, the forwarding headers. */
  outboundHeaders(req: IncomingMessage, route: ReverseRoute, target: RequestTarget, clientAddress: string, scheme: 'http' | 'https'): OutgoingHttpHeaders {
    const headers = endToEndRequestHeaders(req.headers);
    if (!route.preserveHost) delete headers.host;
    else if (target.host) headers.host = target.host;
    addForwardedHeaders(headers, req.headers, clientAddress, scheme, this.options.trustedProxies);
    return headers;
  }

  /** 403 when a reverse.rules entry denies the request. */
  private deniedByRule(req: IncomingMessage, clientAddress: string, host: string | undefined, path: string): ProxyError | null {
    const rules = this.options.rules;
    if (rules.size === 0) return null;
    const verdict = rules.evaluate({
      host: host ? hostName(host) : '',
      port: req.socket.localPort ?? 0,
      method: req.method ?? 'GET',
      clientAddress,
      userAgent: req.headers['user-agent'],
      user: undefined,
      path,
      headers: req.headers,
    });
    if (verdict === null || verdict.action === 'allow') return null;
    this.options.log.info({ door: 'reverse', client: clientAddress, method: req.method, url: req.url, rule: verdict.label }, 'blocked by policy');
    return new ProxyError('forbidden', `blocked by policy: rule ${verdict.label}`);
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, scheme: 'http' | 'https'): void {
    const { options } = this;
    const clientAddress = normalizeAddress(req.socket.remoteAddress);
    const target = originForm(req.url ?? '/');
    const route = target && options.routes.match(target.host ?? req.headers.host, target.pathname);
    if (!target || !route) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    const headers = endToEndRequestHeaders(req.headers);
    if (!route.target.preserveHost) delete headers.host;
    else if (target.host) headers.host = target.host;
    addForwardedHeaders(headers, req.headers, clientAddress, scheme, options.trustedProxies);
    headers.connection = 'upgrade';
    headers.upgrade = req.headers.upgrade;
    tunnelUpgrade({
      pool: route.target.pool,
      balance: { clientAddress, headers: req.headers, url: target.path },
      method: req.method ?? 'GET',
      path: target.path,
      headers,
      clientSocket: socket,
      head,
      timeouts: route.target.timeouts,
      log: options.log,
    });
  }
}

/**
 * One request's way to its pool, built only when the cache needs the upstream (a hit never pays for
 * the outbound headers or the balancing input). Remembers the backend that answered, for the sticky
 * cookie and the log.
 */
class UpstreamCall {
  private request: PoolRequest | undefined;
  private chosen: Backend | undefined;
  readonly hooks: ExchangeHooks;

  constructor(
    private readonly gateway: ReverseGateway,
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly record: ExchangeRecord,
    private readonly route: ReverseRoute,
    private readonly target: RequestTarget,
    private readonly clientAddress: string,
    private readonly scheme: 'http' | 'https',
  ) {
    this.hooks = route.pool.spec.sticky ? { decorate: () => this.stickyCookie() } : NO_HOOKS;
  }

  readonly fetch = (overrides: UpstreamOverrides | null): Promise<UpstreamResponse> => {
    this.request ??= this.poolRequest();
    return fetchFromPool(this.request, overrides);
  };

  private poolRequest(): PoolRequest {
    const { req, res, route, target } = this;
    return {
      pool: route.pool,
      timeouts: route.timeouts,
      balance: { clientAddress: this.clientAddress, headers: req.headers, url: target.path },
      method: req.method ?? 'GET',
      path: target.path,
      headers: this.gateway.outboundHeaders(req, route, target, this.clientAddress, this.scheme),
      body: requestBody(req, res, route.maxBodySize),
      clientResponse: res,
      onBackend: (backend) => {
        this.chosen = backend;
        this.record.upstream = backend.url.origin;
      },
    };
  }

  private stickyCookie(): readonly string[] | null {
    const cookie = this.chosen && this.request ? this.route.pool.stickyCookie(this.request.balance, this.chosen) : undefined;
    return cookie ? ['Set-Cookie', cookie] : null;
  }
}

function fail(req: IncomingMessage, res: ServerResponse, record: ExchangeRecord, error: ProxyError): void {
  record.error = error.code;
  writeError(req, res, error);
}

interface RequestTarget {
  /** Path and query, origin-form. */
  readonly path: string;
  readonly pathname: string;
  /** Authority from an absolute-form target (which overrides Host, RFC 9112 §3.2.2). */
  readonly host: string | undefined;
}

/** Accepts origin-form (`/a?b`) and absolute-form (`http://h/a?b`) targets. */
function originForm(url: string): RequestTarget | null {
  if (url.charCodeAt(0) === 47 /* / */) {
    const q = url.indexOf('?');
    return { path: url, pathname: q < 0 ? url : url.slice(0, q), host: undefined };
  }
  if (!/^https?:\/\//i.test(url)) return null;
  try {
    const parsed = new URL(url);
    return { path: parsed.pathname + parsed.search, pathname: parsed.pathname, host: parsed.host };
  } catch {
    return null;
  }
}
