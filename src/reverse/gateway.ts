/**
 * The reverse proxy's entry points: plain HTTP requests and Upgrade (WebSocket) requests, both run
 * through the shared request phases with the reverse door (reverse-door.ts). What proxying means is
 * what this file adds: for HTTP, the forwarding headers and the exchange through the cache with the
 * pool (pool-fetch.ts); for an Upgrade, a tunnel to a backend of the pool (upgrade-tunnel.ts).
 */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Backend } from '../balance/backend.js';
import { cacheKeyUrl, keyedPath } from '../cache/cache-key.js';
import { NO_RULES } from '../cache/cache-rule.js';
import type { CacheEngine } from '../cache/types.js';
import { ProxyError } from '../core/errors.js';
import { endToEndRequestHeaders } from '../core/hop-by-hop.js';
import type { Reply, UpstreamOverrides, UpstreamResponse } from '../core/messages.js';
import { admitBody, refuseUnreadable, requestBody } from '../pipeline/admission.js';
import type { DoorCacheRules } from '../pipeline/cache-rules.js';
import { exchange, NO_HOOKS, type ExchangeHooks } from '../pipeline/http-exchange.js';
import { runPhases } from '../pipeline/runner.js';
import { HttpSession, SocketSession, type Session, type SessionSink } from '../pipeline/session.js';
import type { CidrList } from '../policy/cidr-list.js';
import { normalizeAddress } from '../policy/cidr-list.js';
import { addForwardedHeaders } from './forwarded-headers.js';
import { fetchFromPool, type PoolRequest } from './pool-fetch.js';
import { answerPurge, type PurgeStored } from './purge.js';
import { REVERSE_METHODS, type ReverseDestination, type ReverseDoor } from './reverse-door.js';
import { tunnelUpgrade } from './upgrade-tunnel.js';

export interface ReverseGatewayOptions {
  readonly door: ReverseDoor;
  readonly trustedProxies: CidrList;
  readonly cache: CacheEngine | null;
  /** The operator's cache rules for this door. */
  readonly cacheRules: DoorCacheRules;
  /** What a PURGE calls (null without a reverse cache). */
  readonly purge: PurgeStored | null;
  readonly sink: SessionSink;
}

export class ReverseGateway {
  readonly door: ReverseDoor;
  private readonly trustedProxies: CidrList;
  private readonly cache: CacheEngine | null;
  private readonly cacheRules: DoorCacheRules;
  private readonly purge: PurgeStored | null;
  private readonly sink: SessionSink;

  constructor(options: ReverseGatewayOptions) {
    this.door = options.door;
    this.trustedProxies = options.trustedProxies;
    this.cache = options.cache;
    this.cacheRules = options.cacheRules;
    this.purge = options.purge;
    this.sink = options.sink;
  }

  handleRequest(req: IncomingMessage, res: ServerResponse, scheme: 'http' | 'https'): void {
    const session = new HttpSession('reverse', req, res, normalizeAddress(req.socket.remoteAddress), scheme, this.sink);
    runPhases(session, this.door, this.proxyHttp);
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, scheme: 'http' | 'https'): void {
    const session = new SocketSession('reverse', 'upgrade', req, socket, head, normalizeAddress(req.socket.remoteAddress), scheme, this.sink);
    runPhases(session, this.door, this.proxyUpgrade);
  }

  /** A CONNECT sent to the reverse proxy: refused, and logged like every other request. */
  handleConnect(req: IncomingMessage, socket: Duplex, head: Buffer, scheme: 'http' | 'https'): void {
    const session = new SocketSession('reverse', 'connect', req, socket, head, normalizeAddress(req.socket.remoteAddress), scheme, this.sink);
    session.refuse(new ProxyError('method_not_allowed', 'this is a reverse proxy, not a forward proxy', { headers: { allow: REVERSE_METHODS } }));
  }

  /** A request Node's parser could not read: refused and logged like every other. */
  handleUnreadable(err: NodeJS.ErrnoException, socket: Socket, scheme: 'http' | 'https'): void {
    refuseUnreadable('reverse', err, socket, scheme, this.sink);
  }

  private readonly proxyHttp = (session: HttpSession, dest: ReverseDestination): void => {
    if (dest.purge) {
      answerPurge(session, dest, this.purge);
      return;
    }
    const route = dest.route;
    const tooBig = admitBody(session, route.maxBodySize);
    if (tooBig !== null) {
      session.refuse(tooBig);
      return;
    }
    const cached = this.cache !== null && route.cache && dest.host !== undefined;
    const rules = cached && this.cacheRules.size > 0 ? this.cacheRules.match(this.door.ruleRequest(session, dest)) : NO_RULES;
    const cacheKey = cached ? cacheKeyUrl(session.scheme, dest.host!, keyedPath(dest.path, rules[0]?.query ?? null)) : null;
    const upstream = new UpstreamCall(this, session, dest);
    exchange(session, this.cache, cacheKey, upstream.fetch, upstream.hooks, rules);
  };

  private readonly proxyUpgrade = (session: SocketSession, dest: ReverseDestination): void => {
    const headers = this.outboundHeaders(session, dest);
    headers.connection = 'upgrade';
    headers.upgrade = session.req.headers.upgrade;
    tunnelUpgrade(session, {
      pool: dest.route.pool,
      balance: { clientAddress: session.clientAddress, headers: session.req.headers, url: dest.path },
      path: dest.path,
      headers,
      timeouts: dest.route.timeouts,
    });
  };

  /** What goes to the backend: end-to-end headers, Host as configured, the forwarding headers. */
  outboundHeaders(session: Session, dest: ReverseDestination): OutgoingHttpHeaders {
    const incoming = session.req.headers;
    const headers = endToEndRequestHeaders(incoming);
    if (!dest.route.preserveHost) delete headers.host;
    else if (dest.authorityFromTarget && dest.host) headers.host = dest.host;
    addForwardedHeaders(headers, incoming, session.clientAddress, session.scheme, this.trustedProxies);
    return headers;
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
    private readonly session: HttpSession,
    private readonly dest: ReverseDestination,
  ) {
    this.hooks = dest.route.pool.spec.sticky ? { decorate: (reply) => this.stickyCookie(reply) } : NO_HOOKS;
  }

  readonly fetch = (overrides: UpstreamOverrides | null): Promise<UpstreamResponse> => {
    this.request ??= this.poolRequest();
    return fetchFromPool(this.request, overrides);
  };

  private poolRequest(): PoolRequest {
    const { session, dest } = this;
    const route = dest.route;
    return {
      pool: route.pool,
      timeouts: route.timeouts,
      balance: { clientAddress: session.clientAddress, headers: session.req.headers, url: dest.path },
      method: session.method,
      path: dest.path,
      headers: this.gateway.outboundHeaders(session, dest),
      body: requestBody(session, route.maxBodySize),
      clientResponse: session.res,
      onBackend: (backend) => {
        this.chosen = backend;
        session.upstream = backend.url.origin;
      },
    };
  }

  private stickyCookie(_reply: Reply): readonly string[] | null {
    const cookie = this.chosen && this.request ? this.dest.route.pool.stickyCookie(this.request.balance, this.chosen) : undefined;
    return cookie ? ['Set-Cookie', cookie] : null;
  }
}
