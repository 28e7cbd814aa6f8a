/** Parsers for the human units used in config and flags: durations, byte sizes, listen addresses. */

const DURATION_UNITS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const SIZE_UNITS = { b: 1, k: 1024, kb: 1024, m: 1024 ** 2, mb: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3 } as const;

/** "500ms", "5s", "2m", "1h", "1d"; a bare number is seconds (as in nginx). Returns milliseconds or null. */
export function parseDuration(value: string | number): number | null {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? Math.round(value * 1000) : null;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/i.exec(value);
  if (!m) return null;
  const unit = (m[2] ?? 's').toLowerCase() as keyof typeof DURATION_UNITS;
  return Math.round(Number(m[1]) * DURATION_UNITS[unit]);
}

/** "256mb", "8m", "1gb", "512kb", "1000"; a bare number is bytes. Returns bytes or null. */
export function parseSize(value: string | number): number | null {
  if (typeof value === 'number') return Number.isInteger(value) && value >= 0 ? value : null;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(b|kb?|mb?|gb?)?\s*$/i.exec(value);
  if (!m) return null;
  const unit = (m[2] ?? 'b').toLowerCase() as keyof typeof SIZE_UNITS;
  return Math.floor(Number(m[1]) * SIZE_UNITS[unit]);
}

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

/** "8080", "127.0.0.1:8080", "[::1]:8080", ":8080". A missing host means all interfaces (or the given default). */
export function parseListenAddress(value: string | number, defaultHost = '0.0.0.0'): ListenAddress | null {
  const text = String(value).trim();
  let host = defaultHost;
  let portText = text;
  const v6 = /^\[([0-9a-fA-F:.]+)\]:(\d+)$/.exec(text);
  if (v6) {
    host = v6[1]!;
    portText = v6[2]!;
  } else if (text.includes(':')) {
    const idx = text.lastIndexOf(':');
    if (text.indexOf(':') !== idx) return null; // bare IPv6 without brackets is ambiguous
    host = text.slice(0, idx) || defaultHost;
    portText = text.slice(idx + 1);
  }
  if (!/^\d+$/.test(portText)) return null;
  const port = Number(portText);
  if (port > 65535) return null;
  return { host, port };
}

export function formatAddress(addr: ListenAddress): string {
  return addr.host.includes(':') ? `[${addr.host}]:${addr.port}` : `${addr.host}:${addr.port}`;
}

/** Bytes written back the way a person writes a size: `256mb`, `512kb`, `1gb`, or bytes. */
export function formatSize(bytes: number): string {
  for (const [unit, factor] of [['gb', 1024 ** 3], ['mb', 1024 ** 2], ['kb', 1024]] as const) {
    if (bytes >= factor && bytes % factor === 0) return `${bytes / factor}${unit}`;
  }
  return String(bytes);
}

/** Milliseconds written back the way a person writes a duration: `5s`, `2m`, `1h`, `1d`, `500ms`. */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  for (const [unit, factor] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    if (ms >= factor && ms % factor === 0) return `${ms / factor}${unit}`;
  }
  return `${ms}ms`;
}
