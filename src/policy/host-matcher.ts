/**
 * Host name matching for policy rules, built once from config and checked without allocation beyond
 * the suffix walk:
 *
 * - `example.com`      the exact name;
 * - `*.example.com`    any subdomain of example.com, at any depth (not example.com itself);
 * - `.example.com`     example.com and any subdomain (Squid's `dstdomain` style; also what every
 *                      entry of a blocklist file means);
 * - `/regex/`          a case-insensitive regular expression tested against the whole host name.
 *
 * Names and suffixes live in Sets, so a list of many thousands of domains costs one Set lookup per
 * label of the requested host.
 */

/** Lower-case, no trailing dot, no IPv6 brackets: the form every matcher compares against. */
export function normalizeHost(host: string): string {
  let h = host;
  if (h.charCodeAt(0) === 91 /* [ */ && h.charCodeAt(h.length - 1) === 93 /* ] */) h = h.slice(1, -1);
  if (h.length > 1 && h.charCodeAt(h.length - 1) === 46 /* . */) h = h.slice(0, -1);
  return h.toLowerCase();
}

const NAME = /^[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?)*$/;
const IPV6 = /^[0-9a-f:.]+$/;

/** True for a plain host name or address (no wildcard, no port). */
export function isHostName(name: string): boolean {
  return NAME.test(name) || (name.includes(':') && IPV6.test(name));
}

export class HostMatcher {
  private readonly exact = new Set<string>();
  /** The name itself or any of its subdomains. */
  private readonly domains = new Set<string>();
  /** Strict subdomains only (`*.x`). */
  private readonly subdomainsOf = new Set<string>();
  private readonly patterns: RegExp[] = [];

  /**
   * Adds one pattern as written in config. Throws an Error whose message says what was expected
   * (the caller adds the key path).
   */
  add(pattern: string): void {
    if (pattern.length >= 2 && pattern.startsWith('/') && pattern.endsWith('/')) {
      const source = pattern.slice(1, -1);
      try {
        this.patterns.push(new RegExp(source, 'i'));
      } catch {
        throw new Error(`expected a valid regular expression between the slashes, got "${pattern}"`);
      }
      return;
    }
    const lower = pattern.trim().toLowerCase();
    let kind: 'exact' | 'domain' | 'sub' = 'exact';
    let name = lower;
    if (lower.startsWith('*.')) {
      kind = 'sub';
      name = lower.slice(2);
    } else if (lower.startsWith('.')) {
      kind = 'domain';
      name = lower.slice(1);
    }
    name = normalizeHost(name);
    if (!isHostName(name)) {
      throw new Error(`expected a host name, "*.suffix", ".domain" or "/regex/", got "${pattern}"`);
    }
    if (kind === 'exact') this.exact.add(name);
    else if (kind === 'domain') this.domains.add(name);
    else this.subdomainsOf.add(name);
  }

  /** Adds a domain that matches itself and all its subdomains (a blocklist entry). */
  addDomain(name: string): void {
    this.domains.add(name);
  }

  /** Adds strict subdomains of `name` (a `*.name` blocklist entry). */
  addSubdomainsOf(name: string): void {
    this.subdomainsOf.add(name);
  }

  get size(): number {
    return this.exact.size + this.domains.size + this.subdomainsOf.size + this.patterns.length;
  }

  /** `host` must already be normalised (see normalizeHost). */
  matches(host: string): boolean {
    if (this.exact.has(host) || this.domains.has(host)) return true;
    if (this.domains.size > 0 || this.subdomainsOf.size > 0) {
      for (let dot = host.indexOf('.'); dot >= 0; dot = host.indexOf('.', dot + 1)) {
        const parent = host.slice(dot + 1);
        if (this.domains.has(parent) || this.subdomainsOf.has(parent)) return true;
      }
    }
    for (const re of this.patterns) if (re.test(host)) return true;
    return false;
  }
}
