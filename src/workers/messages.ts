/**
 * What the supervisor and its workers say to each other over the IPC channel. Every message has
 * `portico` as its first field, so that Node's own internal messages are never taken for ours.
 */
import type { AdminCommand } from '../admin/admin-commands.js';
import type { ListenerName, ListeningAddresses } from '../listener-specs.js';

/**
 * The supervisor → a worker process: serve, as worker `slot` of `count`, with `config` (validated by
 * the supervisor, or the one the workers serve after a reload: a worker never reads a file that
 * changed, or broke, since). One Listen message follows for each of `listeners`. A process waits for
 * them with Portico loaded — the spare waits until a worker dies.
 */
export interface Start {
  readonly portico: 'start';
  readonly slot: number;
  readonly count: number;
  /** Every listening address the supervisor bound (for the config this worker reports). */
  readonly addresses: ListeningAddresses;
  /** The listeners this worker serves (the admin listener: worker 1 only). */
  readonly listeners: readonly ListenerName[];
  readonly config: unknown;
}

/** The supervisor → a worker: `listener`'s socket, sent with the message (see shared-listener.ts). */
export interface Listen {
  readonly portico: 'listen';
  readonly listener: ListenerName;
}

/** A worker → the supervisor: it serves. */
export interface Ready {
  readonly portico: 'ready';
}

/** A worker → the supervisor: it serves this config now (a reload succeeded); replacements start with it. */
export interface Serving {
  readonly portico: 'serving';
  readonly config: unknown;
}

/** Run an admin command everywhere (worker → primary), or here (primary → worker). */
export interface Ask {
  readonly portico: 'ask';
  readonly id: number;
  readonly command: AdminCommand;
}

/** A worker's answer to an Ask from the primary. */
export interface Answer {
  readonly portico: 'answer';
  readonly id: number;
  readonly answer?: unknown;
  readonly error?: string;
}

/** The primary → the worker that asked: every worker's answer, the asker's first. */
export interface Answers {
  readonly portico: 'answers';
  readonly id: number;
  readonly answers: readonly unknown[];
}

export type WorkerMessage = Ready | Serving | Ask | Answer;
export type PrimaryMessage = Start | Listen | Ask | Answers;

export function isPorticoMessage<T extends { portico: string }>(message: unknown): message is T {
  return typeof message === 'object' && message !== null && typeof (message as { portico?: unknown }).portico === 'string';
}

/** Set (to "1") in the environment of the processes the supervisor starts. */
export const WORKER_ENV = 'PORTICO_WORKER';

/**
 * Set (to "redis") in the environment of a worker process when the config the workers serve has a
 * Redis tier: a spare loads its code while it waits (a spare is told its config only when it starts).
 */
export const PRELOAD_ENV = 'PORTICO_WORKER_PRELOAD';

/** True in a process the supervisor started: it serves once it is told which worker it is. */
export function isWorkerProcess(): boolean {
  return process.send !== undefined && process.env[WORKER_ENV] === '1';
}
