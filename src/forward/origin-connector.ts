/**
 * How the forward proxy reaches origins: directly through keep-alive connection pools, or through an
 * upstream proxy (HTTP, HTTPS or SOCKS) with `proxy-agent`, for relayed requests and CONNECT tunnels
 * alike. Built once per runtime from `forward.upstream_proxy` or the proxy environment variables.
 */
import { EventEmitter } from 'node:events';
import { Agent as HttpAgent, type AgentOptions, type ClientRequest, type ClientRequestArgs } from 'node:http';
import { Agent as HttpsAgent, type AgentOptions as HttpsAgentOptions, type RequestOptions as HttpsRequestOptions } from 'node:https';
import { connect as netConnect, isIP, type LookupFunction, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { ProxyAgent, proxies } from 'proxy-agent';
import { Agent as UndiciAgent, type Dispatcher } from 'undici';
import { ConfigError } from '../config/errors.js';
import type { ListenAddress } from '../config/units.js';
import type { Logger } from '../core/log.js';
import { normalizeHost } from '../policy/host-matcher.js';
import { ProxyError, upstreamError } from '../core/errors.js';
import { type UndiciRoute } from '../upstream/undici-exchange.js';
import { type UpstreamTarget } from '../upstream/node-http-exchange.js';
import type { DestinationGuard } from './destination-guard.js';
import { DownstreamRelay } from './downstream-relay.js';
import { chooseUpstreamProxy, redactProxyUrl, UPSTREAM_PROXY_PROTOCOLS, type ProxyChoice } from './proxy-env.js';
import { POOL_OPTIONS, upstreamConnector, UPSTREAM_IDLE_KEEPALIVE_MS, type ConnectionWaiters } from '../upstream/connector.js';

export interface OriginConnectorOptions {
  readonly upstreamProxy: string | undefined;
  /** forward.timeouts.connect, for direct connections. */
  readonly connectMs: number;
  readonly env: NodeJS.ProcessEnv;
  readonly log: Logger;
  /** This proxy's own listen address: an upstream proxy pointing back at it would loop forever. */
  readonly ownAddress: ListenAddress;
  /**
   * Resolves origin host names (default dns.lookup). The single place where the forward proxy turns
   * names into addresses: the hook for checks after DNS (deny private ranges, DNS-rebinding safe).
   */
  readonly lookup?: LookupFunction | undefined;
  /**
   * Checks every address a direct connection resolves to (own listeners, forward.deny_private),
   * inside the lookup that connection uses. Connections through an upstream proxy are resolved by
   * that proxy, not here.
   */
  readonly guard?: DestinationGuard | undefined;
}

export interface TunnelConnection {
  readonly socket: Duplex;
  /** `host:port`, or `host:port via http://proxy:3128`. */
  readonly label: string;
  /** What `socket` reads into (a direct connection); null when it is read as a stream (through an upstream proxy). */
  readonly downstream: DownstreamRelay | null;
}

export type TunnelCallback = (err: ProxyError | null, connection: TunnelConnection | null) => void;

type TunnelAgent = { connect(req: ClientRequest, opts: object): unknown; destroy(): void };

/**
 * Where a relayed request goes: straight to the origin over undici (one keep-alive Pool per origin), or
 * through the upstream proxy over node:http and proxy-agent.
 */
export type OriginTarget =
  | { readonly direct: true; readonly label: string; readonly route: UndiciRoute }
  | { readonly direct: false; readonly label: string; readonly target: UpstreamTarget };

/** Idle pooled connections close before the origin closes them, so none is reused as it closes. */
const AGENT_OPTIONS = { keepAlive: true, keepAliveMsecs: 1000, maxFreeSockets: 256, scheduling: 'lifo', timeout: UPSTREAM_IDLE_KEEPALIVE_MS } as const;

export class OriginConnector {
  /** True when some traffic goes through an upstream proxy. */
  readonly chained: boolean;
  readonly choice: ProxyChoice;
  /** Direct relayed requests, to any origin. */
  private readonly direct: UndiciAgent;
  private readonly directWaiters: ConnectionWaiters = { waiting: 0 };
  private readonly connectDirect: ReturnType<typeof upstreamConnector>;
  /** For proxy-agent only (a host its proxy function exempts); direct requests go through `direct`. */
  private readonly directHttp: HttpAgent;
  private readonly directHttps: HttpsAgent;
  private readonly lookup: LookupFunction | undefined;
  private readonly guard: DestinationGuard | undefined;
  private readonly proxyAgent: ProxyAgent | null;
  private readonly tunnelAgents = new Map<string, Promise<TunnelAgent>>();
  private stopped = false;

  constructor(options: OriginConnectorOptions) {
    this.lookup = options.lookup;
    this.guard = options.guard;
    const lookupFor = (port: number) => this.lookupFor(port);
    this.connectDirect = upstreamConnector(options.connectMs, this.directWaiters, lookupFor);
    this.direct = new UndiciAgent({ ...POOL_OPTIONS, connect: this.connectDirect });
    this.directHttp = new CheckedHttpAgent(AGENT_OPTIONS, lookupFor);
    this.directHttps = new CheckedHttpsAgent(AGENT_OPTIONS, lookupFor);
    let choice = chooseUpstreamProxy(options.upstreamProxy, options.env);
    const fromConfig = choice.source === 'config';
    for (const url of new Set([choice.http, choice.https])) {
      if (url === null) continue;
      const problem = proxyUrlProblem(url, options.ownAddress);
      if (problem === null) continue;
      if (fromConfig) throw new ConfigError([`forward.upstream_proxy: ${problem}, got "${redactProxyUrl(url)}"`]);
      options.log.warn({ proxy: redactProxyUrl(url) }, `ignoring the proxy environment variables: ${problem}`);
      choice = { http: null, https: null, noProxy: null, source: 'none' };
      break;
    }
    this.choice = choice;
    this.chained = choice.http !== null || choice.https !== null;
    this.proxyAgent = this.chained
      ? new ProxyAgent({
          ...AGENT_OPTIONS,
          httpAgent: this.directHttp,
          httpsAgent: this.directHttps,
          getProxyForUrl: (url: string) => this.proxyForUrl(url),
        })
      : null;
    if (this.chained) {
      options.log.info(
        { http: choice.http && redactProxyUrl(choice.http), https: choice.https && redactProxyUrl(choice.https), source: choice.source },
        'forward proxy chains to an upstream proxy',
      );
    }
  }

  /** The upstream proxy for this scheme and host, or null to go direct. */
  proxyFor(scheme: 'http' | 'https', host: string, port: number): string | null {
    const proxy = scheme === 'https' ? this.choice.https : this.choice.http;
    if (proxy === null) return null;
    if (this.choice.noProxy !== null && this.choice.noProxy.bypasses(host, port)) return null;
    return proxy;
  }

  /** Where a relayed request goes: `hostname` without brackets, `origin` as `http://host:port`. */
  target(scheme: 'http' | 'https', hostname: string, port: number, origin: string): OriginTarget {
    const proxy = this.proxyAgent === null ? null : this.proxyFor(scheme, hostname, port);
    if (proxy === null) {
      return { direct: true, label: origin, route: { label: origin, origin, servername: hostname, waiters: this.directWaiters, onBodyDone: null } };
    }
    const label = `${origin} via ${redactProxyUrl(proxy)}`;
    return { direct: false, label, target: { protocol: scheme === 'https' ? 'https:' : 'http:', hostname, port, agent: this.proxyAgent!, label } };
  }

  /**
   * The dispatcher for a direct request: the shared one, or — once this connector is stopped (a reload
   * retired it while the request waited, e.g. for a collapsed fetch) — one of its own, closed after it.
   */
  directDispatcher(): Dispatcher {
    if (!this.stopped) return this.direct;
    const oneOff = new UndiciAgent({ ...POOL_OPTIONS, connect: this.connectDirect });
    // close() lets the request just dispatched finish first; it only rejects for an agent already closed.
    queueMicrotask(() => void oneOff.close().catch(() => undefined));
    return oneOff;
  }

  /**
   * Opens a TCP connection to host:port for a CONNECT tunnel, directly or through the upstream proxy,
   * and calls `done` once: with the connection, or with a ProxyError (dns_error, connection_refused,
   * connection_timeout, …). Returns a function that gives up on the attempt (`done` then gets a
   * connection_reset error). Callbacks rather than a promise and an AbortSignal on the direct path:
   * this runs once per tunnel, and the signal's EventTarget machinery was ~5% of the CPU per tunnel.
   */
  openTunnel(host: string, port: number, timeoutMs: number, done: TunnelCallback): () => void {
    const proxy = this.proxyFor('https', host, port);
    const where = `${isIP(host) === 6 ? `[${host}]` : host}:${port}`;
    if (proxy === null) return connectDirect(host, port, where, timeoutMs, this.lookupFor(port), done);
    const abort = new AbortController();
    this.connectThroughProxy(proxy, host, port, where, timeoutMs, abort.signal).then(
      (connection) => done(null, connection),
      (err: unknown) => done(err instanceof ProxyError ? err : new ProxyError('internal', 'the proxy failed to open the tunnel', { cause: err }), null),
    );
    return () => abort.abort();
  }

  /** Closes idle pooled connections; requests and tunnels in flight finish. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    void this.direct.close().catch(() => undefined);
    for (const agent of [this.directHttp, this.directHttps]) {
      closeIdle(agent);
      agent.on('free', (socket: Socket) => socket.destroy());
    }
    if (this.proxyAgent) {
      for (const agent of this.proxyAgent.cache.values()) {
        closeIdle(agent);
        agent.on('free', (socket: Socket) => socket.destroy());
      }
    }
  }

  /** The lookup for a direct connection to `port`: the configured one, wrapped by the guard's checks. */
  private lookupFor(port: number): LookupFunction | undefined {
    return this.guard === undefined ? this.lookup : this.guard.lookupFor(port, this.lookup);
  }

  private proxyForUrl(url: string): string {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      return '';
    }
    const https = parsed.protocol === 'https:' || parsed.protocol === 'wss:';
    const port = Number(parsed.port) || (https ? 443 : 80);
    return this.proxyFor(https ? 'https' : 'http', normalizeHost(parsed.hostname), port) ?? '';
  }

  private tunnelAgent(proxy: string): Promise<TunnelAgent> {
    let agent = this.tunnelAgents.get(proxy);
    if (agent === undefined) {
      const protocol = new URL(proxy).protocol.slice(0, -1) as keyof typeof proxies;
      const load = proxies[protocol]?.[1];
      agent = load
        ? load().then((Ctor) => new Ctor(proxy, { keepAlive: false }) as unknown as TunnelAgent)
        : Promise.reject(new ProxyError('internal', `unsupported upstream proxy protocol in ${redactProxyUrl(proxy)}`));
      this.tunnelAgents.set(proxy, agent);
    }
    return agent;
  }

  private async connectThroughProxy(proxy: string, host: string, port: number, where: string, timeoutMs: number, signal: AbortSignal): Promise<TunnelConnection> {
    const label = `${where} via ${redactProxyUrl(proxy)}`;
    const agent = await this.tunnelAgent(proxy);
    const request = new TunnelRequest();
    let status = 200;
    let statusText = '';
    request.on('proxyConnect', (response: { statusCode?: number; statusText?: string }) => {
      status = response.statusCode ?? 200;
      statusText = response.statusText ?? '';
    });
    const pending = Promise.resolve(agent.connect(request as unknown as ClientRequest, { host, port, secureEndpoint: false })) as Promise<Duplex>;
    const socket = await withDeadline(pending, timeoutMs, signal, () => new ProxyError('connection_timeout', `${label}: no tunnel within ${timeoutMs} ms`, { retryable: true }), (s) => s.destroy()).catch(
      (err: unknown) => {
        throw upstreamError(err, `upstream proxy ${redactProxyUrl(proxy)}`);
      },
    );
    if (status !== 200) {
      socket.destroy();
      const why = `upstream proxy ${redactProxyUrl(proxy)} answered the CONNECT to ${where} with ${status}${statusText ? ` ${statusText}` : ''}`;
      if (status === 403) throw new ProxyError('forbidden', why);
      if (status === 504) throw new ProxyError('connection_timeout', why);
      throw new ProxyError('destination_unavailable', why);
    }
    return { socket, label, downstream: null };
  }
}

type LookupForPort = (port: number) => LookupFunction | undefined;

/**
 * Keep-alive agents whose every new connection resolves its host through the guarded lookup for its
 * port (a pooled connection was checked when it was made).
 */
class CheckedHttpAgent extends HttpAgent {
  constructor(
    options: AgentOptions,
    private readonly lookupForPort: LookupForPort,
  ) {
    super(options);
  }

  override createConnection(options: ClientRequestArgs, callback?: (err: Error | null, stream: Duplex) => void): Duplex | null | undefined {
    return super.createConnection(withLookup(options, this.lookupForPort, 80), callback);
  }
}

class CheckedHttpsAgent extends HttpsAgent {
  constructor(
    options: HttpsAgentOptions,
    private readonly lookupForPort: LookupForPort,
  ) {
    super(options);
  }

  override createConnection(options: HttpsRequestOptions, callback?: (err: Error | null, stream: Duplex) => void): Duplex | null | undefined {
    return super.createConnection(withLookup(options, this.lookupForPort, 443), callback);
  }
}

/** `options` with the guarded lookup for its port (`defaultPort` when it names none), if there is one. */
function withLookup<T extends { port?: number | string | null | undefined; lookup?: LookupFunction | undefined }>(options: T, lookupForPort: LookupForPort, defaultPort: number): T {
  const lookup = lookupForPort(Number(options.port) || defaultPort);
  if (lookup !== undefined) options.lookup = lookup;
  return options;
}

/** Stands in for the ClientRequest that proxy agents expect: they only emit events on it. */
class TunnelRequest extends EventEmitter {
  destroy(): void {}
  getHeader(): undefined {
    return undefined;
  }
}

function connectDirect(host: string, port: number, where: string, timeoutMs: number, lookup: LookupFunction | undefined, done: TunnelCallback): () => void {
  const downstream = new DownstreamRelay();
  const options = { host, port, noDelay: true, onread: downstream.onread };
  const socket = netConnect(lookup ? { ...options, lookup } : options);
  // Nothing is read before the tunnel starts the relay.
  socket.pause();
  let settled = false;
  const finish = (err: unknown) => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    socket.removeListener('connect', onConnect);
    socket.removeListener('error', finish);
    if (err === null) {
      done(null, { socket, label: where, downstream });
    } else {
      socket.destroy();
      done(upstreamError(err, where), null);
    }
  };
  const onConnect = () => finish(null);
  const timer = setTimeout(
    () => finish(new ProxyError('connection_timeout', `${where} did not accept the connection within ${timeoutMs} ms`, { retryable: true })),
    timeoutMs,
  );
  socket.once('connect', onConnect);
  socket.once('error', finish);
  return () => finish(new ProxyError('connection_reset', `${where}: the client went away`));
}

/** Races `pending` against a deadline and an abort; a value that arrives too late is disposed of. */
function withDeadline<T>(pending: Promise<T>, ms: number, signal: AbortSignal, timeoutError: () => Error, dispose: (value: T) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const finish = (err: unknown, value?: T) => {
      if (settled) {
        if (value !== undefined) dispose(value);
        return;
      }
      settled = true;
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      if (err !== null) {
        if (value !== undefined) dispose(value);
        reject(err);
      } else {
        resolve(value as T);
      }
    };
    const onAbort = () => finish(new ProxyError('connection_reset', 'the client went away'));
    const timer = setTimeout(() => finish(timeoutError()), ms);
    signal.addEventListener('abort', onAbort, { once: true });
    pending.then(
      (value) => finish(null, value),
      (err: unknown) => finish(err),
    );
  });
}

function closeIdle(agent: HttpAgent): void {
  for (const list of Object.values(agent.freeSockets)) {
    for (const socket of list ?? []) socket.destroy();
  }
}

const LOCAL_NAMES: ReadonlySet<string> = new Set(['localhost', '127.0.0.1', '::1', '0.0.0.0', '::']);

/** Why `proxy` cannot be used as the upstream proxy, or null when it can. */
function proxyUrlProblem(proxy: string, own: ListenAddress): string | null {
  let url: URL;
  try {
    url = new URL(proxy);
  } catch {
    return 'expected a proxy URL like "http://10.0.0.1:3128"';
  }
  if (!UPSTREAM_PROXY_PROTOCOLS.includes(url.protocol)) {
    return `expected an http://, https://, socks4:// or socks5:// proxy URL`;
  }
  const host = normalizeHost(url.hostname);
  const port = Number(url.port) || (url.protocol === 'https:' ? 443 : url.protocol.startsWith('socks') ? 1080 : 80);
  const ownHost = normalizeHost(own.host);
  if (own.port !== 0 && port === own.port && (host === ownHost || LOCAL_NAMES.has(host) || host.startsWith('127.')) && (LOCAL_NAMES.has(ownHost) || ownHost.startsWith('127.') || host === ownHost)) {
    return 'expected another proxy: this is the address of this proxy itself (requests would loop)';
  }
  return null;
}
