/** The `cache` section of the config schema: the tiers, the shared tier on Redis, and operators' rules. */
import { z } from 'zod';
import { redisUrlProblem } from '../cache/redis/redis-url.js';
import { bool, duration, msg, oneOrMany, positiveInt, size, text } from './fields.js';

const redisUrl = z
  .string(msg('a Redis URL like "redis://127.0.0.1:6379" (or rediss:// for TLS)'))
  .superRefine((value, ctx) => {
    const problem = redisUrlProblem(value);
    if (problem !== null) ctx.addIssue({ code: 'custom', message: problem, input: value });
  });

/** The shared tier: a URL, or the URL with its settings. */
const redis = z
  .union([
    redisUrl,
    z.strictObject({
      url: redisUrl,
      key_prefix: text.default('portico:'),
      command_timeout: duration.default(100),
      max_object_size: size.default(1024 ** 2),
    }),
  ])
  .transform((value) => (typeof value === 'string' ? { url: value, key_prefix: 'portico:', command_timeout: 100, max_object_size: 1024 ** 2 } : value));

const headerName = z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, msg('a header name'));
const cookieName = z.string(msg('a cookie name')).regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, msg('a cookie name'));
const statusCode = z.int(msg('an HTTP status code')).min(100, msg('an HTTP status code')).max(599, msg('an HTTP status code'));

/** A cache rule (src/cache/cache-rule.ts): conditions on the request (and `status` on the response), then actions. */
const cacheRule = z.strictObject({
  name: text.optional(),
  door: z.enum(['reverse', 'forward'], msg('"reverse" or "forward"')).optional(),
  host: oneOrMany(text).optional(),
  path: oneOrMany(text).optional(),
  method: oneOrMany(text).optional(),
  status: oneOrMany(statusCode).optional(),
  header: z.record(headerName, text).optional(),
  cookie: z.record(cookieName, text).optional(),
  bypass: bool.optional(),
  default_ttl: z
    .union([duration, z.record(z.string().regex(/^[1-5]\d\d$/, msg('an HTTP status code like "200"')), duration)], msg('a duration like "1d", or durations by status like { 200: 1d, 404: 1m }'))
    .optional(),
  min_ttl: duration.optional(),
  max_ttl: duration.optional(),
  ignore_client_no_cache: bool.optional(),
  cache_private: bool.optional(),
  cache_set_cookie: bool.optional(),
  key: z
    .strictObject({
      query: z
        .union([z.array(text), z.strictObject({ ignore: z.array(text) }), z.literal(false), z.literal('sort')], msg('a list of parameters to keep, { ignore: [...] }, "sort" or false'))
        .optional(),
      headers: z.array(headerName).optional(),
      cookies: z.array(cookieName).optional(),
    })
    .optional(),
  max_object_size: size.optional(),
  min_uses: positiveInt.optional(),
});
export type CacheRuleConfig = z.output<typeof cacheRule>;

export const cache = z.strictObject({
  enabled: bool.default(true),
  max_size: size.default(256 * 1024 ** 2),
  max_object_size: size.default(8 * 1024 ** 2),
  store: z.enum(['memory', 'disk'], msg('"memory" or "disk"')).default('memory'),
  dir: text.optional(),
  heuristic_max: duration.default(86_400_000),
  tag_header: text.default('surrogate-key'),
  targeted_fields: z.array(text).default(['cdn-cache-control']),
  /** A tier shared by every worker and machine, on Redis or Valkey (src/cache/redis). */
  redis: redis.optional(),
  /** Finish storing a response whose client left once this fraction of it has arrived (Squid's quick_abort_pct); 1 never. */
  quick_abort: z.number(msg('a fraction between 0 and 1, like 0.9')).min(0, msg('a fraction between 0 and 1, like 0.9')).max(1, msg('a fraction between 0 and 1, like 0.9')).default(0.9),
  /** Operators' rules: TTLs, keys, bypass, overrides (first match wins). */
  rules: z.array(cacheRule, msg('a list of cache rules')).default([]),
});
export type CacheConfig = z.output<typeof cache>;
