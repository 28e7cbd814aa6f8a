/**
 * Admission: the first phase every request passes, at both doors and every entry point. Checks what
 * Node's parser lets through but a proxy must not relay — framing that a backend could read differently
 * (request smuggling), versions other than HTTP/1.x, duplicate Host — the configured size limits, and
 * the door's rate limit. Also the request body's own limits, checked once the request is going upstream,
 * and the requests Node's parser itself refused (refuseUnreadable), which are answered and logged too.
 */
import { Transform, type Readable } from 'node:stream';
import { RateLimiter, type RateLimitSpec } from '../policy/rate-limiter.js';
import { ProxyError } from '../core/errors.js';
import { hasRequestBody } from '../core/hop-by-hop.js';
import type { Socket } from 'node:net';
import { UnreadableSession, type FrontDoor, type HttpSession, type RequestHead, type SessionSink } from './session.js';

export interface RequestLimits {
  /** Longest request target, in bytes (414 beyond). */
  readonly maxUrlLength: number;
  /** Most header fields (431 beyond). */
  readonly maxHeaderCount: number;
  /** Largest request body in bytes (413 beyond); 0 means no limit. */
  readonly maxBodySize: number;
}

/**
 * One front door's admission check: well-formed, within the limits, within the client's rate.
 * Built with the runtime (so a reload brings new limits); `stop()` when the runtime is retired.
 */
export class RequestGuard {
  private readonly limiter: RateLimiter | null;

  constructor(
    readonly limits: RequestLimits,
    rateLimit: RateLimitSpec | undefined,
    private readonly rateKey: string,
  ) {
    this.limiter = rateLimit ? new RateLimiter(rateLimit) : null;
  }

  /** Why the request must be refused (400, 414, 429, 431), or null. The body is checked by admitBody. */
  admit(req: RequestHead, clientAddress: string): ProxyError | null {
    return checkRequest(req, this.limits) ?? (this.limiter && rateLimited(this.limiter, clientAddress, this.rateKey));
  }

  /** The same without the rate limit (which a check must not charge). */
  check(req: RequestHead): ProxyError | null {
    return checkRequest(req, this.limits);
  }

  stop(): void {
    this.limiter?.stop();
  }
}

/**
 * 413 when the declared Content-Length is over `max` (0 = no limit). Otherwise, for a client that sent
 * `Expect: 100-continue` (left to us by the server's checkContinue), tells it to send the body now.
 */
export function admitBody(session: HttpSession, max: number): ProxyError | null {
  const headers = session.req.headers;
  const declared = headers['content-length'];
  if (max > 0 && declared !== undefined && Number(declared) > max) return tooLarge(max);
  if (headers.expect?.toLowerCase() === '100-continue') session.res.writeContinue();
  return null;
}

/** 429 with Retry-After when the client has used up its tokens. */
export function rateLimited(limiter: RateLimiter, clientAddress: string, what: string): ProxyError | null {
  const wait = limiter.take(clientAddress);
  if (wait === 0) return null;
  return new ProxyError('too_many_requests', `${clientAddress} is over the request rate allowed for ${what}`, {
    headers: { 'retry-after': String(wait) },
  });
}

/**
 * The body to send upstream: null when there is none; the request itself when its Content-Length is
 * within `max`; for a chunked body under a limit, a pass-through that counts bytes and, the moment
 * the count passes `max`, answers 413 (closing the connection) and fails the upstream request.
 */
export function requestBody(session: HttpSession, max: number): Readable | null {
  const { req } = session;
  if (!hasRequestBody(req.headers)) return null;
  if (max === 0 || req.headers['transfer-encoding'] === undefined) return req;
  let seen = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      seen += chunk.length;
      if (seen <= max) {
        done(null, chunk);
        return;
      }
      req.unpipe(counter);
      if (session.answered) req.socket.destroy();
      else {
        session.refuse(tooLarge(max));
        session.res.once('finish', () => req.socket.destroy());
      }
      done(tooLarge(max));
    },
  });
  req.on('error', (err) => counter.destroy(err));
  // The 413 is answered above; the upstream request (which may not be on a connection yet, with no
  // listener of its own) learns of it when it reads the body.
  counter.on('error', ignore);
  return req.pipe(counter);
}

function tooLarge(max: number): ProxyError {
  return new ProxyError('payload_too_large', `the request body is larger than the ${max} bytes allowed`, { headers: { connection: 'close' } });
}

/**
 * A request Node's parser refused (its server's `clientError`): answered with 400, 408, 414 or 431 and
 * logged through `sink` like every other request. A client that is already gone gets nothing.
 */
export function refuseUnreadable(door: FrontDoor, err: NodeJS.ErrnoException & { rawPacket?: Buffer }, socket: Socket, scheme: 'http' | 'https', sink: SessionSink): void {
  const refusal = unreadableRequestError(err, socket);
  if (refusal === null) return;
  new UnreadableSession(door, socket, err.rawPacket, scheme, sink).refuse(refusal);
}

/** Why a request the parser refused is refused, or null (and the socket destroyed) when its client is gone. */
export function unreadableRequestError(err: NodeJS.ErrnoException, socket: Socket): ProxyError | null {
  if (!socket.writable || err.code === 'ECONNRESET') {
    socket.destroy();
    return null;
  }
  const code = err.code ?? '';
  const kind =
    code === 'HPE_HEADER_OVERFLOW' ? 'headers_too_large' : code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'request_timeout' : code === 'HPE_URI_TOO_LONG' ? 'uri_too_long' : 'bad_request';
  return new ProxyError(kind, 'the request could not be read');
}

/** RFC 9110 §7.2 Host: uri-host [ ":" port ], uri-host being a reg-name or an IP literal. */
const VALID_HOST = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~!$&'()*+,;=%-]*)(:\d{0,5})?$/;

/** Returns why the request must be refused, or null when it may proceed. */
function checkRequest(req: RequestHead, limits: RequestLimits): ProxyError | null {
  if (req.httpVersionMajor !== 1) {
    // HTTP/2 arrives only at the reverse door's HTTP/2 listeners, translated (src/reverse/http2-messages.ts),
    // with the stream it came on; an HTTP/1.x message that claims 2.0 has none and is refused. Its
    // CONNECT (a tunnel, RFC 9113 §8.5) has no meaning at a reverse proxy.
    if (req.httpVersionMajor !== 2 || !('stream' in req) || req.method === 'CONNECT') {
      return new ProxyError('bad_request', `${req.method === 'CONNECT' ? 'CONNECT over ' : ''}HTTP/${req.httpVersion} is not supported here; use HTTP/1.1`);
    }
  }
  const url = req.url ?? '';
  if (url.length > limits.maxUrlLength) {
    return new ProxyError('uri_too_long', `the request target is longer than ${limits.maxUrlLength} bytes`);
  }
  const raw = req.rawHeaders;
  if (raw.length > limits.maxHeaderCount * 2) {
    return new ProxyError('headers_too_large', `the request has more than ${limits.maxHeaderCount} header fields`);
  }
  let hosts = 0;
  let transferEncodings = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === 4 && name.toLowerCase() === 'host') hosts++;
    else if (name.length === 17 && name.toLowerCase() === 'transfer-encoding') transferEncodings++;
  }
  if (hosts > 1) return new ProxyError('bad_request', 'the request has more than one Host header');
  const host = req.headers.host;
  if (host !== undefined && !VALID_HOST.test(host)) return new ProxyError('bad_request', 'the Host header is not a valid host[:port]');
  if (transferEncodings > 0) {
    if (req.httpVersionMinor === 0) {
      return new ProxyError('bad_request', 'Transfer-Encoding is not allowed in an HTTP/1.0 request');
    }
    // Node has already refused Transfer-Encoding together with Content-Length, and codings that do
    // not end in chunked; a proxy also refuses codings it would have to strip (e.g. "gzip, chunked").
    const te = req.headers['transfer-encoding'];
    if (transferEncodings > 1 || te === undefined || te.trim().toLowerCase() !== 'chunked') {
      return new ProxyError('bad_request', `unsupported Transfer-Encoding "${te ?? ''}": only "chunked" is accepted`);
    }
  }
  const upgrade = req.headers.upgrade;
  if (upgrade !== undefined && H2C.test(upgrade)) {
    // RFC 9113 §3.1 retired the h2c upgrade; a proxy that switched could be walked past (h2c smuggling).
    return new ProxyError('bad_request', 'the HTTP/2 cleartext upgrade (Upgrade: h2c) is not supported: use HTTP/1.1, or HTTP/2 over TLS');
  }
  return null;
}

/** An Upgrade header offering h2c, alone or in a list. */
const H2C = /(^|,)\s*h2c\s*(,|$)/i;

function ignore(): void {}
