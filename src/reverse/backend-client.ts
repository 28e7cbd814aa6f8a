/**
 * The reverse proxy's connections to its backends: one undici keep-alive `Pool` per backend (pipelining
 * 1), requests sent through src/upstream/undici-exchange.ts.
 *
 * The undici pools belong to the Backend objects of one runtime: `closeBackendClients()` closes them when
 * the runtime is retired (reload, shutdown). Requests already sent finish first; a request that still
 * reaches a retired backend (queued, or a retry) gets a connection of its own, closed after it.
 */
import type { ServerResponse } from 'node:http';
import { Pool as UndiciPool } from 'undici';
import type { Backend } from '../balance/backend.js';
import type { Pool } from '../balance/pool.js';
import { sendWithUndici, type UndiciRoute } from '../upstream/undici-exchange.js';
import type { UpstreamResponse, OutboundRequest, Timeouts } from '../core/messages.js';
import { POOL_OPTIONS, upstreamConnector } from '../upstream/connector.js';

/** How to reach one backend: its label and its undici pool. */
class BackendClient {
  readonly label: string;
  /** Sent with every request, so that undici never takes the TLS server name from a Host header. */
  readonly servername: string;
  readonly connectMs: number;
  /** The same backend with another connect timeout (not seen with one runtime's routes; kept for safety). */
  next: BackendClient | null = null;
  /** Requests sent and not yet on a connection (nor settled): while 0, undici has no reason to connect. */
  waiting = 0;
  private dispatcher: UndiciPool | null = null;
  private retired = false;

  constructor(readonly backend: Backend, connectMs: number) {
    const url = backend.url;
    this.label = url.origin;
    this.servername = url.hostname;
    this.connectMs = connectMs;
  }

  /** The pool to send on, or null once retired (the caller then uses a one-off pool). */
  live(): UndiciPool | null {
    if (this.retired) return null;
    return (this.dispatcher ??= this.create());
  }

  get isRetired(): boolean {
    return this.retired;
  }

  retire(): Promise<void> {
    this.retired = true;
    const dispatcher = this.dispatcher;
    this.dispatcher = null;
    // close() only rejects for a pool already closed: nothing to report.
    return dispatcher === null ? Promise.resolve() : dispatcher.close().catch(() => undefined);
  }

  create(): UndiciPool {
    return new UndiciPool(this.label, { ...POOL_OPTIONS, connect: upstreamConnector(this.connectMs, this) });
  }
}

const clients = new WeakMap<Backend, BackendClient>();

/** The backend's client for this connect timeout (pools of one runtime share one timeout: one client). */
function clientFor(backend: Backend, connectMs: number): BackendClient {
  let client = clients.get(backend);
  if (client === undefined) {
    client = new BackendClient(backend, connectMs);
    clients.set(backend, client);
    return client;
  }
  while (client.connectMs !== connectMs) {
    if (client.next === null) {
      client.next = new BackendClient(backend, connectMs);
      if (client.isRetired) void client.next.retire();
    }
    client = client.next;
  }
  return client;
}

/** Closes the undici pools of a retired runtime's backends (graceful: requests in flight finish). */
export function closeBackendClients(pools: Iterable<Pool>): Promise<void> {
  const closing: Promise<void>[] = [];
  for (const pool of pools) {
    for (const backend of pool.backends) {
      for (let client = clients.get(backend) ?? null; client !== null; client = client.next) closing.push(client.retire());
    }
  }
  return Promise.all(closing).then(() => undefined);
}

/** The label of a backend in logs and errors (its origin), without building it per request. */
export function backendLabel(backend: Backend, connectMs: number): string {
  return clientFor(backend, connectMs).label;
}

/**
 * Sends `out` to `backend` (of `pool`). Resolves with the response once its head is in; the body releases
 * the backend in the pool when it ends ('ok') or breaks off ('failure'; a client leaving is 'ok'). When the
 * promise rejects, releasing the backend is the caller's business. `client` closing early cancels it all.
 */
export function sendToBackend(
  pool: Pool,
  backend: Backend,
  out: OutboundRequest,
  timeouts: Timeouts,
  client: ServerResponse,
  started: number,
): Promise<UpstreamResponse> {
  const backendClient = clientFor(backend, timeouts.connectMs);
  const live = backendClient.live();
  const dispatcher = live ?? backendClient.create();
  const route: UndiciRoute = {
    label: backendClient.label,
    origin: backendClient.label,
    servername: backendClient.servername,
    waiters: backendClient,
    // A body that breaks off counts against the backend; a client leaving does not, and neither does an
    // HTTP error status: as in nginx (`proxy_next_upstream error timeout`), the app's own 5xx is its answer.
    onBodyDone: (failure) => pool.release(backend, failure === null ? 'ok' : 'failure', performance.now() - started, failure?.message),
  };
  const response = sendWithUndici(dispatcher, route, out, timeouts, client);
  // A one-off pool for a retired backend: closed once its request is done.
  if (live === null) dispatcher.close().catch(() => undefined);
  return response;
}
