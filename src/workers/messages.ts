/**
 * What the primary and its workers say to each other over the cluster IPC channel. Every message has
 * `portico` as its first field, so that Node's own cluster messages are never taken for ours.
 */
import type { AdminCommand } from '../admin/admin-commands.js';

/** A worker → primary: its listeners are bound, it serves. */
export interface Ready {
  readonly portico: 'ready';
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

/** An unsafe request invalidated `url` in one worker's cache: the others drop it too. */
export interface Invalidate {
  readonly portico: 'invalidate';
  readonly url: string;
}

export type WorkerMessage = Ready | Ask | Answer | Invalidate;
export type PrimaryMessage = Ask | Answers | Invalidate;

export function isPorticoMessage<T extends { portico: string }>(message: unknown): message is T {
  return typeof message === 'object' && message !== null && typeof (message as { portico?: unknown }).portico === 'string';
}

/** Environment variables that tell a forked worker which one it is. */
export const SLOT_ENV = 'PORTICO_WORKER_SLOT';
export const COUNT_ENV = 'PORTICO_WORKERS';
