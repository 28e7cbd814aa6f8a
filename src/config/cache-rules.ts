/**
 * `cache.rules[]` compiled for each door: the conditions into a policy RuleSet (errors name the key,
 * e.g. `cache.rules[2].path: expected a valid regular expression`), the actions into the cache's
 * CacheRule (src/cache/cache-rule.ts).
 */
import type { QueryKey } from '../cache/cache-key.js';
import { cookieKeyField, type CacheRule } from '../cache/cache-rule.js';
import { DoorCacheRules, NO_CACHE_RULES } from '../pipeline/cache-rules.js';
import { RuleSet } from '../policy/rules.js';
import type { CacheRuleConfig } from './cache-schema.js';

const KEY_PATH = 'cache.rules';

/** The rules that apply at `door` (those without a `door` condition apply at both). */
export function doorCacheRules(specs: readonly CacheRuleConfig[], door: 'reverse' | 'forward'): DoorCacheRules {
  if (!specs.some((spec) => spec.door === undefined || spec.door === door)) return NO_CACHE_RULES;
  // Every rule is compiled (so that errors name each rule's own index); another door's never matches.
  const conditions = new RuleSet(
    specs.map((s) => ({ name: s.name, action: 'allow' as const, host: s.host, path: s.path, method: s.method, header: s.header, cookie: s.cookie })),
    { keyPath: KEY_PATH },
  );
  return new DoorCacheRules(
    conditions,
    specs.map((spec, i) => (spec.door === undefined || spec.door === door ? compileRule(spec, i) : null)),
  );
}

function compileRule(spec: CacheRuleConfig, index: number): CacheRule {
  const key = `${KEY_PATH}[${index}]`;
  const ttl = spec.default_ttl;
  return {
    label: spec.name === undefined ? key : `"${spec.name}" (${key})`,
    detail: `rule:${spec.name === undefined ? index : token(spec.name)}`,
    statuses: spec.status === undefined ? null : new Set(spec.status),
    bypass: spec.bypass === true,
    ignoreClientNoCache: spec.ignore_client_no_cache === true,
    defaultTtlMs: ttl === undefined ? null : typeof ttl === 'number' ? ttl : new Map(Object.entries(ttl).map(([status, ms]) => [Number(status), ms])),
    minTtlMs: spec.min_ttl ?? null,
    maxTtlMs: spec.max_ttl ?? null,
    cachePrivate: spec.cache_private === true,
    cacheSetCookie: spec.cache_set_cookie === true,
    maxObjectSize: spec.max_object_size ?? null,
    minUses: spec.min_uses ?? 1,
    keyFields: [...(spec.key?.headers ?? []).map((h) => h.toLowerCase()), ...(spec.key?.cookies ?? []).map(cookieKeyField)],
    query: queryKey(spec.key?.query),
  };
}

function queryKey(query: NonNullable<CacheRuleConfig['key']>['query']): QueryKey | null {
  if (query === undefined) return null;
  if (query === false) return { kind: 'none' };
  if (query === 'sort') return { kind: 'sort' };
  if (Array.isArray(query)) return { kind: 'keep', names: new Set(query) };
  return { kind: 'ignore', names: new Set(query.ignore) };
}

/** A rule name as a Cache-Status token (sf-token characters only). */
function token(name: string): string {
  return name.replace(/[^A-Za-z0-9_.:*+/-]/g, '-');
}
