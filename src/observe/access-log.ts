/**
 * The access log: one line per request (and per CONNECT tunnel), in the chosen format, to the chosen
 * sink. The front doors hand it one plain AccessRecord when a response is done; nothing else writes
 * request lines.
 *
 * Sinks:
 * - the process logger (default): a JSON line `{"msg":"request",…}` on stdout, or on a terminal the
 *   coloured one-liner of src/core/log-pretty.ts;
 * - `log.access.file`: appended to that file, reopened on SIGUSR1 (logrotate's `postrotate` convention,
 *   as nginx does), in `log.access.format` — `json` or `combined` (Apache/nginx combined log format
 *   with the cache result added at the end).
 *
 * The access log travels with the logger the doors are given: attachAccessLog() puts it on a logger,
 * and every child logger (pino children inherit from their parent) finds it there. A logger without
 * one writes JSON through itself, as before.
 */
import { pino, type DestinationStream } from 'pino';
import type { Logger } from '../core/log.js';

export type AccessFormat = 'json' | 'combined';

/** One finished request or tunnel, as the access log writes it. */
export interface AccessRecord {
  readonly door: 'reverse' | 'forward';
  readonly client: string;
  readonly method: string;
  readonly url: string;
  readonly status: number;
  /** The cache result, in the vocabulary of cacheResultOf() (src/observe/cache-result.ts). */
  readonly cache?: string | undefined;
  /** The backend or origin (or upstream proxy) that answered. */
  readonly upstream?: string | undefined;
  /** Bytes sent to the client. */
  readonly bytes?: number | undefined;
  readonly ms: number;
  /** The error code when the request failed or was refused (`connection_refused`, `forbidden`, …). */
  readonly error?: string | undefined;
  /** False when the response was cut off. */
  readonly complete?: boolean | undefined;
  /** Tunnels: bytes client → target and target → client. */
  readonly up?: number | undefined;
  readonly down?: number | undefined;
  /** For the combined format. */
  readonly httpVersion?: string | undefined;
  readonly user?: string | undefined;
  readonly referer?: string | undefined;
  readonly userAgent?: string | undefined;
}

export interface AccessLog {
  write(record: AccessRecord): void;
  /** Reopens the file (after logrotate moved it); a no-op for other sinks. */
  reopen(): void;
  /** Flushes and closes what it opened. */
  close(): void;
}

const ACCESS_LOG = Symbol.for('portico.accessLog');

/** Puts `access` on `logger`: the doors built with this logger (or a child of it) write to it. */
export function attachAccessLog(logger: Logger, access: AccessLog): void {
  (logger as unknown as Record<symbol, AccessLog>)[ACCESS_LOG] = access;
}

/**
 * Whether a request line written with `logger` goes anywhere: to its access log, or through the
 * logger at info. The doors ask first, so that a quiet logger costs no record per request.
 */
export function accessLogged(logger: Logger): boolean {
  return (logger as unknown as Record<symbol, AccessLog | undefined>)[ACCESS_LOG] !== undefined || logger.isLevelEnabled('info');
}

/** Hands one finished request to the access log that travels with `logger`. */
export function writeAccess(logger: Logger, record: AccessRecord): void {
  const access = (logger as unknown as Record<symbol, AccessLog | undefined>)[ACCESS_LOG];
  if (access !== undefined) access.write(record);
  else if (logger.isLevelEnabled('info')) logger.info(jsonFields(record), 'request');
}

/** The fields of a JSON access line (the documented names; absent values are left out by pino). */
function jsonFields(r: AccessRecord): Record<string, unknown> {
  return {
    door: r.door,
    client: r.client,
    method: r.method,
    url: r.url,
    status: r.status,
    cache: r.cache,
    upstream: r.upstream,
    bytes: r.bytes,
    error: r.error,
    complete: r.complete,
    up: r.up,
    down: r.down,
    ms: r.ms,
    protocol: r.httpVersion === undefined ? undefined : `HTTP/${r.httpVersion}`,
  };
}

export interface AccessLogOptions {
  readonly file?: string | undefined;
  readonly format: AccessFormat;
  /** Leave the client address out (log.anonymize). */
  readonly anonymize: boolean;
}

/**
 * The access log for `options`, or null when the process logger is the sink (no file, JSON format):
 * then lines go through the logger as they always did.
 */
export function createAccessLog(options: AccessLogOptions, logger: Logger): AccessLog | null {
  if (options.file === undefined && options.format === 'json') return null;
  const destination = options.file === undefined ? pino.destination({ fd: 1, sync: false }) : pino.destination({ dest: options.file, append: true, sync: false });
  const reported = new Set<string>();
  destination.on('error', (err: NodeJS.ErrnoException) => {
    // A full disk or a broken pipe must not stop the proxy: report once per kind, keep serving.
    if (reported.has(err.code ?? '')) return;
    reported.add(err.code ?? '');
    if (options.file !== undefined) logger.error({ err, file: options.file }, 'access log write failed');
  });
  return options.format === 'combined' ? new CombinedAccessLog(destination, options.anonymize) : new JsonFileAccessLog(destination, options.anonymize);
}

type Destination = DestinationStream & { reopen(file?: string): void; end(): void; flushSync(): void };

class JsonFileAccessLog implements AccessLog {
  private readonly logger: Logger;

  constructor(
    private readonly destination: Destination,
    anonymize: boolean,
  ) {
    this.logger = pino(
      { base: undefined, timestamp: pino.stdTimeFunctions.isoTime, ...(anonymize ? { redact: { paths: ['client'], remove: true } } : {}) },
      destination,
    );
  }

  write(record: AccessRecord): void {
    this.logger.info(jsonFields(record), 'request');
  }

  reopen(): void {
    this.destination.reopen();
  }

  close(): void {
    closeDestination(this.destination);
  }
}

/**
 * The combined log format (`%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i"`) that every log
 * tool reads, with the cache result, the upstream and the time taken added as three more fields:
 * `… "curl/8.5.0" hit 10.0.0.5:3000 12`.
 */
class CombinedAccessLog implements AccessLog {
  constructor(
    private readonly destination: Destination,
    private readonly anonymize: boolean,
  ) {}

  write(r: AccessRecord): void {
    this.destination.write(`${combinedLine(r, this.anonymize, new Date())}\n`);
  }

  reopen(): void {
    this.destination.reopen();
  }

  close(): void {
    closeDestination(this.destination);
  }
}

function closeDestination(destination: Destination): void {
  try {
    destination.flushSync();
  } catch {
    // Not open yet, or already broken: nothing to flush.
  }
  destination.end();
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'] as const;

/** `10/Oct/2026:13:55:36 +0200`, local time as Apache writes it. */
function clfTime(d: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  const offset = -d.getTimezoneOffset();
  const sign = offset >= 0 ? '+' : '-';
  const abs = Math.abs(offset);
  return `${pad(d.getDate())}/${MONTHS[d.getMonth()]}/${d.getFullYear()}:${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())} ${sign}${pad(Math.floor(abs / 60))}${pad(abs % 60)}`;
}

function combinedLine(r: AccessRecord, anonymize: boolean, at: Date): string {
  const host = anonymize || r.client === '' ? '-' : r.client;
  const user = r.user ? token(r.user) : '-';
  const request = `${r.method} ${r.url} HTTP/${r.httpVersion ?? '1.1'}`;
  const bytes = r.method === 'CONNECT' ? (r.down ?? 0) : (r.bytes ?? 0);
  return `${host} - ${user} [${clfTime(at)}] "${quoted(request)}" ${r.status} ${bytes > 0 ? bytes : '-'} "${quoted(r.referer ?? '-')}" "${quoted(r.userAgent ?? '-')}" ${r.cache ?? '-'} ${r.upstream ? token(r.upstream) : '-'} ${r.ms}`;
}

/** Inside "…": escape quotes, backslashes and control characters as Apache does. */
function quoted(text: string): string {
  return text.replace(/[\\"\x00-\x1f\x7f]/g, (c) => (c === '"' ? '\\"' : c === '\\' ? '\\\\' : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`));
}

/** A bare field: no spaces. */
function token(text: string): string {
  return quoted(text).replace(/\s/g, '_');
}
