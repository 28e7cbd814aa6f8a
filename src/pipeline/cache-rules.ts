/**
 * Which of the operator's cache rules (`cache.rules[]`, src/cache/cache-rule.ts) a request meets: the
 * conditions are the policy layer's (host, path and query, method, header, cookie: src/policy/rules.ts),
 * the rules of one door are checked in order, and every rule whose request conditions match is handed
 * to the cache — the first of them decides for the request, the first whose `status` condition the
 * response meets decides for the response.
 */
import { NO_RULES, type CacheRule } from '../cache/cache-rule.js';
import type { RuleRequest, RuleSet } from '../policy/rules.js';

export class DoorCacheRules {
  /** `rules[i]` goes with the conditions' rule i; null for a rule of the other door. */
  constructor(
    private readonly conditions: RuleSet | null,
    private readonly rules: readonly (CacheRule | null)[],
  ) {}

  get size(): number {
    return this.rules.length;
  }

  /** The rules whose request conditions `req` meets, in order (none: a shared empty list). */
  match(req: RuleRequest): readonly CacheRule[] {
    if (this.conditions === null) return NO_RULES;
    const out: CacheRule[] = [];
    for (const i of this.conditions.matching(req)) {
      const rule = this.rules[i];
      if (rule) out.push(rule);
    }
    return out.length === 0 ? NO_RULES : out;
  }
}

/** A door without cache rules. */
export const NO_CACHE_RULES = new DoorCacheRules(null, NO_RULES);
