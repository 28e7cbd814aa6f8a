/**
 * One HTTP exchange with an upstream (a backend, an origin, or an upstream proxy): sends the request,
 * streams the body once the connection is up, enforces connect / response-header / idle timeouts, and
 * resolves with the response (hop-by-hop headers removed) or rejects with a ProxyError that says
 * whether the request may safely be tried elsewhere.
 */
import { request as httpRequest, type Agent, type ClientRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import type { UpstreamOverrides, UpstreamResponse } from '../cache/types.js';
import { ProxyError, upstreamError } from './errors.js';
import { endToEndRawHeaders, headersFromRaw } from './hop-by-hop.js';

export interface Timeouts {
  readonly connectMs: number;
  readonly responseHeaderMs: number;
  /** Longest silence while the response body streams. */
  readonly idleMs: number;
}

export interface UpstreamTarget {
  readonly protocol: 'http:' | 'https:';
  readonly hostname: string;
  readonly port: number;
  readonly agent: Agent;
  /** Shown in logs and errors: the backend URL or origin. */
  readonly label: string;
}

export interface OutboundRequest {
  readonly method: string;
  /** origin-form (`/path?q`), or absolute-form when talking to an upstream proxy. */
  readonly path: string;
  readonly headers: OutgoingHttpHeaders;
  /** The client's body stream, or null when the request has none. */
  readonly body: Readable | null;
}

/**
 * The `timeout` for keep-alive agents: how long an idle pooled upstream connection is kept. Without it
 * Node keeps idle sockets until the server closes them, and ignores the server's `Keep-Alive: timeout=N`
 * hint: a request can then be written to a connection the server is closing at that very moment
 * (ECONNRESET: a 502, or a retry and a passive-health failure the backend did not earn). With it, the
 * proxy closes idle connections first: after this long, or a second before the server's announced
 * timeout when that is shorter.
 */
export const UPSTREAM_IDLE_KEEPALIVE_MS = 4_000;

/** Methods whose request may be sent twice (RFC 9110 §9.2.2): a failed one may be tried again. */
export const IDEMPOTENT: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

/** Sends `out` to `target`. `onRequest` receives the ClientRequest so the caller can abort it. */
export function sendUpstream(
  target: UpstreamTarget,
  out: OutboundRequest,
  timeouts: Timeouts,
  onRequest?: (req: ClientRequest) => void,
): Promise<UpstreamResponse> {
  return new Promise<UpstreamResponse>((resolve, reject) => {
    const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = send({
      host: target.hostname,
      port: target.port,
      method: out.method,
      path: out.path,
      headers: out.headers,
      agent: target.agent,
      servername: target.protocol === 'https:' && !isIpLiteral(target.hostname) ? target.hostname : undefined,
    });
    let connected = false;
    let bodyStarted = false;
    let settled = false;
    let timer: NodeJS.Timeout | undefined;

    const fail = (err: unknown) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const base = upstreamError(err, target.label);
      // Nothing reached the upstream when the connection never came up; an idempotent request whose
      // body (if any) was never read from the client can be replayed too.
      const safe = !connected || (IDEMPOTENT.has(out.method) && (out.body === null || !bodyStarted));
      reject(safe === base.retryable ? base : new ProxyError(base.code, base.message, { retryable: safe, cause: base.cause }));
      req.destroy();
    };

    const startBody = () => {
      connected = true;
      clearTimeout(timer);
      timer = setTimeout(
        () => fail(new ProxyError('response_timeout', `${target.label} did not respond within ${timeouts.responseHeaderMs} ms`)),
        timeouts.responseHeaderMs,
      );
      if (out.body === null) {
        req.end();
      } else {
        bodyStarted = true;
        const body = out.body;
        // A client body that breaks off (client gone, body over the limit) cancels the upstream request.
        body.once('error', (err) => req.destroy(err));
        body.once('close', () => {
          if (!body.readableEnded) req.destroy();
        });
        body.pipe(req);
      }
    };

    req.on('socket', (socket: Socket) => {
      if (socket.connecting) {
        timer = setTimeout(
          () => fail(new ProxyError('connection_timeout', `${target.label} did not accept the connection within ${timeouts.connectMs} ms`, { retryable: true })),
          timeouts.connectMs,
        );
        socket.once(target.protocol === 'https:' ? 'secureConnect' : 'connect', startBody);
      } else {
        startBody();
      }
    });
    req.on('error', fail);
    req.on('response', (res: IncomingMessage) => {
      if (settled) {
        res.destroy();
        return;
      }
      const framing = framingProblem(res.rawHeaders);
      if (framing !== null) {
        // Node has already refused Content-Length with Transfer-Encoding and differing Content-Lengths.
        res.destroy();
        fail(new ProxyError('bad_response', `${target.label} sent ${framing}`));
        return;
      }
      settled = true;
      clearTimeout(timer);
      if (timeouts.idleMs > 0) watchIdle(res, timeouts.idleMs, target.label);
      const rawHeaders = endToEndRawHeaders(res.rawHeaders);
      resolve({
        status: res.statusCode ?? 502,
        statusMessage: res.statusMessage ?? '',
        rawHeaders,
        headers: headersFromRaw(rawHeaders),
        body: res,
        upstreamLabel: target.label,
      });
    });
    onRequest?.(req);
  });
}

/**
 * Fails the body when the upstream goes quiet for `idleMs`; the socket is left clean for keep-alive reuse.
 * The idle timeout is cleared just before Node hands the socket back to the agent on 'end' (a listener
 * put first): the agent then sets the free socket's own timeout (the server's Keep-Alive hint, minus a
 * second), which clearing it later, on 'close', would undo — leaving pooled sockets to outlive the
 * server's keep-alive timeout and be reused just as the server closes them (ECONNRESET).
 */
function watchIdle(res: IncomingMessage, idleMs: number, label: string): void {
  const socket = res.socket;
  const onIdle = () => res.destroy(new ProxyError('response_timeout', `${label} stalled for ${idleMs} ms while sending the body`));
  socket.setTimeout(idleMs);
  socket.on('timeout', onIdle);
  res.prependOnceListener('end', () => {
    socket.off('timeout', onIdle);
    socket.setTimeout(0);
  });
  // Broken off: the socket is destroyed with the response.
  res.once('close', () => socket.off('timeout', onIdle));
}

/** The door's outbound headers with the cache's changes applied (a copy; the base is not touched). */
export function withOverrides(base: OutgoingHttpHeaders, overrides: UpstreamOverrides | null): OutgoingHttpHeaders {
  const changes = overrides?.headers;
  if (!changes) return base;
  const out: OutgoingHttpHeaders = { ...base };
  for (const name in changes) {
    const value = changes[name];
    if (value === null || value === undefined) delete out[name];
    else out[name] = value;
  }
  return out;
}

/**
 * Response framing that Node's parser accepts but a proxy must not relay (as nginx refuses it): a
 * Transfer-Encoding other than one plain `chunked`. Node decodes only `chunked`, so any other coding would
 * reach the client undecoded with its Transfer-Encoding header (hop-by-hop) removed, and a repeated or
 * non-final `chunked` means the body can be delimited in more than one way.
 */
function framingProblem(raw: readonly string[]): string | null {
  let codings: string | null = null;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length !== 17 || name.toLowerCase() !== 'transfer-encoding') continue;
    if (codings !== null) return 'more than one Transfer-Encoding header';
    codings = raw[i + 1]!;
  }
  if (codings === null || codings.trim().toLowerCase() === 'chunked') return null;
  return `an unsupported Transfer-Encoding "${codings.slice(0, 64)}"`;
}

function isIpLiteral(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(':');
}
