/**
 * A request to an upstream server over undici: `sendWithUndici()` dispatches it with a handler that is
 * also the response body stream. It keeps the contract of sendUpstream (node-http-exchange.ts): the
 * response with hop-by-hop headers removed, or a ProxyError saying whether the request may be tried
 * again elsewhere; connect, response-header and idle timeouts; request bodies streamed from the client;
 * the upstream request cancelled when the client's body breaks off or the client goes away. The reverse
 * proxy sends through one undici Pool per backend (src/reverse/backend-client.ts), the forward proxy
 * through one undici Agent for all origins it reaches directly (src/forward/origin-connector.ts).
 */
import type { ServerResponse } from 'node:http';
import { PassThrough, Readable } from 'node:stream';
import { errors as undiciErrors, type Dispatcher } from 'undici';
import { ProxyError, upstreamError } from '../core/errors.js';
import { IDEMPOTENT, type OutboundRequest, type Timeouts, type UpstreamResponse } from '../core/messages.js';
import type { ConnectionWaiters } from './connector.js';
import { readHead, relayableReason, statusProblem } from './response-head.js';

/** Where a request goes, as the exchange needs it. */
export interface UndiciRoute {
  /** Shown in logs and errors: the backend URL or origin. */
  readonly label: string;
  /** `http(s)://host:port`: which of an Agent's pools (a Pool has one origin and ignores it). */
  readonly origin: string;
  /** Always given, so that undici never takes the TLS server name from a Host header; the connector decides. */
  readonly servername: string;
  readonly waiters: ConnectionWaiters | null;
  /** Called once the response body is done: with why it broke off, or null (also when the client left). */
  readonly onBodyDone: ((failure: Error | null) => void) | null;
}

/**
 * Sends `out` on `dispatcher`. Resolves with the response once its head is in. `client` closing early
 * cancels it all.
 */
export function sendWithUndici(
  dispatcher: Dispatcher,
  route: UndiciRoute,
  out: OutboundRequest,
  timeouts: Timeouts,
  client: ServerResponse,
): Promise<UpstreamResponse> {
  const exchange = new UndiciExchange(route, out.method, out.body, timeouts);
  const promise = new Promise<UpstreamResponse>((resolve, reject) => {
    exchange.resolve = resolve;
    exchange.reject = reject;
  });
  if (route.waiters !== null) route.waiters.waiting++;
  if (!watchClient(client, exchange)) return promise; // the client has gone already
  // HTTP/1.0 clients cannot take an interim response; HTTP/1.1 and HTTP/2 can.
  if (client.req.httpVersionMinor >= 1 || client.req.httpVersionMajor >= 2) exchange.earlyHints = (raw) => relayEarlyHints(client, raw);
  const options: Dispatcher.DispatchOptions & { servername: string } = {
    origin: route.origin,
    path: out.path,
    method: out.method,
    headers: out.headers as Dispatcher.DispatchOptions['headers'],
    body: exchange.relay,
    headersTimeout: timeouts.responseHeaderMs,
    bodyTimeout: timeouts.idleMs,
    servername: route.servername,
  };
  dispatcher.dispatch(options, exchange);
  return promise;
}

/**
 * One request upstream: the undici dispatch handler, and — once the response head is in — the
 * response body stream handed to the pipeline. Data is pushed as it comes; when the stream's buffer is
 * full, undici's parser is paused (onData returns false) until the consumer reads again.
 */
class UndiciExchange extends Readable implements Dispatcher.DispatchHandler {
  resolve: ((response: UpstreamResponse) => void) | null = null;
  reject: ((err: ProxyError) => void) | null = null;
  /**
   * What undici reads the request body from: a pass-through fed from the client's body once the request
   * is on a connection (undici destroys it when the request ends; the client's request itself must live
   * on, to be answered, e.g. 504). Until then nothing is read from the client, so a request that never
   * reached a backend can be sent to another one, body and all.
   */
  readonly relay: PassThrough | null;
  private abortUpstream: ((err?: Error) => void) | null = null;
  private resumeUpstream: (() => void) | null = null;
  /** Counted in the client's `waiting` until the request is on a connection or settled. */
  private waiting = true;
  /** The request was written to a connection (something may have reached the backend). */
  private connected = false;
  /** The response head was handed over: from here on, failures are the body's. */
  private responded = false;
  /** Set when the exchange ended one way or the other (response settled or failed). */
  private settled = false;

  /**
   * Passes a 103 response's headers on to the client, when it can take one. Dropped once the exchange
   * is settled: undici holds on to a finished handler for a while, and through this closure it would
   * hold the client's whole request (measured: every request then outlived two scavenges, and the
   * young-generation GC took 4 ms instead of 1, 15% of the CPU on forward misses).
   */
  earlyHints: ((rawHeaders: Buffer[]) => void) | null = null;
  /** The trailer fields after a chunked body (flat, as undici gives them), once it has ended. */
  trailers: readonly string[] | null = null;

  constructor(
    private readonly route: UndiciRoute,
    private readonly method: string,
    private readonly source: Readable | null,
    private readonly timeouts: Timeouts,
  ) {
    // The size of undici's socket reads: a 64 KiB chunk does not pause the parser at once.
    super({ highWaterMark: 64 * 1024 });
    this.relay = source === null ? null : new PassThrough();
    // Errors owned by construction: whoever reads the body sees its errors through its own listeners,
    // and a body nobody reads (a revalidation that was thrown away, a client that left) cannot take
    // the process down with an unhandled 'error'.
    this.on('error', ignore);
    this.relay?.on('error', ignore);
  }

  /**
   * The client went away: a request still waiting for its response is cancelled. Once the response is
   * handed over its body belongs to its reader, which cuts it (or, the cache, finishes it: quick_abort).
   */
  cancel(): void {
    if (!this.responded) this.fail(new ProxyError('connection_reset', 'the client went away'));
  }

  // --- undici's dispatch handler ---

  onConnect(abort: (err?: Error) => void): void {
    this.abortUpstream = abort;
    this.stopWaiting();
    if (this.settled) {
      abort();
      return;
    }
    this.connected = true;
    if (this.source !== null) relayBody(this.source, this.relay!);
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    if (statusCode < 200) {
      // Interim responses: 103 Early Hints is passed on; the others (an unsolicited 100 Continue, 102)
      // are skipped (RFC 9110 §15.2). 100-continue for the client is answered by the front door.
      if (statusCode === 103 && !this.settled) this.earlyHints?.(rawHeaders);
      return true;
    }
    if (this.settled) return false;
    const label = this.route.label;
    const head = statusProblem(statusCode, statusText) ?? readHead(rawHeaders);
    if (typeof head === 'string') {
      this.fail(new ProxyError('bad_response', `${label} sent ${head}`));
      return false;
    }
    this.settled = true;
    this.responded = true;
    this.earlyHints = null;
    this.resumeUpstream = resume;
    const resolve = this.resolve!;
    this.resolve = null;
    this.reject = null;
    resolve({
      status: statusCode,
      statusMessage: relayableReason(statusText),
      rawHeaders: head.raw,
      headers: head.headers,
      body: this,
      upstreamLabel: label,
    });
    return true;
  }

  onData(chunk: Buffer): boolean {
    return this.push(chunk);
  }

  onComplete(trailers: string[] | null): void {
    if (trailers !== null && trailers.length > 0) this.trailers = trailers;
    this.push(null);
  }

  onError(err: Error): void {
    if (this.responded) {
      // The body broke off (backend gone, idle timeout, bad chunk): the consumer sees an error.
      const mapped = undiciError(err, this.route.label, this.timeouts);
      this.destroy(mapped instanceof Error ? mapped : err);
      return;
    }
    this.fail(err);
  }

  // --- the response body stream ---

  override _read(): void {
    const resume = this.resumeUpstream;
    if (resume !== null) resume();
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    if (this.responded) {
      // Destroyed before the end (the client went away, or the body failed): the upstream request is cut.
      if (!this.readableEnded && this.abortUpstream !== null) this.abortUpstream(err ?? undefined);
      this.route.onBodyDone?.(err);
    }
    callback(err);
  }

  private stopWaiting(): void {
    if (this.waiting) {
      this.waiting = false;
      if (this.route.waiters !== null) this.route.waiters.waiting--;
    }
  }

  /** Rejects the pending response (once) and cuts the upstream request. */
  private fail(err: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.earlyHints = null;
    this.stopWaiting();
    const reject = this.reject!;
    this.resolve = null;
    this.reject = null;
    const label = this.route.label;
    const base = upstreamError(undiciError(err, label, this.timeouts), label);
    // Nothing reached the backend when the request was never written; an idempotent request without a
    // body can be replayed too.
    const safe = !this.connected || (IDEMPOTENT.has(this.method) && this.source === null);
    reject(safe === base.retryable ? base : new ProxyError(base.code, base.message, { retryable: safe, cause: base.cause }));
    if (this.abortUpstream !== null) this.abortUpstream(base);
    else if (this.relay !== null) this.relay.destroy();
  }
}

function ignore(): void {}

/** Relays a 103 (Early Hints) to the client while its response has not started. */
function relayEarlyHints(client: ServerResponse, raw: Buffer[]): void {
  if (client.headersSent || client.destroyed) return;
  const head = readHead(raw);
  if (typeof head === 'string') return;
  try {
    client.writeEarlyHints(head.headers as Record<string, string | string[]>);
  } catch {
    // Node refuses Link values it cannot validate: the hints are only hints.
  }
}

/** undici's own errors, as the ProxyError the pipeline expects (socket errors are left to upstreamError). */
function undiciError(err: unknown, label: string, timeouts: Timeouts): unknown {
  // undici's parser errors carry no HPE_ code (its constants map names to numbers, not back).
  if (err instanceof undiciErrors.HTTPParserError) {
    return new ProxyError('bad_response', `${label} sent a malformed response (${err.message})`, { cause: err });
  }
  switch ((err as { code?: unknown } | null)?.code) {
    case 'UND_ERR_CONNECT_TIMEOUT':
      return new ProxyError('connection_timeout', `${label} did not accept the connection within ${timeouts.connectMs} ms`, { retryable: true, cause: err });
    case 'UND_ERR_HEADERS_TIMEOUT':
      return new ProxyError('response_timeout', `${label} did not respond within ${timeouts.responseHeaderMs} ms`, { cause: err });
    case 'UND_ERR_BODY_TIMEOUT':
      return new ProxyError('response_timeout', `${label} stalled for ${timeouts.idleMs} ms while sending the body`, { cause: err });
    case 'UND_ERR_HEADERS_OVERFLOW':
      return new ProxyError('bad_response', `${label} sent a response head that is too large`, { cause: err });
    case 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH':
      return new ProxyError('bad_response', `${label} sent a body that does not match its Content-Length`, { cause: err });
    case 'UND_ERR_SOCKET':
      return new ProxyError('connection_reset', `${label} closed the connection`, { cause: err });
    default:
      return err;
  }
}

/** Feeds the client's body to undici; a body that breaks off (client gone, over the limit) fails the request. */
function relayBody(source: Readable, relay: PassThrough): void {
  source.once('error', (err) => relay.destroy(err));
  source.once('close', () => {
    if (!source.readableEnded) relay.destroy(new ProxyError('connection_reset', 'the client body broke off'));
  });
  source.pipe(relay);
}

/** The client's response closing before it is finished cancels the exchange in flight. */
const kExchange = Symbol('portico.undiciExchange');
type Watched = ServerResponse & { [kExchange]?: UndiciExchange };

function watchClient(client: ServerResponse, exchange: UndiciExchange): boolean {
  const watched = client as Watched;
  if (client.destroyed && !client.writableFinished) {
    exchange.cancel();
    return false;
  }
  if (watched[kExchange] === undefined) client.on('close', onClientClose);
  watched[kExchange] = exchange;
  return true;
}

function onClientClose(this: Watched): void {
  if (this.writableFinished) return;
  this[kExchange]?.cancel();
}

