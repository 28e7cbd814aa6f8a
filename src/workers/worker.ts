/**
 * A worker under the supervisor (src/workers/supervisor.ts): which one it is, its share of the config,
 * the addresses the supervisor bound, and its link to the supervisor and the other workers.
 *
 * Every worker has a cache of its own, `cache.max_size / N` large (a disk cache under `cache.dir/worker-K`),
 * so the configured size bounds them all together. What one worker's unsafe request invalidates, and
 * what the admin API purges, is dropped from every worker's cache. Only worker 1 serves the admin
 * listener; its answers cover every worker.
 */
import { join } from 'node:path';
import { LocalAdmin, type AdminCommand, type AdminPeers, type AnswerTo } from '../admin/admin-commands.js';
import type { AdminTarget } from '../admin/sources.js';
import { VERSION } from '../admin/version.js';
import type { Config } from '../config/schema.js';
import { parseListenAddress } from '../config/units.js';
import type { ListenerName, ListeningAddresses, SharedSockets } from '../listener-specs.js';
import { isPorticoMessage, type Ask, type PrimaryMessage, type Start, type WorkerMessage } from './messages.js';

export interface WorkerRole {
  /** 1 … count; a worker started again in place of a dead one keeps the number. */
  readonly slot: number;
  readonly count: number;
  /** What the supervisor bound, by listener name. */
  readonly addresses: ListeningAddresses;
}

/** What a worker process is told to serve (see messages.ts, Start and Listen). */
export interface StartOrder {
  readonly role: WorkerRole;
  readonly config: Config;
  /** The listening sockets the supervisor bound, for this worker to listen on. */
  readonly sockets: SharedSockets;
}

/**
 * Waits, with Portico loaded and nothing served, for the supervisor's Start and the sockets that come
 * with it; null when the supervisor goes away or stops this process first (a spare that was never
 * needed).
 */
export function startOrder(): Promise<StartOrder | null> {
  return new Promise((resolve) => {
    let start: Start | null = null;
    const sockets: SharedSockets = {};
    const done = (order: StartOrder | null) => {
      process.off('message', onMessage);
      process.off('disconnect', gone);
      process.off('SIGTERM', gone);
      resolve(order);
    };
    const onMessage = (message: unknown, handle: unknown) => {
      if (!isPorticoMessage<PrimaryMessage>(message)) return;
      if (message.portico === 'start') start = message;
      else if (message.portico === 'listen' && typeof handle === 'object' && handle !== null) sockets[message.listener] = handle;
      else return;
      if (start === null || !start.listeners.every((name) => sockets[name] !== undefined)) return;
      done({ role: { slot: start.slot, count: start.count, addresses: start.addresses }, config: start.config as Config, sockets });
    };
    const gone = () => done(null);
    process.on('message', onMessage);
    process.on('disconnect', gone);
    process.on('SIGTERM', gone);
  });
}

/**
 * The config as one worker runs it: its share of the cache, the admin API in worker 1 only, and the
 * listen addresses as the supervisor bound them (a port 0 in the file is a real port here).
 */
export function configForWorker(config: Config, role: WorkerRole): Config {
  const cache = config.cache;
  const bound = (name: ListenerName, fallback: string) => {
    const text = role.addresses[name];
    return (text === undefined ? null : parseListenAddress(text, fallback)) ?? undefined;
  };
  const forwardListen = config.forward && bound('forward', config.forward.listen.host);
  const reverseListen = config.reverse?.listen && bound('reverse', config.reverse.listen.host);
  const tlsListen = config.reverse?.tls_listen && bound('reverseTls', config.reverse.tls_listen.host);
  const adminListen = config.admin && bound('admin', config.admin.listen.host);
  return {
    ...config,
    forward: config.forward && { ...config.forward, listen: forwardListen ?? config.forward.listen },
    reverse: config.reverse && { ...config.reverse, listen: reverseListen ?? config.reverse.listen, tls_listen: tlsListen ?? config.reverse.tls_listen },
    cache: {
      ...cache,
      max_size: Math.max(1, Math.floor(cache.max_size / role.count)),
      dir: cache.dir === undefined ? undefined : join(cache.dir, `worker-${role.slot}`),
    },
    admin: role.slot === 1 && config.admin ? { ...config.admin, listen: adminListen ?? config.admin.listen } : undefined,
  };
}

/** How long the answer to an unsafe request waits for the other workers to drop what it invalidated. */
const INVALIDATION_WAIT_MS = 1_000;

/** The worker's side of the IPC channel: connections, the admin peers of worker 1, and cache invalidations. */
export class WorkerLink implements AdminPeers {
  private nextId = 1;
  private readonly waiting = new Map<number, (answers: unknown[]) => void>();
  private local: LocalAdmin | null = null;

  constructor() {
    process.on('message', this.onMessage);
  }

  /** The worker serves `target` from now on: the supervisor may send it questions. */
  attach(target: AdminTarget): void {
    this.local = new LocalAdmin(target, VERSION);
    send({ portico: 'ready' });
  }

  /** A reload succeeded: workers started from now on serve `config` too. */
  readonly serving = (config: Config): void => {
    send({ portico: 'serving', config });
  };

  run<C extends AdminCommand>(command: C): Promise<AnswerTo<C>[]> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve as (answers: unknown[]) => void);
      send({ portico: 'ask', id, command });
    });
  }

  /**
   * Has every worker drop `url`, which an unsafe request invalidated here (HttpCache's onInvalidate):
   * resolves once they all have, or after INVALIDATION_WAIT_MS if one does not answer. A purge does not
   * announce again: the invalidation stops there.
   */
  readonly announceInvalidation = (url: string): Promise<void> =>
    new Promise((resolve) => {
      const timer = setTimeout(resolve, INVALIDATION_WAIT_MS);
      void this.run({ op: 'purge', kind: 'url', value: url }).then(() => {
        clearTimeout(timer);
        resolve();
      });
    });

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
      case 'start':
      case 'listen':
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

/** Sends unless the supervisor is gone (then this worker is about to exit, see cli.ts). */
function send(message: WorkerMessage): void {
  if (process.connected) process.send!(message, undefined, {}, ignore);
}

function ignore(): void {}
