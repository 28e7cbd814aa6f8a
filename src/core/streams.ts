/** Owning streams: the one way to throw a body away. */
import type { Readable } from 'node:stream';

function ignore(): void {}

/**
 * Throws a body away: reads it to its end (so that a keep-alive connection can be reused) without
 * keeping anything, and owns its errors — a body that breaks off while it is being discarded is
 * nobody's business. Never call `resume()` on a body instead: a bare `resume()` leaves an 'error'
 * with no listener, which kills the process.
 */
export function discard(body: Readable | null | undefined): void {
  if (body === null || body === undefined || body.destroyed) return;
  body.on('error', ignore);
  body.resume();
}
