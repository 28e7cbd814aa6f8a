/**
 * Log lines for a person at a terminal: one line per request (time, status, method, URL, cache
 * result, upstream, duration; coloured by status), and one line per event (`WARN backend down
 * pool=web backend=http://… reason="…"`). Rendered by pino-pretty's `messageFormat` with the object
 * hidden, in the main thread (a function cannot cross to pino's transport thread).
 */
import type { PrettyOptions } from 'pino-pretty';

type Colors = Record<'red' | 'green' | 'yellow' | 'cyan' | 'gray' | 'magenta' | 'bold' | 'dim', (s: string) => string>;
type Log = Record<string, unknown>;

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const HIDDEN = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'err']);

export function prettyOptions(colorize: boolean): PrettyOptions {
  return {
    colorize,
    sync: true,
    // Everything is in the message: pino-pretty's own time, level and object block stay out.
    ignore: 'pid,hostname,time,level',
    hideObject: true,
    customColors: 'message:reset',
    messageFormat: (log: Log, _key: string, _label: string, extras: { colors: Colors }) => formatLine(log, extras.colors),
  };
}

/** One terminal line for a log record (request lines in their own short form). */
function formatLine(log: Log, c: Colors): string {
  const time = c.dim(clock(typeof log.time === 'number' ? log.time : Date.now()));
  if (log.msg === 'request' && typeof log.status === 'number') return `${time} ${requestLine(log, c)}`;
  const level = typeof log.level === 'number' ? (LEVELS[log.level] ?? String(log.level)) : 'INFO';
  const paint = level === 'WARN' ? c.yellow : level === 'ERROR' || level === 'FATAL' ? c.red : level === 'INFO' ? c.green : c.gray;
  let line = `${time} ${paint(level.padEnd(5))} ${String(log.msg ?? '')}`;
  for (const [key, value] of Object.entries(log)) {
    if (HIDDEN.has(key) || value === undefined) continue;
    line += ` ${c.gray(`${key}=`)}${fieldValue(value)}`;
  }
  const err = log.err as { message?: string; stack?: string } | undefined;
  if (err) line += `\n${err.stack ?? err.message ?? String(err)}`;
  return line;
}

function requestLine(log: Log, c: Colors): string {
  const status = log.status as number;
  const paint = status >= 500 ? c.red : status === 499 ? c.gray : status >= 400 ? c.yellow : status >= 300 ? c.cyan : c.green;
  const parts = [paint(String(status)), String(log.method ?? ''), String(log.url ?? '')];
  if (log.method === 'CONNECT') {
    if (typeof log.up === 'number' || typeof log.down === 'number') parts.push(c.gray(`↑${bytes(Number(log.up ?? 0))} ↓${bytes(Number(log.down ?? 0))}`));
  } else if (typeof log.cache === 'string') {
    parts.push(log.cache === 'hit' ? c.green(log.cache) : c.magenta(log.cache));
  }
  if (typeof log.upstream === 'string') parts.push(c.gray(`→ ${log.upstream}`));
  parts.push(`${String(log.ms ?? '?')}ms`);
  if (typeof log.error === 'string') parts.push(c.red(log.error));
  if (log.complete === false) parts.push(c.red('(cut off)'));
  return parts.join(' ');
}

function clock(ms: number): string {
  const d = new Date(ms);
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

function fieldValue(value: unknown): string {
  if (typeof value === 'string') return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return JSON.stringify(value);
}

function bytes(n: number): string {
  if (n < 1024) return `${n}B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)}KiB`;
  return `${(n / 1024 ** 2).toFixed(1)}MiB`;
}
