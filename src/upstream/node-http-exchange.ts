/**
 * One HTTP exchange with an upstream (a backend, an origin, or an upstream proxy): sends the request,
 * streams the body once the connection is up, enforces connect / response-header / idle timeouts, and
 * resolves with the response (hop-by-hop headers removed) or rejects with a ProxyError that says
 * whether the request may safely be tried elsewhere.
 */
import { request as httpRequest, type Agent, type ClientRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import { ProxyError, upstreamError } from '../core/errors.js';
import { endToEndRawHeaders, headersFromRaw } from '../core/hop-by-hop.js';
import { framingProblemOf, relayableReason, statusProblem } from './response-head.js';
import { IDEMPOTENT, type OutboundRequest, type Timeouts, type UpstreamOverrides, type UpstreamResponse } from '../core/messages.js';

export interface UpstreamTarget {
  readonly protocol: 'http:' | 'https:';
  readonly hostname: string;
  readonly port: number;
  readonly agent: Agent;
  /** Shown in logs and errors: the backend URL or origin. */
  readonly label: string;
}



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
      // The body's errors are owned here: whoever reads it listens too; one nobody reads cannot crash.
      res.on('error', ignore);
      const framing = res.httpVersionMajor !== 1 ? 'a status line that is not HTTP/1.x' : (statusProblem(res.statusCode ?? 0, res.statusMessage ?? '') ?? framingProblemOf(res.rawHeaders));
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
        statusMessage: relayableReason(res.statusMessage ?? ''),
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

function isIpLiteral(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(':');
}

function ignore(): void {}
