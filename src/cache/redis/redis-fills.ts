/**
 * Request collapsing across instances, for RedisTier: the instance that wins
 * `SET <prefix>l:<key> token NX PX ttl` is the leader and fetches; the others wait for the leader's
 * release (a pub/sub message on `<prefix>fill`), with a poll of the lock every `pollMs` as a safety
 * net (a lost message, a leader that died: its lock expires), and give up after their own timeout.
 * release() deletes the lock only if it still holds this leader's token (a Lua compare-and-delete).
 * Never rejects: with Redis away every answer is 'unavailable', and the caller fetches by itself.
 */
import type { FillClaim, FillWait } from '../shared-tier.js';
import type { RedisKeys } from './redis-keys.js';
import type { RedisLink } from './redis-link.js';
import { RELEASE_FILL } from './scripts.js';

interface FillWaiter {
  readonly finish: (result: FillWait) => void;
}

export class RedisFills {
  private readonly waiters = new Map<string, Set<FillWaiter>>();
  /** Fill keys this instance leads, and its token on each lock. */
  private readonly held = new Map<string, string>();
  private seq = 0;
  led = 0;
  followed = 0;

  constructor(
    private readonly link: RedisLink,
    private readonly keys: RedisKeys,
    private readonly pollMs: number,
  ) {}

  /** Tries to become the one instance that fetches `key` (ttlMs bounds a leader that never releases). */
  async claim(key: string, ttlMs: number): Promise<FillClaim> {
    if (!this.link.isUp()) return 'unavailable';
    if (this.held.has(key)) return 'follower';
    const token = `${this.keys.instance}.${++this.seq}`;
    try {
      const reply = await this.link.call(['SET', this.keys.lock(key), token, 'NX', 'PX', String(Math.max(1, Math.ceil(ttlMs)))]);
      if (reply === null) {
        this.followed++;
        return 'follower';
      }
      this.held.set(key, token);
      this.led++;
      return 'leader';
    } catch {
      return 'unavailable';
    }
  }

  /** The leader is done with `key` (stored or not): deletes its lock if still held, wakes the followers. */
  async release(key: string): Promise<void> {
    const token = this.held.get(key);
    if (token === undefined) return;
    this.held.delete(key);
    if (!this.link.isUp()) return;
    try {
      await this.link.script(RELEASE_FILL, [this.keys.lock(key)], [token, this.keys.fillChannel, key]);
    } catch {
      // The lock expires by itself; followers poll for that.
    }
  }

  /** Waits until the leader of `key` released it (or its lock is gone), at most `timeoutMs`. */
  wait(key: string, timeoutMs: number): Promise<FillWait> {
    if (!this.link.isUp()) return Promise.resolve('unavailable');
    return new Promise<FillWait>((resolve) => {
      let finished = false;
      const lockKey = this.keys.lock(key);
      const check = (): void => {
        this.link.call(['EXISTS', lockKey]).then(
          (n) => {
            if (n === 0) waiter.finish('released');
          },
          () => undefined,
        );
      };
      const timer = setTimeout(() => waiter.finish('timeout'), timeoutMs);
      const poll = setInterval(check, this.pollMs);
      const waiter: FillWaiter = {
        finish: (result) => {
          if (finished) return;
          finished = true;
          clearTimeout(timer);
          clearInterval(poll);
          const set = this.waiters.get(key);
          set?.delete(waiter);
          if (set?.size === 0) this.waiters.delete(key);
          resolve(result);
        },
      };
      let set = this.waiters.get(key);
      if (set === undefined) this.waiters.set(key, (set = new Set()));
      set.add(waiter);
      // Registered first, then checked: a release between claim() and now is not missed.
      check();
    });
  }

  /** A leader's release message arrived on the fill channel. */
  released(key: string): void {
    this.wake(key, 'released');
  }

  /** The link went down: nothing more will come through it, and waiting on would only delay the callers. */
  wakeAll(result: FillWait): void {
    for (const key of [...this.waiters.keys()]) this.wake(key, result);
  }

  /** Releases every lock this instance leads and wakes every waiter. */
  async close(): Promise<void> {
    for (const key of [...this.held.keys()]) await this.release(key);
    this.wakeAll('unavailable');
  }

  private wake(key: string, result: FillWait): void {
    const set = this.waiters.get(key);
    if (set === undefined) return;
    for (const w of [...set]) w.finish(result);
  }
}
