/**
 * The admin listener's request handler: the dashboard (`/`), the JSON API (`/api/…`) and Prometheus
 * metrics (`/metrics`). Reads and steers the process only through AdminTarget.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ConfigError } from '../config/errors.js';
import { normalizeAddress } from '../policy/cidr-list.js';
import type { Logger } from '../log.js';
import { checkAccess, type Access } from './auth.js';
import { explainForward } from './explain.js';
import { HttpProblem, readJsonObject, sendJson, sendProblem } from './http-io.js';
import { AdminMetrics } from './metrics.js';
import { redactedConfig } from './redact.js';
import type { AdminTarget, PoolView } from './sources.js';
import { isStaticPath, serveStatic } from './static-files.js';
import { poolsView, poolView, statsView } from './views.js';

export interface AdminHandlerOptions {
  /** The listener is reachable beyond loopback: every API call needs the token. */
  readonly exposed: boolean;
  readonly log: Logger;
  readonly version: string;
}

type Reply = { readonly status: number; readonly body: unknown };

export class AdminHandler {
  private metrics: AdminMetrics | null = null;

  constructor(
    private readonly target: AdminTarget,
    private readonly options: AdminHandlerOptions,
  ) {}

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
      this.metrics ??= new AdminMetrics(this.target, this.options.version);
      const { contentType, body } = await this.metrics.render();
      res.writeHead(200, { 'content-type': contentType, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
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
      if (first === 'stats' && second === undefined) return this.read(req, method, () => statsView(this.target, this.options.version));
      if (first === 'config' && second === undefined) return this.read(req, method, () => redactedConfig(this.target.config));
      if (first === 'explain' && second === undefined) return this.read(req, method, () => this.explain(req, query));
      if (first === 'pools' && second === undefined) return this.read(req, method, () => ({ pools: poolsView(this.target) }));
      if (first === 'pools' && second !== undefined && third === undefined) {
        return this.read(req, method, () => poolView(this.target, second, this.pool(second)));
      }
      if (first === 'pools' && second !== undefined && third === 'servers' && fourth !== undefined && (fifth === 'drain' || fifth === 'enable')) {
        allow(method, ['POST']);
        this.authorize(req, 'write');
        return this.setDrained(second, fourth, fifth === 'drain');
      }
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
        'POST /api/cache/purge {"url"|"prefix"|"tag": "..."}',
        'POST /api/reload',
        'GET /api/config',
        'GET /api/explain?url=…&client=…&user_agent=…',
        'GET /metrics',
      ],
    });
  }

  private read(req: IncomingMessage, method: string, build: () => unknown): Reply {
    allow(method, ['GET', 'HEAD']);
    this.authorize(req, 'read');
    return { status: 200, body: build() };
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

  private setDrained(poolName: string, server: string, drain: boolean): Reply {
    const pool = this.pool(poolName);
    const snapshot = pool.snapshot();
    const match = snapshot.find((s) => s.id === server) ?? snapshot.find((s) => sameUrl(s.url, server));
    if (match === undefined) {
      throw new HttpProblem(404, `pool "${poolName}" has no server "${server}" (give its id or URL; ids: ${snapshot.map((s) => `${s.id} = ${s.url}`).join(', ')})`);
    }
    if (drain) pool.drain(match.id);
    else pool.enable(match.id);
    const view = poolView(this.target, poolName, pool);
    return { status: 200, body: { pool: poolName, server: view.servers.find((s) => s.id === match.id) } };
  }

  private async purge(body: Record<string, unknown>): Promise<Reply> {
    const given = (['url', 'prefix', 'tag'] as const).filter((k) => body[k] !== undefined);
    const unknown = Object.keys(body).filter((k) => k !== 'url' && k !== 'prefix' && k !== 'tag');
    if (unknown.length > 0) throw new HttpProblem(400, `unknown field ${unknown.map((k) => `"${k}"`).join(', ')}: expected exactly one of "url", "prefix" or "tag"`);
    if (given.length !== 1) throw new HttpProblem(400, 'expected exactly one of "url", "prefix" or "tag", e.g. {"url": "http://example.com/page"}');
    const kind = given[0]!;
    const value = body[kind];
    if (typeof value !== 'string' || value === '') throw new HttpProblem(400, `"${kind}": expected a non-empty string`);
    if (kind !== 'tag' && !/^https?:\/\/[^/]/i.test(value)) {
      throw new HttpProblem(400, `"${kind}": expected an absolute http:// or https:// URL (the cache key includes the host), got "${value}"`);
    }
    const cache = this.target.cache;
    if (cache === null) throw new HttpProblem(409, 'the cache is off (cache.enabled: false): nothing to purge');
    const purged = kind === 'url' ? await cache.purgeUrl(value) : kind === 'prefix' ? await cache.purgePrefix(value) : await cache.purgeTag(value);
    this.options.log.info({ [kind]: value, purged }, 'cache purged');
    return { status: 200, body: { purged, [kind]: value } };
  }

  private reload(): Reply {
    if (!this.target.canReload) {
      throw new HttpProblem(409, 'nothing to reload from: Portico was started without --config');
    }
    try {
      const outcome = this.target.reload();
      return { status: 200, body: { reloaded: true, changes: outcome.changes, restartNeeded: outcome.restartNeeded } };
    } catch (err) {
      if (err instanceof ConfigError) {
        return { status: 422, body: { reloaded: false, error: 'the config was rejected; the previous config keeps running', problems: err.problems } };
      }
      throw err;
    }
  }

  private explain(req: IncomingMessage, query: URLSearchParams): unknown {
    const forward = this.target.forward;
    const config = this.target.config.forward;
    if (forward === null || config === undefined) throw new HttpProblem(409, 'no forward proxy is configured (no forward section)');
    const url = query.get('url');
    if (!url) throw new HttpProblem(400, 'expected ?url=… (an http:// or https:// URL, or host:port for CONNECT), with optional &client=…&user_agent=…&user=…&method=…');
    try {
      return explainForward(config, forward.rules, {
        url,
        client: query.get('client') ?? normalizeAddress(req.socket.remoteAddress),
        userAgent: query.get('user_agent') ?? undefined,
        user: query.get('user') ?? undefined,
        method: query.get('method') ?? 'GET',
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
