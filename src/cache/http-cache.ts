/**
 * The shared HTTP cache engine (RFC 9111): every request of a cache-enabled route goes through
 * `handle()`, which answers from the store, revalidates, or forwards, and stores what it may on the way.
 *
 * - GET/HEAD: lookup by URL, variant selection by Vary, freshness and request directives, conditional
 *   revalidation (304 merging), client conditionals and Range answered from stored responses,
 *   stale-while-revalidate (one background revalidation per entry), stale-if-error, request
 *   collapsing (one upstream request per URL at a time; the others wait for it).
 * - Other methods are forwarded; a successful unsafe one invalidates its target and same-origin
 *   Location / Content-Location (RFC 9111 §4.4).
 * - Every reply carries Cache-Status (RFC 9211). No Warning is ever added, the origin's Date is kept.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { CacheConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import { ProxyError } from '../proxy/errors.js';
import { BodyRecorder, readBody } from './body-recorder.js';
import { evaluateRange } from './byte-range.js';
import { cacheKeyFromUrl } from './cache-key.js';
import { cacheStatus, type CacheStatusParams, type ForwardReason } from './cache-status.js';
import { hasOriginOnlyPreconditions, isConditional, notModified, parseEntityTag, strongMatch, validationHeaders, validatorsIdentify } from './conditional-request.js';
import { DiskStore } from './disk-store.js';
import { fieldLines, firstValue } from './header-list.js';
import { MemoryStore } from './memory-store.js';
import {
  currentAge,
  decideStorage,
  mayServeStaleOnError,
  type PolicyOptions,
  type RequestDirectives,
  requestDirectives,
  reuseVerdict,
  ttlSeconds,
} from './shared-cache-policy.js';
import type { CacheStore } from './store.js';
import { UncacheableMemo } from './uncacheable-memo.js';
import { freshen, newStoredResponse, type StoredResponse } from './stored-response.js';
import type { CacheEngine, CacheReply, CacheRequest, CacheStats, UpstreamFetch, UpstreamOverrides, UpstreamResponse } from './types.js';
import { varyMatches } from './vary.js';

export interface HttpCacheOptions {
  readonly config: CacheConfig;
  readonly store: CacheStore;
  readonly log: Logger;
  /** Clock (ms since the epoch); Date.now by default. */
  readonly now?: () => number;
  /** How long a request waits for a concurrent request to the same URL before going upstream itself. */
  readonly collapseTimeoutMs?: number;
  /** Told of every URL an unsafe request invalidated (the other workers' caches drop it too). */
  readonly onInvalidate?: (url: string) => void;
}

/** Methods that are safe (RFC 9110 §9.2.1); any other method, known or not, invalidates (RFC 9111 §4.4). */
const SAFE_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE']);

/** How long requests for a URL whose response could not be stored skip request collapsing (Varnish: 120 s). */
const UNCACHEABLE_MEMO_MS = 30_000;
const UNCACHEABLE_MEMO_ENTRIES = 10_000;

/** Statuses that count as an upstream error for stale-if-error (RFC 5861 §4). */
const ERROR_STATUSES: ReadonlySet<number> = new Set([500, 502, 503, 504]);

/** Representation metadata left out of a 304 answered from cache (RFC 9110 §15.4.5). */
const NOT_IN_304: ReadonlySet<string> = new Set(['content-length', 'content-type', 'content-encoding', 'content-language', 'content-range', 'transfer-encoding']);

/** Bytes allowed for an entry's headers and bookkeeping on top of the body limit. */
const ENTRY_HEADER_ALLOWANCE = 64 * 1024;

interface Leader {
  readonly promise: Promise<void>;
  readonly release: () => void;
}

export class HttpCache implements CacheEngine {
  private readonly store: CacheStore;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly policy: PolicyOptions;
  private readonly tagHeader: string;
  private readonly maxObjectSize: number;
  private readonly collapseTimeoutMs: number;
  private readonly onInvalidate: ((url: string) => void) | undefined;
  private readonly uncacheable: UncacheableMemo;
  /** URL → the request currently fetching it (miss or revalidation); others wait for it. */
  private readonly inFlight = new Map<string, Leader>();
  /** Entry keys with a background (stale-while-revalidate) revalidation under way. */
  private readonly backgroundRevalidations = new Set<string>();
  private hits = 0;
  private misses = 0;
  private stores = 0;

  constructor(options: HttpCacheOptions) {
    const { config } = options;
    this.store = options.store;
    this.log = options.log;
    this.now = options.now ?? Date.now;
    this.maxObjectSize = config.max_object_size;
    this.tagHeader = config.tag_header.toLowerCase();
    this.collapseTimeoutMs = options.collapseTimeoutMs ?? 10_000;
    this.onInvalidate = options.onInvalidate;
    this.uncacheable = new UncacheableMemo(UNCACHEABLE_MEMO_MS, UNCACHEABLE_MEMO_ENTRIES, this.now);
    this.policy = {
      targetedFields: config.targeted_fields.map((f) => f.toLowerCase()),
      heuristicMaxMs: config.heuristic_max,
      maxObjectSize: config.max_object_size,
    };
  }

  /**
   * A reply from a store that answers synchronously (the memory store) comes back as it is, not in a
   * promise, so that the pipeline writes a hit in the same tick; failures are always rejections.
   */
  handle(req: CacheRequest, fetch: UpstreamFetch): CacheReply | Promise<CacheReply> {
    const method = req.method;
    if (method === 'GET' || method === 'HEAD') {
      try {
        return this.lookup(req, fetch, requestDirectives(req.headers), true);
      } catch (err) {
        return Promise.reject(err);
      }
    }
    if (SAFE_METHODS.has(method)) return this.forward(req, fetch, 'method');
    return this.unsafe(req, fetch);
  }

  // ---------------------------------------------------------------------------------------------
  // Purge and stats (for the admin API)

  /** Drops every stored variant of an absolute URL. */
  async purgeUrl(url: string): Promise<number> {
    const key = cacheKeyFromUrl(url);
    return key === null ? 0 : this.store.deleteUrl(key);
  }

  /** Drops every entry whose URL starts with `prefix` (an absolute URL prefix, e.g. `http://host/static/`). */
  async purgePrefix(prefix: string): Promise<number> {
    const normalised = cacheKeyFromUrl(prefix) ?? prefix;
    let n = 0;
    for (const key of await this.store.keys(normalised)) if (await this.store.delete(key)) n++;
    return n;
  }

  /** Drops every entry tagged `tag` (from the configured tag header). */
  purgeTag(tag: string): Promise<number> {
    return this.store.purgeTag(tag);
  }

  stats(): CacheStats {
    const s = this.store.stats();
    return { entries: s.entries, bytes: s.bytes, maxBytes: s.maxBytes, hits: this.hits, misses: this.misses, stores: this.stores, evictions: s.evictions };
  }

  async close(): Promise<void> {
    for (const leader of this.inFlight.values()) leader.release();
    this.inFlight.clear();
    await this.store.close();
  }

  // ---------------------------------------------------------------------------------------------
  // GET and HEAD

  /** Answers synchronously when the store does; on that path an only-if-cached miss throws (handle() makes it a rejection). */
  private lookup(req: CacheRequest, fetch: UpstreamFetch, directives: RequestDirectives, mayWait: boolean, collapsedFrom?: ForwardReason): CacheReply | Promise<CacheReply> {
    if (directives.noStore) return this.forward(req, fetch, 'request', 'request-no-store');
    if (hasOriginOnlyPreconditions(req.headers)) return this.fetchFull(req, fetch, directives, 'request', null);
    const variants = this.readVariants(req.url);
    if (variants instanceof Promise) return variants.then((v) => this.answer(req, fetch, directives, v, mayWait, collapsedFrom));
    return this.answer(req, fetch, directives, variants, mayWait, collapsedFrom);
  }

  /** A store that cannot be read is a miss, never a failed request. */
  private readVariants(url: string): StoredResponse[] | Promise<StoredResponse[]> {
    try {
      const variants = this.store.variants(url);
      return variants instanceof Promise ? variants.catch((err: unknown) => this.readFailed(err, url)) : variants;
    } catch (err) {
      return this.readFailed(err, url);
    }
  }

  private readFailed(err: unknown, url: string): StoredResponse[] {
    this.log.warn({ err, url }, 'cache store read failed');
    return [];
  }

  /** Answers from the stored variants of the URL: a stored response, a revalidation, or the upstream. */
  private answer(
    req: CacheRequest,
    fetch: UpstreamFetch,
    directives: RequestDirectives,
    variants: readonly StoredResponse[],
    mayWait: boolean,
    collapsedFrom: ForwardReason | undefined,
  ): CacheReply | Promise<CacheReply> {
    const entry = selectVariant(variants, req.headers);
    const now = this.now();
    if (entry === undefined) {
      const fwd: ForwardReason = variants.length > 0 ? 'vary-miss' : 'uri-miss';
      if (directives.onlyIfCached) throw onlyIfCachedMiss(fwd);
      if (mayWait && this.canCollapse(req, directives)) {
        const leader = this.inFlight.get(req.url);
        if (leader !== undefined) return this.lookupAfter(leader, req, fetch, directives, fwd);
      }
      this.misses++;
      return this.fetchFull(req, fetch, directives, fwd, null);
    }

    const verdict = reuseVerdict(entry.info, directives, now);
    switch (verdict) {
      case 'fresh':
      case 'stale-allowed':
        this.hits++;
        return this.fromStore(req, entry, now, verdict === 'fresh' ? 'hit' : 'stale', { hit: true, ttl: ttlSeconds(entry.info, now) }, collapsedFrom);
      case 'stale-while-revalidate':
        this.hits++;
        this.revalidateInBackground(req, fetch, entry, directives);
        return this.fromStore(req, entry, now, 'stale', { hit: true, ttl: ttlSeconds(entry.info, now), detail: 'stale-while-revalidate' }, collapsedFrom);
      case 'revalidate-request':
      case 'revalidate': {
        if (directives.onlyIfCached) throw onlyIfCachedMiss('stale');
        if (verdict === 'revalidate' && mayWait && this.canCollapse(req, directives)) {
          const leader = this.inFlight.get(req.url);
          if (leader !== undefined) return this.lookupAfter(leader, req, fetch, directives, 'stale');
        }
        this.misses++;
        return this.revalidate(req, fetch, directives, entry, variants, verdict === 'revalidate' ? 'stale' : 'request');
      }
    }
  }

  /** Waits for the request that is fetching the URL, then looks again (without waiting a second time). */
  private async lookupAfter(leader: Leader, req: CacheRequest, fetch: UpstreamFetch, directives: RequestDirectives, fwd: ForwardReason): Promise<CacheReply> {
    await this.waitFor(leader);
    return this.lookup(req, fetch, directives, false, fwd);
  }

  /** Revalidates a stored response with the origin (RFC 9111 §4.3). */
  private async revalidate(
    req: CacheRequest,
    fetch: UpstreamFetch,
    directives: RequestDirectives,
    entry: StoredResponse,
    variants: readonly StoredResponse[],
    fwd: ForwardReason,
  ): Promise<CacheReply> {
    const leader = req.method === 'GET' ? this.lead(req.url) : null;
    let settledByLeader = false;
    try {
      const requestTime = this.now();
      let res: UpstreamResponse;
      try {
        res = await fetch({ headers: validationHeaders(entry.info) });
      } catch (err) {
        const now = this.now();
        if (isUpstreamFailure(err) && mayServeStaleOnError(entry.info, directives, now)) {
          this.hits++;
          return this.fromStore(req, entry, now, 'stale', { fwd, ttl: ttlSeconds(entry.info, now), detail: 'stale-if-error' });
        }
        throw withCacheStatus(err, { fwd });
      }
      const responseTime = this.now();

      if (res.status === 304) {
        res.body.resume();
        if (!validatorsIdentify(res.headers, entry.info)) {
          // The 304 is about some other representation: get the full response instead.
          settledByLeader = true;
          return await this.fetchFull(req, fetch, directives, fwd, leader, stripValidators());
        }
        const updated = await this.applyValidation(req, directives, entry, variants, res, requestTime, responseTime);
        this.hits++;
        return this.fromStore(
          req,
          updated,
          responseTime,
          'revalidated',
          { fwd, fwdStatus: 304, ttl: ttlSeconds(updated.info, responseTime) },
          undefined,
          fieldLines(res.rawHeaders, 'set-cookie'),
        );
      }

      if (ERROR_STATUSES.has(res.status) && mayServeStaleOnError(entry.info, directives, responseTime)) {
        res.body.resume();
        this.hits++;
        return this.fromStore(req, entry, responseTime, 'stale', { fwd, fwdStatus: res.status, ttl: ttlSeconds(entry.info, responseTime), detail: 'stale-if-error' });
      }

      if (req.method === 'HEAD') {
        if (res.status === 200) await this.freshenWithHead(req, directives, variants, res, requestTime, responseTime);
        return passThrough(res, cacheStatus({ fwd, fwdStatus: res.status }), 'miss');
      }

      settledByLeader = true;
      return this.fromUpstream(req, directives, res, fwd, requestTime, responseTime, leader, entry);
    } finally {
      if (!settledByLeader) leader?.release();
    }
  }

  /** Applies a 304 to the validated entry and to every other variant its strong validator names. */
  private async applyValidation(
    req: CacheRequest,
    directives: RequestDirectives,
    entry: StoredResponse,
    variants: readonly StoredResponse[],
    res: UpstreamResponse,
    requestTime: number,
    responseTime: number,
  ): Promise<StoredResponse> {
    const result = this.freshenEntry(req, directives, entry, res.rawHeaders, requestTime, responseTime);
    await this.saveFreshened(entry, result);
    const etag = firstValue(res.headers.etag);
    if (etag !== undefined) {
      const tag = parseEntityTag(etag);
      for (const other of variants) {
        if (other === entry || other.info.etag === null || !strongMatch(tag, parseEntityTag(other.info.etag))) continue;
        await this.saveFreshened(other, this.freshenEntry(req, directives, other, res.rawHeaders, requestTime, responseTime));
      }
    }
    return result.entry;
  }

  private freshenEntry(req: CacheRequest, directives: RequestDirectives, entry: StoredResponse, update: readonly string[], requestTime: number, responseTime: number) {
    return freshen(
      { entry, update, requestHeaders: req.headers, request: directives, requestTime, responseTime, tagHeader: this.tagHeader },
      this.policy,
    );
  }

  private async saveFreshened(old: StoredResponse, result: { entry: StoredResponse; storable: boolean }): Promise<void> {
    try {
      if (result.storable) await this.store.set(result.entry);
      else await this.store.delete(old.key);
    } catch (err) {
      this.log.warn({ err, url: old.url }, 'cache store update failed');
    }
  }

  /**
   * RFC 9111 §4.3.5: a 200 to a HEAD freshens the stored GET responses it could stand for when its
   * validators (and Content-Length) agree with them; otherwise they are no longer trusted.
   */
  private async freshenWithHead(
    req: CacheRequest,
    directives: RequestDirectives,
    variants: readonly StoredResponse[],
    res: UpstreamResponse,
    requestTime: number,
    responseTime: number,
  ): Promise<void> {
    const length = firstValue(res.headers['content-length']);
    for (const entry of variants) {
      if (entry.vary.length > 0 && !varyMatches(entry.vary, entry.varyValues, req.headers)) continue;
      const etag = firstValue(res.headers.etag);
      const lastModified = firstValue(res.headers['last-modified']);
      const agrees =
        (etag === undefined || (entry.info.etag !== null && parseEntityTag(etag).opaque === parseEntityTag(entry.info.etag).opaque)) &&
        (lastModified === undefined || lastModified === entry.info.lastModified) &&
        (length === undefined || Number(length) === entry.body.length);
      if (agrees) await this.saveFreshened(entry, this.freshenEntry(req, directives, entry, res.rawHeaders, requestTime, responseTime));
      else await this.store.delete(entry.key).catch(() => false);
    }
  }

  /** Background revalidation for stale-while-revalidate: at most one per entry at a time. */
  private revalidateInBackground(req: CacheRequest, fetch: UpstreamFetch, entry: StoredResponse, directives: RequestDirectives): void {
    if (this.backgroundRevalidations.has(entry.key)) return;
    this.backgroundRevalidations.add(entry.key);
    const run = async () => {
      const requestTime = this.now();
      const res = await fetch({ method: 'GET', headers: { ...validationHeaders(entry.info), range: null, 'if-range': null } });
      const responseTime = this.now();
      if (res.status === 304) {
        res.body.resume();
        if (validatorsIdentify(res.headers, entry.info)) {
          await this.saveFreshened(entry, this.freshenEntry(req, directives, entry, res.rawHeaders, requestTime, responseTime));
        }
        return;
      }
      if (ERROR_STATUSES.has(res.status)) {
        res.body.resume();
        return;
      }
      const decision = decideStorage(
        { method: 'GET', status: res.status, requestHeaders: req.headers, request: directives, headers: res.headers, rawHeaders: res.rawHeaders, requestTime, responseTime },
        this.policy,
      );
      if (!decision.store) {
        res.body.resume();
        return;
      }
      const body = await readBody(res.body, this.maxObjectSize);
      if (body === null) return;
      await this.storeNew(req, res, body, decision);
    };
    run()
      .catch((err: unknown) => this.log.debug({ err, url: req.url }, 'background revalidation failed'))
      .finally(() => this.backgroundRevalidations.delete(entry.key));
  }

  /**
   * Fetches a full response and stores it when it may. With `overrides` null the client's request is
   * sent as it is (its own conditionals and Range included).
   */
  private async fetchFull(
    req: CacheRequest,
    fetch: UpstreamFetch,
    directives: RequestDirectives,
    fwd: ForwardReason,
    existingLeader: Leader | null,
    overrides: UpstreamOverrides | null = null,
  ): Promise<CacheReply> {
    const leader = existingLeader ?? (req.method === 'GET' ? this.lead(req.url) : null);
    let res: UpstreamResponse;
    const requestTime = this.now();
    try {
      res = await fetch(overrides);
    } catch (err) {
      leader?.release();
      throw withCacheStatus(err, { fwd });
    }
    return this.fromUpstream(req, directives, res, fwd, requestTime, this.now(), leader, null);
  }

  /** Turns an upstream response into the reply, storing it on the way when it may be stored. */
  private fromUpstream(
    req: CacheRequest,
    directives: RequestDirectives,
    res: UpstreamResponse,
    fwd: ForwardReason,
    requestTime: number,
    responseTime: number,
    leader: Leader | null,
    replacing: StoredResponse | null,
  ): CacheReply {
    const decision = decideStorage(
      { method: req.method, status: res.status, requestHeaders: req.headers, request: directives, headers: res.headers, rawHeaders: res.rawHeaders, requestTime, responseTime },
      this.policy,
    );
    let detail: string | undefined;
    if (!decision.store) detail = req.method === 'HEAD' ? undefined : decision.detail;
    else if (ERROR_STATUSES.has(res.status) && replacing !== null && !ERROR_STATUSES.has(replacing.status)) detail = 'error-kept-stored';
    if (!decision.store && req.method === 'GET') this.uncacheable.mark(req.url);
    if (!decision.store || detail !== undefined) {
      leader?.release();
      return passThrough(res, cacheStatus({ fwd, fwdStatus: res.status, detail }), 'miss');
    }
    const recorder = new BodyRecorder(res.body, this.maxObjectSize, async (body) => {
      try {
        if (body !== null) await this.storeNew(req, res, body, decision);
      } finally {
        leader?.release();
      }
    });
    const status = cacheStatus({ fwd, fwdStatus: res.status, stored: true, ttl: ttlSeconds(decision.info, responseTime) });
    return { status: res.status, statusMessage: res.statusMessage, rawHeaders: [...res.rawHeaders, 'Cache-Status', status], body: recorder, cacheResult: 'miss' };
  }

  private async storeNew(req: CacheRequest, res: UpstreamResponse, body: Buffer, decision: Extract<ReturnType<typeof decideStorage>, { store: true }>): Promise<void> {
    const entry = newStoredResponse({
      url: req.url,
      requestHeaders: req.headers,
      status: res.status,
      statusMessage: res.statusMessage,
      rawHeaders: res.rawHeaders,
      headers: res.headers,
      body,
      info: decision.info,
      vary: decision.vary,
      omit: decision.omit,
      tagHeader: this.tagHeader,
    });
    try {
      if (await this.store.set(entry)) {
        this.stores++;
        this.uncacheable.clear(req.url);
      }
    } catch (err) {
      this.log.warn({ err, url: req.url }, 'cache store write failed');
    }
  }

  /** The reply for a stored response: 200/206/416/304 with Age and Cache-Status. */
  private fromStore(
    req: CacheRequest,
    entry: StoredResponse,
    now: number,
    result: string,
    status: CacheStatusParams,
    collapsedFrom?: ForwardReason,
    extraHeaders?: readonly string[],
  ): CacheReply {
    const params: CacheStatusParams = collapsedFrom === undefined ? status : { ...status, hit: false, fwd: collapsedFrom, collapsed: true };
    const age = String(Math.floor(currentAge(entry.info, now) / 1000));
    const cacheStatusValue = cacheStatus(params);
    const head = req.method === 'HEAD';

    if (isConditional(req.headers) && (entry.status === 200 || entry.status === 203) && notModified(req.headers, entry.info)) {
      const headers: string[] = [];
      const raw = entry.rawHeaders;
      for (let i = 0; i < raw.length; i += 2) if (!NOT_IN_304.has(raw[i]!.toLowerCase())) headers.push(raw[i]!, raw[i + 1]!);
      appendCookies(headers, extraHeaders);
      headers.push('Age', age, 'Cache-Status', cacheStatusValue);
      return { status: 304, statusMessage: 'Not Modified', rawHeaders: headers, body: null, cacheResult: result };
    }

    if (!head && entry.status === 200 && req.headers.range !== undefined) {
      const range = evaluateRange(req.headers, entry.body.length, entry.info);
      if (range.kind === 'partial') {
        const headers = withoutLength(entry.rawHeaders);
        appendCookies(headers, extraHeaders);
        headers.push(
          'Content-Range', `bytes ${range.start}-${range.end}/${entry.body.length}`,
          'Content-Length', String(range.end - range.start + 1),
          'Age', age,
          'Cache-Status', cacheStatusValue,
        );
        return { status: 206, statusMessage: 'Partial Content', rawHeaders: headers, body: entry.body.subarray(range.start, range.end + 1), cacheResult: result };
      }
      if (range.kind === 'unsatisfiable') {
        const headers = ['Content-Range', `bytes */${entry.body.length}`, 'Content-Length', '0', 'Age', age, 'Cache-Status', cacheStatusValue];
        return { status: 416, statusMessage: 'Range Not Satisfiable', rawHeaders: headers, body: null, cacheResult: result };
      }
    }

    const headers = entry.rawHeaders.slice();
    appendCookies(headers, extraHeaders);
    headers.push('Age', age, 'Cache-Status', cacheStatusValue);
    return { status: entry.status, statusMessage: entry.statusMessage, rawHeaders: headers, body: head ? null : entry.body, cacheResult: result };
  }

  // ---------------------------------------------------------------------------------------------
  // Other methods

  private async forward(req: CacheRequest, fetch: UpstreamFetch, fwd: ForwardReason, detail?: string): Promise<CacheReply> {
    let res: UpstreamResponse;
    try {
      res = await fetch(null);
    } catch (err) {
      throw withCacheStatus(err, { fwd, detail });
    }
    return passThrough(res, cacheStatus({ fwd, fwdStatus: res.status, detail }), 'bypass');
  }

  /** Forwards an unsafe method; a non-error answer invalidates what it may have changed (RFC 9111 §4.4). */
  private async unsafe(req: CacheRequest, fetch: UpstreamFetch): Promise<CacheReply> {
    let res: UpstreamResponse;
    try {
      res = await fetch(null);
    } catch (err) {
      throw withCacheStatus(err, { fwd: 'method' });
    }
    if (res.status >= 200 && res.status < 400) await this.invalidate(req.url, res.headers);
    return passThrough(res, cacheStatus({ fwd: 'method', fwdStatus: res.status }), 'bypass');
  }

  private async invalidate(url: string, headers: IncomingHttpHeaders): Promise<void> {
    const targets = new Set<string>([url]);
    const origin = originOf(url);
    for (const name of ['location', 'content-location'] as const) {
      const value = firstValue(headers[name]);
      if (value === undefined) continue;
      const key = cacheKeyFromUrl(value.trim(), url);
      if (key !== null && originOf(key) === origin) targets.add(key);
    }
    for (const target of targets) {
      this.onInvalidate?.(target);
      try {
        await this.store.deleteUrl(target);
      } catch (err) {
        this.log.warn({ err, url: target }, 'cache invalidation failed');
      }
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Request collapsing

  private canCollapse(req: CacheRequest, directives: RequestDirectives): boolean {
    return req.method === 'GET' && !directives.noCache && !this.uncacheable.has(req.url);
  }

  /** Registers the caller as the request fetching `url` (if none is), so that others can wait for it. */
  private lead(url: string): Leader | null {
    if (this.inFlight.has(url)) return null;
    let release!: () => void;
    const promise = new Promise<void>((resolve) => {
      release = resolve;
    });
    const leader: Leader = {
      promise,
      release: () => {
        if (this.inFlight.get(url) === leader) this.inFlight.delete(url);
        release();
      },
    };
    this.inFlight.set(url, leader);
    return leader;
  }

  private async waitFor(leader: Leader): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      leader.promise,
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, this.collapseTimeoutMs);
      }),
    ]);
    clearTimeout(timer);
  }
}

/** The most recent stored response whose Vary'd request headers match (RFC 9111 §4.1). */
function selectVariant(variants: readonly StoredResponse[], headers: IncomingHttpHeaders): StoredResponse | undefined {
  let best: StoredResponse | undefined;
  for (const v of variants) {
    if (v.vary.length > 0 && !varyMatches(v.vary, v.varyValues, headers)) continue;
    if (best === undefined || v.info.date > best.info.date || (v.info.date === best.info.date && v.info.responseTime > best.info.responseTime)) best = v;
  }
  return best;
}

function passThrough(res: UpstreamResponse, status: string, result: string): CacheReply {
  return { status: res.status, statusMessage: res.statusMessage, rawHeaders: [...res.rawHeaders, 'Cache-Status', status], body: res.body, cacheResult: result };
}

function withoutLength(raw: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const lower = raw[i]!.toLowerCase();
    if (lower !== 'content-length' && lower !== 'content-range') out.push(raw[i]!, raw[i + 1]!);
  }
  return out;
}

function appendCookies(headers: string[], cookies: readonly string[] | undefined): void {
  if (cookies === undefined) return;
  for (const c of cookies) headers.push('Set-Cookie', c);
}

function stripValidators(): UpstreamOverrides {
  return { headers: { 'if-none-match': null, 'if-modified-since': null, 'if-match': null, 'if-unmodified-since': null } };
}

function originOf(url: string): string {
  const i = url.indexOf('/', url.indexOf('//') + 2);
  return i < 0 ? url : url.slice(0, i);
}

/** A failure to get any response from upstream (connect errors, timeouts): eligible for stale-if-error. */
function isUpstreamFailure(err: unknown): boolean {
  return err instanceof ProxyError ? err.source === 'upstream' : true;
}

function onlyIfCachedMiss(fwd: ForwardReason): ProxyError {
  const status = cacheStatus({ detail: `only-if-cached-${fwd}` });
  return new ProxyError('only_if_cached', 'no stored response can answer this only-if-cached request', { headers: { 'Cache-Status': status } });
}

/** Adds Cache-Status to an upstream error so that the error reply carries it too. */
function withCacheStatus(err: unknown, params: CacheStatusParams): unknown {
  if (!(err instanceof ProxyError)) return err;
  return new ProxyError(err.code, err.message, {
    retryable: err.retryable,
    headers: { ...err.headers, 'Cache-Status': cacheStatus(params) },
    cause: err.cause,
  });
}

/** Builds the cache for a config: null when caching is disabled. */
export function createCache(config: CacheConfig, log: Logger, onInvalidate?: (url: string) => void): HttpCache | null {
  if (!config.enabled) return null;
  const storeOptions = {
    maxBytes: config.max_size,
    maxEntryBytes: config.max_object_size + ENTRY_HEADER_ALLOWANCE,
  };
  const store: CacheStore = config.store === 'disk' && config.dir !== undefined ? new DiskStore(config.dir, storeOptions) : new MemoryStore(storeOptions);
  return new HttpCache({ config, store, log, onInvalidate });
}
