/**
 * The reverse proxy's front door: route the request (host + path) to a pool, set the forwarding
 * headers, and hand it to the shared exchange (cache → pool → client). Also the WebSocket/Upgrade path.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Backend } from '../balance/backend.js';
import type { Pool } from '../balance/pool.js';
import type { BalanceRequest } from '../balance/types.js';
import { cacheKeyUrl } from '../cache/cache-key.js';
import type { CacheEngine, CacheReply } from '../cache/types.js';
import type { Logger } from '../log.js';
import type { CidrList } from '../policy/cidr-list.js';
import { normalizeAddress } from '../policy/cidr-list.js';
import { ProxyError } from '../proxy/errors.js';
import { exchange, logWhenDone, type ExchangeRecord } from '../proxy/exchange.js';
import { endToEndRequestHeaders, hasRequestBody } from '../proxy/hop-by-hop.js';
import { writeError } from '../proxy/reply.js';
import type { Timeouts } from '../proxy/upstream-request.js';
import { addForwardedHeaders } from './forwarded-headers.js';
import { fetchFromPool, type PoolRequest } from './pool-fetch.js';
import { RouteTable } from './routes.js';
import { tunnelUpgrade } from './upgrade-tunnel.js';

export interface ReverseRoute {
  readonly pool: Pool;
  readonly cache: boolean;
  readonly preserveHost: boolean;
  readonly timeouts: Timeouts;
}

export interface ReverseGatewayOptions {
  readonly routes: RouteTable<ReverseRoute>;
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
    const record: ExchangeRecord = {
      door: 'reverse',
      startedAt: performance.now(),
      clientAddress,
      upstream: undefined,
      cache: undefined,
      error: undefined,
    };
    logWhenDone(res, req, record, options.log, options.onDone);

    const target = originForm(req.url ?? '/');
    if (target === null) {
      record.error = 'bad_request';
      writeError(req, res, new ProxyError('bad_request', 'the request target is not a valid path'));
      return;
    }
    const host = target.host ?? req.headers.host;
    const route = options.routes.match(host, target.pathname);
    if (!route) {
      record.error = 'not_found';
      writeError(req, res, new ProxyError('not_found', `no route for ${host ?? '(no host)'}${target.pathname}`));
      return;
    }
    const { pool, preserveHost } = route.target;
    const headers = endToEndRequestHeaders(req.headers);
    if (!preserveHost) delete headers.host;
    else if (target.host) headers.host = target.host;
    addForwardedHeaders(headers, req.headers, clientAddress, scheme, options.trustedProxies);

    const balance: BalanceRequest = { clientAddress, headers: req.headers, url: target.path };
    let chosen: Backend | undefined;
    const poolRequest: PoolRequest = {
      pool,
      timeouts: route.target.timeouts,
      balance,
      method: req.method ?? 'GET',
      path: target.path,
      headers,
      body: hasRequestBody(req.headers) ? req : null,
      clientResponse: res,
      onBackend: (backend) => {
        chosen = backend;
        record.upstream = backend.url.origin;
      },
    };
    const cacheKey = options.cache !== null && route.target.cache && host ? cacheKeyUrl(scheme, host, target.path) : null;
    const decorate = pool.spec.sticky
      ? (_reply: CacheReply) => {
          const cookie = chosen ? pool.stickyCookie(balance, chosen) : undefined;
          return cookie ? ['Set-Cookie', cookie] : null;
        }
      : undefined;
    void exchange(req, res, record, options.cache, cacheKey, (overrides) => fetchFromPool(poolRequest, overrides), { decorate });
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
