/**
 * The process: listeners for each front door, the runtime they serve (swapped whole on reload),
 * and graceful shutdown. Health state and the cache live here, across reloads.
 */
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { HealthRegistry } from './balance/health-registry.js';
import { createCache, type HttpCache } from './cache/http-cache.js';
import { ConfigError } from './config/errors.js';
import type { Config } from './config/schema.js';
import { formatAddress, type ListenAddress } from './config/units.js';
import type { Logger } from './log.js';
import { buildRuntime, startRuntime, stopRuntime, type Runtime } from './runtime.js';

export interface PorticoOptions {
  readonly log: Logger;
  /** Re-reads the config (file + flags) for a reload; absent when there is nothing to re-read. */
  readonly loadConfig?: () => Config;
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

export class Portico {
  readonly registry = new HealthRegistry();
  readonly cache: HttpCache | null;
  readonly startedAt = Date.now();
  private runtime: Runtime;
  private readonly listeners: Listener[] = [];
  private readonly log: Logger;
  private readonly loadConfig: (() => Config) | undefined;

  private constructor(config: Config, options: PorticoOptions) {
    this.log = options.log;
    this.loadConfig = options.loadConfig;
    this.cache = createCache(config.cache, options.log);
    this.runtime = buildRuntime(config, { registry: this.registry, cache: this.cache, log: options.log });
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
    return portico;
  }

  get config(): Config {
    return this.runtime.config;
  }

  get pools(): Runtime['pools'] {
    return this.runtime.pools;
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
  reload(next?: Config): void {
    const config = next ?? this.loadConfig?.();
    if (!config) throw new ConfigError(['nothing to reload from: Portico was started without --config']);
    const fresh = buildRuntime(config, { registry: this.registry, cache: this.cache, log: this.log });
    const old = this.runtime;
    this.runtime = fresh;
    startRuntime(fresh);
    stopRuntime(old);
    this.log.info({ pools: [...fresh.pools.keys()] }, 'config reloaded');
  }

  /** Stops accepting, lets in-flight requests finish for up to `drainMs`, then closes everything. */
  async close(drainMs = 10_000): Promise<void> {
    stopRuntime(this.runtime);
    const closing = this.listeners.map(
      (l) => new Promise<void>((resolve) => l.server.close(() => resolve())),
    );
    for (const l of this.listeners) l.server.closeIdleConnections();
    const timer = setTimeout(() => {
      for (const l of this.listeners) l.server.closeAllConnections();
    }, drainMs);
    await Promise.all(closing);
    clearTimeout(timer);
    await this.cache?.close();
  }

  private async listen(config: Config): Promise<void> {
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
      const server = createHttpsServer({
        ...serverOptions,
        cert: readTlsFile(reverse.tls.cert, 'reverse.tls.cert'),
        key: readTlsFile(reverse.tls.key, 'reverse.tls.key'),
        minVersion: reverse.tls.min_version,
      });
      this.attachReverse(server, 'https');
      await this.bind('reverseTls', server, reverse.tls_listen, 'reverse.tls_listen');
    }
  }

  private attachForward(server: Server): void {
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      const forward = this.runtime.forward;
      if (forward) forward.handleRequest(req, res);
      else res.writeHead(503, { 'content-type': 'text/plain' }).end('503 Service Unavailable: no forward proxy configured\n');
    });
    server.on('connect', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const forward = this.runtime.forward;
      if (forward) forward.handleConnect(req, socket, head);
      else socket.destroy();
    });
  }

  private attachReverse(server: Server, scheme: 'http' | 'https'): void {
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      const gateway = this.runtime.reverse;
      if (gateway) gateway.handleRequest(req, res, scheme);
      else res.writeHead(503, { 'content-type': 'text/plain' }).end('503 Service Unavailable: no reverse proxy configured\n');
    });
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const gateway = this.runtime.reverse;
      if (gateway) gateway.handleUpgrade(req, socket, head, scheme);
      else socket.destroy();
    });
  }

  private async bind(name: Listener['name'], server: Server, addr: ListenAddress, key: string): Promise<void> {
    server.on('clientError', onClientError);
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
    this.log.info({ listener: name, address: formatAddress(addr) }, 'listening');
  }
}

const serverOptions = {
  keepAliveTimeout: 5_000,
  headersTimeout: 20_000,
  requestTimeout: 0,
  maxHeaderSize: 32 * 1024,
} as const;

function readTlsFile(path: string, key: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new ConfigError([`${key}: cannot read "${path}" (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`]);
  }
}

/** Malformed requests get a 4xx and the connection is closed; nothing is thrown. */
function onClientError(err: NodeJS.ErrnoException, socket: Socket): void {
  if (!socket.writable || (err as { code?: string }).code === 'ECONNRESET') {
    socket.destroy();
    return;
  }
  const code = err.code ?? '';
  const [status, title] =
    code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'Request Header Fields Too Large']
      : code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'Request Timeout']
        : code === 'HPE_URI_TOO_LONG'
          ? [414, 'URI Too Long']
          : [400, 'Bad Request'];
  const body = `${status} ${title}\n`;
  socket.end(`HTTP/1.1 ${status} ${title}\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
}
