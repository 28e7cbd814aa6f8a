/**
 * Where the forward proxy may not connect: this process's own listeners (the forward listener
 * itself, the admin API, the reverse proxy) and, with `forward.deny_private`, private, loopback and
 * link-local ranges (SSRF protection).
 *
 * Names are judged after DNS, inside the lookup the connection itself uses (see
 * OriginConnector): the address that is checked is the address that is connected to, so a name
 * that resolves to a public address for a check and to 127.0.0.1 for the connection (DNS
 * rebinding) cannot slip through. Addresses written literally in the request never go through DNS
 * and are checked before connecting (checkTarget).
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { ListenAddress } from '../config/units.js';
import { canonicalAddress, isLoopbackOrUnspecified, isPrivateAddress } from '../policy/ip-ranges.js';
import { ProxyError } from '../core/errors.js';

/** One of this process's listeners, named by its config key (`forward.listen`, `admin.listen`, …). */
export interface OwnListener extends ListenAddress {
  readonly key: string;
}

export interface DestinationGuardOptions {
  /** Refuse private, loopback, link-local and other non-public addresses (`forward.deny_private`). */
  readonly denyPrivate: boolean;
  /**
   * This process's listeners, never a destination. Port 0 entries are ignored. A function is asked
   * at each check (a listener bound to port 0 learns its real port only once it listens).
   */
  readonly ownListeners: readonly OwnListener[] | (() => readonly OwnListener[]);
  /** This host's interface addresses, for listeners on 0.0.0.0 / :: (default os.networkInterfaces()). */
  readonly localAddresses?: () => readonly string[];
}

/** The key of the forward listener: reaching it is a loop (508), reaching the others is prohibited (403). */
const FORWARD_KEY = 'forward.listen';
/** How long the list of interface addresses is reused before it is read again. */
const LOCAL_ADDRESSES_TTL_MS = 10_000;

const defaultLookup = dnsLookup as LookupFunction;

export class DestinationGuard {
  readonly denyPrivate: boolean;
  private readonly own: readonly OwnListener[] | (() => readonly OwnListener[]);
  private readonly readLocalAddresses: () => readonly string[];
  private local: ReadonlySet<string> | null = null;
  private localReadAt = 0;

  constructor(options: DestinationGuardOptions) {
    this.denyPrivate = options.denyPrivate;
    this.own = options.ownListeners;
    this.readLocalAddresses = options.localAddresses ?? interfaceAddresses;
  }

  /**
   * Checks what the client asked for, before any DNS: a literal address in full, and `localhost`
   * names (which always mean this host). Null when the connection may go ahead (names are checked
   * again after DNS, in lookupFor).
   */
  checkTarget(host: string, port: number, authority: string): ProxyError | null {
    if (isIP(host) !== 0) return this.checkAddress(host, port, authority);
    if (host === 'localhost' || host.endsWith('.localhost')) return this.checkAddress('127.0.0.1', port, authority);
    return null;
  }

  /**
   * Null when `address`:`port` may be connected to; otherwise why not. `what` names the target in the
   * message ("10.0.0.1:80 is …", "example.com:80 resolves to 10.0.0.1, which is …").
   */
  checkAddress(address: string, port: number, what: string): ProxyError | null {
    const listener = this.ownListenerAt(address, port);
    if (listener !== null) {
      if (listener.key === FORWARD_KEY) return new ProxyError('loop_detected', `${what} is this proxy itself`);
      return new ProxyError('destination_prohibited', `${what} is this proxy's own ${listener.key} listener`);
    }
    if (this.denyPrivate && isPrivateAddress(address)) {
      return new ProxyError('destination_prohibited', `${what} is a private, loopback or link-local address (forward.deny_private)`);
    }
    return null;
  }

  /**
   * A lookup for a connection to `port` that only hands out permitted addresses: those that are not
   * are dropped from the answer, and when none is left the connection fails with the ProxyError
   * (destination_prohibited or loop_detected). `base` does the resolving (default dns.lookup).
   * Returns `base` itself when nothing needs checking on this port.
   */
  lookupFor(port: number, base: LookupFunction | undefined): LookupFunction | undefined {
    if (!this.denyPrivate && !this.hasListenerOn(port)) return base;
    const resolve = base ?? defaultLookup;
    return (hostname, options, callback) => {
      resolve(hostname, options, (err, address, family) => {
        if (err) {
          callback(err, address, family);
          return;
        }
        if (typeof address === 'string') {
          const refused = this.checkAddress(address, port, `${hostname}:${port} resolves to ${address}, which`);
          if (refused === null) callback(null, address, family);
          else callback(refused, address, family);
          return;
        }
        let refused: ProxyError | null = null;
        let allowed: LookupAddress[] | null = null;
        for (let i = 0; i < address.length; i++) {
          const entry = address[i]!;
          const problem = this.checkAddress(entry.address, port, `${hostname}:${port} resolves to ${entry.address}, which`);
          if (problem === null) {
            allowed?.push(entry);
          } else {
            refused ??= problem;
            allowed ??= address.slice(0, i);
          }
        }
        if (allowed === null) callback(null, address, family);
        else if (allowed.length > 0) callback(null, allowed, family);
        else callback(refused, allowed, family);
      });
    };
  }

  private listeners(): readonly OwnListener[] {
    return typeof this.own === 'function' ? this.own() : this.own;
  }

  private hasListenerOn(port: number): boolean {
    for (const l of this.listeners()) if (l.port === port) return true;
    return false;
  }

  private ownListenerAt(address: string, port: number): OwnListener | null {
    let canonical: string | null | undefined;
    for (const l of this.listeners()) {
      if (l.port !== port || port === 0) continue;
      const host = l.host;
      const family = isIP(host);
      if (family === 0) {
        // A name: localhost is loopback; any other name of this machine may be any local address.
        const loopbackName = host === 'localhost' || host.endsWith('.localhost');
        if (loopbackName ? isLoopbackOrUnspecified(address) : this.isLocal(address)) return l;
      } else if (host === '0.0.0.0' || host === '::' || host === '::0') {
        if (this.isLocal(address)) return l;
      } else if (isLoopbackOrUnspecified(host)) {
        // 127.0.0.2 does not reach a listener on 127.0.0.1, but refusing it costs nothing.
        if (isLoopbackOrUnspecified(address)) return l;
      } else {
        canonical ??= canonicalAddress(address);
        if (canonical !== null && canonical === canonicalAddress(host)) return l;
      }
    }
    return null;
  }

  /** True for an address of this host: loopback, unspecified, or one of its interfaces. */
  private isLocal(address: string): boolean {
    if (isLoopbackOrUnspecified(address)) return true;
    const canonical = canonicalAddress(address);
    return canonical !== null && this.localAddresses().has(canonical);
  }

  private localAddresses(): ReadonlySet<string> {
    const now = Date.now();
    if (this.local === null || now - this.localReadAt > LOCAL_ADDRESSES_TTL_MS) {
      const set = new Set<string>();
      for (const a of this.readLocalAddresses()) {
        const c = canonicalAddress(a);
        if (c !== null) set.add(c);
      }
      this.local = set;
      this.localReadAt = now;
    }
    return this.local;
  }
}

function interfaceAddresses(): string[] {
  const out: string[] = [];
  for (const list of Object.values(networkInterfaces())) {
    for (const info of list ?? []) out.push(info.address);
  }
  return out;
}

/** This process's listeners from a config: the forward, reverse and admin listen addresses. */
export function ownListenersOf(config: {
  readonly forward?: { readonly listen: ListenAddress } | undefined;
  readonly reverse?: { readonly listen?: ListenAddress | undefined; readonly tls_listen?: ListenAddress | undefined } | undefined;
  readonly admin?: { readonly listen: ListenAddress } | undefined;
}): OwnListener[] {
  const out: OwnListener[] = [];
  const add = (key: string, addr: ListenAddress | undefined) => {
    if (addr !== undefined && addr.port !== 0) out.push({ key, host: addr.host, port: addr.port });
  };
  add('forward.listen', config.forward?.listen);
  add('reverse.listen', config.reverse?.listen);
  add('reverse.tls_listen', config.reverse?.tls_listen);
  add('admin.listen', config.admin?.listen);
  return out;
}
