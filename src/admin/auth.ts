/**
 * Who may use the admin listener. With `admin.token` set, every state-changing call needs
 * `Authorization: Bearer <token>`; when the listener is reachable beyond loopback, every API call
 * and /metrics need it (the config is refused without a token then). Without a token (loopback only),
 * state-changing calls are still refused when a browser says they come from another site, and API
 * calls are refused when the Host is a name other than localhost (DNS rebinding).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';

export type Access = 'read' | 'write';

export interface Denial {
  readonly status: 401 | 403;
  readonly message: string;
  readonly headers?: Readonly<Record<string, string>>;
}

const digest = (text: string): Buffer => createHash('sha256').update(text).digest();

/** Decides whether `req` may do `access`. Returns null when allowed. */
export function checkAccess(req: IncomingMessage, access: Access, token: string | undefined, exposed: boolean): Denial | null {
  if (token !== undefined && (access === 'write' || exposed || req.headers.authorization !== undefined)) return checkToken(req, token);
  if (exposed) return { status: 403, message: 'the admin listener is reachable beyond loopback and has no admin.token' };
  if (!isLocalHostHeader(req.headers.host)) {
    const hint = token === undefined ? 'set admin.token to allow other names' : 'send the admin token to use other names';
    return { status: 403, message: `Host "${req.headers.host ?? ''}" is not a loopback address or localhost (${hint})` };
  }
  if (access === 'write' && isCrossSite(req)) {
    return { status: 403, message: 'cross-site request refused: state-changing admin calls must come from the admin page itself' };
  }
  return null;
}

function checkToken(req: IncomingMessage, token: string): Denial | null {
  const header = req.headers.authorization ?? '';
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  if (!match) {
    return { status: 401, message: 'this call needs the admin token: send "Authorization: Bearer <admin.token>"', headers: { 'www-authenticate': 'Bearer realm="portico admin"' } };
  }
  if (!timingSafeEqual(digest(match[1]!), digest(token))) {
    return { status: 401, message: 'the admin token is not valid', headers: { 'www-authenticate': 'Bearer realm="portico admin", error="invalid_token"' } };
  }
  return null;
}

function isLocalHostHeader(host: string | undefined): boolean {
  if (host === undefined || host === '') return true; // HTTP/1.0 clients, curl --http1.0
  const name = host.startsWith('[') ? host.slice(1, host.indexOf(']')) : host.replace(/:\d+$/, '');
  return isIP(name) !== 0 || name.toLowerCase() === 'localhost';
}

function isCrossSite(req: IncomingMessage): boolean {
  const site = req.headers['sec-fetch-site'];
  if (site === 'cross-site' || site === 'same-site') return true;
  const origin = req.headers.origin;
  if (origin === undefined || origin === 'null') return origin === 'null';
  try {
    return new URL(origin).host !== req.headers.host;
  } catch {
    return true;
  }
}
