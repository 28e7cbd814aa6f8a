/**
 * The setup of the cache tests over real sockets: Portico's reverse proxy, cache on, in front of one
 * origin on which every test registers its own paths (so tests never share URLs and can count the
 * requests that reach the origin). Portico and the origin share a TestClock: a test lets a stored
 * response age with `clock.advance(ms)`, never by sleeping. The clock is shared by the file's tests,
 * so they run one after another.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterAll, beforeAll } from 'vitest';
import { request, type Reply } from '../helpers/http.js';
import { TestClock } from '../helpers/clock.js';
import { startOrigin, type Origin } from '../helpers/origin.js';
import { reverseConfig, startPortico, type RunningPortico } from '../helpers/portico.js';

export type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void;

export class RoutedGateway {
  origin!: Origin;
  portico!: RunningPortico;
  /** `http://host:port` of the reverse proxy. */
  base = '';
  /** Portico's and the origin's clock. */
  readonly clock = new TestClock();
  private readonly routes = new Map<string, Handler>();
  private n = 0;

  constructor(private readonly prefix: string) {}

  /** A fresh path served by `handler`. */
  readonly path = (handler: Handler): string => {
    const p = `${this.prefix}${++this.n}`;
    this.routes.set(p, handler);
    return p;
  };

  /** A fresh path that answers 200 `good` with `cacheControl` while `failing` is false, else 503 `down`. */
  readonly failable = (cacheControl: string): { readonly path: string; failing: boolean } => {
    const state = {
      failing: false,
      path: this.path((_req, res) => {
        if (state.failing) {
          res.statusCode = 503;
          res.end('down');
          return;
        }
        res.setHeader('Cache-Control', cacheControl);
        res.end('good');
      }),
    };
    return state;
  };

  readonly get = (p: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Reply> => request(`${this.base}${p}`, { headers, method });

  route(req: IncomingMessage, res: ServerResponse, body: string): void {
    const handler = this.routes.get((req.url ?? '').split('?')[0]!);
    if (handler) handler(req, res, body);
    else {
      res.statusCode = 404;
      res.end('no route');
    }
  }
}

/** Starts the gateway before the file's tests (paths named `prefix1`, `prefix2`, …) and stops it after. */
export function routedGateway(prefix: string, cache: Record<string, unknown>): RoutedGateway {
  const gateway = new RoutedGateway(prefix);
  beforeAll(async () => {
    gateway.origin = await startOrigin((req, res, body) => gateway.route(req, res, body), { clock: gateway.clock });
    gateway.portico = await startPortico(reverseConfig([gateway.origin.url], { retries: 0, passive: { max_fails: 0 } }, { cache }), { now: gateway.clock.now });
    gateway.base = gateway.portico.reverseUrl;
  });
  afterAll(async () => {
    await gateway.portico.stop();
    await gateway.origin.close();
  });
  return gateway;
}
