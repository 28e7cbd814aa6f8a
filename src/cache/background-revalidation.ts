/**
 * stale-while-revalidate (RFC 5861 §3): the stale response is served at once and the origin is asked
 * in the background, at most once per entry at a time. Nobody waits for the answer: whatever it is —
 * a 304, an error, a body that breaks off — it is owned here, and only a complete storable response
 * (or a 304 that identifies the entry) changes what is stored.
 */
import type { UpstreamFetch } from '../core/messages.js';
import { discard } from '../core/streams.js';
import { validationHeaders, validatorsIdentify } from './conditional-request.js';
import type { CacheContext } from './context.js';
import { decideResponse, ERROR_STATUSES, storeInBackground } from './fill.js';
import { freshenEntry, saveFreshened } from './revalidate.js';
import type { RequestDirectives } from './shared-cache-policy.js';
import type { StoredResponse } from './stored-response.js';
import type { CacheRequest } from './types.js';

export class BackgroundRevalidations {
  /** Entry keys with a background revalidation under way. */
  private readonly running = new Set<string>();

  constructor(private readonly ctx: CacheContext) {}

  start(req: CacheRequest, fetch: UpstreamFetch, entry: StoredResponse, directives: RequestDirectives): void {
    if (this.running.has(entry.key)) return;
    this.running.add(entry.key);
    this.run(req, fetch, entry, directives)
      .catch((err: unknown) => this.ctx.log.debug({ err, url: req.url }, 'background revalidation failed'))
      .finally(() => this.running.delete(entry.key));
  }

  private async run(req: CacheRequest, fetch: UpstreamFetch, entry: StoredResponse, directives: RequestDirectives): Promise<void> {
    const { ctx } = this;
    const requestTime = ctx.now();
    const res = await fetch({ method: 'GET', headers: { ...validationHeaders(entry.info), range: null, 'if-range': null } });
    const responseTime = ctx.now();
    if (res.status === 304) {
      discard(res.body);
      if (validatorsIdentify(res.headers, entry.info)) {
        await saveFreshened(ctx, entry, freshenEntry(ctx, req, directives, entry, res.rawHeaders, requestTime, responseTime));
      }
      return;
    }
    if (ERROR_STATUSES.has(res.status)) {
      discard(res.body);
      return;
    }
    await storeInBackground(ctx, req, res, decideResponse(ctx, { ...req, method: 'GET' }, directives, res, requestTime, responseTime));
  }
}
