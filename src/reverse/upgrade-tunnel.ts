/**
 * Upgrade (WebSocket) pass-through: the handshake goes to a backend chosen by the pool; on 101 the two
 * sockets are joined both ways until either side closes. Any other answer is relayed as is.
 */
import { request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Backend } from '../balance/backend.js';
import type { Pool } from '../balance/pool.js';
import type { BalanceRequest } from '../balance/types.js';
import type { Logger } from '../log.js';
import { ERROR_KINDS, ProxyError } from '../proxy/errors.js';
import { upstreamError } from '../proxy/errors.js';
import type { Timeouts } from '../proxy/upstream-request.js';
import { targetFor } from './backend-targets.js';

export interface UpgradeRequest {
  readonly pool: Pool;
  readonly balance: BalanceRequest;
  readonly method: string;
  readonly path: string;
  readonly headers: OutgoingHttpHeaders;
  readonly clientSocket: Duplex;
  readonly head: Buffer;
  readonly timeouts: Timeouts;
  readonly log: Logger;
}

/** Bytes a client may send before the backend has accepted the upgrade (kept, then sent on). */
const EARLY_BYTES_LIMIT = 64 * 1024;

export function tunnelUpgrade(up: UpgradeRequest): void {
  const client = up.clientSocket;
  client.on('error', () => client.destroy());
  const early = readEarly(client);
  let backend: Backend;
  try {
    const picked = up.pool.acquire(up.balance, null, up.pool.spec.queue.size > 0 ? abortOnClose(client) : undefined);
    if (picked instanceof Promise) {
      picked.then((b) => connect(up, b, early), (err: ProxyError) => refuse(client, err));
      return;
    }
    backend = picked;
  } catch (err) {
    refuse(client, err as ProxyError);
    return;
  }
  connect(up, backend, early);
}

interface EarlyBytes {
  /** Stops reading for the proxy's own sake and returns what the client sent so far. */
  take(): Buffer[];
}

/**
 * Reads the client while its upgrade waits for a backend and its answer: a socket that is not read
 * never reports that its peer closed, so a client leaving would hold a queue slot or the backend until
 * a timeout. The server's sockets allow half-open connections: a client's FIN before the answer is taken
 * as leaving (as nginx does) and closes the socket, which cancels the rest. Early bytes are kept (up to
 * EARLY_BYTES_LIMIT, then reading pauses) and sent on once the backend has accepted the upgrade.
 */
function readEarly(client: Duplex): EarlyBytes {
  const chunks: Buffer[] = [];
  let bytes = 0;
  const onData = (chunk: Buffer) => {
    chunks.push(chunk);
    bytes += chunk.length;
    if (bytes >= EARLY_BYTES_LIMIT) client.pause();
  };
  const onEnd = () => client.destroy();
  client.on('data', onData);
  client.once('end', onEnd);
  client.resume();
  return {
    take: () => {
      client.off('data', onData);
      client.off('end', onEnd);
      return chunks.splice(0);
    },
  };
}

function connect(up: UpgradeRequest, backend: Backend, early: EarlyBytes): void {
  const client = up.clientSocket;
  const target = targetFor(backend);
  const started = performance.now();
  let released = false;
  const release = (ok: boolean) => {
    if (released) return;
    released = true;
    up.pool.release(backend, ok ? 'ok' : 'failure', performance.now() - started, 'the upgrade (WebSocket) request failed');
  };
  if (client.destroyed) {
    // The client left while the request waited in the pool's queue.
    release(true);
    return;
  }
  const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
  const req = send({
    host: target.hostname,
    port: target.port,
    method: up.method,
    path: up.path,
    headers: up.headers,
    agent: false,
    timeout: up.timeouts.connectMs,
  });
  req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
  req.on('upgrade', (res: IncomingMessage, upstream: Socket, upstreamHead: Buffer) => {
    upstream.setTimeout(0);
    const sentEarly = early.take();
    client.write(statusBlock(res));
    if (upstreamHead.length > 0) client.write(upstreamHead);
    if (up.head.length > 0) upstream.write(up.head);
    for (const chunk of sentEarly) upstream.write(chunk);
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
    upstream.on('close', () => {
      client.destroy();
      release(true);
    });
    client.on('close', () => upstream.destroy());
    upstream.pipe(client);
    client.pipe(upstream);
  });
  req.on('response', (res: IncomingMessage) => {
    // The backend declined the upgrade: relay its answer and close. The backend is released however
    // the answer ends (a client leaving half-way destroys it: 'close' without 'end').
    client.write(statusBlock(res, true));
    res.pipe(client);
    res.on('end', () => client.end());
    res.on('close', () => release(true));
  });
  req.on('error', (err) => {
    // Cancelled because the client left (see below): not the backend's failure.
    release(client.destroyed);
    refuse(client, upstreamError(err, backend.url.origin));
  });
  client.once('close', () => {
    if (!released) req.destroy();
  });
  req.end();
}

/** The response head as sent to the client; a declined upgrade is relayed de-chunked, ending at close. */
function statusBlock(res: IncomingMessage, declined = false): string {
  let text = `HTTP/1.1 ${res.statusCode} ${res.statusMessage}\r\n`;
  const raw = res.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    if (declined && /^(transfer-encoding|connection|keep-alive)$/i.test(raw[i]!)) continue;
    text += `${raw[i]}: ${raw[i + 1]}\r\n`;
  }
  return declined ? `${text}Connection: close\r\n\r\n` : `${text}\r\n`;
}

/** Aborts when the client's socket closes: a queued upgrade request then leaves the pool's queue. */
function abortOnClose(client: Duplex): AbortSignal {
  const controller = new AbortController();
  client.once('close', () => controller.abort(new ProxyError('connection_reset', 'the client went away')));
  return controller.signal;
}

function refuse(client: Duplex, err: ProxyError): void {
  if (client.destroyed) return;
  const kind = ERROR_KINDS[err.code];
  const body = `${err.status} ${kind.title}: ${err.message}\n`;
  client.end(
    `HTTP/1.1 ${err.status} ${kind.title}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}
