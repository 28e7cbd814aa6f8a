/**
 * The contract between the reverse gateway and the load balancer.
 * The gateway asks a Pool for a backend, sends the request, and reports back how it went.
 */
import type { IncomingHttpHeaders } from 'node:http';

export const BALANCE_ALGORITHMS = [
  'round-robin',
  'weighted-round-robin',
  'least-connections',
  'ip-hash',
  'hash',
  'random',
  'least-time',
] as const;
export type BalanceAlgorithm = (typeof BALANCE_ALGORITHMS)[number];

/** What a picker may look at to choose a backend. Built once per request by the gateway. */
export interface BalanceRequest {
  readonly clientAddress: string;
  readonly headers: IncomingHttpHeaders;
  /** Path and query as received. */
  readonly url: string;
}

export interface ServerSpec {
  readonly url: string;
  readonly weight: number;
  /** 0 means unlimited. */
  readonly maxConns: number;
  readonly backup: boolean;
}

export interface HealthSpec {
  readonly path: string;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly rise: number;
  readonly fall: number;
  /** Expected status codes; empty means any 2xx or 3xx. */
  readonly expectStatus: readonly number[];
  /** Host header to send; default is the backend's host. */
  readonly host: string | undefined;
}

export interface PassiveSpec {
  readonly maxFails: number;
  readonly failTimeoutMs: number;
}

export interface PoolSpec {
  readonly name: string;
  readonly balance: BalanceAlgorithm;
  /** For `hash`: `header:NAME`, `cookie:NAME` or `uri`. */
  readonly hashKey: string | undefined;
  readonly retries: number;
  readonly servers: readonly ServerSpec[];
  readonly health: HealthSpec | undefined;
  readonly passive: PassiveSpec;
  readonly sticky: { readonly cookie: string } | undefined;
  readonly queue: { readonly size: number; readonly timeoutMs: number };
  /** Time over which a recovered backend ramps its weight back up; 0 disables slow start. */
  readonly slowStartMs: number;
}

/** How one attempt against a backend ended. */
export type AttemptOutcome =
  | 'ok' // a response came back (any status the gateway does not treat as a failure)
  | 'failure' // connect error, reset, timeout, or a body that broke off (not an HTTP error status)
  | 'retried'; // a pooled keep-alive connection closed under the request: sent again, counted neither way

/** What the dashboard and metrics read of one backend. */
export interface BackendSnapshot {
  readonly id: string;
  readonly url: string;
  readonly weight: number;
  readonly backup: boolean;
  readonly state: 'up' | 'down' | 'drained';
  /** Why it is down or drained (undefined while up). */
  readonly reason?: string | undefined;
  readonly inflight: number;
  readonly requests: number;
  readonly errors: number;
  readonly latencyEwmaMs: number;
}
