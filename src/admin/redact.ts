/**
 * The running config as the admin API shows it: listen addresses written back as `host:port`, sizes
 * and durations as they were written (`256mb`, `5s`; defaults in the same units), and secrets replaced
 * (the admin token, proxy users' passwords, credentials in the upstream proxy and Redis URLs).
 */
import { writtenConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { formatAddress, formatDuration, formatSize } from '../config/units.js';

const REDACTED = '[redacted]';

/** Keys whose values are sizes (bytes in the Config) and durations (milliseconds). */
const SIZE_KEYS: ReadonlySet<string> = new Set([
  'max_size',
  'max_object_size',
  'max_url_length',
  'max_header_size',
  'max_body_size',
  'stream_window',
  'connection_window',
  'max_header_list_size',
]);
const DURATION_KEYS: ReadonlySet<string> = new Set([
  'connect',
  'response_header',
  'idle',
  'interval',
  'timeout',
  'fail_timeout',
  'slow_start',
  'heuristic_max',
  'tunnel_idle_timeout',
  'header_timeout',
  'request_timeout',
  'drain_timeout',
  'stats_interval',
  'command_timeout',
  'idle_timeout',
  'settings_timeout',
]);

export function redactedConfig(config: Config): unknown {
  const plain = toPlain(config, writtenConfig(config), '') as Record<string, unknown>;
  const admin = plain.admin as Record<string, unknown> | undefined;
  if (admin?.token !== undefined) admin.token = REDACTED;
  const forward = plain.forward as Record<string, unknown> | undefined;
  if (forward) {
    const auth = forward.auth as Record<string, unknown> | undefined;
    const users = auth?.users as Record<string, unknown> | undefined;
    if (users) for (const name of Object.keys(users)) users[name] = REDACTED;
    if (typeof forward.upstream_proxy === 'string') forward.upstream_proxy = withoutPassword(forward.upstream_proxy);
  }
  const redis = (plain.cache as Record<string, unknown> | undefined)?.redis as Record<string, unknown> | undefined;
  if (typeof redis?.url === 'string') redis.url = withoutPassword(redis.url);
  return plain;
}

/** `written` is the same place in the config as written (file + flags), when known. */
function toPlain(value: unknown, written: unknown, key: string): unknown {
  if (typeof value === 'number' && (SIZE_KEYS.has(key) || DURATION_KEYS.has(key))) {
    if (typeof written === 'string' || typeof written === 'number') return written;
    return SIZE_KEYS.has(key) ? formatSize(value) : formatDuration(value);
  }
  if (Array.isArray(value)) return value.map((v, i) => toPlain(v, Array.isArray(written) ? written[i] : undefined, ''));
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value);
    const v = value as Record<string, unknown>;
    if (keys.length === 2 && typeof v.host === 'string' && typeof v.port === 'number') return formatAddress({ host: v.host, port: v.port });
    const w = written !== null && typeof written === 'object' && !Array.isArray(written) ? (written as Record<string, unknown>) : {};
    const out: Record<string, unknown> = {};
    for (const k of keys) if (v[k] !== undefined) out[k] = toPlain(v[k], w[k], k);
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
