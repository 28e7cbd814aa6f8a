/**
 * The shapes that cross the layers: a response from an upstream, the changes the cache asks of an
 * upstream request, the request a door sends upstream, and the reply the pipeline writes to a client.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';

/** A response from the upstream, with hop-by-hop headers already removed from rawHeaders/headers. */
export interface UpstreamResponse {
  readonly status: number;
  readonly statusMessage: string;
  /** End-to-end headers, names as the upstream spelled them: [name, value, name, value, …]. */
  readonly rawHeaders: readonly string[];
  /** The same headers, lower-case names (Node's IncomingHttpHeaders shape). */
  readonly headers: IncomingHttpHeaders;
  /**
   * The body; ends cleanly only when the upstream sent all of it, emits 'error' (or closes early)
   * otherwise. Its producer handles its errors: a body nobody reads or listens to never crashes the
   * process, but a body that is not used must still be thrown away with `discard()` (src/core/streams.ts).
   */
  readonly body: Readable;
  /** Set when the upstream responded at all; the pipeline also uses it for logs (backend URL, etc.). */
  readonly upstreamLabel: string;
}

/**
 * Changes the cache asks for on the upstream request, relative to what the front door would send:
 * a header set to a string is added or replaced, one set to `null` is removed (e.g. the client's
 * own validators when the cache wants a full response it can store).
 */
export interface UpstreamOverrides {
  readonly method?: string;
  readonly headers?: Readonly<Record<string, string | null>>;
}

/**
 * Sends the request upstream. Rejects with a ProxyError (src/core/errors.ts) when no response came:
 * connect failures, timeouts (codes connection_refused, connection_timeout, response_timeout, …).
 */
export type UpstreamFetch = (overrides: UpstreamOverrides | null) => Promise<UpstreamResponse>;

/** What the pipeline writes to the client. */
export interface Reply {
  readonly status: number;
  readonly statusMessage: string;
  /** Headers to send, [name, value, …], including Age and Cache-Status; no hop-by-hop headers. */
  readonly rawHeaders: string[];
  /** A Buffer for stored bodies, a stream while fetching (and storing), null for no body (HEAD, 304, …). */
  readonly body: Buffer | Readable | null;
  /** For logs and metrics: 'hit' | 'stale' | 'miss' | 'revalidated' | 'bypass' | … (first token of the Cache-Status story). */
  readonly cacheResult: string;
  /**
   * Asked when the client goes away before a streamed body is relayed: true when the body must not be
   * cut (it is being stored, and far enough along to finish into the cache); false to cut it.
   */
  readonly abandon?: (() => boolean) | undefined;
}

export interface Timeouts {
  readonly connectMs: number;
  readonly responseHeaderMs: number;
  /** Longest silence while the response body streams. */
  readonly idleMs: number;
}

/** A request as a door sends it upstream. */
export interface OutboundRequest {
  readonly method: string;
  /** origin-form (`/path?q`), or absolute-form when talking to an upstream proxy. */
  readonly path: string;
  readonly headers: OutgoingHttpHeaders;
  /** The client's body stream, or null when the request has none. */
  readonly body: Readable | null;
}

/** Methods whose request may be sent twice (RFC 9110 §9.2.2): a failed one may be tried again. */
export const IDEMPOTENT: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

/** Methods that are safe (RFC 9110 §9.2.1); any other method, known or not, invalidates (RFC 9111 §4.4). */
export const SAFE_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE']);
