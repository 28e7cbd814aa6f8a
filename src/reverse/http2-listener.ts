/**
 * HTTP/2 at the reverse door. The TLS listener is an `http2.createSecureServer({ allowHTTP1: true })`:
 * ALPN offers `h2` and `http/1.1`; HTTP/1.1 connections (and their WebSocket upgrades) are served by
 * Node's HTTP/1 code exactly as on an `https` server, HTTP/2 streams arrive through Node's compatibility
 * API as the request/response pairs of http2-messages.ts, so both run the same pipeline, cache and
 * balancing. With `reverse.h2c`, the plain listener also takes HTTP/2 with prior knowledge
 * (RFC 9113 §3.3), told apart from HTTP/1.1 by the connection preface (h2c-preface.ts); the
 * `Upgrade: h2c` dance is never offered.
 *
 * Each HTTP/2 session is guarded here: flow-control windows sized for throughput, the settings
 * timeout, the idle timeout, and a cap on the streams a client resets per second (Rapid Reset,
 * CVE-2023-44487), beyond which the connection is closed with GOAWAY ENHANCE_YOUR_CALM. Streams and
 * header lists are bounded by the SETTINGS the session announces.
 */
import { Server as HttpServer } from 'node:http';
import {
  constants,
  createSecureServer,
  createServer as createPlainHttp2Server,
  type Http2SecureServer,
  type Http2ServerRequest,
  type Http2ServerResponse,
  type Http2Server,
  type SecureServerOptions,
  type ServerHttp2Session,
  type ServerHttp2Stream,
  type Settings,
} from 'node:http2';
import type { ReverseConfig } from '../config/schema.js';
import type { Logger } from '../core/log.js';
import { normalizeAddress } from '../policy/cidr-list.js';
import { Http2Request, Http2Response } from './http2-messages.js';

/** The HTTP/2 limits of the reverse door, from `reverse.http2` (and `limits`). */
export interface Http2Limits {
  readonly maxConcurrentStreams: number;
  /** Initial stream window announced to clients (SETTINGS_INITIAL_WINDOW_SIZE): how much of an upload may be in flight per stream. */
  readonly streamWindow: number;
  /** The connection's receive window, shared by its streams. */
  readonly connectionWindow: number;
  readonly maxHeaderListSize: number;
  /** Most header fields in a request (pseudo-headers included). */
  readonly maxHeaderPairs: number;
  readonly maxResetsPerSecond: number;
  readonly idleTimeoutMs: number;
  readonly settingsTimeoutMs: number;
}

export function http2LimitsOf(reverse: ReverseConfig, limits: { readonly max_header_size: number; readonly max_header_count: number }): Http2Limits {
  const h2 = reverse.http2;
  return {
    maxConcurrentStreams: h2.max_concurrent_streams,
    streamWindow: h2.stream_window,
    connectionWindow: h2.connection_window,
    maxHeaderListSize: h2.max_header_list_size ?? limits.max_header_size,
    // Four pseudo-headers on top of the header fields admission allows (it answers 431 beyond them).
    maxHeaderPairs: limits.max_header_count + 5,
    maxResetsPerSecond: h2.max_resets_per_second,
    idleTimeoutMs: h2.idle_timeout,
    settingsTimeoutMs: h2.settings_timeout,
  };
}

/** The request/response classes the compatibility API builds for each stream (http2-messages.ts). */
const COMPAT_CLASSES = {
  Http2ServerRequest: Http2Request as unknown as typeof Http2ServerRequest,
  Http2ServerResponse: Http2Response as unknown as typeof Http2ServerResponse,
};

function settingsOf(limits: Http2Limits): Settings {
  return {
    maxConcurrentStreams: limits.maxConcurrentStreams,
    initialWindowSize: limits.streamWindow,
    maxHeaderListSize: limits.maxHeaderListSize,
    enablePush: false,
  };
}

/** What the HTTP/1.1 side of an allowHTTP1 server needs that an http.Server would have set itself. */
export interface Http1Options {
  readonly keepAliveTimeout: number;
  readonly headersTimeout: number;
  readonly requestTimeout: number;
  readonly maxHeaderSize: number;
  readonly connectionsCheckingInterval: number;
}

/**
 * The reverse TLS listener: HTTP/2 and HTTP/1.1 by ALPN. Shaped like an https.Server for the listeners
 * (closeAllConnections added: HTTP/1 sockets by Node's list, HTTP/2 sessions by `sessions`).
 */
export function createReverseTlsServer(tls: SecureServerOptions, http1: Http1Options, limits: Http2Limits, sessions: Http2Sessions): Http2SecureServer {
  const server = createSecureServer({
    ...tls,
    allowHTTP1: true,
    settings: settingsOf(limits),
    maxHeaderListPairs: limits.maxHeaderPairs,
    // Node refuses new streams once this much is buffered for the session (default 10 MB); the
    // connection window may hold more than that in flight.
    maxSessionMemory: Math.max(10, Math.ceil((limits.connectionWindow * 2) / 1024 ** 2)),
    ...COMPAT_CLASSES,
  });
  // What http.Server's constructor would set (the HTTP/1.1 connections read them from the server).
  Object.assign(server, {
    keepAliveTimeout: http1.keepAliveTimeout,
    headersTimeout: http1.headersTimeout,
    requestTimeout: http1.requestTimeout,
    maxHeaderSize: http1.maxHeaderSize,
    connectionsCheckingInterval: http1.connectionsCheckingInterval,
    requireHostHeader: true,
    rejectNonStandardBodyWrites: false,
  });
  sessions.watch(server);
  return server;
}

/** The plain listener's HTTP/2 side (h2c with prior knowledge): handed connections by h2c-preface.ts. */
export function createH2cServer(limits: Http2Limits, sessions: Http2Sessions): Http2Server {
  const server = createPlainHttp2Server({
    settings: settingsOf(limits),
    maxHeaderListPairs: limits.maxHeaderPairs,
    maxSessionMemory: Math.max(10, Math.ceil((limits.connectionWindow * 2) / 1024 ** 2)),
    ...COMPAT_CLASSES,
  });
  sessions.watch(server);
  return server;
}

/** Counters for the statistics: how HTTP/2 connections came and went. */
export interface Http2Counters {
  /** HTTP/2 connections open now. */
  open: number;
  /** HTTP/2 connections since start. */
  total: number;
  /** Closed for resetting too many streams (ENHANCE_YOUR_CALM). */
  resetFloods: number;
  /** Closed because the client never acknowledged the SETTINGS. */
  settingsTimeouts: number;
  /** Closed after the idle timeout. */
  idleClosed: number;
}

const kGuard = Symbol('portico.h2guard');
interface SessionGuard {
  windowStart: number;
  resets: number;
  /** Set once the session is being closed for a reset flood. */
  closing: boolean;
  readonly sessions: Http2Sessions;
}
type GuardedSession = ServerHttp2Session & { [kGuard]: SessionGuard };
type StreamOfGuarded = ServerHttp2Stream & { session: GuardedSession | undefined };

/**
 * Every HTTP/2 session of the process's listeners: guarded while open, closed gracefully (GOAWAY, the
 * streams in flight finish) when draining, cut when the drain time is up.
 */
export class Http2Sessions {
  private readonly open = new Set<ServerHttp2Session>();
  private readonly servers: (Http2SecureServer | Http2Server)[] = [];

  constructor(
    /** The current limits (a reload changes them for the sessions that start after it). */
    private readonly limits: () => Http2Limits,
    readonly counters: Http2Counters,
    private readonly log: Logger,
  ) {}

  watch(server: Http2SecureServer | Http2Server): void {
    this.servers.push(server);
    server.on('session', (session: ServerHttp2Session) => this.guard(session));
    // A session's errors are its own (the client broke the protocol, or went away): nothing to throw.
    server.on('sessionError', ignore);
  }

  /** After a reload: the SETTINGS new connections are offered (the guards read the limits per connection). */
  applySettings(limits: Http2Limits): void {
    const settings = settingsOf(limits);
    for (const server of this.servers) server.updateSettings(settings);
  }

  /** GOAWAY to every session: streams in flight finish, no new ones start. */
  closeIdle(): void {
    for (const session of this.open) if (!session.closed) session.close();
  }

  /** Cuts every session (the drain time is up). */
  destroyAll(): void {
    for (const session of this.open) session.destroy();
  }

  private guard(session: ServerHttp2Session): void {
    const limits = this.limits();
    const counters = this.counters;
    counters.open++;
    counters.total++;
    this.open.add(session);
    (session as GuardedSession)[kGuard] = { windowStart: 0, resets: 0, closing: false, sessions: this };
    session.on('error', ignore);
    if (limits.connectionWindow > 65_535) session.setLocalWindowSize(limits.connectionWindow);
    // Our SETTINGS must be acknowledged in time (RFC 9113 §6.5.3); this also ends a connection that
    // finished TLS and never sent the HTTP/2 preface.
    const settingsTimer = setTimeout(() => {
      counters.settingsTimeouts++;
      this.log.info({ client: clientOf(session) }, 'http2 connection closed: no SETTINGS acknowledgement');
      session.destroy(new Error('SETTINGS not acknowledged in time'), constants.NGHTTP2_SETTINGS_TIMEOUT);
    }, limits.settingsTimeoutMs);
    settingsTimer.unref();
    session.once('localSettings', () => clearTimeout(settingsTimer));
    if (limits.idleTimeoutMs > 0) {
      // Idle: GOAWAY, the streams in flight may finish; idle once more with it closing, it is cut.
      session.setTimeout(limits.idleTimeoutMs, () => {
        if (session.closed) {
          session.destroy();
          return;
        }
        counters.idleClosed++;
        session.close();
      });
    }
    session.on('stream', onStream);
    session.once('close', () => {
      clearTimeout(settingsTimer);
      counters.open--;
      this.open.delete(session);
    });
  }

  /** One stream reset by the client: over the cap within a second, the connection is closed. */
  countReset(session: GuardedSession): void {
    const guard = session[kGuard];
    const now = performance.now();
    if (now - guard.windowStart >= 1_000) {
      guard.windowStart = now;
      guard.resets = 0;
    }
    if (++guard.resets <= this.limits().maxResetsPerSecond || guard.closing) return;
    guard.closing = true;
    this.counters.resetFloods++;
    this.log.warn({ client: clientOf(session), resets: guard.resets }, 'http2 connection closed: too many stream resets (ENHANCE_YOUR_CALM)');
    // Counted inside nghttp2's frame processing: the session is torn down once that has returned.
    setImmediate(closeCalmly, session);
  }
}

function onStream(stream: ServerHttp2Stream): void {
  stream.on('aborted', onStreamAborted);
  stream.on('close', onStreamClose);
}

/**
 * 'aborted' fires before the stream is destroyed when the client reset it while our response was
 * still open; when we cut it ourselves, the stream is already destroyed.
 */
function onStreamAborted(this: StreamOfGuarded): void {
  if (!this.destroyed) resetByClient(this);
}

/** A reset after our response was complete (not aborted): the client's too, unless the code is ours. */
function onStreamClose(this: StreamOfGuarded): void {
  if (this.aborted) return;
  const code = this.rstCode;
  if (code !== undefined && code !== constants.NGHTTP2_NO_ERROR && code !== constants.NGHTTP2_INTERNAL_ERROR) resetByClient(this);
}

function resetByClient(stream: StreamOfGuarded): void {
  const session = stream.session;
  if (session !== undefined && session[kGuard] !== undefined) session[kGuard].sessions.countReset(session);
}

function closeCalmly(session: ServerHttp2Session): void {
  session.destroy(new Error('too many stream resets'), constants.NGHTTP2_ENHANCE_YOUR_CALM);
}

function clientOf(session: ServerHttp2Session): string {
  return normalizeAddress(session.socket?.remoteAddress);
}

/** HTTP/1 connections of an allowHTTP1 server are in Node's list, as on an http.Server. */
export function closeAllHttp1(server: Http2SecureServer): void {
  (HttpServer.prototype.closeAllConnections as (this: unknown) => void).call(server);
}

function ignore(): void {}
