/**
 * The contract between the front doors' shared pipeline (src/proxy) and the cache engine.
 * The pipeline hands the cache a request and a way to reach the upstream; the cache answers with
 * a reply to write, from its store or from the upstream (storing it on the way when it may).
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Reply, UpstreamFetch } from '../core/messages.js';
import type { CacheRule } from './cache-rule.js';
import type { SharedTierState } from './shared-tier.js';

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
  /** The operator's cache rules whose request conditions match, in order (cache-rule.ts); none by default. */
  readonly rules?: readonly CacheRule[];
}

export interface CacheStats {
  readonly entries: number;
  readonly bytes: number;
  readonly maxBytes: number;
  readonly hits: number;
  readonly misses: number;
  readonly stores: number;
  readonly evictions: number;
  /** The shared tier's state (Redis), or null without one. */
  readonly shared: SharedTierState | null;
}

/** What the pipeline needs of the cache engine (implemented by HttpCache). */
export interface CacheEngine {
  /** A reply at hand (e.g. a hit in the memory store) may come back as it is, without a promise. */
  handle(req: CacheRequest, fetch: UpstreamFetch): Reply | Promise<Reply>;
}
