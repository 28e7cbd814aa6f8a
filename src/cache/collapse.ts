/**
 * Request collapsing: one upstream fetch per URL at a time. The request that fetches leads; the others
 * wait for it (up to a timeout) and then look in the store again. Across instances, the shared tier
 * adds a lock of its own (see Lookup); `releaseLeader` lets both go.
 */

export interface Leader {
  readonly promise: Promise<void>;
  readonly release: () => void;
  /**
   * Set when this request also leads the fill across instances (the shared tier's lock): called once
   * the shared tier has the response, or will not get it.
   */
  sharedRelease?: (() => void) | undefined;
}

export class Collapser {
  /** URL → the request currently fetching it (miss or revalidation). */
  private readonly inFlight = new Map<string, Leader>();

  constructor(readonly timeoutMs: number) {}

  /** The request fetching `url`, if any. */
  leaderOf(url: string): Leader | undefined {
    return this.inFlight.get(url);
  }

  /** Registers the caller as the request fetching `url` (if none is), so that others can wait for it. */
  lead(url: string): Leader | null {
    if (this.inFlight.has(url)) return null;
    let release!: () => void;
    const promise = new Promise<void>((resolve) => {
      release = resolve;
    });
    const leader: Leader = {
      promise,
      release: () => {
        if (this.inFlight.get(url) === leader) this.inFlight.delete(url);
        release();
      },
    };
    this.inFlight.set(url, leader);
    return leader;
  }

  /** Resolves when the leader is done, or after the timeout (the waiter then fetches by itself). */
  async waitFor(leader: Leader): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      leader.promise,
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, this.timeoutMs);
      }),
    ]);
    clearTimeout(timer);
  }

  /** Lets every waiter go (the cache is closing). */
  releaseAll(): void {
    for (const leader of this.inFlight.values()) leader.release();
    this.inFlight.clear();
  }
}

/**
 * The leader is done: local waiters look again at once; the other instances' waiters once the shared
 * tier's write (if any) has settled.
 */
export function releaseLeader(leader: Leader | null, sharedWrite?: Promise<unknown>): void {
  if (leader === null) return;
  leader.release();
  const shared = leader.sharedRelease;
  if (shared === undefined) return;
  leader.sharedRelease = undefined;
  if (sharedWrite === undefined) shared();
  else void sharedWrite.then(shared, shared);
}
