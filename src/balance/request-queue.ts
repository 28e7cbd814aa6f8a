/**
 * The bounded FIFO where requests wait while every usable backend is at `max_conns`. Overflow and
 * timeout reject with ProxyError('queue_full') and a Retry-After header.
 */
import { ProxyError } from '../core/errors.js';
import type { Backend } from './backend.js';
import type { BalanceRequest } from './types.js';

export interface QueueLimits {
  /** How many requests may wait; 0 rejects at once. */
  readonly size: number;
  /** How long one request may wait. */
  readonly timeoutMs: number;
}

/**
 * What the queue asks its owner for one waiting request: a backend to resolve it with, an error to
 * reject it with, or null to keep it waiting.
 */
export type ServeQueued = (req: BalanceRequest, tried: readonly Backend[] | null) => Backend | ProxyError | null;

interface Waiter {
  readonly req: BalanceRequest;
  readonly tried: readonly Backend[] | null;
  readonly resolve: (backend: Backend) => void;
  readonly reject: (err: unknown) => void;
  timer: NodeJS.Timeout | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

export class RequestQueue {
  private readonly limits: QueueLimits;
  private readonly pool: string;
  private readonly retryAfter: string;
  private readonly waiters: Waiter[] = [];

  constructor(limits: QueueLimits, pool: string) {
    this.limits = limits;
    this.pool = pool;
    this.retryAfter = String(Math.max(1, Math.ceil(limits.timeoutMs / 1000)));
  }

  get length(): number {
    return this.waiters.length;
  }

  /**
   * Queues a request until `serve` gives it a backend (see `serveWaiting`). Throws ProxyError('queue_full')
   * at once when the queue is full; the promise rejects with it on timeout, or with the signal's reason
   * when `signal` aborts (the client went away).
   */
  enqueue(req: BalanceRequest, tried: readonly Backend[] | null, signal?: AbortSignal): Promise<Backend> {
    if (this.waiters.length >= this.limits.size) {
      throw this.full(
        this.limits.size === 0
          ? `pool "${this.pool}": every backend is at max_conns`
          : `pool "${this.pool}": every backend is at max_conns and ${this.limits.size} requests are already waiting`,
      );
    }
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<Backend>((resolve, reject) => {
      const waiter: Waiter = { req, tried, resolve, reject, timer: undefined, signal, onAbort: undefined };
      waiter.timer = setTimeout(() => {
        this.remove(waiter);
        reject(this.full(`pool "${this.pool}": no backend became free within ${this.limits.timeoutMs}ms`));
      }, this.limits.timeoutMs);
      waiter.timer.unref();
      if (signal) {
        waiter.onAbort = () => {
          this.remove(waiter);
          reject(signal.reason);
        };
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.waiters.push(waiter);
    });
  }

  /**
   * Offers the waiting requests, oldest first, to `serve`. Stops at the first request that can use any
   * backend (tried: null) and still has to wait: nothing after it can be served either.
   */
  serveWaiting(serve: ServeQueued): void {
    for (let i = 0; i < this.waiters.length; ) {
      const waiter = this.waiters[i]!;
      const result = serve(waiter.req, waiter.tried);
      if (result === null) {
        if (waiter.tried === null) return;
        i++;
        continue;
      }
      this.settle(i, waiter);
      if (result instanceof ProxyError) waiter.reject(result);
      else waiter.resolve(result);
    }
  }

  /** Rejects every waiting request with `err`. */
  rejectAll(err: unknown): void {
    while (this.waiters.length > 0) {
      const waiter = this.waiters[0]!;
      this.settle(0, waiter);
      waiter.reject(err);
    }
  }

  private remove(waiter: Waiter): void {
    const i = this.waiters.indexOf(waiter);
    if (i >= 0) this.settle(i, waiter);
  }

  private settle(index: number, waiter: Waiter): void {
    this.waiters.splice(index, 1);
    clearTimeout(waiter.timer);
    if (waiter.signal && waiter.onAbort) waiter.signal.removeEventListener('abort', waiter.onAbort);
  }

  private full(message: string): ProxyError {
    return new ProxyError('queue_full', message, { headers: { 'retry-after': this.retryAfter } });
  }
}
