/**
 * One client request on its way through the pipeline: what is known about it (the record the access
 * log and the statistics read), and where its answer goes — an HTTP response (plain requests) or the
 * raw socket of a CONNECT or an Upgrade. Every entry point ends the same way: exactly one `finish()`,
 * which writes the one access-log line and tells the statistics.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { ProxyError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { accessLogged, writeAccess } from '../observe/access-log.js';
import { normalizeAddress } from '../policy/cidr-list.js';
import type { BlockedRequest } from '../policy/rules.js';
import { errorPage, type Page } from './pages.js';

export type FrontDoor = 'reverse' | 'forward';

/** What the phases read of a request: an IncomingMessage, or the request explain imagines. */
export interface RequestHead {
  readonly method?: string | undefined;
  readonly url?: string | undefined;
  readonly headers: IncomingHttpHeaders;
  readonly rawHeaders: readonly string[];
  readonly httpVersion: string;
  readonly httpVersionMajor: number;
  readonly httpVersionMinor: number;
  /** The listener's side of the connection. */
  readonly socket: { readonly localAddress?: string | undefined; readonly localPort?: number | undefined };
}
/** How the request came: a plain HTTP request, a CONNECT, or an Upgrade (WebSocket). */
export type EntryKind = 'http' | 'connect' | 'upgrade';

/** What one request did: filled in as it goes, read by the access log and the stats. */
export interface ExchangeRecord {
  readonly door: FrontDoor;
  readonly kind: EntryKind;
  readonly method: string;
  readonly url: string;
  readonly startedAt: number;
  readonly clientAddress: string;
  readonly user: string | undefined;
  readonly upstream: string | undefined;
  readonly cache: string | undefined;
  readonly error: string | undefined;
  /** Bytes sent to the client for this request, once it is finished. */
  readonly bytes: number | undefined;
  /** The client's HTTP version: `1.1`, `1.0`, or `2.0`. */
  readonly httpVersion?: string | undefined;
}

/** A tunnel's byte counts, for its log line. */
export interface TunnelStats {
  /** Bytes from the client to the target. */
  readonly up: number;
  /** Bytes from the target to the client. */
  readonly down: number;
  /** True when the idle timeout closed it. */
  readonly idle: boolean;
}

/** What every session of one door shares: where it reports. */
export interface SessionSink {
  readonly log: Logger;
  readonly onDone: ((record: ExchangeRecord, status: number) => void) | undefined;
  readonly onBlocked: ((blocked: BlockedRequest) => void) | undefined;
}

/**
 * Every session not yet finished, newest first: what a fatal error report names (see requestsInFlight).
 *
 * An intrusive list, not a Set: a Set that gains and loses an entry per request is rehashed every few
 * hundred requests, and V8 leaves each retired hash table pointing at its successor. Once one of them
 * is in the old generation (after any full GC under load), the chain of successors, with every session
 * they hold and everything those reach, survives each young-generation GC: measured on forward 1 KiB
 * misses, scavenges grew from 1 ms to 4 ms (25 ms on a leaner path) until the next full GC. A removed
 * session here points at nothing.
 */
let newest: Session | null = null;

/** The requests in flight, newest first (at most `limit`): for the report of a fatal error. */
export function requestsInFlight(limit: number): InFlightRequest[] {
  return Session.inFlight(limit);
}

export interface InFlightRequest {
  readonly door: FrontDoor;
  readonly method: string;
  readonly url: string;
  readonly client: string;
  readonly upstream: string | undefined;
  readonly ms: number;
}

export abstract class Session implements ExchangeRecord {
  readonly startedAt = performance.now();
  readonly method: string;
  readonly url: string;
  user: string | undefined = undefined;
  upstream: string | undefined = undefined;
  cache: string | undefined = undefined;
  error: string | undefined = undefined;
  bytes: number | undefined = undefined;
  private finished = false;
  /** Neighbours in the list of sessions in flight (null once finished). */
  private newer: Session | null = null;
  private older: Session | null = null;

  constructor(
    readonly door: FrontDoor,
    readonly kind: EntryKind,
    readonly req: RequestHead,
    readonly clientAddress: string,
    /** The scheme of the listener the request came on. */
    readonly scheme: 'http' | 'https',
    protected readonly sink: SessionSink,
  ) {
    this.method = req.method ?? 'GET';
    this.url = req.url ?? '';
    this.older = newest;
    if (newest !== null) newest.newer = this;
    newest = this;
  }

  get log(): Logger {
    return this.sink.log;
  }

  get httpVersion(): string {
    return this.req.httpVersion;
  }

  /** Whether the answer has started (a page, a reply, or a tunnel): a later failure can only cut it. */
  abstract get answered(): boolean;

  /** Answers with a page the proxy makes itself (an error, a block page, the PAC file). */
  abstract respond(page: Page): void;

  /** Cuts the client connection (the answer had started when something failed). */
  abstract abort(): void;

  /** Answers with the error page for `err` and remembers why, for the log. */
  refuse(err: ProxyError): void {
    this.error = err.code;
    this.respond(errorPage(err, this.req.headers.accept));
  }

  /** Reports a request refused by a rule (dashboard, metrics, a log line). */
  reportBlocked(target: string, rule: string): void {
    this.sink.onBlocked?.({ at: Date.now(), door: this.door, client: this.clientAddress, user: this.user, method: this.method, target, rule });
    this.sink.log.info({ door: this.door, client: this.clientAddress, user: this.user, method: this.method, target, rule }, 'blocked by policy');
  }

  static inFlight(limit: number): InFlightRequest[] {
    const now = performance.now();
    const out: InFlightRequest[] = [];
    for (let s = newest; s !== null && out.length < limit; s = s.older) {
      out.push({ door: s.door, method: s.method, url: s.url, client: s.clientAddress, upstream: s.upstream, ms: Math.round(now - s.startedAt) });
    }
    return out;
  }

  private unlink(): void {
    if (this.newer !== null) this.newer.older = this.older;
    else newest = this.older;
    if (this.older !== null) this.older.newer = this.newer;
    this.newer = null;
    this.older = null;
  }

  /**
   * Ends the request: one access-log line and the statistics, once, whatever path it took. `complete`
   * is false for a response that was cut short.
   */
  finish(status: number, tunnel?: TunnelStats, complete = true): void {
    if (this.finished) return;
    this.finished = true;
    this.unlink();
    this.sink.onDone?.(this, status);
    if (!accessLogged(this.sink.log)) return;
    const headers = this.req.headers;
    writeAccess(this.sink.log, {
      door: this.door,
      client: this.clientAddress,
      method: this.method,
      url: this.url,
      status,
      cache: this.cache,
      upstream: this.upstream,
      bytes: this.bytes,
      error: this.error ?? (tunnel?.idle ? 'idle_timeout' : undefined),
      complete,
      up: tunnel?.up,
      down: tunnel?.down,
      ms: Math.round(performance.now() - this.startedAt),
      httpVersion: this.req.httpVersion,
      user: this.user,
      referer: headers.referer,
      userAgent: headers['user-agent'],
    });
  }
}

/** A plain HTTP request: answered through Node's ServerResponse; finished when the response closes. */
export class HttpSession extends Session {
  private readonly bytesBefore: number;

  constructor(
    door: FrontDoor,
    override readonly req: IncomingMessage,
    readonly res: ServerResponse,
    clientAddress: string,
    scheme: 'http' | 'https',
    sink: SessionSink,
  ) {
    super(door, 'http', req, clientAddress, scheme, sink);
    // Bytes written on this connection before this response (keep-alive connections carry several).
    this.bytesBefore = req.socket.bytesWritten;
    // Node emits 'close' once per response: `on` is enough and saves once()'s wrapper per request.
    res.on('close', () => {
      this.bytes = req.socket.bytesWritten - this.bytesBefore;
      this.finish(res.headersSent ? res.statusCode : 499, undefined, res.writableFinished);
    });
  }

  get answered(): boolean {
    return this.res.headersSent;
  }

  abort(): void {
    this.res.destroy();
  }

  respond(page: Page): void {
    const res = this.res;
    if (res.writableEnded) return; // already answered in full
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const headers: Record<string, string | number> = { ...page.headers, 'content-length': Buffer.byteLength(page.body) };
    if (page.close) headers.connection = 'close';
    res.writeHead(page.status, headers);
    res.end(this.method === 'HEAD' ? undefined : page.body);
  }
}

/** How long a refused CONNECT or Upgrade socket may stay half-closed before it is destroyed. */
const LINGER_MS = 2_000;

/** A CONNECT or an Upgrade: answered on the raw socket; finished when refused or when its tunnel closes. */
export class SocketSession extends Session {
  private started = false;

  constructor(
    door: FrontDoor,
    kind: 'connect' | 'upgrade',
    override readonly req: IncomingMessage,
    readonly socket: Duplex,
    /** Bytes the client sent after its request head. */
    readonly head: Buffer,
    clientAddress: string,
    scheme: 'http' | 'https',
    sink: SessionSink,
  ) {
    super(door, kind, req, clientAddress, scheme, sink);
    socket.on('error', ignore);
  }

  get answered(): boolean {
    return this.started;
  }

  abort(): void {
    this.socket.destroy();
  }

  /** The tunnel (or the backend's answer) takes over the socket from here. */
  markAnswered(): void {
    this.started = true;
  }

  respond(page: Page): void {
    this.started = true;
    writePageToSocket(this.socket, page, this.method === 'HEAD');
    this.finish(page.status);
  }
}

/**
 * A request Node's parser could not read (malformed, too large a head, too slow): refused with its
 * page on the raw socket, and logged and counted like every other request, with what its first line
 * says (or `-`).
 */
export class UnreadableSession extends Session {
  private started = false;

  constructor(
    door: FrontDoor,
    private readonly socket: Socket,
    /** The bytes the parser choked on (Node's `rawPacket`), for the request line. */
    firstBytes: Buffer | undefined,
    scheme: 'http' | 'https',
    sink: SessionSink,
  ) {
    super(door, 'http', unreadableHead(socket, firstBytes), normalizeAddress(socket.remoteAddress), scheme, sink);
  }

  get answered(): boolean {
    return this.started;
  }

  abort(): void {
    this.socket.destroy();
  }

  respond(page: Page): void {
    this.started = true;
    writePageToSocket(this.socket, page);
    this.finish(page.status);
  }
}

/** The request line of `bytes` as far as it can be read, for the log. */
function unreadableHead(socket: RequestHead['socket'], bytes: Buffer | undefined): RequestHead {
  const line = bytes === undefined ? '' : bytes.subarray(0, Math.min(bytes.length, 8 * 1024)).toString('latin1').split('\r\n', 1)[0]!;
  const m = /^([!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}) (\S{1,8192}) HTTP\/(\d)\.(\d)$/.exec(line);
  return {
    method: m?.[1] ?? '-',
    url: m?.[2] ?? '-',
    headers: {},
    rawHeaders: [],
    httpVersion: m ? `${m[3]}.${m[4]}` : '1.1',
    httpVersionMajor: m ? Number(m[3]) : 1,
    httpVersionMinor: m ? Number(m[4]) : 1,
    socket: { localAddress: socket.localAddress, localPort: socket.localPort },
  };
}

/**
 * Writes a page as a complete HTTP/1.1 response straight to a socket and closes it: for CONNECT and
 * Upgrade requests, and for what is refused before there is a request at all (unreadable requests,
 * too many connections).
 */
export function writePageToSocket(socket: Duplex, page: Page, head = false): void {
  if (socket.destroyed || !socket.writable) {
    socket.destroy();
    return;
  }
  let text = `HTTP/1.1 ${page.status} ${page.title}\r\n`;
  for (const name in page.headers) text += `${name}: ${page.headers[name]}\r\n`;
  text += `content-length: ${Buffer.byteLength(page.body)}\r\nconnection: close\r\n\r\n`;
  socket.end(head ? text : text + page.body);
  setTimeout(() => socket.destroy(), LINGER_MS).unref();
}

function ignore(): void {}
