/**
 * The admin listener's request handler: the dashboard (`/`), the JSON API (`/api/…`) and Prometheus
 * metrics (`/metrics`). Reads and steers the process only through AdminTarget.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { AggregatorRegistry } from 'prom-client';
import { normalizeAddress } from '../policy/cidr-list.js';
import type { Logger } from '../core/log.js';
import { LocalAdmin, type AdminCommand, type AdminPeers, type AnswerTo, type PurgeKind } from './admin-commands.js';
import { checkAccess, type Access } from './auth.js';
import { doorParam, entriesQuery, mergeEntryDetails, mergeEntryPages, type EntriesAnswer } from './cache-entries.js';
import { explain } from './explain.js';
import { HttpProblem, readJsonObject, sendJson, sendProblem } from './http-io.js';
import { mergeViews } from './merge-views.js';
import { redactedConfig } from './redact.js';
import type { AdminTarget, PoolView } from './sources.js';
import { isStaticPath, serveStatic } from './static-files.js';

export interface AdminHandlerOptions {
  /** The listener is reachable beyond loopback: every API call needs the token. */
  readonly exposed: boolean;
  readonly log: Logger;
  readonly version: string;
  /** With `--workers N`: the other workers, whose state every read and change covers too. */
  readonly peers?: AdminPeers;
}

type Reply = { readonly status: number; readonly body: unknown };

export class AdminHandler {
  private readonly local: LocalAdmin;

  constructor(
    private readonly target: AdminTarget,
    private readonly options: AdminHandlerOptions,
  ) {
    this.local = new LocalAdmin(target, options.version);
  }

  /** Every serving process's answer: this one's, or every worker's. */
  private async everywhere<C extends AdminCommand>(command: C): Promise<AnswerTo<C>[]> {
    const peers = this.options.peers;
    return peers === undefined ? [await this.local.run(command)] : peers.run(command);
  }

  /** The 'request' listener of the admin server. Never throws. */
  readonly handle = (req: IncomingMessage, res: ServerResponse): void => {
    this.dispatch(req, res).catch((err: unknown) => {
      if (err instanceof HttpProblem) {
        if (!res.headersSent) sendProblem(res, err);
        else res.destroy();
        return;
      }
      this.options.log.error({ err, url: req.url }, 'admin request failed');
      if (!res.headersSent) sendJson(res, 500, { error: 'the admin API failed to handle this request; see the log' });
      else res.destroy();
    });
  };

  private async dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', 'http://admin.invalid');
    const path = url.pathname;
    if (isStaticPath(path)) {
      allow(method, ['GET', 'HEAD']);
      serveStatic(path, method, res);
      return;
    }
    if (path === '/metrics') {
      allow(method, ['GET', 'HEAD']);
      this.authorize(req, 'read');
      // Counters add up over the workers; prom-client's aggregators say how each gauge combines.
      const registry = AggregatorRegistry.aggregate(await this.everywhere({ op: 'metrics' }));
      const body = await registry.metrics();
      res.writeHead(200, { 'content-type': registry.contentType, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
      res.end(method === 'HEAD' ? undefined : body);
      return;
    }
    if (path === '/api' || path.startsWith('/api/')) {
      const reply = await this.api(req, method, path, url.searchParams);
      sendJson(res, reply.status, reply.body);
      return;
    }
    throw new HttpProblem(404, `nothing at ${path}: try / (dashboard), /api/stats, /api/pools or /metrics`);
  }

  private async api(req: IncomingMessage, method: string, path: string, query: URLSearchParams): Promise<Reply> {
    const parts = path.split('/').slice(2).map(decodePart); // after "", "api"
    const [first, second, third, fourth, fifth, ...rest] = parts;
    if (rest.length === 0) {
      if (first === 'stats' && second === undefined) return this.read(req, method, () => this.stats());
      if (first === 'config' && second === undefined) return this.read(req, method, () => redactedConfig(this.target.config));
      if (first === 'explain' && second === undefined) return this.read(req, method, () => this.explain(req, query));
      if (first === 'pools' && second === undefined) return this.read(req, method, async () => ({ pools: await this.poolsView() }));
      if (first === 'pools' && second !== undefined && third === undefined) {
        return this.read(req, method, () => this.poolView(second));
      }
      if (first === 'pools' && second !== undefined && third === 'servers' && fourth !== undefined && (fifth === 'drain' || fifth === 'enable')) {
        allow(method, ['POST']);
        this.authorize(req, 'write');
        return this.setDrained(second, fourth, fifth === 'drain');
      }
      if (first === 'cache' && second === 'entries' && third === undefined) return this.read(req, method, () => this.cacheEntries(query));
      if (first === 'cache' && second === 'entry' && third === undefined) return this.read(req, method, () => this.cacheEntry(query));
      if (first === 'cache' && second === 'purge' && third === undefined) {
        allow(method, ['POST']);
        this.authorize(req, 'write');
        return this.purge(await readJsonObject(req));
      }
      if (first === 'reload' && second === undefined) {
        allow(method, ['POST']);
        this.authorize(req, 'write');
        return this.reload();
      }
    }
    throw new HttpProblem(404, `no admin API at ${path}`, {}, {
      endpoints: [
        'GET /api/stats',
        'GET /api/pools',
        'GET /api/pools/:pool',
        'POST /api/pools/:pool/servers/:id/drain',
        'POST /api/pools/:pool/servers/:id/enable',
        'GET /api/cache/entries?prefix=…&door=…&limit=…&cursor=…',
        'GET /api/cache/entry?url=…&door=…',
        'POST /api/cache/purge {"url"|"prefix"|"tag": "..."}',
        'POST /api/reload',
        'GET /api/config',
        'GET /api/explain?url=…&client=…&user_agent=…',
        'GET /metrics',
      ],
    });
  }

  private async read(req: IncomingMessage, method: string, build: () => unknown): Promise<Reply> {
    allow(method, ['GET', 'HEAD']);
    this.authorize(req, 'read');
    return { status: 200, body: await build() };
  }

  private async stats(): Promise<unknown> {
    const views = await this.everywhere({ op: 'stats' });
    const workers = views.map((v) => ({ pid: v.pid, requests: (v.requests as { total: number }).total }));
    return { ...mergeViews(views), workers };
  }

  private async poolsView(): Promise<unknown[]> {
    return mergeViews(await this.everywhere({ op: 'pools' }));
  }

  private async poolView(name: string): Promise<unknown> {
    this.pool(name);
    return (await this.poolsView()).find((p) => (p as { name: string }).name === name);
  }

  private authorize(req: IncomingMessage, access: Access): void {
    const denial = checkAccess(req, access, this.target.config.admin?.token, this.options.exposed);
    if (denial !== null) throw new HttpProblem(denial.status, denial.message, denial.headers);
  }

  private pool(name: string): PoolView {
    const pool = this.target.pools.get(name);
    if (pool === undefined) {
      const known = [...this.target.pools.keys()];
      throw new HttpProblem(404, `no pool "${name}" (pools: ${known.length ? known.join(', ') : 'none'})`);
    }
    return pool;
  }

  private async setDrained(poolName: string, server: string, drain: boolean): Promise<Reply> {
    const pool = this.pool(poolName);
    const snapshot = pool.snapshot();
    const match = snapshot.find((s) => s.id === server) ?? snapshot.find((s) => sameUrl(s.url, server));
    if (match === undefined) {
      throw new HttpProblem(404, `pool "${poolName}" has no server "${server}" (give its id or URL; ids: ${snapshot.map((s) => `${s.id} = ${s.url}`).join(', ')})`);
    }
    await this.everywhere({ op: 'drain', pool: poolName, server: match.id, drain });
    const view = (await this.poolView(poolName)) as { servers: { id: string }[] };
    return { status: 200, body: { pool: poolName, server: view.servers.find((s) => s.id === match.id) } };
  }

  private async purge(body: Record<string, unknown>): Promise<Reply> {
    const { door, ...rest } = body;
    const given = (['url', 'prefix', 'tag'] as const).filter((k) => rest[k] !== undefined);
    const unknown = Object.keys(rest).filter((k) => k !== 'url' && k !== 'prefix' && k !== 'tag');
    if (unknown.length > 0) throw new HttpProblem(400, `unknown field ${unknown.map((k) => `"${k}"`).join(', ')}: expected exactly one of "url", "prefix" or "tag" (and "door" with "url")`);
    if (given.length !== 1) throw new HttpProblem(400, 'expected exactly one of "url", "prefix" or "tag", e.g. {"url": "http://example.com/page"}');
    const kind: PurgeKind = given[0]!;
    const value = rest[kind];
    if (typeof value !== 'string' || value === '') throw new HttpProblem(400, `"${kind}": expected a non-empty string`);
    if (kind !== 'tag' && !/^https?:\/\/[^/]/i.test(value)) {
      throw new HttpProblem(400, `"${kind}": expected an absolute http:// or https:// URL (the cache key includes the host), got "${value}"`);
    }
    if (door !== undefined && (kind !== 'url' || (door !== 'reverse' && door !== 'forward'))) {
      throw new HttpProblem(400, kind === 'url' ? `"door": expected "reverse" or "forward", got ${JSON.stringify(door)}` : '"door": only with "url"');
    }
    if (this.target.cache === null) throw new HttpProblem(409, 'the cache is off (cache.enabled: false): nothing to purge');
    const purged = (await this.everywhere({ op: 'purge', kind, value, door: door as 'reverse' | 'forward' | undefined })).reduce((a, b) => a + b, 0);
    this.options.log.info({ [kind]: value, door, purged }, 'cache purged');
    return { status: 200, body: door === undefined ? { purged, [kind]: value } : { purged, [kind]: value, door } };
  }

  private async cacheEntries(params: URLSearchParams): Promise<EntriesAnswer> {
    const query = entriesQuery(params);
    if (this.target.cache === null) throw new HttpProblem(409, 'the cache is off (cache.enabled: false): nothing is stored');
    const pages = (await this.everywhere({ op: 'cacheEntries', query })).filter((p) => p !== null);
    const answer = mergeEntryPages(pages, query);
    return this.target.config.cache.redis ? { ...answer, sharedTier: 'not listed: entries only the shared tier (Redis) holds are not shown' } : answer;
  }

  private async cacheEntry(params: URLSearchParams): Promise<unknown> {
    const url = params.get('url');
    if (!url || !/^https?:\/\/[^/]/i.test(url)) {
      throw new HttpProblem(400, `url: expected an absolute http:// or https:// URL, got "${url ?? ''}" (e.g. ?url=http://example.com/page)`);
    }
    const door = doorParam(params);
    if (this.target.cache === null) throw new HttpProblem(409, 'the cache is off (cache.enabled: false): nothing is stored');
    const variants = mergeEntryDetails(await this.everywhere({ op: 'cacheEntry', url, door }));
    if (variants.length === 0) throw new HttpProblem(404, `nothing is stored for ${url}${door === undefined ? '' : ` in the ${door} cache`}`);
    return { url: variants[0]!.url, variants };
  }

  private async reload(): Promise<Reply> {
    if (!this.target.canReload) {
      throw new HttpProblem(409, 'nothing to reload from: Portico was started without --config');
    }
    // Every worker reads the same file: they all take it or all keep the previous config.
    const [answer] = await this.everywhere({ op: 'reload' });
    if (answer === undefined) throw new Error('no worker answered the reload');
    if (answer.reloaded) return { status: 200, body: { reloaded: true, changes: answer.outcome.changes, restartNeeded: answer.outcome.restartNeeded } };
    return { status: 422, body: { reloaded: false, error: 'the config was rejected; the previous config keeps running', problems: answer.problems } };
  }

  private async explain(req: IncomingMessage, query: URLSearchParams): Promise<unknown> {
    const doorName = query.get('door') ?? 'forward';
    if (doorName !== 'forward' && doorName !== 'reverse') throw new HttpProblem(400, `door: expected "forward" or "reverse", got "${doorName}"`);
    const view = doorName === 'forward' ? this.target.forward : this.target.reverse;
    const listen = doorName === 'forward' ? this.target.config.forward?.listen : this.target.config.reverse?.listen;
    if (view === null || listen === undefined) throw new HttpProblem(409, `no ${doorName} proxy is configured (no ${doorName} section)`);
    const url = query.get('url');
    if (!url) {
      throw new HttpProblem(400, 'expected ?url=… (an http:// or https:// URL, or host:port for CONNECT), with optional &door=forward|reverse&client=…&user_agent=…&user=…&method=…&upgrade=…');
    }
    const bound = this.target.addresses()[doorName];
    const port = bound === undefined ? listen.port : Number(bound.slice(bound.lastIndexOf(':') + 1));
    try {
      return await explain(view.door, { host: listen.host, port }, {
        door: doorName,
        url,
        client: query.get('client') ?? normalizeAddress(req.socket.remoteAddress),
        userAgent: query.get('user_agent') ?? undefined,
        user: query.get('user') ?? undefined,
        method: query.get('method') ?? 'GET',
        upgrade: query.get('upgrade') ?? undefined,
      });
    } catch (err) {
      if (err instanceof TypeError) throw new HttpProblem(400, err.message);
      throw err;
    }
  }
}

function allow(method: string, methods: readonly string[]): void {
  if (!methods.includes(method)) throw new HttpProblem(405, `use ${methods.join(' or ')}`, { allow: methods.join(', ') });
}

function decodePart(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new HttpProblem(400, `bad percent-encoding in "${part}"`);
  }
}

function sameUrl(a: string, b: string): boolean {
  try {
    return new URL(a).href === new URL(b).href;
  } catch {
    return false;
  }
}
