/**
 * URLs whose last response could not be stored (Varnish calls this "hit-for-miss"). For a while,
 * requests for them go upstream at once instead of queueing behind one request for a response that
 * will not be stored anyway: request collapsing only pays off for what can be stored. Bounded (the
 * first URL marked goes first); a response that is stored clears the mark.
 */
export class UncacheableMemo {
  /** URL → until when (ms) requests for it are not collapsed. */
  private readonly until = new Map<string, number>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries: number,
    private readonly now: () => number,
  ) {}

  has(url: string): boolean {
    const until = this.until.get(url);
    if (until === undefined) return false;
    if (until > this.now()) return true;
    this.until.delete(url);
    return false;
  }

  mark(url: string): void {
    const until = this.now() + this.ttlMs;
    // A URL marked already keeps its place: set() on a present key changes the value in place, where
    // delete() + set() per request would make the Map rehash every few hundred requests (see the note
    // on the sessions in flight in src/pipeline/session.ts on what that costs the GC).
    if (!this.until.has(url) && this.until.size >= this.maxEntries) this.until.delete(this.until.keys().next().value!);
    this.until.set(url, until);
  }

  clear(url: string): void {
    this.until.delete(url);
  }
}
