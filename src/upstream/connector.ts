/**
 * How undici reaches an upstream: the pool options every Pool and Agent of ours shares, and the
 * connector that opens their connections.
 */
import { isIP, type LookupFunction } from 'node:net';
import { buildConnector } from 'undici';

/** Requests sent and not yet on a connection: while 0, a connector has no reason to open one. */
export interface ConnectionWaiters {
  waiting: number;
}

/**
 * The `timeout` for keep-alive agents: how long an idle pooled upstream connection is kept. Without it
 * Node keeps idle sockets until the server closes them, and ignores the server's `Keep-Alive: timeout=N`
 * hint: a request can then be written to a connection the server is closing at that very moment
 * (ECONNRESET: a 502, or a retry and a passive-health failure the backend did not earn). With it, the
 * proxy closes idle connections first: after this long, or a second before the server's announced
 * timeout when that is shorter.
 */
export const UPSTREAM_IDLE_KEEPALIVE_MS = 4_000;

/** Idle pooled connections are closed by the proxy first (see UPSTREAM_IDLE_KEEPALIVE_MS). */
export const POOL_OPTIONS = {
  pipelining: 1,
  connections: null,
  // After this long, or a second before the upstream's announced Keep-Alive timeout.
  keepAliveTimeout: UPSTREAM_IDLE_KEEPALIVE_MS,
  keepAliveMaxTimeout: UPSTREAM_IDLE_KEEPALIVE_MS,
  keepAliveTimeoutThreshold: 1_000,
  strictContentLength: true,
} as const;

/**
 * How undici opens connections upstream: TCP keep-alive, the connect timeout, the TLS server name
 * taken from the host (none for an IP address, as node:https does), the addresses resolved through
 * `lookupFor(port)` when given (the forward proxy's destination checks), and no connection opened
 * while no request waits for one.
 */
export function upstreamConnector(
  connectMs: number,
  waiters: ConnectionWaiters,
  lookupFor?: (port: number) => LookupFunction | undefined,
): buildConnector.connector {
  const options = { timeout: connectMs, keepAlive: true, keepAliveInitialDelay: 1_000 };
  const plain = { connect: buildConnector(options), lookup: undefined as LookupFunction | undefined };
  const byPort = new Map<number, typeof plain>();
  return (target, callback) => {
    // undici (v7, nodejs/undici#5845) puts a request aborted in flight back in its queue and opens a
    // connection for it before noticing it was aborted; that connection would sit idle. No request of
    // ours waits for a connection then: refuse it (undici drops the pool member that asked for it).
    if (waiters.waiting === 0) {
      process.nextTick(callback, new StrayConnectError(), null);
      return;
    }
    const tls = target.protocol === 'https:';
    const port = Number(target.port) || (tls ? 443 : 80);
    let checked = lookupFor === undefined ? plain : byPort.get(port);
    if (checked === undefined) {
      const lookup = lookupFor!(port);
      checked = lookup === undefined ? plain : { connect: buildConnector({ ...options, lookup } as buildConnector.BuildOptions), lookup };
      byPort.set(port, checked);
    }
    const { connect, lookup } = checked;
    const host = target.hostname;
    const address = host.startsWith('[') ? host.slice(1, -1) : host;
    const literal = isIP(address) !== 0;
    const open = () => connect(tls && !literal ? { ...target, servername: host } : { ...target, servername: undefined }, callback);
    // undici hands over host names parsed as URLs ("127.1" is already 127.0.0.1), and net skips the
    // lookup for an address: the checks that the lookup makes run here for it.
    if (lookup !== undefined && literal) lookup(address, {}, (err) => (err ? callback(err, null) : open()));
    else open();
  };
}

class StrayConnectError extends Error {
  readonly code = 'PORTICO_STRAY_CONNECT';
  constructor() {
    super('no request is waiting for this connection');
  }
}
