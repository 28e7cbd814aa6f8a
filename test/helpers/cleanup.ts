/** What a test file opens (origins, proxies, child processes), closed after each test, newest first. */
import { afterEach } from 'vitest';
import { startOrigin, type Origin, type OriginHandler } from './origin.js';

export interface Cleanup {
  push(close: () => Promise<void>): void;
  /** An origin server that is closed after the test. */
  origin(handler?: OriginHandler): Promise<Origin>;
}

/** Call once at the top of a test file. */
export function cleanupAfterEach(): Cleanup {
  const pending: Array<() => Promise<void>> = [];
  afterEach(async () => {
    while (pending.length) await pending.pop()!();
  });
  return {
    push: (close) => void pending.push(close),
    async origin(handler) {
      const o = await startOrigin(handler);
      pending.push(() => o.close());
      return o;
    },
  };
}
