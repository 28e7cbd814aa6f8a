/**
 * The contract between the front doors' shared pipeline (src/proxy) and the cache engine.
 * The pipeline hands the cache a request and a way to reach the upstream; the cache answers with
 * a reply to write, from its store or from the upstream (storing it on the way when it may).
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';

export interface CacheRequest {
  /** Method as received (upper case). */
  readonly method: string;
  /**
   * Normalised absolute URL, the primary cache key: `scheme://host[:port]/path?query`, host lower-cased,
   * default port dropped. Built by the pipeline with `cacheKeyUrl()`.
   */
  readonly url: string;
  /** The client's request headers (lower-case names, as Node parses them). */
  readonly headers: IncomingHttpHeaders;
}

/** A response from the upstream, with hop-by-hop headers already removed from rawHeaders/headers. */
export interface UpstreamResponse {
  readonly status: number;
  readonly statusMessage: string;
  /** End-to-end headers, names as the upstream spelled them: [name, value, name, value, …]. */
  readonly rawHeaders: readonly string[];
  /** The same headers, lower-case names (Node's IncomingHttpHeaders shape). */
  readonly headers: IncomingHttpHeaders;
  /** The body; ends cleanly only when the upstream sent all of it, emits 'error' (or closes early) otherwise. */
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
 * Sends the request upstream. Rejects with a ProxyError (src/proxy/errors.ts) when no response came:
 * connect failures, timeouts (codes connection_refused, connection_timeout, response_timeout, …).
 */
export type UpstreamFetch = (overrides: UpstreamOverrides | null) => Promise<UpstreamResponse>;

/** What the pipeline writes to the client. */
export interface CacheReply {
  readonly status: number;
  readonly statusMessage: string;
  /** Headers to send, [name, value, …], including Age and Cache-Status; no hop-by-hop headers. */
  readonly rawHeaders: string[];
  /** A Buffer for stored bodies, a stream while fetching (and storing), null for no body (HEAD, 304, …). */
  readonly body: Buffer | Readable | null;
  /** For logs and metrics: 'hit' | 'stale' | 'miss' | 'revalidated' | 'bypass' | … (first token of the Cache-Status story). */
  readonly cacheResult: string;
}

export interface CacheStats {
  readonly entries: number;
  readonly bytes: number;
  readonly maxBytes: number;
  readonly hits: number;
  readonly misses: number;
  readonly stores: number;
  readonly evictions: number;
}

/** What the pipeline needs of the cache engine (implemented by HttpCache). */
export interface CacheEngine {
  /** A reply at hand (e.g. a hit in the memory store) may come back as it is, without a promise. */
  handle(req: CacheRequest, fetch: UpstreamFetch): CacheReply | Promise<CacheReply>;
}
