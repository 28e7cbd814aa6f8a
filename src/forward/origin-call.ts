/**
 * One relayed request's way to its origin, built only when the cache needs the upstream, so that a
 * cache hit never pays for the outbound headers: the end-to-end headers with Host and Max-Forwards
 * set and the header policy applied, the body within the size limit, and the origin request bounded
 * by the forward proxy's timeouts: straight to the origin over undici, or through the upstream proxy.
 */
import type { ClientRequest } from 'node:http';
import type { HeaderPolicy } from '../policy/header-policy.js';
import { ProxyError } from '../core/errors.js';
import { endToEndRequestHeaders } from '../core/hop-by-hop.js';
import { requestBody } from '../pipeline/admission.js';
import type { HttpSession } from '../pipeline/session.js';
import { sendWithUndici } from '../upstream/undici-exchange.js';
import { sendUpstream, withOverrides } from '../upstream/node-http-exchange.js';
import type { OriginConnector, OriginTarget } from './origin-connector.js';
import type { AbsoluteTarget } from './request-target.js';
import type { UpstreamOverrides, UpstreamResponse, OutboundRequest, Timeouts } from '../core/messages.js';

/** What every relayed request of one forward proxy shares. */
export interface OriginCallSettings {
  readonly connector: OriginConnector;
  readonly headerPolicy: HeaderPolicy;
  readonly timeouts: Timeouts;
  /** Largest request body in bytes; 0 means no limit. */
  readonly maxBodySize: number;
}

export class OriginCall {
  private outbound: OutboundRequest | undefined;

  constructor(
    private readonly settings: OriginCallSettings,
    private readonly session: HttpSession,
    private readonly target: AbsoluteTarget,
    private readonly upstream: OriginTarget,
    /** The request's Max-Forwards (OPTIONS and TRACE only), or -1 to relay the field unchanged. */
    private readonly maxForwards: number,
  ) {}

  readonly fetch = (overrides: UpstreamOverrides | null): Promise<UpstreamResponse> => {
    const outbound = (this.outbound ??= this.outboundRequest());
    const out =
      overrides === null
        ? outbound
        : { method: overrides.method ?? outbound.method, path: outbound.path, headers: withOverrides(outbound.headers, overrides), body: outbound.body };
    const { upstream, settings } = this;
    if (upstream.direct) return sendWithUndici(settings.connector.directDispatcher(), upstream.route, out, settings.timeouts, this.session.res);
    return sendUpstream(upstream.target, out, settings.timeouts, (request) => this.watch(request));
  };

  private outboundRequest(): OutboundRequest {
    const { session, target } = this;
    const req = session.req;
    const headers = endToEndRequestHeaders(req.headers);
    headers.host = target.authority;
    if (this.maxForwards > 0) headers['max-forwards'] = String(this.maxForwards - 1);
    this.settings.headerPolicy.apply(headers, { clientAddress: session.clientAddress, targetOrigin: target.origin, httpVersion: req.httpVersion });
    return { method: session.method, path: target.path, headers, body: requestBody(session, this.settings.maxBodySize) };
  }

  /**
   * Through an upstream proxy: aborts the request when the client goes away, and bounds the wait for
   * the proxy agent's socket (handed out only once the upstream proxy is reached).
   */
  private watch(request: ClientRequest): void {
    const { upstream } = this;
    const res = this.session.res;
    res.once('close', () => {
      if (!res.writableFinished) request.destroy();
    });
    if (!request.socket) {
      const connectMs = this.settings.timeouts.connectMs;
      const timer = setTimeout(() => {
        request.destroy(new ProxyError('connection_timeout', `${upstream.label}: no connection within ${connectMs} ms`, { retryable: true }));
      }, connectMs);
      request.once('socket', () => clearTimeout(timer));
      request.once('close', () => clearTimeout(timer));
    }
  }
}
