/** A pino logger that records every line, for asserting on state-change logs. */
import { pino } from 'pino';
import type { Logger } from '../../src/core/log.js';

export interface LogLine {
  readonly level: number;
  readonly msg: string;
  readonly pool?: string;
  readonly backend?: string;
  readonly reason?: string;
  readonly [field: string]: unknown;
}

export function recordingLogger(): { log: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as LogLine) });
  return { log, lines };
}
