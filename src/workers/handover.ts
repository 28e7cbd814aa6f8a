/**
 * The supervisor's connections on their way to a worker: each accepted connection is sent to a worker
 * over IPC with its descriptor, or waits (paused) while no worker serves. None is lost to a worker
 * that dies, because the supervisor keeps its own copy of each descriptor until the worker has
 * acknowledged it: Node sends one descriptor at a time, queues the rest, and the worker answers each
 * with NODE_HANDLE_ACK on receipt (the internal message Node's cluster module counts on too) — or with
 * a NACK when it could not take it (out of descriptors). A dead worker acknowledges nothing, so every
 * connection sent to it and not acknowledged goes back to waiting, for the next worker that serves.
 */
import type { ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import type { ListenerName } from '../listeners.js';
import type { PrimaryMessage } from './messages.js';

/** Connections waiting for a worker: at most this many, for at most this long. */
const WAITING_MAX = 10_000;
const WAITING_MS = 30_000;

/** A worker that refuses a descriptor this often (NACK: out of descriptors) loses the connection. */
const SEND_TRIES = 3;

interface Connection {
  readonly listener: ListenerName;
  readonly socket: Socket;
  readonly since: number;
  tries: number;
}

/** Node's internal IPC message that answers a descriptor sent to a child (see the top). */
interface HandleAnswer {
  readonly cmd?: unknown;
}

export class Handover {
  private readonly waiting: Connection[] = [];
  /**
   * Per worker: the connections sent to it that it has not acknowledged, in the order they were sent
   * (Node writes them, and the worker answers them, in that order).
   */
  private readonly unacked = new Map<ChildProcess, Connection[]>();
  private readonly sweeper: NodeJS.Timeout;

  /** `workerFor` names the worker that serves `listener` now (in turn), or null when none does. */
  constructor(private readonly workerFor: (listener: ListenerName) => ChildProcess | null) {
    this.sweeper = setInterval(() => this.dropStale(), 1_000);
    this.sweeper.unref();
  }

  /** A new worker process: its answers to the descriptors sent to it are followed from now on. */
  watch(worker: ChildProcess): void {
    this.unacked.set(worker, []);
    worker.on('internalMessage', (message: HandleAnswer) => {
      if (message?.cmd !== 'NODE_HANDLE_ACK' && message?.cmd !== 'NODE_HANDLE_NACK') return;
      const c = this.unacked.get(worker)?.shift();
      if (c === undefined) return;
      // The worker holds its own descriptor now: ours goes.
      if (message.cmd === 'NODE_HANDLE_ACK') c.socket.destroy();
      else if (++c.tries < SEND_TRIES) this.send(c);
      else c.socket.destroy();
    });
  }

  /** A new connection: to a worker that serves, or it waits (paused) for one. */
  accept(listener: ListenerName, socket: Socket): void {
    socket.on('error', () => socket.destroy());
    if (this.waiting.length >= WAITING_MAX) {
      socket.destroy();
      return;
    }
    this.send({ listener, socket, since: Date.now(), tries: 0 });
  }

  /** A worker started serving: the connections that waited go out (to whoever serves them now). */
  flush(): void {
    for (const c of this.waiting.splice(0)) this.send(c);
  }

  /** `worker` is gone: what was sent to it and not acknowledged waits for the next worker. */
  workerGone(worker: ChildProcess): void {
    const stranded = this.unacked.get(worker) ?? [];
    this.unacked.delete(worker);
    this.waiting.unshift(...stranded.filter((c) => !c.socket.destroyed));
    this.flush();
  }

  /** Stopping: every connection not yet in a worker is closed. */
  close(): void {
    clearInterval(this.sweeper);
    for (const c of this.waiting.splice(0)) c.socket.destroy();
    for (const list of this.unacked.values()) for (const c of list) c.socket.destroy();
    this.unacked.clear();
  }

  private send(c: Connection): void {
    if (c.socket.destroyed) return;
    const worker = this.workerFor(c.listener);
    const unacked = worker === null ? undefined : this.unacked.get(worker);
    if (worker === null || unacked === undefined || !worker.connected) {
      this.waiting.push(c);
      return;
    }
    unacked.push(c);
    const message: PrimaryMessage = { portico: 'connection', listener: c.listener };
    worker.send(message, c.socket, { keepOpen: true }, (err) => {
      if (!err) return;
      // Never written (the channel closed): it will not be answered, and waits for another worker —
      // unless workerGone gave it back already.
      const at = unacked.indexOf(c);
      if (at < 0) return;
      unacked.splice(at, 1);
      this.waiting.push(c);
    });
  }

  private dropStale(): void {
    const limit = Date.now() - WAITING_MS;
    while (this.waiting.length > 0 && this.waiting[0]!.since < limit) this.waiting.shift()!.socket.destroy();
  }
}
