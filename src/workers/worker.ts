/**
 * One worker of `--workers N`: which one it is, its share of the config, and its link to the others
 * through the primary (src/workers/primary.ts).
 *
 * Every worker has a cache of its own, `cache.max_size / N` large (a disk cache under `cache.dir/worker-K`),
 * so the configured size bounds them all together. What one worker's unsafe request invalidates, and
 * what the admin API purges, is dropped from every worker's cache. Only worker 1 binds the admin
 * listener; its answers cover every worker.
 */
import cluster from 'node:cluster';
import { join } from 'node:path';
import { LocalAdmin, type AdminCommand, type AdminPeers, type AnswerTo } from '../admin/admin-commands.js';
import type { AdminTarget } from '../admin/sources.js';
import { VERSION } from '../admin/version.js';
import type { Config } from '../config/schema.js';
import { COUNT_ENV, isPorticoMessage, SLOT_ENV, type Ask, type PrimaryMessage, type WorkerMessage } from './messages.js';

export interface WorkerRole {
  /** 1 … count; a worker started again in place of a dead one keeps the number. */
  readonly slot: number;
  readonly count: number;
}

/** This process's place among the workers, or null when it is not a worker. */
export function workerRole(): WorkerRole | null {
  if (!cluster.isWorker) return null;
  const slot = Number(process.env[SLOT_ENV]);
  const count = Number(process.env[COUNT_ENV]);
  return Number.isInteger(slot) && Number.isInteger(count) && slot >= 1 && slot <= count ? { slot, count } : null;
}

/** The config as one worker runs it: its share of the cache, and the admin listener in worker 1 only. */
export function configForWorker(config: Config, role: WorkerRole): Config {
  const cache = config.cache;
  return {
    ...config,
    cache: {
      ...cache,
      max_size: Math.max(1, Math.floor(cache.max_size / role.count)),
      dir: cache.dir === undefined ? undefined : join(cache.dir, `worker-${role.slot}`),
    },
    admin: role.slot === 1 ? config.admin : undefined,
  };
}

/** The worker's side of the IPC channel: the admin peers of worker 1, and cache invalidations. */
export class WorkerLink implements AdminPeers {
  private nextId = 1;
  private readonly waiting = new Map<number, (answers: unknown[]) => void>();
  private target: AdminTarget | null = null;
  private local: LocalAdmin | null = null;

  constructor() {
    process.on('message', this.onMessage);
  }

  /** The worker serves `target` from now on: the primary may send it traffic and questions. */
  attach(target: AdminTarget): void {
    this.target = target;
    this.local = new LocalAdmin(target, VERSION);
    send({ portico: 'ready' });
  }

  run<C extends AdminCommand>(command: C): Promise<AnswerTo<C>[]> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve as (answers: unknown[]) => void);
      send({ portico: 'ask', id, command });
    });
  }

  /** Tells the other workers that `url` was invalidated here (HttpCache's onInvalidate). */
  readonly announceInvalidation = (url: string): void => {
    send({ portico: 'invalidate', url });
  };

  private readonly onMessage = (message: unknown): void => {
    if (!isPorticoMessage<PrimaryMessage>(message)) return;
    switch (message.portico) {
      case 'answers': {
        const resolve = this.waiting.get(message.id);
        this.waiting.delete(message.id);
        resolve?.([...message.answers]);
        return;
      }
      case 'ask':
        void this.answer(message);
        return;
      case 'invalidate':
        // purgeUrl does not announce again: the invalidation stops here.
        void this.target?.cache?.purgeUrl(message.url).catch(() => undefined);
        return;
    }
  };

  private async answer(ask: Ask): Promise<void> {
    try {
      if (this.local === null) throw new Error('this worker is not serving yet');
      send({ portico: 'answer', id: ask.id, answer: await this.local.run(ask.command) });
    } catch (err) {
      send({ portico: 'answer', id: ask.id, error: (err as Error).message });
    }
  }
}

/** Sends unless the primary is gone (then this worker is about to exit: cluster ends orphaned workers). */
function send(message: WorkerMessage): void {
  if (process.connected) process.send!(message, undefined, {}, ignore);
}

function ignore(): void {}
