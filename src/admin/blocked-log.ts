/**
 * The forward proxy's recent blocked requests (a small ring, newest first) and a count per rule, for
 * the dashboard and /metrics. Lives as long as the process, so counts survive reloads.
 */
import type { BlockedRequest } from '../policy/rules.js';

export type { BlockedRequest };

export class BlockedLog {
  total = 0;
  readonly byRule = new Map<string, number>();
  private readonly ring: (BlockedRequest | undefined)[];
  private next = 0;

  constructor(readonly capacity = 50) {
    this.ring = new Array<BlockedRequest | undefined>(capacity).fill(undefined);
  }

  /** Records one blocked request (the forward proxy's onBlocked hook). */
  readonly record = (blocked: BlockedRequest): void => {
    this.ring[this.next] = blocked;
    this.next = (this.next + 1) % this.capacity;
    this.total++;
    this.byRule.set(blocked.rule, (this.byRule.get(blocked.rule) ?? 0) + 1);
  };

  /** The most recent blocked requests, newest first. */
  recent(limit = this.capacity): BlockedRequest[] {
    const out: BlockedRequest[] = [];
    for (let k = 1; k <= this.capacity && out.length < limit; k++) {
      const item = this.ring[(this.next - k + this.capacity) % this.capacity];
      if (item === undefined) break;
      out.push(item);
    }
    return out;
  }
}
