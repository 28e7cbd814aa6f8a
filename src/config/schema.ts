/**
 * The config file's schema: strict (unknown keys are errors), with units parsed into numbers
 * (durations → milliseconds, sizes → bytes; see fields.ts). The key names are the user-facing
 * contract. The cache section is in cache-schema.ts.
 */
import { z } from 'zod';
import { BALANCE_ALGORITHMS } from '../balance/types.js';
import { LOG_LEVELS } from '../core/log.js';
import { cache } from './cache-schema.js';
import { closest } from './errors.js';
import { bool, cidr, duration, httpUrl, isLoopbackHost, listenAddress, msg, nonNegativeInt, oneOrMany, positiveInt, size, text } from './fields.js';
import { formatAddress } from './units.js';

/** forward.upstream_proxy: `direct` (never chain, ignore HTTP_PROXY & co.) or a proxy URL. */
function isUpstreamProxy(value: string): boolean {
  if (value === 'direct') return true;
  try {
    const url = new URL(value);
    return ['http:', 'https:', 'socks:', 'socks4:', 'socks4a:', 'socks5:', 'socks5h:'].includes(url.protocol) && url.hostname !== '' && (url.pathname === '' || url.pathname === '/') && url.search === '';
  } catch {
    return false;
  }
}

const timeouts = z.strictObject({
  connect: duration.default(5_000),
  response_header: duration.default(60_000),
  idle: duration.default(60_000),
});
export type TimeoutsConfig = z.output<typeof timeouts>;

const server = z.strictObject({
  url: httpUrl,
  weight: positiveInt.default(1),
  max_conns: nonNegativeInt.default(0),
  backup: bool.default(false),
});

const health = z.strictObject({
  path: z.string(msg('a path starting with "/"')).startsWith('/', msg('a path starting with "/"')).default('/health'),
  interval: duration.default(5_000),
  timeout: duration.default(2_000),
  rise: positiveInt.default(2),
  fall: positiveInt.default(3),
  status: oneOrMany(z.int(msg('an HTTP status code')).min(100).max(599, msg('an HTTP status code'))).optional(),
  host: text.optional(),
});

const pool = z.strictObject({
  balance: z.enum(BALANCE_ALGORITHMS, msg(`one of ${BALANCE_ALGORITHMS.join(', ')}`)).default('round-robin'),
  hash_key: z
    .string(msg('"uri", "header:NAME" or "cookie:NAME"'))
    .regex(/^(uri|header:[A-Za-z0-9!#$%&'*+.^_`|~-]+|cookie:[^\s;=]+)$/, msg('"uri", "header:NAME" or "cookie:NAME"'))
    .optional(),
  retries: nonNegativeInt.default(2),
  servers: z.array(server, msg('a list of servers')).min(1, msg('at least one server')),
  health: health.optional(),
  passive: z.strictObject({ max_fails: nonNegativeInt.default(3), fail_timeout: duration.default(30_000) }).default({ max_fails: 3, fail_timeout: 30_000 }),
  sticky: z.strictObject({ cookie: z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, msg('a cookie name')) }).optional(),
  queue: z.strictObject({ size: nonNegativeInt.default(0), timeout: duration.default(10_000) }).default({ size: 0, timeout: 10_000 }),
  slow_start: duration.default(0),
  timeouts: timeouts.optional(),
  preserve_host: bool.optional(),
});
export type PoolConfig = z.output<typeof pool>;

const rateLimit = z.strictObject({
  rate: z.number(msg('requests per second (a positive number)')).positive(msg('requests per second (a positive number)')),
  burst: positiveInt.optional(),
});
export type RateLimitConfig = z.output<typeof rateLimit>;

/** Conditions both front doors' rules understand (src/policy/rules.ts). */
const ruleCommon = {
  name: text.optional(),
  action: z.enum(['allow', 'deny'], msg('"allow" or "deny"')),
  user_agent: text.optional(),
  client: oneOrMany(cidr).optional(),
  method: oneOrMany(text).optional(),
  path: oneOrMany(text).optional(),
  header: z.record(z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, msg('a header name')), text).optional(),
  time: z.string(msg('a window like "09:00-17:00"')).regex(/^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-4]):[0-5]\d$/, msg('a window like "09:00-17:00"')).optional(),
  days: z.string(msg('days like "mon-fri" or "sat,sun"')).regex(/^(mon|tue|wed|thu|fri|sat|sun)(-(mon|tue|wed|thu|fri|sat|sun))?(,(mon|tue|wed|thu|fri|sat|sun)(-(mon|tue|wed|thu|fri|sat|sun))?)*$/i, msg('days like "mon-fri" or "sat,sun"')).optional(),
};

/** L7 filtering in front of the backends (host is the Host header): first match wins, default allow. */
const reverseRule = z.strictObject({
  ...ruleCommon,
  host: oneOrMany(text).optional(),
});

const route = z.strictObject({
  host: z
    .string(msg('a host name like "app.example.com" or "*.example.com"'))
    .regex(/^(\*\.)?[A-Za-z0-9.-]+(:\d+)?$/, msg('a host name like "app.example.com" or "*.example.com"'))
    .optional(),
  path: z.string(msg('a path prefix starting with "/"')).startsWith('/', msg('a path prefix starting with "/"')).default('/'),
  pool: text,
  cache: bool.default(true),
  preserve_host: bool.optional(),
  rate_limit: rateLimit.optional(),
  max_body_size: size.optional(),
});

/** A flow-control window: at least HTTP/2's default 65,535 bytes, at most 2^31-1 (RFC 9113 §6.9). */
const windowSize = size.refine((n) => n >= 65_535 && n <= 2 ** 31 - 1, msg('a window size between 65535 bytes and 2gb'));

/** HTTP/2 at the reverse TLS listener (and on the plain one with h2c): on by default, with abuse limits. */
const http2 = z.strictObject({
  enabled: bool.default(true),
  max_concurrent_streams: positiveInt.default(100),
  stream_window: windowSize.default(4 * 1024 ** 2),
  connection_window: windowSize.default(16 * 1024 ** 2),
  /** Largest request header list (HPACK-decoded); defaults to limits.max_header_size. */
  max_header_list_size: size.optional(),
  max_resets_per_second: positiveInt.default(200),
  idle_timeout: duration.default(60_000),
  settings_timeout: duration.default(10_000),
});
const HTTP2_DEFAULTS = http2.parse({});

const reverse = z.strictObject({
  listen: listenAddress('0.0.0.0').optional(),
  tls_listen: listenAddress('0.0.0.0').optional(),
  tls: z.strictObject({ cert: text, key: text, min_version: z.enum(['TLSv1.2', 'TLSv1.3'], msg('"TLSv1.2" or "TLSv1.3"')).default('TLSv1.2'), ciphers: text.optional() }).optional(),
  http2: http2.default(HTTP2_DEFAULTS),
  /** HTTP/2 with prior knowledge (h2c) on the plain listener, beside HTTP/1.1. */
  h2c: bool.default(false),
  routes: z.array(route, msg('a list of routes')).default([]),
  trusted_proxies: z.array(cidr).default([]),
  preserve_host: bool.default(true),
  timeouts: timeouts.default({ connect: 5_000, response_header: 60_000, idle: 60_000 }),
  rate_limit: rateLimit.optional(),
  rules: z.array(reverseRule, msg('a list of rules')).default([]),
  /** The PURGE method (as Varnish and Squid offer it), from these clients only; absent: PURGE is refused (405). */
  purge: z
    .strictObject({
      clients: z
        .array(cidr, msg('a list of CIDRs like ["127.0.0.1/32", "10.0.0.0/8"]'))
        .min(1, msg('at least one CIDR like "127.0.0.1/32" (leave reverse.purge out to refuse PURGE)')),
    })
    .optional(),
});
export type ReverseConfig = z.output<typeof reverse>;

/** Access rules of the forward proxy: first match wins, default allow. */
const forwardRule = z.strictObject({
  ...ruleCommon,
  host: oneOrMany(text).optional(),
  hosts_file: text.optional(),
  port: oneOrMany(z.int().min(1).max(65535, msg('a port number'))).optional(),
  user: oneOrMany(text).optional(),
});

const forward = z.strictObject({
  listen: listenAddress('127.0.0.1').default({ host: '127.0.0.1', port: 3128 }),
  connect_ports: z.array(z.int().min(1).max(65535, msg('a port number'))).default([443]),
  clients: z.array(cidr).default(['127.0.0.0/8', '::1/128']),
  rules: z.array(forwardRule, msg('a list of rules')).default([]),
  anonymize: z.union([bool, z.literal('strict')], msg('true, false or "strict"')).default(true),
  auth: z
    .strictObject({
      realm: text.default('Portico'),
      users: z.record(z.string(), text).optional(),
      htpasswd: text.optional(),
    })
    .optional(),
  upstream_proxy: z
    .string(msg('a proxy URL like "http://10.0.0.1:3128" or "socks5://…", or "direct"'))
    .refine(isUpstreamProxy, msg('a proxy URL like "http://10.0.0.1:3128", "https://…", "socks5://…" or "socks4://…", or "direct"'))
    .optional(),
  pac: z.strictObject({ bypass: z.array(text).default([]) }).default({ bypass: [] }),
  timeouts: timeouts.default({ connect: 10_000, response_header: 60_000, idle: 60_000 }),
  tunnel_idle_timeout: duration.default(300_000),
  rate_limit: rateLimit.optional(),
  /** Refuse private, loopback and link-local destinations (SSRF), checked after DNS. */
  deny_private: bool.default(false),
  /** Most CONNECT tunnels open (or opening) at once; beyond, 503. */
  max_tunnels: positiveInt.default(10_000),
});
export type ForwardConfig = z.output<typeof forward>;

const admin = z.strictObject({
  listen: listenAddress('127.0.0.1').default({ host: '127.0.0.1', port: 9090 }),
  /** Bearer token: required for state-changing calls, and for everything when listen is beyond loopback. */
  token: text.optional(),
});

const log = z.strictObject({
  level: z.enum(LOG_LEVELS, msg(`one of ${LOG_LEVELS.join(', ')}`)).default('info'),
  /** Period of the one-line stats summary; 0 turns it off. */
  stats_interval: duration.default(60_000),
  /** Leave the client address out of access-log lines. */
  anonymize: bool.default(false),
  /** Where the one line per request goes, and in which format (src/observe/access-log.ts). */
  access: z
    .strictObject({
      /** A file the lines are appended to (reopened on SIGUSR1) instead of stdout. */
      file: text.optional(),
      format: z.enum(['json', 'combined'], msg('"json" or "combined"')).default('json'),
    })
    .default({ format: 'json' }),
});

const limits = z.strictObject({
  max_url_length: size.default(8 * 1024),
  max_header_size: size.default(32 * 1024),
  max_header_count: positiveInt.default(100),
  max_body_size: size.default(100 * 1024 ** 2),
  header_timeout: duration.default(20_000),
  request_timeout: duration.default(300_000),
  max_connections: nonNegativeInt.default(10_000),
  max_connections_per_client: nonNegativeInt.default(0),
});
export type LimitsConfig = z.output<typeof limits>;

const shutdown = z.strictObject({
  /** On SIGTERM/SIGINT: how long in-flight requests and open tunnels may take before they are cut. */
  drain_timeout: duration.default(10_000),
});

/** `--workers`: how many processes serve the listeners; "auto" is one per CPU core. */
const workersMessage = msg('a positive integer or "auto"');
const workers = z.union([z.int(workersMessage).positive(workersMessage), z.literal('auto', workersMessage)], workersMessage);

/** The top-level sections, each a schema of its own (checked one by one when the whole file is not valid). */
export const configSections = {
  workers: workers.default(1),
  reverse: reverse.optional(),
  pools: z.record(z.string().regex(/^[A-Za-z0-9_.-]+$/, msg('a pool name of letters, digits, "_", "-" or "."')), pool).default({}),
  forward: forward.optional(),
  cache: cache.default(cache.parse({})),
  admin: admin.optional(),
  log: log.default({ level: 'info', stats_interval: 60_000, anonymize: false, access: { format: 'json' } }),
  shutdown: shutdown.default({ drain_timeout: 10_000 }),
  limits: limits.default(limits.parse({})),
};

export const configSchema = z
  .strictObject(configSections)
  .superRefine((config, ctx) => {
    const reverse = config.reverse;
    if (reverse) {
      if (!reverse.listen && !reverse.tls_listen) {
        ctx.addIssue({ code: 'custom', path: ['reverse', 'listen'], message: 'expected an address: the reverse proxy needs listen or tls_listen' });
      }
      if (reverse.h2c && !reverse.listen) {
        ctx.addIssue({ code: 'custom', path: ['reverse', 'h2c'], message: 'expected reverse.listen: h2c is HTTP/2 on the plain listener' });
      }
      if (reverse.tls_listen && !reverse.tls) {
        ctx.addIssue({ code: 'custom', path: ['reverse', 'tls'], message: 'expected { cert, key }: tls_listen needs a certificate' });
      }
      if (reverse.routes.length === 0) {
        ctx.addIssue({ code: 'custom', path: ['reverse', 'routes'], message: 'expected at least one route like { path: /, pool: web }, got none (on the command line, --upstream URL adds one)' });
      }
      reverse.routes.forEach((r, i) => {
        if (!(r.pool in config.pools)) {
          const known = Object.keys(config.pools);
          const near = closest(r.pool, known);
          const advice = near
            ? `; did you mean "${near}"?`
            : known.length === 0
              ? `; define it under pools: (pools: { ${r.pool}: { servers: [{ url: "http://127.0.0.1:3000" }] } })`
              : `; add it under pools: or use one of those`;
          ctx.addIssue({
            code: 'custom',
            path: ['reverse', 'routes', i, 'pool'],
            message: `expected the name of a pool (${known.length ? known.join(', ') : 'none defined'}), got "${r.pool}"${advice}`,
          });
        }
      });
    }
    for (const [name, p] of Object.entries(config.pools)) {
      if (p.balance === 'hash' && !p.hash_key) {
        ctx.addIssue({ code: 'custom', path: ['pools', name, 'hash_key'], message: 'expected "uri", "header:NAME" or "cookie:NAME": balance "hash" needs a hash_key' });
      }
      if (p.servers.every((s) => s.backup)) {
        ctx.addIssue({ code: 'custom', path: ['pools', name, 'servers'], message: 'expected at least one server that is not a backup' });
      }
    }
    if (config.admin && !config.admin.token && !isLoopbackHost(config.admin.listen.host)) {
      ctx.addIssue({
        code: 'custom',
        path: ['admin', 'token'],
        message: `expected a bearer token: admin.listen ${formatAddress(config.admin.listen)} is reachable from other machines, so the admin API needs admin.token; set it to a long random string (e.g. the output of "openssl rand -hex 32"), or listen on 127.0.0.1`,
      });
    }
    if (config.cache.store === 'disk' && !config.cache.dir) {
      ctx.addIssue({ code: 'custom', path: ['cache', 'dir'], message: 'expected a directory: cache.store "disk" needs cache.dir' });
    }
  });

export type Config = z.output<typeof configSchema>;
/** The config as written by a user (before defaults and unit parsing). */
export type ConfigInput = z.input<typeof configSchema>;
