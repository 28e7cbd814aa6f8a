/**
 * Sticky sessions by cookie: the cookie holds a backend's opaque id. A client whose cookie names a usable
 * backend with capacity goes there; any other client is balanced normally and (re-)cookied.
 */
import type { Backend } from './backend.js';
import { cookieEquals, cookieValueEnd, cookieValueStart } from './cookie.js';
import { isEligible } from './picker.js';
import type { BalanceRequest } from './types.js';

export class StickyCookie {
  readonly name: string;
  private readonly backends: readonly Backend[];
  private readonly setCookies: ReadonlyMap<Backend, string>;

  constructor(name: string, backends: readonly Backend[]) {
    this.name = name;
    this.backends = backends;
    this.setCookies = new Map(backends.map((b) => [b, `${name}=${b.id}; Path=/; HttpOnly`]));
  }

  /** The eligible backend the request's cookie names, or null. */
  find(req: BalanceRequest, tried: readonly Backend[] | null): Backend | null {
    const header = req.headers.cookie;
    if (header === undefined) return null;
    const start = cookieValueStart(header, this.name);
    if (start < 0) return null;
    const length = cookieValueEnd(header, start) - start;
    for (let i = 0; i < this.backends.length; i++) {
      const backend = this.backends[i]!;
      if (backend.id.length === length && header.startsWith(backend.id, start)) return isEligible(backend, tried) ? backend : null;
    }
    return null;
  }

  /** The Set-Cookie value pinning the client to `backend`, or undefined when its cookie already does. */
  setCookie(req: BalanceRequest, backend: Backend): string | undefined {
    const header = req.headers.cookie;
    if (header !== undefined && cookieEquals(header, this.name, backend.id)) return undefined;
    return this.setCookies.get(backend);
  }
}
