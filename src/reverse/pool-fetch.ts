/**
 * The reverse proxy's way to reach an upstream: pick a backend from the route's pool, send the request,
 * and on a failure that nothing upstream could have acted on, try the next backend (up to `retries`).
 * The backend is held (in-flight) until its response body has been read to the end or abandoned.
 */
import type { ClientRequest, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { Backend } from '../balance/backend.js';
import type { Pool } from '../balance/pool.js';
import type { BalanceRequest } from '../balance/types.js';
import type { UpstreamOverrides, UpstreamResponse } from '../cache/types.js';
import { ProxyError, upstreamError } from '../proxy/errors.js';
import { sendUpstream, withOverrides, type Timeouts } from '../proxy/upstream-request.js';
import { targetFor } from './backend-targets.js';

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
  const method = overrides?.method ?? request.method;
  const headers = withOverrides(request.headers, overrides);
  const client = request.clientResponse;
  const abortWithClient = (upstream: ClientRequest) => {
    // The client may have left while this request waited (for a backend, or a collapsed fetch).
    if (clientGone(client)) upstream.destroy();
    else client.once('close', () => {
      if (!client.writableFinished) upstream.destroy();
    });
  };
  // A request waiting in the pool's queue leaves it when its client goes away.
  const signal = pool.spec.queue.size > 0 ? abortWhenGone(client) : undefined;
  let tried: Backend[] | null = null;
  let lastError: ProxyError | null = null;
  for (let attempt = 0; ; attempt++) {
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
      const response = await sendUpstream(
        targetFor(backend),
        { method, path: request.path, headers, body: request.body },
        request.timeouts,
        abortWithClient,
      );
      request.onBackend(backend);
      holdUntilBodyDone(pool, backend, response, started);
      return response;
    } catch (err) {
      // A request cancelled because its client left is not the backend's failure (as for a body below).
      const gone = clientGone(client);
      pool.release(backend, gone ? 'ok' : 'failure', performance.now() - started);
      const error = upstreamError(err, backend.url.origin);
      if (!error.retryable || attempt >= pool.spec.retries || gone) throw error;
      lastError = error;
      (tried ??= []).push(backend);
    }
  }
}

/**
 * A body that breaks off counts against the backend; a client leaving does not, and neither does an
 * HTTP error status: as in nginx (`proxy_next_upstream error timeout`), the app's own 5xx is its answer.
 */
function holdUntilBodyDone(pool: Pool, backend: Backend, response: UpstreamResponse, started: number): void {
  let failed = false;
  response.body.once('error', () => {
    failed = true;
  });
  response.body.once('close', () => {
    pool.release(backend, failed ? 'failure' : 'ok', performance.now() - started);
  });
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
