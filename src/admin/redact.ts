/**
 * The running config as the admin API shows it: listen addresses written back as `host:port`, and
 * secrets replaced (the admin token, proxy users' passwords, credentials in the upstream proxy URL).
 */
import type { Config } from '../config/schema.js';
import { formatAddress } from '../config/units.js';

export const REDACTED = '[redacted]';

export function redactedConfig(config: Config): unknown {
  const plain = toPlain(config) as Record<string, unknown>;
  const admin = plain.admin as Record<string, unknown> | undefined;
  if (admin?.token !== undefined) admin.token = REDACTED;
  const forward = plain.forward as Record<string, unknown> | undefined;
  if (forward) {
    const auth = forward.auth as Record<string, unknown> | undefined;
    const users = auth?.users as Record<string, unknown> | undefined;
    if (users) for (const name of Object.keys(users)) users[name] = REDACTED;
    if (typeof forward.upstream_proxy === 'string') forward.upstream_proxy = withoutPassword(forward.upstream_proxy);
  }
  return plain;
}

function toPlain(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(toPlain);
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value);
    const v = value as Record<string, unknown>;
    if (keys.length === 2 && typeof v.host === 'string' && typeof v.port === 'number') return formatAddress({ host: v.host, port: v.port });
    const out: Record<string, unknown> = {};
    for (const key of keys) if (v[key] !== undefined) out[key] = toPlain(v[key]);
    return out;
  }
  return value;
}

function withoutPassword(url: string): string {
  try {
    const u = new URL(url);
    if (u.password === '') return url;
    u.password = 'redacted';
    return u.href;
  } catch {
    return REDACTED;
  }
}
