/**
 * Logging: one pino logger for the process. JSON lines on stdout; on a terminal, one short coloured
 * line per request and per event (src/core/log-pretty.ts). A broken stdout (the reader went away:
 * EPIPE; the terminal closed: EIO) never stops the process: logging just stops.
 */
import { pino, type DestinationStream, type Logger as PinoLogger, type LevelWithSilent } from 'pino';
import { prettyFactory } from 'pino-pretty';
import { prettyOptions } from './log-pretty.js';

export type Logger = PinoLogger;
export type LogLevel = LevelWithSilent;
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export function createLogger(level: LogLevel, pretty = process.stdout.isTTY === true): Logger {
  if (pretty) {
    const out = pino.destination({ fd: 1, sync: true });
    ignoreBrokenOutput(out);
    const prettify = prettyFactory(prettyOptions(process.env.NO_COLOR === undefined));
    const stream: DestinationStream = {
      write(line: string) {
        out.write(prettify(line));
      },
    };
    return pino({ level }, stream);
  }
  const logger = pino({ level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime });
  ignoreBrokenOutput((logger as unknown as Record<symbol, NodeJS.EventEmitter>)[pino.symbols.streamSym]!);
  return logger;
}

/** Output errors that mean "nobody reads this any more". */
const BROKEN_OUTPUT: ReadonlySet<string> = new Set(['EPIPE', 'EIO', 'ECONNRESET', 'ENXIO', 'EBADF']);

/**
 * Makes writes to a stream whose reader is gone harmless: such an error disables the stream's writes
 * instead of being thrown as an uncaught 'error' event. Other errors are left to other listeners.
 */
export function ignoreBrokenOutput(stream: NodeJS.EventEmitter & { write?: unknown }): void {
  const s = stream as unknown as Record<string, unknown>;
  const disable = () => {
    s.write = () => true;
    s.flushSync = () => undefined;
  };
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (BROKEN_OUTPUT.has(err.code ?? '')) disable();
  });
  // pino flushes synchronously as the process exits, possibly before the failed write's 'error' event
  // has come: a broken output found there drops the last lines instead of throwing from the exit
  // (sonic-boom retried it every 100 ms for ever; see patches/sonic-boom+4.2.1.patch).
  const flushSync = s.flushSync;
  if (typeof flushSync === 'function') {
    s.flushSync = () => {
      try {
        flushSync.call(stream);
      } catch (err) {
        if (!BROKEN_OUTPUT.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
        disable();
      }
    };
  }
}

/** A logger that drops everything: for tests and embedding. */
export const silentLogger: Logger = pino({ level: 'silent' });
