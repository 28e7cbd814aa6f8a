/**
 * A request to an upstream server over undici: `sendWithUndici()` dispatches it with a handler that is
 * also the response body stream. It keeps the contract of sendUpstream (upstream-request.ts): the
 * response with hop-by-hop headers removed, or a ProxyError saying whether the request may be tried
 * again elsewhere; connect, response-header and idle timeouts; request bodies streamed from the client;
 * the upstream request cancelled when the client's body breaks off or the client goes away. The reverse
 * proxy sends through one undici Pool per backend (src/reverse/backend-client.ts), the forward proxy
 * through one undici Agent for all origins it reaches directly (src/forward/origin-connector.ts).
 */
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import { isIP, type LookupFunction } from 'node:net';
import { PassThrough, Readable } from 'node:stream';
import { buildConnector, errors as undiciErrors, type Dispatcher } from 'undici';
import type { UpstreamResponse } from '../cache/types.js';
import { ProxyError, upstreamError } from './errors.js';
import { connectionTokens, HOP_BY_HOP } from './hop-by-hop.js';
import { IDEMPOTENT, UPSTREAM_IDLE_KEEPALIVE_MS, type OutboundRequest, type Timeouts } from './upstream-request.js';

/** Requests sent and not yet on a connection: while 0, a connector has no reason to open one. */
export interface ConnectionWaiters {
  waiting: number;
}

/** Where a request goes, as the exchange needs it. */
export interface UndiciRoute {
  /** Shown in logs and errors: the backend URL or origin. */
  readonly label: string;
  /** `http(s)://host:port`: which of an Agent's pools (a Pool has one origin and ignores it). */
  readonly origin: string;
  /** Always given, so that undici never takes the TLS server name from a Host header; the connector decides. */
  readonly servername: string;
  readonly waiters: ConnectionWaiters | null;
  /** Called once the response body is done: `failed` when it broke off (not when the client left). */
  readonly onBodyDone: ((failed: boolean) => void) | null;
}

/** Idle pooled connections are closed by the proxy first (see UPSTREAM_IDLE_KEEPALIVE_MS). */
export const POOL_OPTIONS = {
  pipelining: 1,
  connections: null,
  // After this long, or a second before the upstream's announced Keep-Alive timeout.
  keepAliveTimeout: UPSTREAM_IDLE_KEEPALIVE_MS,
  keepAliveMaxTimeout: UPSTREAM_IDLE_KEEPALIVE_MS,
  keepAliveTimeoutThreshold: 1_000,
  strictContentLength: true,
} as const;

/**
 * How undici opens connections upstream: TCP keep-alive, the connect timeout, the TLS server name
 * taken from the host (none for an IP address, as node:https does), the addresses resolved through
 * `lookupFor(port)` when given (the forward proxy's destination checks), and no connection opened
 * while no request waits for one.
 */
export function upstreamConnector(
  connectMs: number,
  waiters: ConnectionWaiters,
  lookupFor?: (port: number) => LookupFunction | undefined,
): buildConnector.connector {
  const options = { timeout: connectMs, keepAlive: true, keepAliveInitialDelay: 1_000 };
  const plain = { connect: buildConnector(options), lookup: undefined as LookupFunction | undefined };
  const byPort = new Map<number, typeof plain>();
  return (target, callback) => {
    // undici (v7, nodejs/undici#5845) puts a request aborted in flight back in its queue and opens a
    // connection for it before noticing it was aborted; that connection would sit idle. No request of
    // ours waits for a connection then: refuse it (undici drops the pool member that asked for it).
    if (waiters.waiting === 0) {
      process.nextTick(callback, new StrayConnectError(), null);
      return;
    }
    const tls = target.protocol === 'https:';
    const port = Number(target.port) || (tls ? 443 : 80);
    let checked = lookupFor === undefined ? plain : byPort.get(port);
    if (checked === undefined) {
      const lookup = lookupFor!(port);
      checked = lookup === undefined ? plain : { connect: buildConnector({ ...options, lookup } as buildConnector.BuildOptions), lookup };
      byPort.set(port, checked);
    }
    const { connect, lookup } = checked;
    const host = target.hostname;
    const address = host.startsWith('[') ? host.slice(1, -1) : host;
    const literal = isIP(address) !== 0;
    const open = () => connect(tls && !literal ? { ...target, servername: host } : { ...target, servername: undefined }, callback);
    // undici hands over host names parsed as URLs ("127.1" is already 127.0.0.1), and net skips the
    // lookup for an address: the checks that the lookup makes run here for it.
    if (lookup !== undefined && literal) lookup(address, {}, (err) => (err ? callback(err, null) : open()));
    else open();
  };
}

class StrayConnectError extends Error {
  readonly code = 'PORTICO_STRAY_CONNECT';
  constructor() {
    super('no request is waiting for this connection');
  }
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

  constructor(
    private readonly route: UndiciRoute,
    private readonly method: string,
    private readonly source: Readable | null,
    private readonly timeouts: Timeouts,
  ) {
    // The size of undici's socket reads: a 64 KiB chunk does not pause the parser at once.
    super({ highWaterMark: 64 * 1024 });
    this.relay = source === null ? null : new PassThrough();
  }

  /** Cancels the upstream request (the client went away). */
  cancel(): void {
    if (this.responded) {
      this.destroy();
      return;
    }
    this.fail(new ProxyError('connection_reset', 'the client went away'));
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
    if (statusCode < 200) return true; // 1xx: not relayed (100-continue is answered by the front door)
    if (this.settled) return false;
    const label = this.route.label;
    const head = readHead(rawHeaders);
    if (typeof head === 'string') {
      this.fail(new ProxyError('bad_response', `${label} sent ${head}`));
      return false;
    }
    this.settled = true;
    this.responded = true;
    this.resumeUpstream = resume;
    const resolve = this.resolve!;
    this.resolve = null;
    this.reject = null;
    resolve({
      status: statusCode,
      statusMessage: statusText,
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

  onComplete(): void {
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
      this.route.onBodyDone?.(err !== null);
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

interface ResponseHead {
  /** End-to-end headers, names as the backend spelled them. */
  readonly raw: string[];
  /** The same, lower-case names (duplicates joined, set-cookie a list). */
  readonly headers: IncomingHttpHeaders;
}

/**
 * The backend's response head (undici's raw Buffers) without hop-by-hop headers (and those its Connection
 * header names); or why its framing must not be relayed: a Transfer-Encoding other than one plain
 * `chunked` (undici, like Node, decodes only chunked: any other coding would reach the client undecoded
 * without its Transfer-Encoding header, and a repeated or non-final `chunked` means the body can be
 * delimited in more than one way). Content-Length conflicts are refused by undici's parser.
 */
function readHead(buffers: readonly Buffer[]): ResponseHead | string {
  const count = buffers.length >> 1;
  const names = new Array<HeaderName>(count);
  const values = new Array<string>(count);
  let connection: string | null = null;
  let codings: string | null = null;
  for (let i = 0; i < count; i++) {
    const name = headerName(buffers[2 * i]!);
    const value = buffers[2 * i + 1]!.toString('latin1');
    names[i] = name;
    values[i] = value;
    if (name.kind === CONNECTION) connection = connection === null ? value : `${connection}, ${value}`;
    else if (name.kind === TRANSFER_ENCODING) {
      if (codings !== null) return 'more than one Transfer-Encoding header';
      codings = value;
    }
  }
  if (codings !== null && codings.trim().toLowerCase() !== 'chunked') return `an unsupported Transfer-Encoding "${codings.slice(0, 64)}"`;
  const extra = connection === null || connection === 'keep-alive' || connection === 'close' ? null : connectionTokens(connection);
  const raw: string[] = [];
  const headers: IncomingHttpHeaders = {};
  for (let i = 0; i < count; i++) {
    const name = names[i]!;
    if (name.hopByHop || (extra !== null && extra.has(name.lower))) continue;
    const value = values[i]!;
    raw.push(name.text, value);
    if (name.kind === SET_COOKIE) {
      (headers['set-cookie'] ??= []).push(value);
    } else {
      const prev = headers[name.lower] as string | undefined;
      headers[name.lower] = prev === undefined ? value : `${prev}, ${value}`;
    }
  }
  return { raw, headers };
}

const OTHER = 0;
const CONNECTION = 1;
const TRANSFER_ENCODING = 2;
const SET_COOKIE = 3;

/** A response header name as decoded once: turning Buffers into strings is most of the cost of a head. */
class HeaderName {
  readonly lower: string;
  readonly hopByHop: boolean;
  readonly kind: number;
  next: HeaderName | null = null;

  constructor(
    readonly bytes: Buffer,
    readonly text: string,
  ) {
    const lower = text.toLowerCase();
    this.lower = lower;
    this.hopByHop = HOP_BY_HOP.has(lower);
    this.kind = lower === 'connection' ? CONNECTION : lower === 'transfer-encoding' ? TRANSFER_ENCODING : lower === 'set-cookie' ? SET_COOKIE : OTHER;
  }
}

/**
 * Names seen so far, by length and first and last byte (a few per key at most). Bounded: a backend sends
 * few distinct names, and one that sends many only fills the table once.
 */
const headerNames = new Map<number, HeaderName>();
const HEADER_NAMES_MAX = 512;
const HEADER_NAMES_PER_KEY = 4;
let headerNameCount = 0;

function headerName(buf: Buffer): HeaderName {
  const length = buf.length;
  const key = length === 0 ? 0 : (length << 16) | (buf[0]! << 8) | buf[length - 1]!;
  const first = headerNames.get(key) ?? null;
  let depth = 0;
  for (let known = first; known !== null; known = known.next, depth++) {
    const bytes = known.bytes;
    let i = 0;
    while (i < length && bytes[i] === buf[i]) i++;
    if (i === length) return known;
  }
  const name = new HeaderName(Buffer.from(buf), buf.toString('latin1'));
  if (headerNameCount < HEADER_NAMES_MAX && depth < HEADER_NAMES_PER_KEY) {
    headerNameCount++;
    name.next = first;
    headerNames.set(key, name);
  }
  return name;
}
