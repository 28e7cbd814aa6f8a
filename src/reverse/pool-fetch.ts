/**
 * The reverse proxy's way to reach an upstream: pick a backend from the route's pool, send the request,
 * and on a failure that nothing upstream could have acted on, try the next backend (up to `retries`).
 * The backend is held (in-flight) until its response body has been read to the end or abandoned.
 */
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { Backend } from '../balance/backend.js';
import type { Pool } from '../balance/pool.js';
import type { BalanceRequest } from '../balance/types.js';
import type { UpstreamOverrides, UpstreamResponse } from '../cache/types.js';
import { ProxyError, upstreamError } from '../proxy/errors.js';
import { withOverrides, type OutboundRequest, type Timeouts } from '../proxy/upstream-request.js';
import { backendLabel, sendToBackend } from './backend-client.js';

export interface PoolRequest {
  readonly pool: Pool;
  readonly timeouts: Timeouts;
  readonly balance: BalanceRequest;
  readonly method: string;
  readonly path: string;
  readonly headers: OutgoingHttpHeaders;
  readonly body: Readable | null;
  /** The client's response: closing it early aborts the upstream request. */
  readonly clientResponse: ServerResponse;
  /** Told which backend answered (for sticky cookies and logs). */
  onBackend(backend: Backend): void;
}

export async function fetchFromPool(request: PoolRequest, overrides: UpstreamOverrides | null): Promise<UpstreamResponse> {
  const { pool } = request;
  // The request as the door built it, or with the cache's changes (a copy).
  const out: OutboundRequest =
    overrides === null
      ? request
      : { method: overrides.method ?? request.method, path: request.path, headers: withOverrides(request.headers, overrides), body: request.body };
  const client = request.clientResponse;
  // A request waiting in the pool's queue leaves it when its client goes away.
  const signal = pool.spec.queue.size > 0 ? abortWhenGone(client) : undefined;
  let tried: Backend[] | null = null;
  let lastError: ProxyError | null = null;
  for (let attempt = 0; ; attempt++) {
    // The client may have left while this request waited (for a backend, or a collapsed fetch).
    if (clientGone(client)) throw lastError ?? clientLeft();
    let backend: Backend;
    try {
      const picked = pool.acquire(request.balance, tried, signal);
      backend = picked instanceof Promise ? await picked : picked;
    } catch (err) {
      // Every backend was tried: report why the last one failed rather than "no backend".
      throw lastError ?? err;
    }
    const started = performance.now();
    try {
      const response = await sendToBackend(pool, backend, out, request.timeouts, client, started);
      request.onBackend(backend);
      return response;
    } catch (err) {
      // A request cancelled because its client left is not the backend's failure (as for a body).
      const gone = clientGone(client);
      const error = err instanceof ProxyError ? err : upstreamError(err, backendLabel(backend, request.timeouts.connectMs));
      pool.release(backend, gone ? 'ok' : 'failure', performance.now() - started, error.message);
      if (!error.retryable || attempt >= pool.spec.retries || gone) throw error;
      lastError = error;
      (tried ??= []).push(backend);
    }
  }
}

/** True once the client's connection closed before its response was complete. */
function clientGone(client: ServerResponse): boolean {
  return client.destroyed && !client.writableFinished;
}

function clientLeft(): ProxyError {
  return new ProxyError('connection_reset', 'the client went away');
}

function abortWhenGone(client: ServerResponse): AbortSignal {
  const controller = new AbortController();
  if (clientGone(client)) controller.abort(clientLeft());
  else client.once('close', () => {
    if (!client.writableFinished) controller.abort(clientLeft());
  });
  return controller.signal;
}
