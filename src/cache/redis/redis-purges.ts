/**
 * Purges through RedisTier: purgeUrl/purgePrefix/purgeTag delete from Redis, then PUBLISH the purge on
 * `<prefix>purge`. Every other RedisTier on that prefix calls its onPurge listeners, waits for them (a
 * listener may return a promise: e.g. the memory tier's deletion), and acknowledges on the purger's own
 * channel. The purging call resolves once every subscriber that PUBLISH reported has acknowledged
 * (this instance counts itself), or after `ackTimeoutMs`: then every other instance's local tier has
 * dropped the entries. An instance's own purges are not given to its own listeners: the engine purges
 * its local tier itself. `reachedAll` is false when the Redis deletion failed, the purge could not be
 * published (Redis down) or some instance did not acknowledge in time — the admin API says so.
 *
 * When the pub/sub connection comes back after it was lost, purges published meanwhile may have been
 * missed: the listeners then get `{ kind: 'all', value: '' }`, meaning "drop what the local tier holds".
 * Never rejects.
 */
import type { Logger } from '../../core/log.js';
import type { PurgeKind, PurgeListener, PurgeNotice, PurgeResult } from '../shared-tier.js';
import type { RedisKeys } from './redis-keys.js';
import type { RedisLink } from './redis-link.js';
import { PURGE_TAG_BATCH, PURGE_URL } from './scripts.js';

/** Members a tag purge takes per script call. */
const TAG_BATCH = 500;
const SCAN_COUNT = '1000';

interface PendingPurge {
  readonly acks: Set<string>;
  expected: number;
  readonly done: () => void;
}

export class RedisPurges {
  private readonly listeners: PurgeListener[] = [];
  private readonly pending = new Map<string, PendingPurge>();
  private seq = 0;
  sent = 0;
  received = 0;

  constructor(
    private readonly link: RedisLink,
    private readonly keys: RedisKeys,
    private readonly ackTimeoutMs: number,
    private readonly log: Logger,
  ) {}

  /** Deletes every variant of a URL, and tells every other instance. */
  async purgeUrl(url: string): Promise<PurgeResult> {
    if (!this.link.isUp()) return unreached(0);
    let deleted = 0;
    let ok = true;
    try {
      deleted = Number(await this.link.script(PURGE_URL, [this.keys.url(url)], [this.keys.recordPrefix]));
    } catch {
      ok = false;
    }
    return this.announce('url', url, deleted, ok);
  }

  /** Deletes every entry whose URL starts with `prefix` (SCAN over the URL sets, never KEYS). */
  async purgePrefix(prefix: string): Promise<PurgeResult> {
    if (!this.link.isUp()) return unreached(0);
    let deleted = 0;
    let ok = true;
    try {
      const match = globEscape(this.keys.url(prefix)) + '*';
      let cursor = '0';
      do {
        const reply = await this.link.call(['SCAN', cursor, 'MATCH', match, 'COUNT', SCAN_COUNT]);
        if (!Array.isArray(reply) || reply.length !== 2 || !Array.isArray(reply[1])) throw new Error('unexpected SCAN reply');
        cursor = String(reply[0]);
        const counts = await Promise.all(reply[1].map((key) => this.link.script(PURGE_URL, [key as Buffer], [this.keys.recordPrefix])));
        for (const n of counts) deleted += Number(n);
      } while (cursor !== '0');
    } catch {
      ok = false;
    }
    return this.announce('prefix', prefix, deleted, ok);
  }

  /** Deletes every entry carrying `tag`, in batches, and tells every other instance. */
  async purgeTag(tag: string): Promise<PurgeResult> {
    if (!this.link.isUp()) return unreached(0);
    let deleted = 0;
    let ok = true;
    try {
      for (;;) {
        const reply = await this.link.script(PURGE_TAG_BATCH, [this.keys.tag(tag)], [this.keys.recordPrefix, this.keys.urlPrefix, String(TAG_BATCH)]);
        if (!Array.isArray(reply)) throw new Error('unexpected purge reply');
        deleted += Number(reply[0]);
        if (Number(reply[1]) <= 0) break;
      }
    } catch {
      ok = false;
    }
    return this.announce('tag', tag, deleted, ok);
  }

  /** Listeners for purges made by other instances (and 'all' after an interrupted bus). Returns a remover. */
  onPurge(listener: PurgeListener): () => void {
    this.listeners.push(listener);
    return () => {
      const i = this.listeners.indexOf(listener);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  /** A message on the purge channel. */
  async announced(message: Buffer): Promise<void> {
    let m: { id?: unknown; from?: unknown; kind?: unknown; value?: unknown };
    try {
      m = JSON.parse(message.toString()) as typeof m;
    } catch {
      return;
    }
    if (typeof m.id !== 'string' || typeof m.from !== 'string' || typeof m.value !== 'string') return;
    if (m.kind !== 'url' && m.kind !== 'prefix' && m.kind !== 'tag') return;
    if (m.from === this.keys.instance) {
      // Our own purge: the engine purged its local tier itself; count ourselves as acknowledged.
      this.acknowledged(`${m.id} ${this.keys.instance}`);
      return;
    }
    this.received++;
    await this.deliver({ kind: m.kind, value: m.value });
    try {
      await this.link.call(['PUBLISH', this.keys.ackChannelOf(m.from), `${m.id} ${this.keys.instance}`]);
    } catch {
      // The purger's wait ends with its timeout and reports the purge as not acknowledged by all.
    }
  }

  /** A message on this instance's ack channel: "<purge id> <instance>". */
  acknowledged(message: string): void {
    const [id, from] = message.split(' ');
    const pending = id === undefined ? undefined : this.pending.get(id);
    if (pending === undefined || from === undefined) return;
    pending.acks.add(from);
    if (pending.expected >= 0 && pending.acks.size >= pending.expected) pending.done();
  }

  /** Runs the purge listeners, waiting for them (bounded by the ack timeout). */
  async deliver(notice: PurgeNotice): Promise<void> {
    if (this.listeners.length === 0) return;
    const runs = this.listeners.map((l) =>
      Promise.resolve()
        .then(() => l(notice))
        .catch((err: unknown) => this.log.warn({ err, notice }, 'redis cache tier: a purge listener failed')),
    );
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(runs), new Promise<void>((resolve) => (timer = setTimeout(resolve, this.ackTimeoutMs)))]);
    clearTimeout(timer);
  }

  /** Every purge waiting for acknowledgements stops waiting (the link went down, or the tier closes). */
  stopWaiting(): void {
    for (const p of this.pending.values()) p.done();
  }

  /** Publishes a purge and waits until every subscriber acknowledged it, or the ack timeout. */
  private async announce(kind: PurgeKind, value: string, deleted: number, deletedOk: boolean): Promise<PurgeResult> {
    if (!this.link.isUp()) return unreached(deleted);
    const id = `${this.keys.instance}.${++this.seq}`;
    let done!: () => void;
    const settled = new Promise<void>((resolve) => (done = resolve));
    const pending: PendingPurge = { acks: new Set(), expected: -1, done };
    this.pending.set(id, pending);
    const timer = setTimeout(done, this.ackTimeoutMs);
    try {
      const receivers = await this.link.call(['PUBLISH', this.keys.purgeChannel, JSON.stringify({ id, from: this.keys.instance, kind, value })]);
      this.sent++;
      pending.expected = Number(receivers);
      if (pending.acks.size >= pending.expected) done();
      await settled;
    } catch {
      return unreached(deleted);
    } finally {
      clearTimeout(timer);
      this.pending.delete(id);
    }
    const acknowledged = pending.acks.size;
    const reachedAll = deletedOk && acknowledged >= pending.expected;
    if (!reachedAll) {
      this.log.warn({ kind, value, instances: pending.expected, acknowledged, deletedOk }, 'redis cache tier: a purge may not have reached every instance');
    }
    return { deleted, instances: pending.expected, acknowledged, reachedAll };
  }
}

function unreached(deleted: number): PurgeResult {
  return { deleted, instances: 0, acknowledged: 0, reachedAll: false };
}

/** A literal for SCAN MATCH: glob metacharacters escaped. */
function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}
