/**
 * The process's listeners: one Node server per front door (forward, reverse, reverse TLS) and one for
 * the admin API, wired to whatever runtime is current. A standalone Portico binds them itself; under
 * the supervisor (src/workers) the supervising process binds the sockets for the life of the service
 * and every worker listens on the same sockets (handed over at its start). Either way every connection
 * is admitted here (the global and per-client connection limits), and a drain waits for them all.
 */
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { Http2SecureServer } from 'node:http2';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TunnelKind, TrafficStats } from './admin/traffic-stats.js';
import { ConfigError } from './config/errors.js';
import type { Config, LimitsConfig } from './config/schema.js';
import { ProxyError } from './core/errors.js';
import type { Logger } from './core/log.js';
import { listenerSpecs, listenOn, type ListenerName, type ListeningAddresses, type SharedSockets } from './listener-specs.js';
import { errorPage } from './pipeline/pages.js';
import { acceptPriorKnowledge } from './reverse/h2c-preface.js';
import { closeAllHttp1, createH2cServer, createReverseTlsServer, http2LimitsOf, Http2Sessions } from './reverse/http2-listener.js';
import { writePageToSocket } from './pipeline/session.js';
import { unreadableRequestError } from './pipeline/admission.js';
import type { Runtime } from './runtime.js';

/** What the listeners need of the process they serve. */
export interface ListenerHost {
  readonly runtime: Runtime;
  readonly traffic: TrafficStats;
  /** True while the process drains: responses stop keeping connections alive. */
  readonly closing: boolean;
}

interface Listener {
  readonly name: ListenerName;
  readonly server: Server;
  address: string;
}

export class Listeners {
  private readonly listeners: Listener[] = [];
  /** Open client connections, on every listener. */
  private connections = 0;
  /** Open client connections per client address (only counted when a per-client limit is set). */
  private readonly byClient = new Map<string, number>();
  /** Client sockets of CONNECT tunnels and upgraded (WebSocket) connections, cut at the end of the drain. */
  private readonly tunnels = new Set<Duplex>();
  private drained: (() => void) | null = null;
  /** HTTP/2 sessions of the reverse door (TLS, and h2c when enabled). */
  private readonly http2: Http2Sessions;

  constructor(
    private readonly host: ListenerHost,
    private readonly log: Logger,
  ) {
    let last: ReturnType<typeof http2LimitsOf> | undefined;
    const current = () => {
      const config = host.runtime.config;
      if (config.reverse) last = http2LimitsOf(config.reverse, config.limits);
      return last!;
    };
    this.http2 = new Http2Sessions(current, host.traffic.http2, log);
  }

  /**
   * Makes every listener `config` asks for. Under the supervisor, `shared` has the sockets it bound,
   * by listener: those are listened on instead of binding. Rejects with ConfigError on bind problems.
   */
  async open(config: Config, adminHandler: ((req: IncomingMessage, res: ServerResponse) => void) | null, shared?: SharedSockets): Promise<void> {
    const options = serverOptionsFor(config.limits);
    for (const spec of listenerSpecs(config)) {
      let server: Server;
      if (spec.name === 'forward') server = this.forwardServer(createHttpServer(options));
      else if (spec.name === 'reverse') server = this.reverseServer(createHttpServer(options), 'http');
      else if (spec.name === 'reverseTls') server = this.reverseServer(this.tlsServer(config, options), 'https');
      else {
        server = createHttpServer({ ...options, requestTimeout: 30_000, maxHeaderSize: 16 * 1024 });
        if (adminHandler !== null) server.on('request', adminHandler);
      }
      server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => this.unreadable(spec.name, err, socket));
      server.on('connection', (socket: Socket) => this.admit(socket));
      if (spec.name === 'reverse' && config.reverse!.h2c) {
        const h2c = createH2cServer(http2LimitsOf(config.reverse!, config.limits), this.http2);
        this.reverseServer(h2c as unknown as Server, 'http');
        acceptPriorKnowledge(server, h2c);
      }
      server.maxConnections = config.limits.max_connections || Infinity;
      const address = await listenOn(server, spec, shared?.[spec.name]);
      server.on('error', (err) => this.log.error({ err, listener: spec.name }, 'listener error'));
      this.listeners.push({ name: spec.name, server, address });
      // Under the supervisor, the supervisor says "listening" once every worker serves.
      if (shared === undefined) this.log.info({ listener: spec.name, address }, 'listening');
    }
  }

  addresses(): ListeningAddresses {
    const out: ListeningAddresses = {};
    for (const l of this.listeners) out[l.name] = l.address;
    return out;
  }

  get hasTls(): boolean {
    return this.listeners.some((l) => l.name === 'reverseTls');
  }

  /** What a reload can change on running listeners: timeouts, connection caps, TLS certificate and ciphers. */
  apply(config: Config, tls: ReturnType<typeof tlsOptions> | undefined): void {
    if (config.reverse) this.http2.applySettings(http2LimitsOf(config.reverse, config.limits));
    for (const { name, server } of this.listeners) {
      if (name === 'admin') continue;
      server.headersTimeout = config.limits.header_timeout;
      server.requestTimeout = config.limits.request_timeout;
      server.maxConnections = config.limits.max_connections || Infinity;
      if (name === 'reverseTls' && tls) (server as HttpsServer).setSecureContext(tls);
    }
  }

  /**
   * Stops accepting, closes idle keep-alive connections (and each busy one as soon as its response is
   * done), lets in-flight requests and open tunnels finish for up to `drainMs`, then cuts what is left.
   */
  async close(drainMs: number): Promise<void> {
    for (const l of this.listeners) l.server.close();
    const closeIdle = () => {
      for (const l of this.listeners) l.server.closeIdleConnections();
      this.http2.closeIdle();
    };
    closeIdle();
    const sweeper = setInterval(closeIdle, 50);
    const timer = setTimeout(() => {
      for (const l of this.listeners) {
        if (typeof l.server.closeAllConnections === 'function') l.server.closeAllConnections();
        else closeAllHttp1(l.server as unknown as Http2SecureServer);
      }
      this.http2.destroyAll();
      for (const socket of this.tunnels) socket.destroy();
    }, drainMs);
    if (this.connections > 0) await new Promise<void>((resolve) => (this.drained = resolve));
    clearInterval(sweeper);
    clearTimeout(timer);
  }

  /** Counts every connection; refuses one over limits.max_connections(_per_client). */
  private admit(socket: Socket): void {
    const limits = this.host.runtime.config.limits;
    this.connections++;
    socket.once('close', () => {
      this.connections--;
      if (this.connections === 0 && this.drained !== null) this.drained();
    });
    const max = limits.max_connections_per_client;
    if (max === 0) return;
    const client = socket.remoteAddress ?? '';
    const count = (this.byClient.get(client) ?? 0) + 1;
    if (count > max) {
      socket.on('error', () => socket.destroy());
      const refusal = new ProxyError('too_many_requests', `more than ${max} open connections from ${client}`, { headers: { 'retry-after': '1' } });
      writePageToSocket(socket, errorPage(refusal, undefined));
      return;
    }
    this.byClient.set(client, count);
    socket.once('close', () => {
      const left = (this.byClient.get(client) ?? 1) - 1;
      if (left <= 0) this.byClient.delete(client);
      else this.byClient.set(client, left);
    });
  }

  /** A request the parser refused: the door answers it and logs it; the admin listener only answers. */
  private unreadable(name: ListenerName, err: NodeJS.ErrnoException, socket: Socket): void {
    const runtime = this.host.runtime;
    if (name === 'forward' && runtime.forward) runtime.forward.handleUnreadable(err, socket);
    else if ((name === 'reverse' || name === 'reverseTls') && runtime.reverse) runtime.reverse.handleUnreadable(err, socket, name === 'reverse' ? 'http' : 'https');
    else onClientError(err, socket);
  }

  /** The reverse TLS listener: HTTP/2 and HTTP/1.1 by ALPN, or HTTP/1.1 alone with `reverse.http2.enabled: false`. */
  private tlsServer(config: Config, options: ReturnType<typeof serverOptionsFor>): Server {
    const reverse = config.reverse!;
    const tls = tlsOptions(reverse.tls!);
    if (!reverse.http2.enabled) return createHttpsServer({ ...options, ...tls });
    return createReverseTlsServer(tls, options, http2LimitsOf(reverse, config.limits), this.http2) as unknown as Server;
  }

  private trackTunnel(socket: Duplex, kind: TunnelKind): void {
    this.host.traffic.trackTunnel(socket, kind);
    this.tunnels.add(socket);
    socket.once('close', () => this.tunnels.delete(socket));
  }

  private forwardServer(server: Server): Server {
    const host = this.host;
    const onRequest = (req: IncomingMessage, res: ServerResponse) => {
      host.traffic.track(res, 'forward');
      if (host.closing) res.shouldKeepAlive = false;
      const forward = host.runtime.forward;
      if (forward) forward.handleRequest(req, res);
      else res.writeHead(503, { 'content-type': 'text/plain' }).end('503 Service Unavailable: no forward proxy configured\n');
    };
    server.on('request', onRequest);
    // Expect: 100-continue is answered by the front door's admission check (100, or 413/4xx at once).
    server.on('checkContinue', onRequest);
    server.on('connect', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      this.trackTunnel(socket, 'connect');
      const forward = host.runtime.forward;
      if (forward) forward.handleConnect(req, socket, head);
      else socket.destroy();
    });
    return server;
  }

  private reverseServer(server: Server, scheme: 'http' | 'https'): Server {
    const host = this.host;
    const onRequest = (req: IncomingMessage, res: ServerResponse) => {
      host.traffic.track(res, 'reverse');
      if (host.closing) res.shouldKeepAlive = false;
      const gateway = host.runtime.reverse;
      if (gateway) gateway.handleRequest(req, res, scheme);
      else res.writeHead(503, { 'content-type': 'text/plain' }).end('503 Service Unavailable: no reverse proxy configured\n');
    };
    server.on('request', onRequest);
    server.on('checkContinue', onRequest);
    server.on('connect', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      // An HTTP/2 CONNECT comes with a response, not a socket: answered (refused) like any request.
      if (req.httpVersionMajor === 2) return onRequest(req, socket as unknown as ServerResponse);
      const gateway = host.runtime.reverse;
      if (gateway) gateway.handleConnect(req, socket, head, scheme);
      else socket.destroy();
    });
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      this.trackTunnel(socket, 'upgrade');
      const gateway = host.runtime.reverse;
      if (gateway) gateway.handleUpgrade(req, socket, head, scheme);
      else socket.destroy();
    });
    return server;
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

/** The TLS listener's options; throws ConfigError naming the key of a file that cannot be read. */
export function tlsOptions(tls: NonNullable<NonNullable<Config['reverse']>['tls']>) {
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
  const refusal = unreadableRequestError(err, socket);
  if (refusal !== null) writePageToSocket(socket, errorPage(refusal, undefined));
}
