/** Command-line flags: parsed, checked (each error names the flag), and turned into a config overlay. */
import { parseArgs } from 'node:util';
import { BALANCE_ALGORITHMS } from '../balance/types.js';
import type { ZodType } from 'zod';
import { LOG_LEVELS } from '../core/log.js';
import { assertStartable, checkConfig } from './check.js';
import { redisUrlProblem } from '../cache/redis/redis-url.js';
import { ConfigError } from './errors.js';
import { mergeConfig, readConfigFile, validateConfig } from './load.js';
import { isLoopbackHost } from './fields.js';
import { configSections, type Config } from './schema.js';
import { parseListenAddress, parseSize } from './units.js';

export const USAGE = `Usage: portico [options]      (in a clone: npx portico [options])

A caching forward and reverse HTTP proxy.

Options:
  --config FILE        YAML (or JSON) config file; flags below override it
  --forward ADDR       run the forward proxy on ADDR (browsers, curl -x); e.g. 3128
  --reverse ADDR       run the reverse proxy (caching gateway) on ADDR; e.g. 8080
  --upstream URL       a backend for the reverse proxy (repeatable): pool "default", routed at /
  --balance NAME       algorithm for the --upstream pool: ${BALANCE_ALGORITHMS.join(', ')}
  --admin ADDR         admin API, dashboard and metrics on ADDR (default host 127.0.0.1)
  --cache-size SIZE    cache memory bound, e.g. 256mb (default 256mb)
  --no-cache           turn the cache off
  --cache-redis URL    share the cache with every worker and machine on Redis/Valkey (redis://HOST:PORT)
  --log-level LEVEL    ${LOG_LEVELS.join(', ')} (default info)
  --workers N          serve with N worker processes, or "auto": one per CPU core (default 1)
  --no-supervise       serve from this process alone: no supervising process that restarts a
                       worker after a fatal error (for embedding, debugging and benchmarks)
  --check              check the config as a start would (files, patterns, pools), print a summary, exit
  --help               show this help
  --version            print the version

ADDR is PORT, HOST:PORT or [IPv6]:PORT. Examples:
  portico --reverse 8080 --upstream http://127.0.0.1:3001 --upstream http://127.0.0.1:3002
  portico --forward 3128
  portico --config portico.yaml
`;

export interface CliArgs {
  readonly help: boolean;
  readonly version: boolean;
  readonly check: boolean;
  /** Serve from this process, without the supervisor (src/workers). */
  readonly noSupervise: boolean;
  readonly configPath: string | undefined;
  /** Config overlay built from flags. */
  readonly overlay: Record<string, unknown>;
}

export function parseCliArgs(argv: readonly string[]): CliArgs {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        config: { type: 'string', short: 'c' },
        forward: { type: 'string' },
        reverse: { type: 'string' },
        upstream: { type: 'string', multiple: true },
        balance: { type: 'string' },
        admin: { type: 'string' },
        'cache-size': { type: 'string' },
        'no-cache': { type: 'boolean' },
        'cache-redis': { type: 'string' },
        'log-level': { type: 'string' },
        workers: { type: 'string' },
        'no-supervise': { type: 'boolean' },
        check: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
    }));
  } catch (err) {
    throw new ConfigError([`${(err as Error).message.split('\n')[0]} (see --help)`]);
  }
  const problems: string[] = [];
  const overlay: Record<string, unknown> = {};
  const address = (flag: string, value: string | undefined, host: string) => {
    if (value === undefined) return undefined;
    if (!parseListenAddress(value, host)) problems.push(`--${flag}: expected PORT, HOST:PORT or [IPv6]:PORT, got "${value}"`);
    return value;
  };
  const reverse = address('reverse', values.reverse, '0.0.0.0');
  const forward = address('forward', values.forward, '127.0.0.1');
  const admin = address('admin', values.admin, '127.0.0.1');
  if (reverse !== undefined) overlay.reverse = { listen: reverse };
  if (forward !== undefined) overlay.forward = { listen: forward };
  if (admin !== undefined) overlay.admin = { listen: admin };

  const upstreams = values.upstream ?? [];
  for (const url of upstreams) {
    if (!isHttpUrl(url)) problems.push(`--upstream: expected an http:// or https:// URL like http://127.0.0.1:3000, got "${url}"`);
  }
  if (values.balance !== undefined) {
    if (!(BALANCE_ALGORITHMS as readonly string[]).includes(values.balance)) {
      problems.push(`--balance: expected one of ${BALANCE_ALGORITHMS.join(', ')}, got "${values.balance}"`);
    }
    if (upstreams.length === 0) problems.push('--balance: applies to the --upstream pool; give --upstream too');
  }
  if (upstreams.length > 0) {
    overlay.pools = { default: { balance: values.balance ?? 'round-robin', servers: upstreams.map((url) => ({ url })) } };
  }
  const cacheSize = values['cache-size'];
  if (cacheSize !== undefined && parseSize(cacheSize) === null) problems.push(`--cache-size: expected a size like 256mb, got "${cacheSize}"`);
  const cacheRedis = values['cache-redis'];
  if (cacheRedis !== undefined) {
    const problem = redisUrlProblem(cacheRedis);
    if (problem !== null) problems.push(`--cache-redis: ${problem}, got "${cacheRedis}"`);
  }
  if (cacheSize !== undefined || values['no-cache'] || cacheRedis !== undefined) {
    overlay.cache = {
      ...(cacheSize !== undefined ? { max_size: cacheSize } : {}),
      ...(values['no-cache'] ? { enabled: false } : {}),
      ...(cacheRedis !== undefined ? { redis: cacheRedis } : {}),
    };
  }
  const level = values['log-level'];
  if (level !== undefined) {
    if (!(LOG_LEVELS as readonly string[]).includes(level)) problems.push(`--log-level: expected one of ${LOG_LEVELS.join(', ')}, got "${level}"`);
    overlay.log = { level };
  }
  const workers = values.workers;
  if (workers !== undefined) {
    if (workers === 'auto') overlay.workers = 'auto';
    else if (/^[1-9][0-9]{0,3}$/.test(workers)) overlay.workers = Number(workers);
    else problems.push(`--workers: expected a positive integer or "auto", got "${workers}"`);
    if (values['no-supervise'] && workers !== '1') problems.push('--no-supervise: serves from one process; it cannot be combined with --workers');
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return {
    help: values.help === true,
    version: values.version === true,
    check: values.check === true,
    noSupervise: values['no-supervise'] === true,
    configPath: values.config,
    overlay,
  };
}

/**
 * What a start (and `--check`, and a reload) does before listening: read the file, merge the flags,
 * validate, then run every compile step (src/config/check.ts). Throws a ConfigError with every
 * problem at once; returns the config and the warnings worth showing.
 */
export function loadCheckedConfig(args: CliArgs): { config: Config; warnings: readonly string[] } {
  const file = args.configPath ? readConfigFile(args.configPath) : {};
  const merged = mergeConfig(file, args.overlay);
  const overlayPools = args.overlay.pools as Record<string, unknown> | undefined;
  if (overlayPools?.default) {
    const reverse = (merged.reverse ?? {}) as Record<string, unknown>;
    const routes = Array.isArray(reverse.routes) ? reverse.routes : [];
    merged.reverse = { ...reverse, routes: [...routes, { path: '/', pool: 'default' }] };
  }
  if (!merged.reverse && !merged.forward) {
    throw new ConfigError(['nothing to run: give --reverse ADDR --upstream URL, --forward ADDR, or a --config file with a reverse or forward section (see --help)']);
  }
  const flagProblems = flagMistakes(args, merged);
  let config: Config;
  try {
    config = validateConfig(merged, args.configPath);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    // A flag mistake explains the schema's complaint about the key it stands for: say it once, as the flag.
    const superseded = flagProblems.flatMap((f) => f.supersedes);
    const rest = err.problems.filter((p) => !superseded.some((key) => problemKey(p, args.configPath) === key));
    // Every problem at once: the sections that are valid on their own still get their files and patterns checked.
    const later = checkConfig(validSections(merged), args.configPath).problems;
    throw new ConfigError([...flagProblems.map((f) => f.message), ...rest, ...later]);
  }
  if (flagProblems.length > 0) throw new ConfigError(flagProblems.map((f) => f.message));
  return { config, warnings: assertStartable(config, args.configPath) };
}

/** The config with each section that is valid on its own, and defaults (or nothing) for the others. */
function validSections(raw: Record<string, unknown>): Config {
  const out: Record<string, unknown> = {};
  for (const [key, schema] of Object.entries(configSections)) {
    const own = (schema as ZodType).safeParse(raw[key]);
    if (own.success) out[key] = own.data;
    else {
      const fallback = (schema as ZodType).safeParse(undefined);
      if (fallback.success) out[key] = fallback.data;
    }
  }
  return out as Config;
}

interface FlagMistake {
  readonly message: string;
  /** The schema problems (by key path) this message replaces. */
  readonly supersedes: readonly string[];
}

/** Mistakes that come from the flags, told in terms of the flags rather than the config keys. */
function flagMistakes(args: CliArgs, merged: Record<string, unknown>): FlagMistake[] {
  const out: FlagMistake[] = [];
  const overlay = args.overlay;
  const reverse = merged.reverse as Record<string, unknown> | undefined;
  const reverseFlag = (overlay.reverse as { listen?: string } | undefined)?.listen;
  const hasUpstream = (overlay.pools as Record<string, unknown> | undefined)?.default !== undefined;
  if (reverseFlag !== undefined && !hasUpstream && !(Array.isArray(reverse?.routes) && reverse.routes.length > 0)) {
    out.push({
      message: `--reverse ${reverseFlag}: the reverse proxy needs a backend to send requests to: add --upstream URL (e.g. --upstream http://127.0.0.1:3000; repeat it for more backends), or give --config FILE with reverse.routes and pools`,
      supersedes: ['reverse.routes'],
    });
  }
  if (hasUpstream && reverse?.listen === undefined && reverse?.tls_listen === undefined) {
    out.push({
      message: `--upstream: backends are for the reverse proxy, which is not running: add --reverse ADDR (e.g. --reverse 8080) to serve them${merged.forward ? '; to send the forward proxy through another proxy, set forward.upstream_proxy in a config file instead' : ''}`,
      supersedes: ['reverse.listen'],
    });
  }
  const adminFlag = (overlay.admin as { listen?: string } | undefined)?.listen;
  const admin = merged.admin as Record<string, unknown> | undefined;
  const adminAddress = adminFlag === undefined ? null : parseListenAddress(adminFlag, '127.0.0.1');
  if (adminAddress && admin?.token === undefined && !isLoopbackHost(adminAddress.host)) {
    out.push({
      message: `--admin ${adminFlag}: the admin API would be open to other machines without a token: use --admin ${adminAddress.port} (127.0.0.1 only), or set admin.token in a --config file`,
      supersedes: ['admin.token'],
    });
  }
  return out;
}

/** The key path of a formatted problem (`file: key.path: …` or `key.path: …`). */
function problemKey(problem: string, source: string | undefined): string {
  const rest = source && problem.startsWith(`${source}: `) ? problem.slice(source.length + 2) : problem;
  return rest.slice(0, rest.indexOf(':'));
}

function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:';
  } catch {
    return false;
  }
}
