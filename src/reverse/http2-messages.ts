/**
 * HTTP/2 requests and responses as the shared pipeline sees them. Node's compatibility API hands an
 * HTTP/2 stream over as an Http2ServerRequest / Http2ServerResponse pair; these subclasses (given to
 * `http2.createSecureServer` as its `Http2ServerRequest` / `Http2ServerResponse` classes) make the
 * pair read like an HTTP/1.1 IncomingMessage / ServerResponse where the pipeline relies on it:
 *
 * - `headers` / `rawHeaders` without pseudo-headers; `:authority` becomes `host` (RFC 9113 §8.3.1);
 *   cookies are already joined with "; " by Node (§8.2.3).
 * - a request with a body and no Content-Length reads as `transfer-encoding: chunked` in `headers`
 *   (only there: admission never sees it in `rawHeaders`), which is how it goes to an HTTP/1.1
 *   backend and how the body limit counts it.
 * - `socket` is this stream's view of the connection: addresses, the bytes this response wrote, and
 *   `destroy()` resetting this stream only (never the connection the other streams share).
 * - `writeHead` drops the reason phrase (HTTP/2 has none) and every connection-specific field
 *   (RFC 9113 §8.2.2), which Node would otherwise refuse with a throw; `destroyed` and `req` exist.
 */
import { constants, Http2ServerRequest, Http2ServerResponse, type Http2Stream, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { OutgoingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';

/**
 * The compatibility classes as far as these subclasses use them. Node's type declarations give
 * `headers`, `socket` and friends as fields, which TypeScript will not let a subclass turn into
 * accessors; at run time they are accessors of the prototype, read here through their getters.
 */
interface CompatRequest extends Readable {
  readonly stream: ServerHttp2Stream;
  readonly method: string;
  readonly url: string;
  readonly httpVersion: string;
  readonly httpVersionMajor: number;
  readonly httpVersionMinor: number;
}
interface CompatResponse extends NodeJS.EventEmitter {
  readonly stream: ServerHttp2Stream;
  readonly headersSent: boolean;
  readonly writableEnded: boolean;
  readonly writableFinished: boolean;
  statusCode: number;
  writeHead(statusCode: number, headers?: OutgoingHttpHeaders | readonly string[]): this;
  write(chunk: unknown, encoding?: unknown, cb?: unknown): boolean;
  end(chunk?: unknown, encoding?: unknown, cb?: unknown): this;
  destroy(err?: Error): void;
  writeContinue(): void;
  writeEarlyHints(hints: Record<string, string | string[]>): void;
}
const RequestBase = Http2ServerRequest as unknown as new (...args: never[]) => CompatRequest;
const ResponseBase = Http2ServerResponse as unknown as new (...args: never[]) => CompatResponse;
const ownHeaders = Object.getOwnPropertyDescriptor(Http2ServerRequest.prototype, 'headers')!.get! as (this: CompatRequest) => IncomingHttpHeaders;
const ownRawHeaders = Object.getOwnPropertyDescriptor(Http2ServerRequest.prototype, 'rawHeaders')!.get! as (this: CompatRequest) => string[];

/** Fields that describe one HTTP/1.1 connection and never cross into HTTP/2 (RFC 9113 §8.2.2). */
const CONNECTION_SPECIFIC: ReadonlySet<string> = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'http2-settings']);

/** The connection's addresses, read once per HTTP/2 session (every stream of it shares them). */
interface PeerAddresses {
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  readonly localAddress: string | undefined;
  readonly localPort: number | undefined;
}

const kPeer = Symbol('portico.h2peer');
type SessionWithPeer = { [kPeer]?: PeerAddresses; socket?: { remoteAddress?: string; remotePort?: number; localAddress?: string; localPort?: number } };

function peerOf(stream: Http2Stream): PeerAddresses {
  const session = stream.session as unknown as SessionWithPeer | undefined;
  if (session === undefined) return { remoteAddress: undefined, remotePort: undefined, localAddress: undefined, localPort: undefined };
  let peer = session[kPeer];
  if (peer === undefined) {
    const s = session.socket;
    peer = session[kPeer] = { remoteAddress: s?.remoteAddress, remotePort: s?.remotePort, localAddress: s?.localAddress, localPort: s?.localPort };
  }
  return peer;
}

/** The reason a response is cut (the stream is reset with INTERNAL_ERROR; nobody reads the error). */
const RESPONSE_CUT = new Error('the response was cut short');

/** What `req.socket` is for an HTTP/2 request: this stream's share of the connection. */
export class Http2StreamSocket {
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  readonly localAddress: string | undefined;
  readonly localPort: number | undefined;
  readonly encrypted: boolean;
  /** Set by the response: the body bytes it wrote. */
  bytesWritten = 0;

  constructor(private readonly stream: Http2Stream) {
    const peer = peerOf(stream);
    this.remoteAddress = peer.remoteAddress;
    this.remotePort = peer.remotePort;
    this.localAddress = peer.localAddress;
    this.localPort = peer.localPort;
    this.encrypted = (stream.session as { encrypted?: boolean } | undefined)?.encrypted === true;
  }

  get destroyed(): boolean {
    return this.stream.destroyed;
  }

  /**
   * Resets this stream, never the connection: with NO_ERROR once the response is complete (the client
   * may stop sending its body, RFC 9113 §8.1), with INTERNAL_ERROR while it is not, so that the client
   * cannot take a response cut short for a whole one.
   */
  destroy(): void {
    const stream = this.stream as ServerHttp2Stream;
    if (stream.destroyed) return;
    // destroy() before the reset: the reset guard (http2-listener.ts) then knows it was ours.
    if (stream.writableFinished) stream.close(constants.NGHTTP2_NO_ERROR);
    else stream.destroy(RESPONSE_CUT);
  }
}

/** Where a request leaves itself on its stream for the response built next (Node builds the pair in turn). */
const kRequestOf = Symbol('portico.h2request');
type StreamWithRequest = ServerHttp2Stream & { [kRequestOf]?: Http2Request };

export class Http2Request extends RequestBase {
  private h1Headers: IncomingHttpHeaders | undefined;
  private h1Raw: string[] | undefined;
  private view: Http2StreamSocket | undefined;

  constructor(...args: never[]) {
    super(...args);
    (this.stream as StreamWithRequest)[kRequestOf] = this;
  }

  /** `:authority`, or Host when a client sent only that. */
  get authority(): string | undefined {
    return this.headers.host;
  }

  get headers(): IncomingHttpHeaders {
    if (this.h1Headers === undefined) this.normalize();
    return this.h1Headers!;
  }

  get rawHeaders(): string[] {
    if (this.h1Raw === undefined) this.normalize();
    return this.h1Raw!;
  }

  get socket(): Http2StreamSocket {
    return (this.view ??= new Http2StreamSocket(this.stream));
  }

  get connection(): Http2StreamSocket {
    return this.socket;
  }

  private normalize(): void {
    const own = ownHeaders.call(this);
    const raw = ownRawHeaders.call(this);
    const headers: IncomingHttpHeaders = {};
    const out: string[] = [];
    const authority = own[':authority'] as string | undefined;
    if (authority !== undefined) {
      headers.host = authority;
      out.push('host', authority);
    }
    for (const name in own) {
      if (name.charCodeAt(0) === 58 /* : */ || (name === 'host' && authority !== undefined)) continue;
      headers[name] = own[name];
    }
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!;
      if (name.charCodeAt(0) === 58) continue;
      // A Host equal to :authority is the same field twice; one that differs stays, and admission
      // refuses the request for having two (RFC 9113 §8.3.1: malformed).
      if (authority !== undefined && name === 'host' && raw[i + 1]!.toLowerCase() === authority.toLowerCase()) continue;
      out.push(name, raw[i + 1]!);
    }
    // A body without a declared length is framed for HTTP/1.1 the way a backend will receive it.
    if (!(this.stream as ServerHttp2Stream).endAfterHeaders && headers['content-length'] === undefined) headers['transfer-encoding'] = 'chunked';
    this.h1Headers = headers;
    this.h1Raw = out;
  }
}

export class Http2Response extends ResponseBase {
  /** The request this answers (Node's ServerResponse has it; the pipeline reads its version). */
  req: Http2Request | undefined = undefined;
  /** Ignored: an HTTP/2 connection is kept by its session, closed with GOAWAY when draining. */
  shouldKeepAlive = true;

  constructor(...args: never[]) {
    super(...args);
    this.req = (this.stream as StreamWithRequest)[kRequestOf];
  }

  get destroyed(): boolean {
    return this.stream.destroyed;
  }

  /**
   * Cuts the response. Node's plain destroy() resets the stream with NO_ERROR, which an HTTP/2 client
   * may read as the end of a complete response (Node's own client does): a cut says INTERNAL_ERROR.
   */
  override destroy(err?: Error): void {
    super.destroy(err ?? RESPONSE_CUT);
  }

  override writeHead(statusCode: number, reasonOrHeaders?: string | OutgoingHttpHeaders | readonly string[], headers?: OutgoingHttpHeaders | readonly string[]): this {
    const given = typeof reasonOrHeaders === 'string' || reasonOrHeaders === undefined ? headers : reasonOrHeaders;
    if (given === undefined) return super.writeHead(statusCode);
    return super.writeHead(statusCode, Array.isArray(given) ? http2RawHeaders(given) : http2HeaderObject(given as OutgoingHttpHeaders));
  }

  /** Counts the body bytes (Node's end() writes its last chunk through here too). */
  override write(chunk: unknown, encoding?: unknown, cb?: unknown): boolean {
    this.count(chunk);
    return super.write(chunk, encoding, cb);
  }

  private count(chunk: unknown): void {
    const req = this.req;
    if (req === undefined || chunk === null || chunk === undefined || typeof chunk === 'function') return;
    req.socket.bytesWritten += typeof chunk === 'string' ? Buffer.byteLength(chunk) : (chunk as Uint8Array).byteLength;
  }
}

/** A flat raw header list without connection-specific fields (and `te` other than "trailers"). */
export function http2RawHeaders(raw: readonly string[]): string[] {
  let out: string[] | null = null;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (CONNECTION_SPECIFIC.has(name) || (name === 'te' && String(raw[i + 1]).trim().toLowerCase() !== 'trailers')) {
      out ??= raw.slice(0, i);
      continue;
    }
    if (out !== null) out.push(raw[i]!, raw[i + 1]!);
  }
  return out ?? (raw as string[]);
}

function http2HeaderObject(headers: OutgoingHttpHeaders): OutgoingHttpHeaders {
  let out: OutgoingHttpHeaders | null = null;
  for (const name in headers) {
    const lower = name.toLowerCase();
    if (CONNECTION_SPECIFIC.has(lower) || lower === 'te') {
      out ??= { ...headers };
      delete out[name];
    }
  }
  return out ?? headers;
}
