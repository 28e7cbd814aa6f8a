/** Command-line flags: parsed, checked (each error names the flag), and turned into a config overlay. */
import { parseArgs } from 'node:util';
import { BALANCE_ALGORITHMS } from '../balance/types.js';
import { LOG_LEVELS } from '../core/log.js';
import { ConfigError } from './errors.js';
import { mergeConfig, readConfigFile, validateConfig } from './load.js';
import type { Config } from './schema.js';
import { parseListenAddress, parseSize } from './units.js';

export const USAGE = `Usage: portico [options]

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
  --log-level LEVEL    ${LOG_LEVELS.join(', ')} (default info)
  --workers N          serve with N worker processes, or "auto": one per CPU core (default 1)
  --no-supervise       serve from this process alone: no supervising process that restarts a
                       worker after a fatal error (for embedding, debugging and benchmarks)
  --check              validate the config and exit
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
  if (cacheSize !== undefined || values['no-cache']) {
    overlay.cache = { ...(cacheSize !== undefined ? { max_size: cacheSize } : {}), ...(values['no-cache'] ? { enabled: false } : {}) };
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

/** File (if any) + flag overlay → validated Config. `--upstream` adds a `/` route to pool "default". */
export function loadConfig(args: CliArgs): Config {
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
  return validateConfig(merged, args.configPath);
}

function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:';
  } catch {
    return false;
  }
}
