/**
 * The proxy phase of an Upgrade (WebSocket) request: the handshake goes to a backend chosen by the
 * pool; on 101 the two sockets are joined both ways until either side closes. Any other answer from
 * the backend is relayed as is. Refusals (no backend, the backend unreachable) are answered by the
 * session like every other refusal.
 */
import { request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Backend } from '../balance/backend.js';
import type { Pool } from '../balance/pool.js';
import type { BalanceRequest } from '../balance/types.js';
import { asProxyError, ProxyError, upstreamError } from '../core/errors.js';
import type { Timeouts } from '../core/messages.js';
import type { SocketSession } from '../pipeline/session.js';

export interface UpgradeTarget {
  readonly pool: Pool;
  readonly balance: BalanceRequest;
  readonly path: string;
  readonly headers: OutgoingHttpHeaders;
  readonly timeouts: Timeouts;
}

/** Bytes a client may send before the backend has accepted the upgrade (kept, then sent on). */
const EARLY_BYTES_LIMIT = 64 * 1024;

export function tunnelUpgrade(session: SocketSession, up: UpgradeTarget): void {
  const client = session.socket;
  const early = readEarly(client);
  let picked: Backend | Promise<Backend>;
  try {
    picked = up.pool.acquire(up.balance, null, up.pool.spec.queue.size > 0 ? abortOnClose(client) : undefined);
  } catch (err) {
    session.refuse(asProxyError(err));
    return;
  }
  if (picked instanceof Promise) {
    picked.then(
      (backend) => connect(session, up, backend, early),
      (err: unknown) => session.refuse(asProxyError(err)),
    );
  } else {
    connect(session, up, picked, early);
  }
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

function connect(session: SocketSession, up: UpgradeTarget, backend: Backend, early: EarlyBytes): void {
  const client = session.socket;
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
    session.finish(499);
    return;
  }
  const url = backend.url;
  session.upstream = url.origin;
  const https = url.protocol === 'https:';
  const send = https ? httpsRequest : httpRequest;
  const req = send({
    host: url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname,
    port: Number(url.port) || (https ? 443 : 80),
    method: session.method,
    path: up.path,
    headers: up.headers,
    agent: false,
    timeout: up.timeouts.connectMs,
  });
  req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
  req.on('upgrade', (res: IncomingMessage, upstream: Socket, upstreamHead: Buffer) => {
    upstream.setTimeout(0);
    session.markAnswered();
    const sentEarly = early.take();
    client.write(statusBlock(res));
    if (upstreamHead.length > 0) client.write(upstreamHead);
    if (session.head.length > 0) upstream.write(session.head);
    for (const chunk of sentEarly) upstream.write(chunk);
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
    upstream.on('close', () => {
      client.destroy();
      release(true);
      session.finish(101, { up: upstream.bytesWritten, down: upstream.bytesRead, idle: false });
    });
    client.on('close', () => upstream.destroy());
    upstream.pipe(client);
    client.pipe(upstream);
  });
  req.on('response', (res: IncomingMessage) => {
    // The backend declined the upgrade: relay its answer and close. The backend is released however
    // the answer ends (a client leaving half-way destroys it: 'close' without 'end').
    session.markAnswered();
    res.on('error', () => client.destroy());
    client.write(statusBlock(res, true));
    res.pipe(client);
    res.on('end', () => client.end());
    res.on('close', () => {
      release(true);
      session.finish(res.statusCode ?? 502);
    });
  });
  req.on('error', (err) => {
    // Cancelled because the client left (see below): not the backend's failure.
    release(client.destroyed);
    if (!session.answered && !client.destroyed) {
      session.refuse(upstreamError(err, url.origin));
      return;
    }
    const status = session.answered ? 502 : 499;
    client.destroy();
    session.finish(status);
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
