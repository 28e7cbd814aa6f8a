/**
 * The process: listeners for each front door, the runtime they serve (swapped whole on reload),
 * and graceful shutdown. Health state and the cache live here, across reloads.
 */
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { AdminHandler } from './admin/admin-handler.js';
import { BlockedLog } from './admin/blocked-log.js';
import { diffConfig } from './admin/config-diff.js';
import type { AdminPeers } from './admin/admin-commands.js';
import type { AdminTarget, ReloadHistory, ReloadOutcome } from './admin/sources.js';
import { StatsSummary } from './admin/stats-summary.js';
import { TrafficStats, type TunnelKind } from './admin/traffic-stats.js';
import { VERSION } from './admin/version.js';
import { HealthRegistry } from './balance/health-registry.js';
import { DoorCaches } from './cache/door-caches.js';
import { ConfigError } from './config/errors.js';
import { ProxyError } from './core/errors.js';
import { errorPage } from './pipeline/pages.js';
import { writePageToSocket } from './pipeline/session.js';
import { isLoopbackHost, type Config, type LimitsConfig } from './config/schema.js';
import { formatAddress, type ListenAddress } from './config/units.js';
import type { Logger } from './core/log.js';
import { buildRuntime, doorCacheSettings, startRuntime, stopRuntime, type Runtime, type RuntimeDeps } from './runtime.js';

export interface PorticoOptions {
  readonly log: Logger;
  /** Re-reads the config (file + flags) for a reload; absent when there is nothing to re-read. */
  readonly loadConfig?: () => Config;
  /** With `--workers N` (src/workers): the other workers, for the admin API and cache invalidations. */
  readonly peers?: WorkerPeers;
}

export interface WorkerPeers extends AdminPeers {
  /** Told of every URL an unsafe request invalidated in this worker's cache. */
  readonly announceInvalidation: (url: string) => void;
}

export interface ListeningAddresses {
  reverse?: string;
  reverseTls?: string;
  forward?: string;
  admin?: string;
}

interface Listener {
  readonly name: keyof ListeningAddresses;
  readonly server: Server;
}

export class Portico implements AdminTarget {
  readonly registry = new HealthRegistry();
  /** One cache per front door (never shared: see DoorCaches); null when the cache is off. */
  readonly cache: DoorCaches | null;
  readonly startedAt = Date.now();
  /** Request, upstream and tunnel statistics (admin dashboard, /metrics, the stats summary); outlive reloads. */
  readonly traffic = new TrafficStats();
  /** The forward proxy's recent blocked requests and counts per rule; outlive reloads. */
  readonly blocked = new BlockedLog();
  readonly reloads: ReloadHistory = { succeeded: 0, failed: 0, lastSuccessAt: 0, lastFailureAt: 0, lastProblems: [] };
  private runtime: Runtime;
  private readonly listeners: Listener[] = [];
  private readonly log: Logger;
  private readonly loadConfig: (() => Config) | undefined;
  private readonly peers: WorkerPeers | undefined;
  private readonly summary: StatsSummary;
  /** Set by close(): responses stop keeping connections alive. */
  private closing = false;
  /** Open client connections per client address (only counted when a per-client limit is set). */
  private readonly connectionsByClient = new Map<string, number>();
  /** Client sockets of CONNECT tunnels and upgraded (WebSocket) connections, cut at the end of the drain. */
  private readonly tunnels = new Set<Duplex>();

  private constructor(config: Config, options: PorticoOptions) {
    this.log = options.log;
    this.loadConfig = options.loadConfig;
    this.peers = options.peers;
    this.cache = config.cache.enabled
      ? DoorCaches.create({ reverse: config.reverse !== undefined, forward: config.forward !== undefined }, doorCacheSettings(config.cache), {
          log: options.log,
          onInvalidate: options.peers?.announceInvalidation,
        })
      : null;
    this.runtime = buildRuntime(config, this.runtimeDeps());
    this.summary = new StatsSummary(this, options.log);
  }

  private runtimeDeps(): RuntimeDeps {
    return {
      registry: this.registry,
      reverseCache: this.cache?.reverse ?? null,
      forwardCache: this.cache?.forward ?? null,
      log: this.log,
      onDone: this.traffic.recordRequest,
      onAttempt: this.traffic.recordAttempt,
      onBlocked: this.blocked.record,
    };
  }

  /** Builds the runtime, binds every listener, starts health checks. Rejects with ConfigError on bind problems. */
  static async start(config: Config, options: PorticoOptions): Promise<Portico> {
    const portico = new Portico(config, options);
    try {
      await portico.listen(config);
    } catch (err) {
      await portico.close(0);
      throw err;
    }
    startRuntime(portico.runtime);
    portico.summary.start(config.log.stats_interval);
    return portico;
  }

  get config(): Config {
    return this.runtime.config;
  }

  get pools(): Runtime['pools'] {
    return this.runtime.pools;
  }

  get forward(): Runtime['forward'] {
    return this.runtime.forward;
  }

  get reverse(): Runtime['reverse'] {
    return this.runtime.reverse;
  }

  /** Whether reload() has a config file to re-read. */
  get canReload(): boolean {
    return this.loadConfig !== undefined;
  }

  addresses(): ListeningAddresses {
    const out: ListeningAddresses = {};
    for (const l of this.listeners) {
      const a = l.server.address() as AddressInfo | null;
      if (a) out[l.name] = formatAddress({ host: a.address, port: a.port });
    }
    return out;
  }

  /**
   * Swaps in a new config: the new runtime is built completely first; if anything is wrong the old one
   * keeps serving and the error is thrown. In-flight requests finish on the runtime they started on.
   */
  reload(next?: Config): ReloadOutcome {
    let config: Config | undefined;
    let fresh: Runtime;
    try {
      config = next ?? this.loadConfig?.();
      if (!config) throw new ConfigError(['nothing to reload from: Portico was started without --config']);
      fresh = buildRuntime(config, this.runtimeDeps());
    } catch (err) {
      this.reloads.failed++;
      this.reloads.lastFailureAt = Date.now();
      this.reloads.lastProblems = err instanceof ConfigError ? err.problems : [(err as Error).message];
      throw err;
    }
    let tls: ReturnType<typeof tlsOptions> | undefined;
    try {
      tls = config.reverse?.tls && this.listeners.some((l) => l.name === 'reverseTls') ? tlsOptions(config.reverse.tls) : undefined;
    } catch (err) {
      stopRuntime(fresh);
      this.reloads.failed++;
      this.reloads.lastFailureAt = Date.now();
      this.reloads.lastProblems = (err as ConfigError).problems;
      throw err;
    }
    const old = this.runtime;
    const outcome = diffConfig(old.config, config);
    this.applyListenerSettings(config, tls);
    this.runtime = fresh;
    startRuntime(fresh);
    stopRuntime(old);
    // Health state of servers the new config no longer lists is forgotten (a later re-add starts fresh).
    const addresses: string[] = [];
    for (const pool of fresh.pools.values()) for (const b of pool.backends) addresses.push(b.address);
    this.registry.retainOnly(addresses);
    this.summary.start(config.log.stats_interval);
    this.reloads.succeeded++;
    this.reloads.lastSuccessAt = Date.now();
    this.reloads.lastProblems = [];
    this.log.info({ pools: [...fresh.pools.keys()], changes: outcome.changes }, 'config reloaded');
    if (outcome.restartNeeded.length > 0) {
      this.log.warn({ keys: outcome.restartNeeded }, 'config reloaded, but these changes take effect only after a restart');
    }
    return outcome;
  }

  /** What a reload can change on running listeners: timeouts, connection caps, TLS certificate and ciphers. */
  private applyListenerSettings(config: Config, tls: ReturnType<typeof tlsOptions> | undefined): void {
    for (const { name, server } of this.listeners) {
      if (name === 'admin') continue;
      server.headersTimeout = config.limits.header_timeout;
      server.requestTimeout = config.limits.request_timeout;
      server.maxConnections = config.limits.max_connections || Infinity;
      if (name === 'reverseTls' && tls) (server as HttpsServer).setSecureContext(tls);
    }
  }

  /**
   * Stops accepting, closes idle keep-alive connections, lets in-flight requests and open tunnels
   * finish for up to `drainMs` (default `shutdown.drain_timeout`), then cuts what is left. Responses
   * started while closing do not keep their connection alive.
   */
  async close(drainMs = this.config.shutdown.drain_timeout): Promise<void> {
    this.closing = true;
    this.summary.stop();
    stopRuntime(this.runtime);
    const closing = this.listeners.map(
      (l) => new Promise<void>((resolve) => l.server.close(() => resolve())),
    );
    // Connections are closed as soon as they go idle (a response in flight finishes first).
    const closeIdle = () => {
      for (const l of this.listeners) l.server.closeIdleConnections();
    };
    closeIdle();
    const sweeper = setInterval(closeIdle, 50);
    const timer = setTimeout(() => {
      for (const l of this.listeners) l.server.closeAllConnections();
      for (const socket of this.tunnels) socket.destroy();
    }, drainMs);
    await Promise.all(closing);
    clearInterval(sweeper);
    clearTimeout(timer);
    await this.cache?.close();
  }

  private async listen(config: Config): Promise<void> {
    const serverOptions = serverOptionsFor(config.limits);
    if (config.forward) {
      const server = createHttpServer(serverOptions);
      this.attachForward(server);
      await this.bind('forward', server, config.forward.listen, 'forward.listen');
    }
    const reverse = config.reverse;
    if (reverse?.listen) {
      const server = createHttpServer(serverOptions);
      this.attachReverse(server, 'http');
      await this.bind('reverse', server, reverse.listen, 'reverse.listen');
    }
    if (reverse?.tls_listen && reverse.tls) {
      const server = createHttpsServer({ ...serverOptions, ...tlsOptions(reverse.tls) });
      this.attachReverse(server, 'https');
      await this.bind('reverseTls', server, reverse.tls_listen, 'reverse.tls_listen');
    }
    if (config.admin) {
      const server = createHttpServer({ ...serverOptions, requestTimeout: 30_000, maxHeaderSize: 16 * 1024 });
      const exposed = !isLoopbackHost(config.admin.listen.host);
      server.on('request', new AdminHandler(this, { exposed, log: this.log, version: VERSION, peers: this.peers }).handle);
      await this.bind('admin', server, config.admin.listen, 'admin.listen');
    }
  }

  /** Enforces limits.max_connections_per_client (counted per client address across all listeners). */
  private admitConnection(socket: Socket): void {
    const max = this.config.limits.max_connections_per_client;
    if (max === 0) return;
    const client = socket.remoteAddress ?? '';
    const open = (this.connectionsByClient.get(client) ?? 0) + 1;
    if (open > max) {
      socket.on('error', () => socket.destroy());
      const refusal = new ProxyError('too_many_requests', `more than ${max} open connections from ${client}`, { headers: { 'retry-after': '1' } });
      writePageToSocket(socket, errorPage(refusal, undefined));
      return;
    }
    this.connectionsByClient.set(client, open);
    socket.once('close', () => {
      const left = (this.connectionsByClient.get(client) ?? 1) - 1;
      if (left <= 0) this.connectionsByClient.delete(client);
      else this.connectionsByClient.set(client, left);
    });
  }

  private trackTunnel(socket: Duplex, kind: TunnelKind): void {
    this.traffic.trackTunnel(socket, kind);
    this.tunnels.add(socket);
    socket.once('close', () => this.tunnels.delete(socket));
  }

  private attachForward(server: Server): void {
    const onRequest = (req: IncomingMessage, res: ServerResponse) => {
      this.traffic.track(res, 'forward');
      if (this.closing) res.shouldKeepAlive = false;
      const forward = this.runtime.forward;
      if (forward) forward.handleRequest(req, res);
      else res.writeHead(503, { 'content-type': 'text/plain' }).end('503 Service Unavailable: no forward proxy configured\n');
    };
    server.on('request', onRequest);
    // Expect: 100-continue is answered by the front door's admission check (100, or 413/4xx at once).
    server.on('checkContinue', onRequest);
    server.on('connect', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      this.trackTunnel(socket, 'connect');
      const forward = this.runtime.forward;
      if (forward) forward.handleConnect(req, socket, head);
      else socket.destroy();
    });
  }

  private attachReverse(server: Server, scheme: 'http' | 'https'): void {
    const onRequest = (req: IncomingMessage, res: ServerResponse) => {
      this.traffic.track(res, 'reverse');
      if (this.closing) res.shouldKeepAlive = false;
      const gateway = this.runtime.reverse;
      if (gateway) gateway.handleRequest(req, res, scheme);
      else res.writeHead(503, { 'content-type': 'text/plain' }).end('503 Service Unavailable: no reverse proxy configured\n');
    };
    server.on('request', onRequest);
    server.on('checkContinue', onRequest);
    server.on('connect', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const gateway = this.runtime.reverse;
      if (gateway) gateway.handleConnect(req, socket, head, scheme);
      else socket.destroy();
    });
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      this.trackTunnel(socket, 'upgrade');
      const gateway = this.runtime.reverse;
      if (gateway) gateway.handleUpgrade(req, socket, head, scheme);
      else socket.destroy();
    });
  }

  private async bind(name: Listener['name'], server: Server, addr: ListenAddress, key: string): Promise<void> {
    server.on('clientError', onClientError);
    server.maxConnections = this.config.limits.max_connections || Infinity;
    server.on('connection', (socket: Socket) => this.admitConnection(socket));
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => {
        const why =
          err.code === 'EADDRINUSE'
            ? 'is already in use'
            : err.code === 'EACCES'
              ? 'needs more privileges (ports below 1024 need root or CAP_NET_BIND_SERVICE)'
              : err.code === 'EADDRNOTAVAIL'
                ? 'is not an address of this machine'
                : `cannot be listened on (${err.code ?? err.message})`;
        reject(new ConfigError([`${key}: address ${formatAddress(addr)} ${why}`]));
      };
      server.once('error', onError);
      server.listen(addr.port, addr.host, () => {
        server.off('error', onError);
        server.on('error', (err) => this.log.error({ err, listener: name }, 'listener error'));
        resolve();
      });
    });
    this.listeners.push({ name, server });
    const bound = server.address() as AddressInfo | null;
    this.log.info({ listener: name, address: formatAddress(bound ? { host: bound.address, port: bound.port } : addr) }, 'listening');
  }
}

/** Node server options from `limits` (timeouts are checked every second, not Node's default 30 s). */
function serverOptionsFor(limits: LimitsConfig) {
  return {
    keepAliveTimeout: 5_000,
    headersTimeout: limits.header_timeout,
    requestTimeout: limits.request_timeout,
    maxHeaderSize: limits.max_header_size,
    connectionsCheckingInterval: 1_000,
  };
}

/** Mozilla's "intermediate" profile: TLS 1.2+ with forward-secret AEAD ciphers only. */
const MODERN_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

function tlsOptions(tls: NonNullable<NonNullable<Config['reverse']>['tls']>) {
  return {
    cert: readTlsFile(tls.cert, 'reverse.tls.cert'),
    key: readTlsFile(tls.key, 'reverse.tls.key'),
    minVersion: tls.min_version,
    ciphers: tls.ciphers ?? MODERN_CIPHERS,
    honorCipherOrder: true,
  };
}

function readTlsFile(path: string, key: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new ConfigError([`${key}: cannot read "${path}" (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`]);
  }
}

/** Malformed requests get a 4xx (with Proxy-Status) and the connection is closed; nothing is thrown. */
function onClientError(err: NodeJS.ErrnoException, socket: Socket): void {
  if (!socket.writable || err.code === 'ECONNRESET') {
    socket.destroy();
    return;
  }
  const code = err.code ?? '';
  const kind =
    code === 'HPE_HEADER_OVERFLOW' ? 'headers_too_large' : code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'request_timeout' : code === 'HPE_URI_TOO_LONG' ? 'uri_too_long' : 'bad_request';
  writePageToSocket(socket, errorPage(new ProxyError(kind, 'the request could not be read'), undefined));
}
