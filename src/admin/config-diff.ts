/**
 * What a reload changed, in words an operator reads: `pools.api: added`, `pools.app.servers: changed`,
 * `forward.rules: changed`. Listen addresses and the cache store are bound at start: a change to them
 * (and the number of worker processes) is reported as needing a restart. `reverse.tls` is not: a reload
 * swaps the certificate, key, ciphers and minimum version of the running TLS listener (Listeners.apply).
 */
import type { Config } from '../config/schema.js';
import type { ReloadOutcome } from './sources.js';

/** Keys whose new value only takes effect after a restart. */
const RESTART_KEYS = ['workers', 'reverse.listen', 'reverse.tls_listen', 'reverse.http2.enabled', 'reverse.h2c', 'forward.listen', 'admin.listen', 'cache', 'log.access'] as const;

export function diffConfig(before: Config, after: Config): ReloadOutcome {
  const changes: string[] = [];
  const restartNeeded: string[] = [];
  const a = before as unknown as Record<string, unknown>;
  const b = after as unknown as Record<string, unknown>;
  for (const section of union(Object.keys(a), Object.keys(b))) {
    const x = a[section];
    const y = b[section];
    if (same(x, y)) continue;
    if (x === undefined) changes.push(`${section}: added`);
    else if (y === undefined) changes.push(`${section}: removed`);
    else if (isRecord(x) && isRecord(y)) {
      // One level deeper: pools.<name>, reverse.routes, forward.rules, ...
      for (const key of union(Object.keys(x), Object.keys(y))) {
        if (same(x[key], y[key])) continue;
        const path = `${section}.${key}`;
        if (section === 'pools' && isRecord(x[key]) && isRecord(y[key])) {
          const px = x[key];
          const py = y[key];
          for (const field of union(Object.keys(px), Object.keys(py))) if (!same(px[field], py[field])) changes.push(`${path}.${field}: changed`);
        } else {
          changes.push(`${path}: ${x[key] === undefined ? 'added' : y[key] === undefined ? 'removed' : 'changed'}`);
        }
      }
    } else changes.push(`${section}: changed`);
  }
  for (const key of RESTART_KEYS) if (!same(pick(a, key), pick(b, key))) restartNeeded.push(key);
  return { changes, restartNeeded };
}

function pick(root: Record<string, unknown>, path: string): unknown {
  let v: unknown = root;
  for (const part of path.split('.')) v = isRecord(v) ? v[part] : undefined;
  return v;
}

function union(a: readonly string[], b: readonly string[]): string[] {
  return [...new Set([...a, ...b])];
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function same(x: unknown, y: unknown): boolean {
  return JSON.stringify(x) === JSON.stringify(y);
}
