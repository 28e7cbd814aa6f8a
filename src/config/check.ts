/**
 * Everything a start does with a validated config short of listening: read every file it names (TLS
 * certificate and key, htpasswd, hosts_file, the access-log file's directory, the disk cache's
 * directory), compile every pattern, resolve every pool name and backend, parse the upstream proxy.
 * Every problem is collected, not just the first, each in the same `key.path: expected …, got …`
 * form as the schema's, prefixed with the config file.
 *
 * `portico --check` prints these; a start and a reload run the same function first (see loadConfig in
 * flags.ts), so the two never disagree.
 */
import { accessSync, constants, existsSync, readFileSync, statSync } from 'node:fs';
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import { dirname, resolve } from 'node:path';
import { ProxyAuthenticator } from '../forward/proxy-auth.js';
import { RuleSet, type RuleWarning } from '../policy/rules.js';
import { doorCacheRules } from './cache-rules.js';
import { ConfigError } from './errors.js';
import type { Config } from './schema.js';
import { formatAddress, type ListenAddress } from './units.js';

export interface CheckReport {
  /** Problems that stop a start, each `file: key.path: …` (the file only when there is one). */
  readonly problems: readonly string[];
  /** Things that work but look wrong (a few unreadable lines in a blocklist). */
  readonly warnings: readonly string[];
}

export interface CheckOptions {
  /** Reads a text file (hosts_file, htpasswd); tests inject. Default fs.readFileSync as UTF-8. */
  readonly readFile?: (path: string) => string;
}

/** Runs every compile step of a start on `config`; `source` is the config file, if any. */
export function checkConfig(config: Config, source?: string, options: CheckOptions = {}): CheckReport {
  const readFile = options.readFile ?? ((path: string) => readFileSync(path, 'utf8'));
  const problems: string[] = [];
  const warnings: RuleWarning[] = [];
  const collect = (step: () => unknown) => {
    try {
      step();
    } catch (err) {
      if (err instanceof ConfigError) problems.push(...err.problems);
      else problems.push((err as Error).message);
    }
  };

  const reverse = config.reverse;
  if (reverse?.tls) {
    const tls = reverse.tls;
    problems.push(...checkTls(tls.cert, tls.key, tls.min_version, tls.ciphers));
    if (!reverse.tls_listen) warnings.push({ key: 'reverse.tls', message: 'reverse.tls is set but reverse.tls_listen is not: no HTTPS listener will use it' });
  }
  if (reverse) {
    collect(() => warnings.push(...new RuleSet(reverse.rules, { keyPath: 'reverse.rules', readFile }).warnings));
  }
  for (const [name, pool] of Object.entries(config.pools)) {
    const seen = new Map<string, number>();
    pool.servers.forEach((server, i) => {
      const address = new URL(server.url).href;
      const first = seen.get(address);
      if (first !== undefined) problems.push(`pools.${name}.servers[${i}].url: expected each server once, got ${address} again (also pools.${name}.servers[${first}])`);
      else seen.set(address, i);
    });
  }
  const forward = config.forward;
  if (forward) {
    collect(() => warnings.push(...new RuleSet(forward.rules, { keyPath: 'forward.rules', readFile }).warnings));
    if (forward.auth) {
      const auth = forward.auth;
      collect(() => new ProxyAuthenticator(auth, readFile));
    }
    if (forward.upstream_proxy !== undefined && forward.upstream_proxy !== 'direct') {
      const problem = upstreamProxyProblem(forward.upstream_proxy, forward.listen);
      if (problem) problems.push(`forward.upstream_proxy: ${problem}`);
    }
  }
  if (config.cache.enabled && config.cache.store === 'disk' && config.cache.dir !== undefined) {
    const problem = writableDirProblem(config.cache.dir, true);
    if (problem) problems.push(`cache.dir: expected a directory Portico can write to, got "${config.cache.dir}" (${problem})`);
  }
  const accessFile = config.log.access.file;
  if (accessFile !== undefined) {
    const problem = writableFileProblem(accessFile);
    if (problem) problems.push(`log.access.file: expected a file Portico can append to, got "${accessFile}" (${problem})`);
  }
  // Every cache rule's patterns compile (errors name cache.rules[i]).
  if (config.cache.rules.length > 0) collect(() => [doorCacheRules(config.cache.rules, 'reverse'), doorCacheRules(config.cache.rules, 'forward')]);
  problems.push(...listenerClashes(config));

  const prefix = source ? `${source}: ` : '';
  return {
    problems: problems.map((p) => prefix + p),
    warnings: warnings.map((w) => `${prefix}${w.key}: ${w.message}`),
  };
}

/** Throws a ConfigError with every problem checkConfig finds; returns its warnings otherwise. */
export function assertStartable(config: Config, source?: string, options?: CheckOptions): readonly string[] {
  const report = checkConfig(config, source, options);
  if (report.problems.length > 0) throw new ConfigError(report.problems);
  return report.warnings;
}

/** Reads and parses the certificate and key as a TLS listener would, and checks that they belong together. */
function checkTls(certPath: string, keyPath: string, minVersion: string, ciphers: string | undefined): string[] {
  const problems: string[] = [];
  const cert = readPem(certPath, 'reverse.tls.cert', problems);
  const key = readPem(keyPath, 'reverse.tls.key', problems);
  let x509: X509Certificate | null = null;
  let keyObject: KeyObject | null = null;
  if (cert !== null) {
    try {
      x509 = new X509Certificate(cert);
    } catch {
      problems.push(`reverse.tls.cert: expected a PEM certificate ("-----BEGIN CERTIFICATE-----"), got a file that is not one ("${certPath}")`);
    }
  }
  if (key !== null) {
    try {
      keyObject = createPrivateKey(key);
    } catch {
      problems.push(`reverse.tls.key: expected a PEM private key ("-----BEGIN PRIVATE KEY-----"), got a file that is not one ("${keyPath}")`);
    }
  }
  if (x509 !== null && keyObject !== null) {
    if (!x509.checkPrivateKey(keyObject)) {
      problems.push(`reverse.tls.key: expected the private key of the certificate in reverse.tls.cert, got another key ("${keyPath}" does not belong to "${certPath}")`);
    } else if (ciphers !== undefined) {
      try {
        createSecureContext({ cert: cert!, key: key!, minVersion: minVersion as 'TLSv1.2' | 'TLSv1.3', ciphers });
      } catch (err) {
        problems.push(`reverse.tls.ciphers: expected an OpenSSL cipher list like "ECDHE-RSA-AES128-GCM-SHA256:…", got "${ciphers}" (${(err as Error).message})`);
      }
    }
    const expires = Date.parse(x509.validTo);
    if (Number.isFinite(expires) && expires < Date.now()) {
      problems.push(`reverse.tls.cert: expected a certificate that is still valid, got one that expired on ${x509.validTo} ("${certPath}")`);
    }
  }
  return problems;
}

function readPem(path: string, key: string, problems: string[]): Buffer | null {
  try {
    return readFileSync(path);
  } catch (err) {
    problems.push(`${key}: expected a readable PEM file, cannot read "${path}" (${describeFsError(err)})`);
    return null;
  }
}

/** The upstream proxy URL as the forward proxy parses it. */
function upstreamProxyProblem(proxy: string, own: ListenAddress): string | null {
  let url: URL;
  try {
    url = new URL(proxy);
  } catch {
    return `expected a proxy URL like "http://10.0.0.1:3128", got "${proxy}"`;
  }
  const port = Number(url.port) || (url.protocol === 'https:' ? 443 : url.protocol.startsWith('socks') ? 1080 : 80);
  const host = url.hostname.toLowerCase().replace(/^\[|\]$/g, '');
  const local = host === 'localhost' || host.startsWith('127.') || host === '::1';
  const ownHost = own.host.toLowerCase();
  if (own.port !== 0 && port === own.port && (host === ownHost || (local && (ownHost.startsWith('127.') || ownHost === 'localhost' || ownHost === '0.0.0.0')))) {
    return `expected another proxy, got this proxy's own address ${formatAddress(own)} (requests would loop)`;
  }
  return null;
}

/** Why Portico could not create files in `dir` (creating it when `create`), or null. */
function writableDirProblem(dir: string, create: boolean): string | null {
  let at = resolve(dir);
  if (existsSync(at)) {
    if (!statSync(at).isDirectory()) return 'it is not a directory';
  } else if (create) {
    // mkdir -p: the nearest existing parent must be writable.
    while (!existsSync(at)) {
      const up = dirname(at);
      if (up === at) break;
      at = up;
    }
    if (!statSync(at).isDirectory()) return `${at} is not a directory`;
  } else {
    return 'no such directory';
  }
  try {
    accessSync(at, constants.W_OK | constants.X_OK);
  } catch (err) {
    return `cannot write in ${at}: ${describeFsError(err)}`;
  }
  return null;
}

function writableFileProblem(file: string): string | null {
  const path = resolve(file);
  if (existsSync(path)) {
    if (statSync(path).isDirectory()) return 'it is a directory';
    try {
      accessSync(path, constants.W_OK);
    } catch (err) {
      return describeFsError(err);
    }
    return null;
  }
  const dir = dirname(path);
  if (!existsSync(dir)) return `its directory ${dir} does not exist`;
  return writableDirProblem(dir, false);
}

/** Two listeners on the same address: the second start-time bind would fail with EADDRINUSE. */
function listenerClashes(config: Config): string[] {
  const listeners: [string, ListenAddress][] = [];
  if (config.reverse?.listen) listeners.push(['reverse.listen', config.reverse.listen]);
  if (config.reverse?.tls_listen) listeners.push(['reverse.tls_listen', config.reverse.tls_listen]);
  if (config.forward) listeners.push(['forward.listen', config.forward.listen]);
  if (config.admin) listeners.push(['admin.listen', config.admin.listen]);
  const problems: string[] = [];
  for (let i = 0; i < listeners.length; i++) {
    for (let j = 0; j < i; j++) {
      const [key, a] = listeners[i]!;
      const [otherKey, b] = listeners[j]!;
      if (a.port === 0 || a.port !== b.port) continue;
      const wildcard = (h: string) => h === '0.0.0.0' || h === '::';
      if (a.host === b.host || wildcard(a.host) || wildcard(b.host)) {
        problems.push(`${key}: expected an address no other listener uses, got ${formatAddress(a)} (${otherKey} is ${formatAddress(b)})`);
      }
    }
  }
  return problems;
}

function describeFsError(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'ENOENT: no such file';
  if (code === 'EACCES') return 'EACCES: permission denied';
  if (code === 'EISDIR') return 'EISDIR: it is a directory';
  return code ?? (err as Error).message;
}
