/** Builders for balance tests: specs, requests, backends, and pick counting. */
import { Backend } from '../../src/balance/backend.js';
import { HealthRegistry } from '../../src/balance/health-registry.js';
import type { Picker } from '../../src/balance/picker.js';
import type { BalanceRequest, PoolSpec, ServerSpec } from '../../src/balance/types.js';
import { silentLogger } from '../../src/core/log.js';

export function server(url: string, overrides: Partial<ServerSpec> = {}): ServerSpec {
  return { url, weight: 1, maxConns: 0, backup: false, ...overrides };
}

/** Servers http://10.0.0.1:3000 … http://10.0.0.N:3000. */
export function servers(count: number, overrides: Partial<ServerSpec> = {}): ServerSpec[] {
  return Array.from({ length: count }, (_, i) => server(`http://10.0.0.${i + 1}:3000`, overrides));
}

export function poolSpec(overrides: Partial<PoolSpec> = {}): PoolSpec {
  return {
    name: 'test',
    balance: 'round-robin',
    hashKey: undefined,
    retries: 2,
    servers: servers(3),
    health: undefined,
    passive: { maxFails: 0, failTimeoutMs: 10_000 },
    sticky: undefined,
    queue: { size: 0, timeoutMs: 1_000 },
    slowStartMs: 0,
    ...overrides,
  };
}

export function request(overrides: Partial<BalanceRequest> = {}): BalanceRequest {
  return { clientAddress: '127.0.0.1', headers: {}, url: '/', ...overrides };
}

export function makeBackends(specs: readonly ServerSpec[], registry = new HealthRegistry(), slowStartMs = 0): Backend[] {
  return specs.map((spec) => new Backend({ pool: 'test', spec, registry, log: silentLogger, slowStartMs }));
}

/** Marks a backend down (or up) as active health checks would. */
export function setActive(backend: Backend, up: boolean, now = Date.now()): void {
  backend.health.recordCheck(up, 'test', 1, 1, now, backend.reporter);
}

/** The port of a backend, as a short label: "10.0.0.2:3000" → "2". */
export function label(backend: Backend | null): string {
  if (backend === null) return 'none';
  return backend.url.hostname.split('.').pop() ?? '?';
}

/** Picks `count` times and returns the sequence of labels. */
export function pickSequence(picker: Picker, count: number, req: BalanceRequest = request()): string[] {
  const out: string[] = [];
  for (let i = 0; i < count; i++) out.push(label(picker.pick(req, null)));
  return out;
}

export function tally(labels: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const l of labels) counts[l] = (counts[l] ?? 0) + 1;
  return counts;
}

export function longestRun(labels: readonly string[]): number {
  let longest = 0;
  let run = 0;
  for (let i = 0; i < labels.length; i++) {
    run = i > 0 && labels[i] === labels[i - 1] ? run + 1 : 1;
    longest = Math.max(longest, run);
  }
  return longest;
}
