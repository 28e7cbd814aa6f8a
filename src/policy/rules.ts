/**
 * Access rules (ACL): compiled once from config, evaluated per request. First matching rule wins;
 * when none matches the request is allowed. A rule matches when every condition it names matches
 * (a rule with no conditions matches everything, e.g. a final catch-all `deny`); within one condition
 * any listed value matches.
 *
 * Used by the forward proxy for absolute-URI requests and CONNECT (checked on the requested host name
 * before any DNS lookup), and by the reverse proxy for L7 filtering (method, path, headers, client);
 * independent of any front door.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { readFileSync } from 'node:fs';
import { ConfigError } from '../core/config-error.js';
import { cookieValue } from '../core/header-list.js';
import { CidrList } from './cidr-list.js';
import { HostMatcher } from './host-matcher.js';
import { parseHostsList } from './hosts-file.js';
import { inTimeWindow, onDay, parseDays, parseTimeWindow, type TimeWindow } from './schedule.js';

export type RuleAction = 'allow' | 'deny';

/** A rule as written in config (the forward proxy's `rules[]` entries have this shape). */
export interface RuleSpec {
  readonly name?: string | undefined;
  readonly action: RuleAction;
  readonly host?: readonly string[] | undefined;
  readonly hosts_file?: string | undefined;
  readonly user_agent?: string | undefined;
  readonly client?: readonly string[] | undefined;
  readonly port?: readonly number[] | undefined;
  readonly method?: readonly string[] | undefined;
  readonly user?: readonly string[] | undefined;
  readonly time?: string | undefined;
  readonly days?: string | undefined;
  /** Path prefixes (`/admin/`) or `/regex/` patterns on path and query. */
  readonly path?: readonly string[] | undefined;
  /** Header name → case-insensitive regex its value must match (a missing header does not match). */
  readonly header?: Readonly<Record<string, string>> | undefined;
  /** Cookie name → regex its value must match (a missing cookie does not match). */
  readonly cookie?: Readonly<Record<string, string>> | undefined;
}

/** What a rule is checked against. `host` must be normalised (lower case, no brackets, no trailing dot). */
export interface RuleRequest {
  readonly host: string;
  readonly port: number;
  readonly method: string;
  /** Normalised client address (see normalizeAddress). */
  readonly clientAddress: string;
  readonly userAgent: string | undefined;
  /** The authenticated user, when proxy authentication is on. */
  readonly user: string | undefined;
  /** Path and query (absent for CONNECT: a rule with `path` then does not match). */
  readonly path?: string | undefined;
  /** All request headers, for `header` conditions. */
  readonly headers?: IncomingHttpHeaders | undefined;
}

export interface RuleVerdict {
  readonly action: RuleAction;
  readonly index: number;
  readonly name: string | undefined;
  /** How a person refers to the rule: `"ads" (forward.rules[2])` or `forward.rules[2]`. */
  readonly label: string;
}

export interface RuleSetOptions {
  /** Key path of the rule list in config, for error messages and labels. Default `forward.rules`. */
  readonly keyPath?: string;
  /** Reads a hosts_file (tests inject; default fs.readFileSync as UTF-8). */
  readonly readFile?: (path: string) => string;
  /** The clock for time/day rules (tests inject). Default: the system clock. */
  readonly now?: () => Date;
}

/** A problem with one hosts_file that does not stop the rule from working (a few unreadable lines). */
export interface RuleWarning {
  readonly key: string;
  readonly message: string;
}

interface CompiledRule {
  readonly verdict: RuleVerdict;
  readonly hosts: HostMatcher | null;
  readonly userAgent: RegExp | null;
  readonly clients: CidrList | null;
  readonly ports: ReadonlySet<number> | null;
  readonly methods: ReadonlySet<string> | null;
  readonly users: ReadonlySet<string> | null;
  readonly window: TimeWindow | null;
  /** Day mask, 0 when the rule names no days. */
  readonly days: number;
  readonly paths: PathMatcher | null;
  readonly headers: readonly (readonly [string, RegExp])[] | null;
  readonly cookies: readonly (readonly [string, RegExp])[] | null;
}

/** Path conditions: plain prefixes, or `/regex/` patterns. */
interface PathMatcher {
  readonly prefixes: readonly string[];
  readonly patterns: readonly RegExp[];
}

/**
 * A path condition is a regular expression when it is written between slashes AND uses regex syntax
 * (`/\.deb$/`, `/^\/api\/v[0-9]+\//`); otherwise it is a prefix, slashes included (`/admin/`,
 * `/static/v1/`), so that the common prefix written with a closing slash never becomes a substring match.
 */
function isPathPattern(p: string): boolean {
  return p.length > 2 && p.startsWith('/') && p.endsWith('/') && /[\\^$*+?()[\]{}|]/.test(p.slice(1, -1));
}

function matchesPath(m: PathMatcher, path: string): boolean {
  for (const prefix of m.prefixes) if (path.startsWith(prefix)) return true;
  for (const re of m.patterns) if (re.test(path)) return true;
  return false;
}

function matchesHeaders(conditions: readonly (readonly [string, RegExp])[], headers: IncomingHttpHeaders | undefined): boolean {
  if (headers === undefined) return false;
  for (const [name, re] of conditions) {
    const value = headers[name];
    if (value === undefined || !re.test(Array.isArray(value) ? value.join(', ') : value)) return false;
  }
  return true;
}

function matchesCookies(conditions: readonly (readonly [string, RegExp])[], headers: IncomingHttpHeaders | undefined): boolean {
  const header = headers?.cookie;
  if (header === undefined) return false;
  for (const [name, re] of conditions) {
    const value = cookieValue(header, name);
    if (value === null || !re.test(value)) return false;
  }
  return true;
}

export class RuleSet {
  readonly warnings: readonly RuleWarning[];
  private readonly rules: readonly CompiledRule[];
  private readonly now: () => Date;
  private readonly needsClock: boolean;

  /** Throws ConfigError naming every bad key (`forward.rules[2].user_agent: expected …`). */
  constructor(specs: readonly RuleSpec[], options: RuleSetOptions = {}) {
    const keyPath = options.keyPath ?? 'forward.rules';
    const readFile = options.readFile ?? ((path: string) => readFileSync(path, 'utf8'));
    const problems: string[] = [];
    const warnings: RuleWarning[] = [];
    const rules: CompiledRule[] = [];
    specs.forEach((spec, index) => {
      const key = `${keyPath}[${index}]`;
      const compiled = compileRule(spec, index, key, readFile, problems, warnings);
      if (compiled) rules.push(compiled);
    });
    if (problems.length > 0) throw new ConfigError(problems);
    this.rules = rules;
    this.warnings = warnings;
    this.now = options.now ?? (() => new Date());
    this.needsClock = rules.some((r) => r.window !== null || r.days !== 0);
  }

  get size(): number {
    return this.rules.length;
  }

  /** The first rule that matches, or null (no rule matched: allowed by default). */
  evaluate(req: RuleRequest): RuleVerdict | null {
    let minute = -1;
    let day = -1;
    if (this.needsClock) {
      const now = this.now();
      minute = now.getHours() * 60 + now.getMinutes();
      day = now.getDay();
    }
    for (const rule of this.rules) if (matches(rule, req, minute, day)) return rule.verdict;
    return null;
  }

  /** The indexes of every rule that matches, in order (for lists where later rules may still apply). */
  matching(req: RuleRequest): number[] {
    const [minute, day] = this.clock();
    const out: number[] = [];
    for (const rule of this.rules) if (matches(rule, req, minute, day)) out.push(rule.verdict.index);
    return out;
  }

  private clock(): [minute: number, day: number] {
    if (!this.needsClock) return [-1, -1];
    const now = this.now();
    return [now.getHours() * 60 + now.getMinutes(), now.getDay()];
  }
}

function matches(rule: CompiledRule, req: RuleRequest, minute: number, day: number): boolean {
  if (rule.ports !== null && !rule.ports.has(req.port)) return false;
  if (rule.methods !== null && !rule.methods.has(req.method)) return false;
  if (rule.clients !== null && !rule.clients.has(req.clientAddress)) return false;
  if (rule.users !== null && (req.user === undefined || !rule.users.has(req.user))) return false;
  if (rule.days !== 0 && !onDay(rule.days, day)) return false;
  if (rule.window !== null && !inTimeWindow(rule.window, minute)) return false;
  if (rule.hosts !== null && !rule.hosts.matches(req.host)) return false;
  if (rule.userAgent !== null && (req.userAgent === undefined || !rule.userAgent.test(req.userAgent))) return false;
  if (rule.paths !== null && (req.path === undefined || !matchesPath(rule.paths, req.path))) return false;
  if (rule.headers !== null && !matchesHeaders(rule.headers, req.headers)) return false;
  if (rule.cookies !== null && !matchesCookies(rule.cookies, req.headers)) return false;
  return true;
}

function compileRule(
  spec: RuleSpec,
  index: number,
  key: string,
  readFile: (path: string) => string,
  problems: string[],
  warnings: RuleWarning[],
): CompiledRule | null {
  const before = problems.length;
  let hosts: HostMatcher | null = null;
  if (spec.host !== undefined || spec.hosts_file !== undefined) hosts = new HostMatcher();
  if (spec.host) {
    spec.host.forEach((pattern, i) => {
      try {
        hosts!.add(pattern);
      } catch (err) {
        problems.push(`${key}.host${spec.host!.length > 1 ? `[${i}]` : ''}: ${(err as Error).message}`);
      }
    });
  }
  if (spec.hosts_file !== undefined) {
    let text: string | null = null;
    try {
      text = readFile(spec.hosts_file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      problems.push(`${key}.hosts_file: expected a readable file of domains, cannot read "${spec.hosts_file}" (${code})`);
    }
    if (text !== null) {
      const list = parseHostsList(text);
      for (const d of list.domains) hosts!.addDomain(d);
      for (const d of list.subdomainsOf) hosts!.addSubdomainsOf(d);
      if (list.domains.length + list.subdomainsOf.length === 0) {
        problems.push(`${key}.hosts_file: expected at least one domain in "${spec.hosts_file}", found none`);
      } else if (list.skipped > 0 && list.firstSkipped) {
        warnings.push({
          key: `${key}.hosts_file`,
          message: `skipped ${list.skipped} line(s) of "${spec.hosts_file}" that are not domains (first: line ${list.firstSkipped.line}: "${list.firstSkipped.text}")`,
        });
      }
    }
  }
  let userAgent: RegExp | null = null;
  if (spec.user_agent !== undefined) {
    try {
      userAgent = new RegExp(spec.user_agent, 'i');
    } catch {
      problems.push(`${key}.user_agent: expected a valid regular expression, got "${spec.user_agent}"`);
    }
  }
  let window: TimeWindow | null = null;
  if (spec.time !== undefined) {
    window = parseTimeWindow(spec.time);
    if (window === null) problems.push(`${key}.time: expected a window like "09:00-17:00", got "${spec.time}"`);
  }
  let days = 0;
  if (spec.days !== undefined) {
    days = parseDays(spec.days) ?? 0;
    if (days === 0) problems.push(`${key}.days: expected days like "mon-fri" or "sat,sun", got "${spec.days}"`);
  }
  let paths: PathMatcher | null = null;
  if (spec.path !== undefined) {
    const prefixes: string[] = [];
    const patterns: RegExp[] = [];
    spec.path.forEach((p, i) => {
      const where = `${key}.path${spec.path!.length > 1 ? `[${i}]` : ''}`;
      if (isPathPattern(p)) {
        const re = compileRegex(p.slice(1, -1), '');
        if (re) patterns.push(re);
        else problems.push(`${where}: expected a valid regular expression, got "${p}"`);
      } else if (p.startsWith('/')) prefixes.push(p);
      else problems.push(`${where}: expected a path prefix like "/admin/" or a /regex/, got "${p}"`);
    });
    paths = { prefixes, patterns };
  }
  let headers: (readonly [string, RegExp])[] | null = null;
  if (spec.header !== undefined) {
    headers = [];
    for (const [name, pattern] of Object.entries(spec.header)) {
      const re = compileRegex(pattern, 'i');
      if (re) headers.push([name.toLowerCase(), re]);
      else problems.push(`${key}.header.${name}: expected a valid regular expression, got "${pattern}"`);
    }
  }
  let cookies: (readonly [string, RegExp])[] | null = null;
  if (spec.cookie !== undefined) {
    cookies = [];
    for (const [name, pattern] of Object.entries(spec.cookie)) {
      const re = compileRegex(pattern, '');
      if (re) cookies.push([name, re]);
      else problems.push(`${key}.cookie.${name}: expected a valid regular expression, got "${pattern}"`);
    }
  }
  if (problems.length > before) return null;
  const name = spec.name;
  return {
    verdict: { action: spec.action, index, name, label: name === undefined ? key : `"${name}" (${key})` },
    hosts,
    userAgent,
    clients: spec.client ? new CidrList(spec.client) : null,
    ports: spec.port ? new Set(spec.port) : null,
    methods: spec.method ? new Set(spec.method.map((m) => m.toUpperCase())) : null,
    users: spec.user ? new Set(spec.user) : null,
    window,
    days,
    paths,
    headers,
    cookies,
  };
}

function compileRegex(source: string, flags: string): RegExp | null {
  try {
    return new RegExp(source, flags);
  } catch {
    return null;
  }
}

/** One request that an access rule refused: reported to whoever watches (dashboard, metrics). */
export interface BlockedRequest {
  /** When (epoch ms). */
  readonly at: number;
  /** Which front door refused it. */
  readonly door: 'forward' | 'reverse';
  readonly client: string;
  readonly user?: string | undefined;
  readonly method: string;
  /** The requested authority (`host:port`) or URL. */
  readonly target: string;
  /** How a person refers to the rule, e.g. `"ads" (forward.rules[2])`. */
  readonly rule: string;
}
