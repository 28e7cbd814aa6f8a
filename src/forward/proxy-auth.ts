/**
 * Basic proxy authentication (RFC 9110 §11.7): `Proxy-Authorization: Basic base64(user:password)`
 * checked against `forward.auth.users` and/or an htpasswd file. Compiled once; a credential that
 * passed an expensive check (scrypt, bcrypt, MD5-crypt) is remembered by its exact header value so
 * later requests cost one Map lookup.
 */
import { readFileSync } from 'node:fs';
import { ConfigError } from '../config/errors.js';
import { htpasswdVerifier, unknownUserVerifier, userPasswordVerifier, type PasswordVerifier } from './password-hash.js';

export interface ProxyAuthConfig {
  readonly realm: string;
  readonly users?: Readonly<Record<string, string>> | undefined;
  readonly htpasswd?: string | undefined;
}

/** How many verified credentials are remembered before the memory is cleared. */
const REMEMBERED_MAX = 1024;

export class ProxyAuthenticator {
  /** The `Proxy-Authenticate` value sent with a 407. */
  readonly challenge: string;
  private readonly users = new Map<string, PasswordVerifier>();
  private readonly remembered = new Map<string, string>();

  /** Throws ConfigError naming the key (or htpasswd line) that is wrong. */
  constructor(config: ProxyAuthConfig, readFile: (path: string) => string = (p) => readFileSync(p, 'utf8')) {
    this.challenge = `Basic realm="${config.realm.replace(/["\\]/g, '\\$&')}", charset="UTF-8"`;
    const problems: string[] = [];
    if (config.htpasswd !== undefined) {
      let text: string | null = null;
      try {
        text = readFile(config.htpasswd);
      } catch (err) {
        problems.push(`forward.auth.htpasswd: expected a readable htpasswd file, cannot read "${config.htpasswd}" (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
      }
      if (text !== null) {
        text.split(/\r?\n/).forEach((raw, i) => {
          const line = raw.trim();
          if (line === '' || line.startsWith('#')) return;
          const colon = line.indexOf(':');
          if (colon <= 0 || colon === line.length - 1) {
            problems.push(`forward.auth.htpasswd: line ${i + 1} of "${config.htpasswd}": expected "user:hash"`);
            return;
          }
          try {
            this.users.set(line.slice(0, colon), htpasswdVerifier(line.slice(colon + 1)));
          } catch (err) {
            problems.push(`forward.auth.htpasswd: line ${i + 1} of "${config.htpasswd}": ${(err as Error).message}`);
          }
        });
      }
    }
    for (const [name, stored] of Object.entries(config.users ?? {})) {
      if (name === '' || name.includes(':')) {
        problems.push(`forward.auth.users.${name}: expected a user name without ":"`);
        continue;
      }
      try {
        this.users.set(name, userPasswordVerifier(stored));
      } catch (err) {
        problems.push(`forward.auth.users.${name}: ${(err as Error).message}`);
      }
    }
    if (problems.length === 0 && this.users.size === 0) {
      problems.push('forward.auth: expected users or an htpasswd file with at least one user');
    }
    if (problems.length > 0) throw new ConfigError(problems);
  }

  /**
   * The user name when `header` (the Proxy-Authorization value) holds valid credentials, else null.
   * Synchronous for cheap checks and remembered credentials; a Promise for the expensive ones.
   */
  authenticate(header: string | undefined): string | null | Promise<string | null> {
    if (header === undefined) return null;
    const known = this.remembered.get(header);
    if (known !== undefined) return known;
    const credentials = parseBasic(header);
    if (credentials === null) return null;
    const verifier = this.users.get(credentials.user);
    if (verifier === undefined) {
      unknownUserVerifier.verify(credentials.password);
      return null;
    }
    const result = verifier.verify(credentials.password);
    if (typeof result === 'boolean') return result ? credentials.user : null;
    return result.then(
      (ok) => {
        if (!ok) return null;
        if (this.remembered.size >= REMEMBERED_MAX) this.remembered.clear();
        this.remembered.set(header, credentials.user);
        return credentials.user;
      },
      () => null,
    );
  }
}

/** `Basic dXNlcjpwYXNz` → { user, password }; null for another scheme or a malformed value. */
export function parseBasic(header: string): { user: string; password: string } | null {
  const space = header.indexOf(' ');
  if (space < 0 || header.slice(0, space).toLowerCase() !== 'basic') return null;
  const token = header.slice(space + 1).trim();
  if (token === '' || !/^[A-Za-z0-9+/]+=*$/.test(token)) return null;
  const decoded = Buffer.from(token, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return null;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}
