/**
 * The forward proxy's front door: browsers, curl, npm and git send it absolute-URI requests
 * (`GET http://host/path`) and CONNECT requests (`CONNECT host:443`).
 *
 * Order of checks for both: client allow-list (403) → loop (508) → proxy authentication (407) →
 * target parsing (400) → CONNECT port (403) → target is this proxy (508) or another of its listeners,
 * or a literal private address with forward.deny_private (403) → access rules (403 block page) →
 * Max-Forwards: 0 on OPTIONS/TRACE (answered here) or the tunnel limit (503). Rules see the host name
 * as the client wrote it, before any DNS lookup. Then a relayed request goes through the shared
 * pipeline (cache → upstream → reply) with the header policy applied, and a CONNECT becomes a byte
 * tunnel. Names are checked again after DNS, by the lookup each origin connection uses
 * (DestinationGuard, DNS-rebinding safe).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isIP, type LookupFunction, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { cacheKeyUrl } from '../cache/cache-key.js';
import type { CacheEngine } from '../cache/types.js';
import type { ForwardConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import { writeAccess } from '../observe/access-log.js';
import { CidrList, normalizeAddress } from '../policy/cidr-list.js';
import { HeaderPolicy } from '../policy/header-policy.js';
import { RuleSet, type BlockedRequest, type RuleVerdict } from '../policy/rules.js';
import { ProxyError } from '../proxy/errors.js';
import { exchange, logWhenDone, newExchangeRecord, type ExchangeRecord } from '../proxy/exchange.js';
import { admitBody, type RequestGuard } from '../proxy/request-guard.js';
import { writeError } from '../proxy/reply.js';
import type { Timeouts } from '../proxy/upstream-request.js';
import { DestinationGuard, type OwnListener } from './destination-guard.js';
import { OriginCall, type OriginCallSettings } from './origin-call.js';
import { OriginConnector, type TunnelConnection } from './origin-connector.js';
import { PAC_CONTENT_TYPE, pacScript, proxyAddressFor } from './pac.js';
import { blockedPage, errorPage, notAProxyRequestPage, sendPage, sendRawPage } from './pages.js';
import { ProxyAuthenticator } from './proxy-auth.js';
import { recentBlocks, recentBlocksPage } from './recent-blocks.js';
import { parseAbsoluteTarget, parseConnectTarget } from './request-target.js';
import { Tunnel, type TunnelStats } from './tunnel.js';

export interface ForwardProxyOptions {
  readonly config: ForwardConfig;
  readonly cache: CacheEngine | null;
  readonly log: Logger;
  readonly onDone?: ((record: ExchangeRecord, status: number) => void) | undefined;
  /** Admission check: malformed requests, size limits, rate limit (the runtime builds it from `limits`). */
  readonly admission: RequestGuard;
  /** Told of every request an access rule refused. */
  readonly onBlocked?: ((blocked: BlockedRequest) => void) | undefined;
  /** Where HTTP_PROXY / HTTPS_PROXY / NO_PROXY are read from (default process.env). */
  readonly env?: NodeJS.ProcessEnv;
  /** The clock for time-of-day rules (default the system clock). */
  readonly now?: () => Date;
  /** Reads hosts_file and htpasswd files (default fs.readFileSync as UTF-8). */
  readonly readFile?: (path: string) => string;
  /** Resolves origin host names (default dns.lookup); see OriginConnectorOptions.lookup. */
  readonly lookup?: LookupFunction;
  /**
   * This process's listeners (forward, reverse, admin), never a destination; a function is asked at
   * each check. Default: forward.listen alone. See ownListenersOf().
   */
  readonly ownAddresses?: readonly OwnListener[] | (() => readonly OwnListener[]);
}

const ESTABLISHED = Buffer.from('HTTP/1.1 200 Connection Established\r\n\r\n', 'latin1');
/** Bytes a client may send for its tunnel before the target is connected; beyond, reading pauses. */
const EARLY_DATA_LIMIT = 64 * 1024;
/** At most one "tunnel limit reached" warning per this period. */
const LIMIT_WARN_MS = 10_000;

export class ForwardProxy {
  readonly rules: RuleSet;
  readonly headerPolicy: HeaderPolicy;
  readonly connector: OriginConnector;
  readonly guard: DestinationGuard;
  private readonly config: ForwardConfig;
  private readonly cache: CacheEngine | null;
  private readonly log: Logger;
  private readonly onDone: ((record: ExchangeRecord, status: number) => void) | undefined;
  private readonly onBlocked: ((blocked: BlockedRequest) => void) | undefined;
  private readonly admission: RequestGuard;
  private readonly clients: CidrList;
  private readonly connectPorts: ReadonlySet<number>;
  private readonly auth: ProxyAuthenticator | null;
  private readonly timeouts: Timeouts;
  private readonly originCallSettings: OriginCallSettings;
  private readonly tunnels = new Set<Tunnel>();
  /** CONNECTs whose target connection is being opened: they count against forward.max_tunnels. */
  private opening = 0;
  /** When the tunnel limit was last reported in the log (at most one warning per LIMIT_WARN_MS). */
  private limitWarnedAt = 0;

  /** Compiles the config; throws ConfigError naming the key for bad rules, auth files or upstream proxy. */
  constructor(options: ForwardProxyOptions) {
    const { config } = options;
    this.config = config;
    this.cache = options.cache;
    this.log = options.log;
    this.onDone = options.onDone;
    this.onBlocked = options.onBlocked;
    this.admission = options.admission;
    this.clients = new CidrList(config.clients);
    this.connectPorts = new Set(config.connect_ports);
    this.rules = new RuleSet(config.rules, { keyPath: 'forward.rules', readFile: options.readFile, now: options.now });
    for (const w of this.rules.warnings) this.log.warn({ key: w.key }, w.message);
    this.auth = config.auth ? new ProxyAuthenticator(config.auth, options.readFile) : null;
    this.headerPolicy = new HeaderPolicy(config.anonymize);
    this.timeouts = { connectMs: config.timeouts.connect, responseHeaderMs: config.timeouts.response_header, idleMs: config.timeouts.idle };

    this.guard = new DestinationGuard({
      denyPrivate: config.deny_private,
      ownListeners: options.ownAddresses ?? (config.listen.port === 0 ? [] : [{ key: 'forward.listen', host: config.listen.host, port: config.listen.port }]),
    });
    this.connector = new OriginConnector({
      upstreamProxy: config.upstream_proxy,
      env: options.env ?? process.env,
      log: options.log,
      ownAddress: config.listen,
      connectMs: config.timeouts.connect,
      lookup: options.lookup,
      guard: this.guard,
    });
    this.originCallSettings = { connector: this.connector, headerPolicy: this.headerPolicy, timeouts: this.timeouts, maxBodySize: options.admission.limits.maxBodySize };
    if (config.deny_private && this.connector.chained) {
      this.log.warn(
        { key: 'forward.deny_private' },
        'requests sent through the upstream proxy are resolved by that proxy: forward.deny_private checks only their literal addresses and localhost names here',
      );
    }
  }

  /** Number of CONNECT tunnels currently open. */
  get openTunnels(): number {
    return this.tunnels.size;
  }

  /** Number of CONNECT tunnels whose target connection is still being opened. */
  get openingTunnels(): number {
    return this.opening;
  }

  /** Retires this runtime's forward proxy: idle upstream connections close; requests and tunnels in flight finish. */
  stop(): void {
    this.connector.stop();
  }

  /** Cuts every open CONNECT tunnel (for shutdown). */
  closeTunnels(): void {
    for (const tunnel of this.tunnels) tunnel.close();
  }

  // --- absolute-URI requests (and origin-form requests for the PAC file) ---

  handleRequest(req: IncomingMessage, res: ServerResponse): void {
    const clientAddress = normalizeAddress(req.socket.remoteAddress);
    const record = newExchangeRecord('forward', clientAddress);
    logWhenDone(res, req, record, this.log, this.onDone);
    if (!this.clients.has(clientAddress)) {
      this.fail(req, res, record, this.clientRefused(clientAddress));
      return;
    }
    const refused = this.admission.admit(req, clientAddress);
    if (refused) {
      this.fail(req, res, record, refused);
      return;
    }
    const url = req.url ?? '';
    if (url.charCodeAt(0) === 47 /* / */) {
      this.serveLocal(req, res, record, url);
      return;
    }
    if (this.headerPolicy.seenBefore(req.headers)) {
      this.fail(req, res, record, new ProxyError('loop_detected', 'this request has already been through this proxy'));
      return;
    }
    if (this.auth === null) {
      this.relay(req, res, record, undefined);
      return;
    }
    const user = this.auth.authenticate(req.headers['proxy-authorization']);
    if (user instanceof Promise) {
      void user.then((u) => this.relayIfAuthenticated(req, res, record, u));
    } else {
      this.relayIfAuthenticated(req, res, record, user);
    }
  }

  private relayIfAuthenticated(req: IncomingMessage, res: ServerResponse, record: ExchangeRecord, user: string | null): void {
    if (user === null) this.fail(req, res, record, this.authRequired(req.headers['proxy-authorization'] !== undefined));
    else this.relay(req, res, record, user);
  }

  private relay(req: IncomingMessage, res: ServerResponse, record: ExchangeRecord, user: string | undefined): void {
    const target = parseAbsoluteTarget(req.url ?? '');
    if (target === null) {
      this.fail(req, res, record, new ProxyError('bad_request', 'expected an absolute http:// or https:// URL as the request target'));
      return;
    }
    if (isOwnAddress(target.hostname, target.port, req.socket)) {
      this.fail(req, res, record, new ProxyError('loop_detected', `${target.authority} is this proxy itself`));
      return;
    }
    const prohibited = this.guard.checkTarget(target.hostname, target.port, target.authority);
    if (prohibited !== null) {
      this.fail(req, res, record, prohibited);
      return;
    }
    const method = req.method ?? 'GET';
    const verdict = this.rules.size === 0 ? null : this.rules.evaluate({
      host: target.hostname,
      port: target.port,
      method,
      clientAddress: record.clientAddress,
      userAgent: req.headers['user-agent'],
      user,
    });
    if (verdict !== null && verdict.action === 'deny') {
      this.logBlocked(record, user, method, target.authority, verdict);
      record.error = 'forbidden';
      sendPage(req, res, blockedPage(target.authority, verdict.label, req.headers.accept));
      return;
    }

    let maxForwards = -1;
    const maxForwardsField = req.headers['max-forwards'];
    if ((method === 'OPTIONS' || method === 'TRACE') && typeof maxForwardsField === 'string') {
      maxForwards = parseMaxForwards(maxForwardsField);
      if (maxForwards === 0) {
        this.answerAsFinalRecipient(req, res, record, method);
        return;
      }
    }

    const upstream = this.connector.target(target.scheme, target.hostname, target.port, target.origin);
    record.upstream = upstream.label;
    const tooBig = admitBody(req, res, this.originCallSettings.maxBodySize);
    if (tooBig) {
      this.fail(req, res, record, tooBig);
      return;
    }
    const call = new OriginCall(this.originCallSettings, req, res, target, upstream, record.clientAddress, maxForwards);
    const cacheKey = this.cache === null ? null : cacheKeyUrl(target.scheme, target.authority, target.path);
    exchange(req, res, record, this.cache, cacheKey, call.fetch);
  }

  /**
   * OPTIONS or TRACE with `Max-Forwards: 0` (RFC 9110 §7.6.2): this proxy is the final recipient.
   * OPTIONS gets 200 with the methods the proxy relays; TRACE gets the request back as message/http,
   * without the fields that carry credentials (§9.3.8).
   */
  private answerAsFinalRecipient(req: IncomingMessage, res: ServerResponse, record: ExchangeRecord, method: string): void {
    record.cache = 'local';
    if (method === 'OPTIONS') {
      res.writeHead(200, { allow: RELAYED_METHODS, 'content-length': 0, 'cache-control': 'no-store' });
      res.end();
      return;
    }
    let body = `${method} ${req.url ?? ''} HTTP/${req.httpVersion}\r\n`;
    const raw = req.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) {
      if (!TRACE_EXCLUDED.has(raw[i]!.toLowerCase())) body += `${raw[i]}: ${raw[i + 1]}\r\n`;
    }
    body += '\r\n';
    res.writeHead(200, { 'content-type': 'message/http', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
    res.end(body);
  }

  /** Origin-form requests: the PAC file, or a page saying this is a proxy. */
  private serveLocal(req: IncomingMessage, res: ServerResponse, record: ExchangeRecord, url: string): void {
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const socket = req.socket;
    const address = proxyAddressFor(req.headers.host, socket.localAddress, socket.localPort);
    if (path === '/proxy.pac' || path === '/wpad.dat') {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        this.fail(req, res, record, new ProxyError('method_not_allowed', 'the proxy auto-config file supports GET and HEAD', { headers: { allow: 'GET, HEAD' } }));
        return;
      }
      const body = pacScript(address, this.config.pac.bypass);
      record.cache = 'local';
      res.writeHead(200, {
        'content-type': PAC_CONTENT_TYPE,
        'content-length': Buffer.byteLength(body),
        'cache-control': 'max-age=300',
      });
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    if (path === '/blocked') {
      record.cache = 'local';
      sendPage(req, res, recentBlocksPage(record.clientAddress, req.headers.accept));
      return;
    }
    record.error = 'bad_request';
    sendPage(req, res, notAProxyRequestPage(address, req.headers.accept));
  }

  private fail(req: IncomingMessage, res: ServerResponse, record: ExchangeRecord, err: ProxyError): void {
    record.error = err.code;
    writeError(req, res, err);
  }

  // --- CONNECT tunnels ---

  handleConnect(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', ignore);
    const clientAddress = normalizeAddress(req.socket.remoteAddress);
    const record = newExchangeRecord('forward', clientAddress);
    if (!this.clients.has(clientAddress)) {
      this.refuseConnect(req, socket, record, errorPage(this.clientRefused(clientAddress)), 'forbidden');
      return;
    }
    const refused = this.admission.admit(req, clientAddress);
    if (refused) {
      this.refuseConnect(req, socket, record, errorPage(refused), refused.code);
      return;
    }
    if (this.headerPolicy.seenBefore(req.headers)) {
      this.refuseConnect(req, socket, record, errorPage(new ProxyError('loop_detected', 'this request has already been through this proxy')), 'loop_detected');
      return;
    }
    if (this.auth === null) {
      this.connect(req, socket, head, record, undefined);
      return;
    }
    const user = this.auth.authenticate(req.headers['proxy-authorization']);
    if (user instanceof Promise) {
      void user.then((u) => this.connectIfAuthenticated(req, socket, head, record, u));
    } else {
      this.connectIfAuthenticated(req, socket, head, record, user);
    }
  }

  private connectIfAuthenticated(req: IncomingMessage, socket: Duplex, head: Buffer, record: ExchangeRecord, user: string | null): void {
    if (user === null) {
      this.refuseConnect(req, socket, record, errorPage(this.authRequired(req.headers['proxy-authorization'] !== undefined)), 'proxy_auth_required');
    } else {
      this.connect(req, socket, head, record, user);
    }
  }

  private connect(req: IncomingMessage, socket: Duplex, head: Buffer, record: ExchangeRecord, user: string | undefined): void {
    const authority = req.url ?? '';
    const target = parseConnectTarget(authority);
    if (target === null) {
      this.refuseConnect(req, socket, record, errorPage(new ProxyError('bad_request', 'expected CONNECT host:port')), 'bad_request');
      return;
    }
    if (!this.connectPorts.has(target.port)) {
      const allowed = [...this.connectPorts].join(', ');
      const err = new ProxyError('forbidden', `CONNECT to port ${target.port} is not allowed (forward.connect_ports: ${allowed || 'none'})`);
      this.refuseConnect(req, socket, record, errorPage(err), 'forbidden');
      return;
    }
    if (isOwnAddress(target.hostname, target.port, req.socket)) {
      this.refuseConnect(req, socket, record, errorPage(new ProxyError('loop_detected', `${authority} is this proxy itself`)), 'loop_detected');
      return;
    }
    const prohibited = this.guard.checkTarget(target.hostname, target.port, authority);
    if (prohibited !== null) {
      this.refuseConnect(req, socket, record, errorPage(prohibited), prohibited.code);
      return;
    }
    const verdict = this.rules.size === 0 ? null : this.rules.evaluate({
      host: target.hostname,
      port: target.port,
      method: 'CONNECT',
      clientAddress: record.clientAddress,
      userAgent: req.headers['user-agent'],
      user,
    });
    if (verdict !== null && verdict.action === 'deny') {
      this.logBlocked(record, user, 'CONNECT', authority, verdict);
      this.refuseConnect(req, socket, record, blockedPage(authority, verdict.label, req.headers.accept), 'forbidden');
      return;
    }

    const max = this.config.max_tunnels;
    if (this.tunnels.size + this.opening >= max) {
      const err = new ProxyError('tunnel_limit', `this proxy already has ${max} tunnels open (forward.max_tunnels); try again later`);
      const now = Date.now();
      if (now - this.limitWarnedAt >= LIMIT_WARN_MS) {
        this.limitWarnedAt = now;
        this.log.warn({ key: 'forward.max_tunnels', limit: max }, 'tunnel limit reached: CONNECT requests are refused with 503');
      }
      this.refuseConnect(req, socket, record, errorPage(err), err.code);
      return;
    }

    this.opening++;
    // While the target connection opens, read what the client sends (bytes for the tunnel, kept for
    // it) so that its FIN is seen: a client that gives up frees its slot at once. Node's server
    // sockets allow half-open connections, so without reading, neither 'end' nor 'close' would come.
    let clientGone = false;
    let early: Buffer[] | null = null;
    let earlyBytes = 0;
    const onClientGone = () => {
      clientGone = true;
      cancel();
    };
    const onEarlyData = (chunk: Buffer) => {
      (early ??= []).push(chunk);
      earlyBytes += chunk.length;
      if (earlyBytes >= EARLY_DATA_LIMIT) socket.pause();
    };
    socket.on('data', onEarlyData);
    socket.once('end', onClientGone);
    socket.once('close', onClientGone);
    const cancel = this.connector.openTunnel(target.hostname, target.port, this.timeouts.connectMs, (error, connection) => {
      this.opening--;
      socket.removeListener('data', onEarlyData);
      socket.removeListener('end', onClientGone);
      socket.removeListener('close', onClientGone);
      socket.pause();
      if (connection !== null) record.upstream = connection.label;
      if (clientGone || socket.destroyed || !socket.writable) {
        connection?.socket.destroy();
        socket.destroy();
        if (error !== null) record.error = error.code;
        this.logConnect(req, record, 499, null);
      } else if (error !== null) {
        this.refuseConnect(req, socket, record, errorPage(error), error.code);
      } else {
        this.startTunnel(req, socket, record, connection!, early === null ? head : Buffer.concat(head.length > 0 ? [head, ...early] : early));
      }
    });
  }

  private startTunnel(req: IncomingMessage, socket: Duplex, record: ExchangeRecord, connection: TunnelConnection, first: Buffer): void {
    connection.socket.on('error', ignore);
    socket.write(ESTABLISHED);
    const tunnel = new Tunnel(socket, connection, first, this.config.tunnel_idle_timeout, (t, stats) => {
      this.tunnels.delete(t);
      this.logConnect(req, record, 200, stats);
    });
    this.tunnels.add(tunnel);
  }

  private refuseConnect(req: IncomingMessage, socket: Duplex, record: ExchangeRecord, page: ReturnType<typeof errorPage>, code: string): void {
    record.error = code;
    sendRawPage(socket, page);
    this.logConnect(req, record, page.status, null);
  }

  private logConnect(req: IncomingMessage, record: ExchangeRecord, status: number, stats: TunnelStats | null): void {
    this.onDone?.(record, status);
    writeAccess(this.log, {
      door: record.door,
      client: record.clientAddress,
      method: 'CONNECT',
      url: req.url ?? '',
      status,
      upstream: record.upstream,
      error: record.error ?? (stats?.idle ? 'idle_timeout' : undefined),
      up: stats?.up,
      down: stats?.down,
      ms: Math.round(performance.now() - record.startedAt),
      httpVersion: req.httpVersion,
      userAgent: req.headers['user-agent'],
    });
  }

  // --- shared ---

  private clientRefused(clientAddress: string): ProxyError {
    return new ProxyError('forbidden', `${clientAddress || 'this client'} is not allowed to use this proxy (see forward.clients)`);
  }

  private authRequired(sentCredentials: boolean): ProxyError {
    return new ProxyError('proxy_auth_required', sentCredentials ? 'the proxy credentials are not valid' : 'this proxy needs a user name and password', {
      headers: { 'proxy-authenticate': this.auth!.challenge },
    });
  }

  private logBlocked(record: ExchangeRecord, user: string | undefined, method: string, target: string, verdict: RuleVerdict): void {
    const blocked: BlockedRequest = { at: Date.now(), client: record.clientAddress, user, method, target, rule: verdict.label };
    recentBlocks.record(blocked);
    this.onBlocked?.(blocked);
    this.log.info({ door: 'forward', client: record.clientAddress, user, method, target, rule: verdict.label }, 'blocked by policy');
  }
}

function ignore(): void {}

/** What `OPTIONS` with `Max-Forwards: 0` answers in Allow: every method is relayed. */
const RELAYED_METHODS = 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, TRACE, CONNECT';

/** Fields a TRACE answer leaves out: they carry credentials (RFC 9110 §9.3.8). */
const TRACE_EXCLUDED: ReadonlySet<string> = new Set(['authorization', 'proxy-authorization', 'cookie', 'set-cookie']);

/** Max-Forwards as a number, or -1 when it is not 1*DIGIT (then it is relayed unchanged). */
function parseMaxForwards(value: string): number {
  if (!/^\d{1,9}$/.test(value)) return -1;
  return Number(value);
}

/**
 * True when host:port is the listener this request arrived on (pre-DNS: names and literals only;
 * `localhost`, loopback and unspecified addresses on the same port count).
 */
export function isOwnAddress(host: string, port: number, socket: Socket): boolean {
  if (port !== socket.localPort) return false;
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  if (host === normalizeAddress(socket.localAddress)) return true;
  const family = isIP(host);
  if (family === 4) return host.startsWith('127.') || host === '0.0.0.0';
  if (family === 6) return host === '::1' || host === '::' || host === '::ffff:127.0.0.1';
  return false;
}
