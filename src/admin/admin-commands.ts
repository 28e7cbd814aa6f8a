/**
 * The admin operations that read or change a process's own state, as plain data in and out. The admin
 * handler runs each one in every process that serves traffic: in this process alone, or — with
 * `--workers N` — in every worker (AdminPeers, src/workers), and merges the answers.
 */
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import type { CacheDoor, EntryDetail, EntryListQuery, EntryPage } from '../cache/entry-listing.js';
import { ConfigError } from '../config/errors.js';
import { AdminMetrics } from './metrics.js';
import type { AdminTarget, ReloadOutcome } from './sources.js';
import { poolsView, statsView, type PoolJson } from './views.js';

export type PurgeKind = 'url' | 'prefix' | 'tag';

export type AdminCommand =
  | { readonly op: 'stats' }
  | { readonly op: 'pools' }
  | { readonly op: 'metrics' }
  | { readonly op: 'purge'; readonly kind: PurgeKind; readonly value: string; readonly door?: CacheDoor | undefined }
  | { readonly op: 'cacheEntries'; readonly query: EntryListQuery }
  | { readonly op: 'cacheEntry'; readonly url: string; readonly door?: CacheDoor | undefined }
  | { readonly op: 'drain'; readonly pool: string; readonly server: string; readonly drain: boolean }
  | { readonly op: 'reload' };

export type ReloadAnswer = { readonly reloaded: true; readonly outcome: ReloadOutcome } | { readonly reloaded: false; readonly problems: readonly string[] };

/** What one process answers to each command. */
export interface AdminAnswers {
  stats: Record<string, unknown>;
  pools: PoolJson[];
  metrics: MetricObjectWithValues<MetricValue<string>>[];
  purge: number;
  /** null when the cache is off. */
  cacheEntries: (EntryPage & { readonly pid: number }) | null;
  cacheEntry: (EntryDetail & { readonly worker: number })[];
  drain: boolean;
  reload: ReloadAnswer;
}

export type AnswerTo<C extends AdminCommand> = AdminAnswers[C['op']];

/** The other processes serving the same listeners. */
export interface AdminPeers {
  /** Runs `command` in every worker, this one included; their answers (those that answered in time). */
  run<C extends AdminCommand>(command: C): Promise<AnswerTo<C>[]>;
}

/** Runs admin commands against this process. */
export class LocalAdmin {
  private metrics: AdminMetrics | null = null;

  constructor(
    private readonly target: AdminTarget,
    private readonly version: string,
  ) {}

  async run<C extends AdminCommand>(command: C): Promise<AnswerTo<C>> {
    return (await this.answer(command)) as AnswerTo<C>;
  }

  private async answer(command: AdminCommand): Promise<AdminAnswers[keyof AdminAnswers]> {
    const target = this.target;
    switch (command.op) {
      case 'stats':
        return statsView(target, this.version);
      case 'pools':
        return poolsView(target);
      case 'metrics':
        this.metrics ??= new AdminMetrics(target, this.version);
        return this.metrics.registry.getMetricsAsJSON();
      case 'purge': {
        const cache = target.cache;
        if (cache === null) return 0;
        const { kind, value } = command;
        return kind === 'url' ? cache.purgeUrl(value, command.door) : kind === 'prefix' ? cache.purgePrefix(value) : cache.purgeTag(value);
      }
      case 'cacheEntries': {
        const page = target.cache?.listEntries(command.query);
        return page === undefined ? null : { ...page, pid: process.pid };
      }
      case 'cacheEntry': {
        const details = (await target.cache?.entryDetails(command.url, command.door)) ?? [];
        return details.map((d) => ({ ...d, worker: process.pid }));
      }
      case 'drain': {
        const pool = target.pools.get(command.pool);
        if (pool === undefined) return false;
        return command.drain ? pool.drain(command.server) : pool.enable(command.server);
      }
      case 'reload':
        try {
          return { reloaded: true, outcome: target.reload() };
        } catch (err) {
          if (err instanceof ConfigError) return { reloaded: false, problems: err.problems };
          throw err;
        }
    }
  }
}
