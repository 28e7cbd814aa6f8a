/**
 * A clock a test moves forward instead of sleeping: the real time plus an offset that only `advance()`
 * changes. Portico reads it for cache freshness and expiry and for time-of-day rules
 * (`startPortico(config, { now: clock.now })`), and an origin started with it stamps its Date header
 * from it (`startOrigin(handler, { clock })`), so the age a cache computes (its response time minus
 * the origin's Date) is what it would be between two machines with synchronised clocks. Time still
 * flows, so timers, timeouts and the 1-second granularity of Date and Age behave as they always do.
 */
export class TestClock {
  private offset = 0;

  /** Milliseconds since the epoch, as Date.now() would say after the advances so far. */
  readonly now = (): number => Date.now() + this.offset;

  /** Moves the clock forward by `ms` (at once: nothing waits). */
  advance(ms: number): void {
    if (ms < 0) throw new RangeError('a clock only moves forward');
    this.offset += ms;
  }

  /** The current time as an HTTP date (IMF-fixdate), e.g. for a Date header. */
  httpDate(): string {
    return new Date(this.now()).toUTCString();
  }
}
