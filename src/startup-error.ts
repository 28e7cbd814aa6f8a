/**
 * How a start that fails says so on stderr, and the exit status it returns: a config problem names its
 * file, anything else shows its stack. Shared by the supervising and the serving process.
 */
import { ConfigError } from './config/errors.js';

/** Prints a start-up error: a config problem names its file (when it has none yet), anything else its stack. */
export function reportStartupError(err: unknown, source?: string): number {
  if (err instanceof ConfigError) {
    for (const line of err.problems) {
      const named = source === undefined || line.startsWith(`${source}: `) || line.startsWith('--') ? line : `${source}: ${line}`;
      process.stderr.write(`portico: ${named}\n`);
    }
    return 2;
  }
  process.stderr.write(`portico: ${(err as Error)?.stack ?? String(err)}\n`);
  return 1;
}
