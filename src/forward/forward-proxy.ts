/**
 * The forward proxy's entry points: absolute-URI requests (`GET http://host/path`) and CONNECT
 * (`CONNECT host:443`), both run through the shared request phases with the forward door
 * (forward-door.ts). What proxying means is what this file adds: a relayed request goes through the
 * cache to its origin with the anonymizing header policy applied (origin-call.ts); a CONNECT becomes a
 * byte tunnel (tunnel.ts), within forward.max_tunnels.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { LookupFunction, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { cacheKeyUrl, keyedPath } from '../cache/cache-key.js';
import { NO_RULES } from '../cache/cache-rule.js';
import type { CacheEngine } from '../cache/types.js';
import type { ForwardConfig } from '../config/schema.js';
import { ProxyError } from '../core/errors.js';
import type { Timeouts } from '../core/messages.js';
import { admitBody, refuseUnreadable, type RequestGuard } from '../pipeline/admission.js';
import { NO_CACHE_RULES, type DoorCacheRules } from '../pipeline/cache-rules.js';
import { exchange } from '../pipeline/http-exchange.js';
import { localPage } from '../pipeline/pages.js';
import { runPhases } from '../pipeline/runner.js';
import { HttpSession, SocketSession, type SessionSink } from '../pipeline/session.js';
import { CidrList, normalizeAddress } from '../policy/cidr-list.js';
import { HeaderPolicy } from '../policy/header-policy.js';
import { RuleSet } from '../policy/rules.js';
import { DestinationGuard, type OwnListener } from './destination-guard.js';
import { ForwardDoor, type ForwardDestination } from './forward-door.js';
import { OriginCall, type OriginCallSettings } from './origin-call.js';
import { OriginConnector, type TunnelConnection } from './origin-connector.js';
import { ProxyAuthenticator } from './proxy-auth.js';
import { RecentBlocks } from './recent-blocks.js';
import { Tunnel } from './tunnel.js';

export interface ForwardProxyOptions {
  readonly config: ForwardConfig;
  readonly cache: CacheEngine | null;
  /** The operator's cache rules for this door (none by default). */
  readonly cacheRules?: DoorCacheRules;
  readonly sink: SessionSink;
  /** Admission check: malformed requests, size limits, rate limit (the runtime builds it from `limits`). */
  readonly admission: RequestGuard;
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
  /** What this proxy refused lately, per client (the `/blocked` page); one for the process's life. */
  readonly recentBlocks?: RecentBlocks;
}

const ESTABLISHED = Buffer.from('HTTP/1.1 200 Connection Established\r\n\r\n', 'latin1');
/** Bytes a client may send for its tunnel before the target is connected; beyond, reading pauses. */
const EARLY_DATA_LIMIT = 64 * 1024;
/** At most one "tunnel limit reached" warning per this period. */
const LIMIT_WARN_MS = 10_000;

export class ForwardProxy {
  readonly door: ForwardDoor;
  readonly rules: RuleSet;
  readonly connector: OriginConnector;
  readonly guard: DestinationGuard;
  private readonly config: ForwardConfig;
  private readonly cache: CacheEngine | null;
  private readonly cacheRules: DoorCacheRules;
  private readonly sink: SessionSink;
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
    const log = options.sink.log;
    this.config = config;
    this.cache = options.cache;
    this.cacheRules = options.cacheRules ?? NO_CACHE_RULES;
    this.sink = options.sink;
    this.rules = new RuleSet(config.rules, { keyPath: 'forward.rules', readFile: options.readFile, now: options.now });
    for (const w of this.rules.warnings) log.warn({ key: w.key }, w.message);
    const headerPolicy = new HeaderPolicy(config.anonymize);
    this.timeouts = { connectMs: config.timeouts.connect, responseHeaderMs: config.timeouts.response_header, idleMs: config.timeouts.idle };
    this.guard = new DestinationGuard({
      denyPrivate: config.deny_private,
      ownListeners: options.ownAddresses ?? (config.listen.port === 0 ? [] : [{ key: 'forward.listen', host: config.listen.host, port: config.listen.port }]),
    });
    this.connector = new OriginConnector({
      upstreamProxy: config.upstream_proxy,
      env: options.env ?? process.env,
      log,
      ownAddress: config.listen,
      connectMs: config.timeouts.connect,
      lookup: options.lookup,
      guard: this.guard,
    });
    this.door = new ForwardDoor({
      clients: new CidrList(config.clients),
      admission: options.admission,
      rules: this.rules,
      auth: config.auth ? new ProxyAuthenticator(config.auth, options.readFile) : null,
      headerPolicy,
      guard: this.guard,
      connectPorts: new Set(config.connect_ports),
      pacBypass: config.pac.bypass,
      recentBlocks: options.recentBlocks ?? new RecentBlocks(),
    });
    this.originCallSettings = { connector: this.connector, headerPolicy, timeouts: this.timeouts, maxBodySize: options.admission.limits.maxBodySize };
    if (config.deny_private && this.connector.chained) {
      log.warn(
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

  handleRequest(req: IncomingMessage, res: ServerResponse): void {
    const session = new HttpSession('forward', req, res, normalizeAddress(req.socket.remoteAddress), 'http', this.sink);
    runPhases(session, this.door, this.relay);
  }

  handleConnect(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const session = new SocketSession('forward', 'connect', req, socket, head, normalizeAddress(req.socket.remoteAddress), 'http', this.sink);
    runPhases(session, this.door, this.connect);
  }

  /** A request Node's parser could not read: refused and logged like every other. */
  handleUnreadable(err: NodeJS.ErrnoException, socket: Socket): void {
    refuseUnreadable('forward', err, socket, 'http', this.sink);
  }

  /** The proxy phase of an absolute-URI request: through the cache to the origin. */
  private readonly relay = (session: HttpSession, dest: ForwardDestination): void => {
    if (dest.kind !== 'http') return;
    const method = session.method;
    let maxForwards = -1;
    const maxForwardsField = session.req.headers['max-forwards'];
    if ((method === 'OPTIONS' || method === 'TRACE') && typeof maxForwardsField === 'string') {
      maxForwards = parseMaxForwards(maxForwardsField);
      if (maxForwards === 0) {
        session.cache = 'local';
        session.respond(finalRecipientAnswer(session));
        return;
      }
    }
    const target = dest.target;
    const upstream = this.connector.target(target.scheme, target.hostname, target.port, target.origin);
    session.upstream = upstream.label;
    const tooBig = admitBody(session, this.originCallSettings.maxBodySize);
    if (tooBig !== null) {
      session.refuse(tooBig);
      return;
    }
    const call = new OriginCall(this.originCallSettings, session, target, upstream, maxForwards);
    const rules = this.cache !== null && this.cacheRules.size > 0 ? this.cacheRules.match(this.door.ruleRequest(session, dest)) : NO_RULES;
    const cacheKey = this.cache === null ? null : cacheKeyUrl(target.scheme, target.authority, keyedPath(target.path, rules[0]?.query ?? null));
    exchange(session, this.cache, cacheKey, call.fetch, undefined, rules);
  };

  /** The proxy phase of a CONNECT: a tunnel to the target, within forward.max_tunnels. */
  private readonly connect = (session: SocketSession, dest: ForwardDestination): void => {
    const max = this.config.max_tunnels;
    if (this.tunnels.size + this.opening >= max) {
      const now = Date.now();
      if (now - this.limitWarnedAt >= LIMIT_WARN_MS) {
        this.limitWarnedAt = now;
        this.sink.log.warn({ key: 'forward.max_tunnels', limit: max }, 'tunnel limit reached: CONNECT requests are refused with 503');
      }
      session.refuse(new ProxyError('tunnel_limit', `this proxy already has ${max} tunnels open (forward.max_tunnels); try again later`));
      return;
    }
    this.opening++;
    const socket = session.socket;
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
    const cancel = this.connector.openTunnel(dest.hostname, dest.port, this.timeouts.connectMs, (error, connection) => {
      this.opening--;
      socket.removeListener('data', onEarlyData);
      socket.removeListener('end', onClientGone);
      socket.removeListener('close', onClientGone);
      socket.pause();
      if (connection !== null) session.upstream = connection.label;
      if (clientGone || socket.destroyed || !socket.writable) {
        connection?.socket.destroy();
        socket.destroy();
        if (error !== null) session.error = error.code;
        session.finish(499);
      } else if (error !== null) {
        session.refuse(error);
      } else {
        const head = session.head;
        this.startTunnel(session, connection!, early === null ? head : Buffer.concat(head.length > 0 ? [head, ...early] : early));
      }
    });
  };

  private startTunnel(session: SocketSession, connection: TunnelConnection, first: Buffer): void {
    connection.socket.on('error', ignore);
    session.markAnswered();
    session.socket.write(ESTABLISHED);
    const tunnel = new Tunnel(session.socket, connection, first, this.config.tunnel_idle_timeout, (t, stats) => {
      this.tunnels.delete(t);
      session.finish(200, stats);
    });
    this.tunnels.add(tunnel);
  }
}

function ignore(): void {}

/** What `OPTIONS` with `Max-Forwards: 0` answers in Allow: every method is relayed. */
const RELAYED_METHODS = 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, TRACE, CONNECT';

/** Fields a TRACE answer leaves out: they carry credentials (RFC 9110 §9.3.8). */
const TRACE_EXCLUDED: ReadonlySet<string> = new Set(['authorization', 'proxy-authorization', 'cookie', 'set-cookie']);

/**
 * OPTIONS or TRACE with `Max-Forwards: 0` (RFC 9110 §7.6.2): this proxy is the final recipient.
 * OPTIONS gets 200 with the methods the proxy relays; TRACE gets the request back as message/http,
 * without the fields that carry credentials (§9.3.8).
 */
function finalRecipientAnswer(session: HttpSession) {
  const req = session.req;
  if (session.method === 'OPTIONS') return localPage('text/plain', '', { allow: RELAYED_METHODS, 'cache-control': 'no-store' });
  let body = `${session.method} ${session.url} HTTP/${req.httpVersion}\r\n`;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    if (!TRACE_EXCLUDED.has(raw[i]!.toLowerCase())) body += `${raw[i]}: ${raw[i + 1]}\r\n`;
  }
  body += '\r\n';
  return localPage('message/http', body, { 'cache-control': 'no-store' });
}

/** Max-Forwards as a number, or -1 when it is not 1*DIGIT (then it is relayed unchanged). */
function parseMaxForwards(value: string): number {
  if (!/^\d{1,9}$/.test(value)) return -1;
  return Number(value);
}
