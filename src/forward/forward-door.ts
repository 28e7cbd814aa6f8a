/**
 * The forward door's part of the request phases (src/pipeline/runner.ts), for absolute-URI requests and
 * CONNECT alike: who may use the proxy (forward.clients), and — in this order — a request that has been
 * through this proxy already (508), proxy authentication (407), the target (400), the CONNECT port
 * (403), the target being this proxy (508) or another of its listeners, or a literal private address
 * with forward.deny_private (403). Rules see the host name as the client wrote it, before any DNS
 * lookup; names are checked again after DNS, by the lookup each origin connection uses
 * (DestinationGuard, DNS-rebinding safe). Origin-form requests are answered here: the PAC file, or a
 * page saying this is a proxy.
 */
import { isIP } from 'node:net';
import { ProxyError } from '../core/errors.js';
import type { RequestGuard } from '../pipeline/admission.js';
import { localPage, notAProxyRequestPage } from '../pipeline/pages.js';
import type { Door, Resolution } from '../pipeline/runner.js';
import type { Session } from '../pipeline/session.js';
import { normalizeAddress, type CidrList } from '../policy/cidr-list.js';
import type { HeaderPolicy } from '../policy/header-policy.js';
import type { RuleRequest, RuleSet } from '../policy/rules.js';
import type { DestinationGuard } from './destination-guard.js';
import { PAC_CONTENT_TYPE, pacScript, proxyAddressFor } from './pac.js';
import type { ProxyAuthenticator } from './proxy-auth.js';
import { recentBlocksPage, type RecentBlocks } from './recent-blocks.js';
import { parseAbsoluteTarget, parseConnectTarget, type AbsoluteTarget } from './request-target.js';

/** Where a forward request goes: an origin's URL, or a CONNECT authority. */
export type ForwardDestination =
  | { readonly kind: 'http'; readonly target: AbsoluteTarget; readonly hostname: string; readonly port: number; readonly authority: string }
  | { readonly kind: 'connect'; readonly hostname: string; readonly port: number; readonly authority: string };

export interface ForwardDoorOptions {
  readonly clients: CidrList;
  readonly admission: RequestGuard;
  readonly rules: RuleSet;
  readonly auth: ProxyAuthenticator | null;
  readonly headerPolicy: HeaderPolicy;
  readonly guard: DestinationGuard;
  readonly connectPorts: ReadonlySet<number>;
  readonly pacBypass: readonly string[];
  /** What this proxy refused lately, per client: the `/blocked` page. */
  readonly recentBlocks: RecentBlocks;
}

export class ForwardDoor implements Door<ForwardDestination> {
  readonly rules: RuleSet;
  readonly admission: RequestGuard;
  private readonly options: ForwardDoorOptions;

  constructor(options: ForwardDoorOptions) {
    this.options = options;
    this.rules = options.rules;
    this.admission = options.admission;
  }

  admitClient(session: Session): ProxyError | null {
    if (this.options.clients.has(session.clientAddress)) return null;
    return new ProxyError('forbidden', `${session.clientAddress || 'this client'} is not allowed to use this proxy (see forward.clients)`);
  }

  resolve(session: Session, dryRun: boolean): Resolution<ForwardDestination> | Promise<Resolution<ForwardDestination>> {
    if (session.kind === 'http' && session.url.charCodeAt(0) === 47 /* / */) return this.answerLocally(session);
    const { auth, headerPolicy } = this.options;
    if (headerPolicy.seenBefore(session.req.headers)) return new ProxyError('loop_detected', 'this request has already been through this proxy');
    if (auth === null) return this.destination(session);
    // A dry run (explain) takes the user it is given as authenticated; without one it is a request
    // without credentials, which a real one would be refused for (407).
    if (dryRun) return session.user === undefined ? this.authenticated(session, null, false) : this.destination(session);
    const credentials = session.req.headers['proxy-authorization'];
    const user = auth.authenticate(credentials);
    if (user instanceof Promise) return user.then((u) => this.authenticated(session, u, credentials !== undefined));
    return this.authenticated(session, user, credentials !== undefined);
  }

  ruleRequest(session: Session, dest: ForwardDestination): RuleRequest {
    const headers = session.req.headers;
    return {
      host: dest.hostname,
      port: dest.port,
      method: session.method,
      clientAddress: session.clientAddress,
      userAgent: headers['user-agent'],
      user: session.user,
      path: dest.kind === 'http' ? dest.target.path : undefined,
      headers,
    };
  }

  blockedTarget(_session: Session, dest: ForwardDestination): string {
    return dest.authority;
  }

  limitOf(): null {
    return null;
  }

  private authenticated(session: Session, user: string | null, sentCredentials: boolean): Resolution<ForwardDestination> {
    if (user === null) {
      return new ProxyError('proxy_auth_required', sentCredentials ? 'the proxy credentials are not valid' : 'this proxy needs a user name and password', {
        headers: { 'proxy-authenticate': this.options.auth!.challenge },
      });
    }
    session.user = user;
    return this.destination(session);
  }

  private destination(session: Session): Resolution<ForwardDestination> {
    const { guard, connectPorts } = this.options;
    const socket = session.req.socket;
    let dest: ForwardDestination;
    if (session.kind === 'connect') {
      const authority = session.url;
      const target = parseConnectTarget(authority);
      if (target === null) return new ProxyError('bad_request', 'expected CONNECT host:port');
      if (!connectPorts.has(target.port)) {
        const allowed = [...connectPorts].join(', ');
        return new ProxyError('forbidden', `CONNECT to port ${target.port} is not allowed (forward.connect_ports: ${allowed || 'none'})`);
      }
      dest = { kind: 'connect', hostname: target.hostname, port: target.port, authority };
    } else {
      const target = parseAbsoluteTarget(session.url);
      if (target === null) return new ProxyError('bad_request', 'expected an absolute http:// or https:// URL as the request target');
      dest = { kind: 'http', target, hostname: target.hostname, port: target.port, authority: target.authority };
    }
    if (isOwnAddress(dest.hostname, dest.port, socket)) return new ProxyError('loop_detected', `${dest.authority} is this proxy itself`);
    return guard.checkTarget(dest.hostname, dest.port, dest.authority) ?? { dest };
  }

  /** Origin-form requests: the PAC file, what was blocked lately (`/blocked`), or a page saying this is a proxy. */
  private answerLocally(session: Session): Resolution<ForwardDestination> {
    const url = session.url;
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const socket = session.req.socket;
    const address = proxyAddressFor(session.req.headers.host, socket.localAddress, socket.localPort);
    if (path === '/proxy.pac' || path === '/wpad.dat') {
      if (session.method !== 'GET' && session.method !== 'HEAD') {
        return new ProxyError('method_not_allowed', 'the proxy auto-config file supports GET and HEAD', { headers: { allow: 'GET, HEAD' } });
      }
      return localPage(PAC_CONTENT_TYPE, pacScript(address, this.options.pacBypass), { 'cache-control': 'max-age=300' });
    }
    if (path === '/blocked') return recentBlocksPage(this.options.recentBlocks, session.clientAddress, session.req.headers.accept);
    session.error = 'bad_request';
    return notAProxyRequestPage(address, session.req.headers.accept);
  }
}

/**
 * True when host:port is the listener this request arrived on (pre-DNS: names and literals only;
 * `localhost`, loopback and unspecified addresses on the same port count).
 */
function isOwnAddress(host: string, port: number, socket: Session['req']['socket']): boolean {
  // A name other than localhost is never this listener here (names are checked after DNS): the
  // socket's own address (a getsockname call) is read only for a literal address or localhost.
  const family = isIP(host);
  const local = host === 'localhost' || host.endsWith('.localhost');
  if (family === 0 && !local) return false;
  if (port !== socket.localPort) return false;
  if (local || host === normalizeAddress(socket.localAddress)) return true;
  if (family === 4) return host.startsWith('127.') || host === '0.0.0.0';
  return host === '::1' || host === '::' || host === '::ffff:127.0.0.1';
}
