/**
 * What the supervisor and its workers say to each other over the IPC channel. Every message has
 * `portico` as its first field, so that Node's own internal messages are never taken for ours.
 */
import type { AdminCommand } from '../admin/admin-commands.js';
import type { ListenerName } from '../listeners.js';

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

/** The supervisor → a worker: a connection accepted on `listener`'s socket (sent with the socket). */
export interface Connection {
  readonly portico: 'connection';
  readonly listener: ListenerName;
}

/** An unsafe request invalidated `url` in one worker's cache: the others drop it too. */
export interface Invalidate {
  readonly portico: 'invalidate';
  readonly url: string;
}

export type WorkerMessage = Ready | Serving | Ask | Answer | Invalidate;
export type PrimaryMessage = Ask | Answers | Invalidate | Connection;

export function isPorticoMessage<T extends { portico: string }>(message: unknown): message is T {
  return typeof message === 'object' && message !== null && typeof (message as { portico?: unknown }).portico === 'string';
}

/** Environment variables that tell a forked worker which one it is, and what the supervisor bound. */
export const SLOT_ENV = 'PORTICO_WORKER_SLOT';
export const COUNT_ENV = 'PORTICO_WORKERS';
/** JSON: the listening addresses, by listener name. */
export const LISTENERS_ENV = 'PORTICO_LISTENERS';
/**
 * JSON: the validated config a worker starts with — the supervisor's, then the one the workers serve
 * after a reload — so that a worker never reads a file that changed (or broke) since.
 */
export const CONFIG_ENV = 'PORTICO_CONFIG';
