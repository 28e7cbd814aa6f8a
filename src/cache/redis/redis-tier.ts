/**
 * RedisTier: a second cache tier on a Redis or Valkey server, shared by every worker (`--workers N`)
 * and every Portico machine that points at it, behind each process's own memory (or disk) tier.
 *
 * Redis is a cache, never a dependency: no method ever rejects. While the server is away, slow or
 * full, reads are misses, writes are skipped, fills are 'unavailable', and each call answers within
 * about one command timeout (at once while the tier is known to be down).
 *
 *   const tier = new RedisTier({ url, keyPrefix: 'portico:reverse:', maxObjectBytes, log });
 *   redisUrlProblem(url)                  → why a URL is refused, or null (for the config schema)
 *   tier.state()                          → status 'connecting' | 'up' | 'down', since, lastError, bus, counters
 *   tier.onStateChange(listener)          → every change of status or bus; returns a remover
 *   await tier.variants(url)              → StoredResponse[] (verified; [] on miss, down, timeout, garbage)
 *   await tier.store(entry)               → true when written; false when skipped (too big, no life
 *                                           left, down, server full)
 *   await tier.delete(entry.key)          → drops one variant (e.g. a 304 made it unstorable); not announced
 *   await tier.purgeUrl(url)              → PurgeResult; likewise purgePrefix(prefix), purgeTag(tag)
 *   tier.onPurge(listener)                → purges made by OTHER instances (and { kind: 'all' }, below);
 *                                           returns a remover
 *   await tier.claimFill(key, ttlMs)      → 'leader' | 'follower' | 'unavailable'
 *   await tier.releaseFill(key)           → the leader is done (call after store())
 *   await tier.waitForFill(key, timeoutMs)→ 'released' | 'timeout' | 'unavailable' (follower: then read
 *                                           variants() again, and fetch itself on a miss)
 *   await tier.close()
 *
 * Layout in Redis (see scripts.ts): one string per variant holding its record (record-codec.ts: magic,
 * version, JSON head, body, CRC-32), a set per URL listing its variants, a set per tag; records expire
 * (expiry.ts) and the sets expire with their longest-lived member and are pruned of dead members (a
 * URL's set when it is read; a tag's set by sampling two members on each write to it, which keeps dead
 * members to about half of a busy tag's set at most). Records larger than `maxObjectBytes` are never
 * written: they stay in the local tier. A record re-stored with other tags stays listed under its
 * old tags until they expire, so purging an old tag may drop it too (more is purged, never less).
 *
 * Server requirements: a single Redis (tested with 7.0) or Valkey server, or a Sentinel-managed
 * primary; not Redis Cluster (the scripts reach keys they derive, and PUBLISH counts one node's
 * subscribers). The user needs EVAL/EVALSHA/SCRIPT LOAD, GET/SET/DEL/EXISTS, the set commands, SCAN,
 * PUBLISH/SUBSCRIBE, PING and CLIENT SETNAME (connections are named portico-<pid>-<instance>), on
 * `<prefix>*` keys and channels. `maxmemory-policy` volatile-lru (or allkeys-lru) suits it: every key
 * it writes has a TTL. For rediss:// with a private CA, start Node with NODE_EXTRA_CA_CERTS.
 *
 * Purges. purgeUrl/purgePrefix/purgeTag delete from Redis, then PUBLISH the purge on `<prefix>purge`.
 * Every other RedisTier on that prefix calls its onPurge listeners, waits for them (a listener may
 * return a promise: e.g. the memory tier's deletion), and acknowledges on the purger's own channel.
 * The purging call resolves once every subscriber that PUBLISH reported has acknowledged (this
 * instance counts itself), or after `purgeAckTimeoutMs`: then every other instance's local tier has
 * dropped the entries. An instance's own purges are not given to its own listeners: the engine purges
 * its local tier itself. `reachedAll` is false when the Redis deletion failed, the purge could not be
 * published (Redis down) or some instance did not acknowledge in time — the admin API should say so.
 *
 * When the pub/sub connection comes back after it was lost, purges published meanwhile may have been
 * missed: the listeners then get `{ kind: 'all', value: '' }`, meaning "drop what the local tier holds".
 *
 * Request collapsing across instances: the instance that wins `SET <prefix>l:<key> token NX PX ttl` is
 * the leader and fetches; the others wait for the leader's releaseFill (a pub/sub message on
 * `<prefix>fill`), with a poll of the lock every `fillPollMs` as a safety net (a lost message, a
 * leader that died: its lock expires), and give up after their own timeout. releaseFill deletes the
 * lock only if it still holds this leader's token (a Lua compare-and-delete).
 *
 * Client library: node-redis (`@redis/client`, v6). Measured against ioredis 6 on this machine, GET/SET
 * latency was the same within noise (p50 ≈ 45–50 µs for 1 KiB, ≈ 80–90 µs for 100 KiB, both clients);
 * node-redis is the one its maintainers actively develop (ioredis's README now recommends it for new
 * projects, and keeps ioredis on best-effort maintenance), it has no dependencies, and it has what this
 * tier needs built in: a per-command timeout that also covers commands already sent
 * (`rejectInFlight`), no offline queue (`disableOfflineQueue`), a capped command queue, a reconnect
 * strategy, Buffer replies by type mapping, automatic re-subscription after a reconnect, and
 * rediss:// (TLS) and /DB in the URL.
 *
 * Command timeout: 100 ms by default. A healthy server on a LAN answers a 100 KiB read in well under
 * 5 ms even at p99; the rest of the budget absorbs event-loop lag of a busy proxy, so a timeout means
 * the server is really sick — while it is small next to an origin fetch, so a sick Redis costs a
 * request at most ~0.1 s before it is counted as a miss (and three timeouts in a row open the breaker,
 * after which calls cost nothing until a probe succeeds). Purges wait longer only for the other
 * instances' acknowledgements (`purgeAckTimeoutMs`), never for a Redis that is down.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from '../../core/log.js';
import type { FillClaim, FillWait, PurgeKind, PurgeListener, PurgeNotice, PurgeResult, SharedTier, SharedTierState } from '../shared-tier.js';
import { primaryKeyOf, type InMemoryResponse, type StoredResponse } from '../stored-response.js';
import { DEFAULT_KEEP_REVALIDATABLE_MS, redisTtlMs } from './expiry.js';
import { decodeRecord, encodeRecord, type DecodeFailure } from './record-codec.js';
import { isOutOfMemory, RedisLink, redisUrlProblem, type Reply } from './redis-link.js';
import { DELETE_VARIANT, PURGE_TAG_BATCH, PURGE_URL, READ_VARIANTS, RELEASE_FILL, STORE } from './scripts.js';

export { redisUrlProblem };

export interface RedisTierOptions {
  /** redis://[user:pass@]HOST:PORT[/DB] or rediss:// (TLS). */
  readonly url: string;
  /** Prepended to every key and channel; default "portico:". One per front door: "portico:reverse:". */
  readonly keyPrefix?: string;
  /** Records (encoded: head + body + 12 bytes) larger than this are never written to Redis. */
  readonly maxObjectBytes: number;
  /** Bound on every Redis command (ms); default 100. */
  readonly commandTimeoutMs?: number;
  /** How long a purge waits for the other instances' acknowledgements (ms); default 1000. */
  readonly purgeAckTimeoutMs?: number;
  /** How long a stale response with a validator stays in Redis past its freshness (ms); default 1 h. */
  readonly keepRevalidatableMs?: number;
  /** Cap of the reconnect (and probe) backoff (ms); default 2000. */
  readonly reconnectMaxDelayMs?: number;
  /** How often a follower checks whether the fill lock is gone (ms); default 250. */
  readonly fillPollMs?: number;
  readonly log: Logger;
  /** Clock (ms since the epoch); Date.now by default. */
  readonly now?: () => number;
}

const DEFAULTS = {
  keyPrefix: 'portico:',
  commandTimeoutMs: 100,
  purgeAckTimeoutMs: 1_000,
  reconnectMaxDelayMs: 2_000,
  fillPollMs: 250,
} as const;

/** Members a tag purge takes per script call. */
const TAG_BATCH = 500;
const SCAN_COUNT = '1000';

interface PendingPurge {
  readonly acks: Set<string>;
  expected: number;
  readonly done: () => void;
}

interface FillWaiter {
  readonly finish: (result: FillWait) => void;
}

export class RedisTier implements SharedTier {
  private readonly link: RedisLink;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly maxObjectBytes: number;
  private readonly keepRevalidatableMs: number;
  private readonly purgeAckTimeoutMs: number;
  private readonly fillPollMs: number;
  private readonly instance = randomBytes(6).toString('hex');
  private readonly recordPrefix: string;
  private readonly urlPrefix: string;
  private readonly tagPrefix: string;
  private readonly lockPrefix: string;
  private readonly purgeChannel: string;
  private readonly fillChannel: string;
  private readonly ackPrefix: string;
  private readonly ackChannel: string;
  private readonly purgeListeners: PurgeListener[] = [];
  private readonly stateListeners: ((state: SharedTierState) => void)[] = [];
  private readonly pendingPurges = new Map<string, PendingPurge>();
  private readonly fillWaiters = new Map<string, Set<FillWaiter>>();
  /** Fill keys this instance leads, and its token on each lock. */
  private readonly heldFills = new Map<string, string>();
  private readonly loggedGarbage = new Set<string>();
  private purgeSeq = 0;
  private fillSeq = 0;
  private full = false;
  private closed = false;
  private reads = 0;
  private hits = 0;
  private writes = 0;
  private skipped = 0;
  private garbage = 0;
  private purgesSent = 0;
  private purgesReceived = 0;
  private fillsLed = 0;
  private fillsFollowed = 0;

  /** Throws only for a URL that redisUrlProblem() refuses (check it when the config is validated). */
  constructor(options: RedisTierOptions) {
    const problem = redisUrlProblem(options.url);
    if (problem !== null) throw new TypeError(`redis tier URL: ${problem}`);
    const prefix = options.keyPrefix ?? DEFAULTS.keyPrefix;
    this.log = options.log;
    this.now = options.now ?? Date.now;
    this.maxObjectBytes = options.maxObjectBytes;
    this.keepRevalidatableMs = options.keepRevalidatableMs ?? DEFAULT_KEEP_REVALIDATABLE_MS;
    this.purgeAckTimeoutMs = options.purgeAckTimeoutMs ?? DEFAULTS.purgeAckTimeoutMs;
    this.fillPollMs = options.fillPollMs ?? DEFAULTS.fillPollMs;
    this.recordPrefix = `${prefix}r:`;
    this.urlPrefix = `${prefix}u:`;
    this.tagPrefix = `${prefix}t:`;
    this.lockPrefix = `${prefix}l:`;
    this.purgeChannel = `${prefix}purge`;
    this.fillChannel = `${prefix}fill`;
    this.ackPrefix = `${prefix}ack:`;
    this.ackChannel = this.ackPrefix + this.instance;
    this.link = new RedisLink(
      {
        url: options.url,
        commandTimeoutMs: options.commandTimeoutMs ?? DEFAULTS.commandTimeoutMs,
        reconnectMaxDelayMs: options.reconnectMaxDelayMs ?? DEFAULTS.reconnectMaxDelayMs,
        log: options.log,
        now: this.now,
        clientName: `portico-${process.pid}-${this.instance}`,
      },
      [this.purgeChannel, this.fillChannel, this.ackChannel],
      this.onMessage,
    );
    this.link.onStatus((status) => {
      if (status !== 'up') {
        // Nothing more will come through a link that is down: waiting on would only delay the callers.
        this.wakeAllFillWaiters('unavailable');
        for (const p of this.pendingPurges.values()) p.done();
      }
      this.emitState();
    });
    this.link.onBus((_up, afterGap) => {
      if (afterGap) void this.deliver({ kind: 'all', value: '' });
      this.emitState();
    });
  }

  state(): SharedTierState {
    const link = this.link.snapshot();
    return {
      status: link.status,
      since: link.since,
      ...(link.lastError !== undefined ? { lastError: link.lastError } : {}),
      bus: this.link.isBusUp() ? 'up' : 'down',
      instance: this.instance,
      reads: this.reads,
      hits: this.hits,
      writes: this.writes,
      skipped: this.skipped,
      errors: this.link.errors,
      timeouts: this.link.timeouts,
      garbage: this.garbage,
      purgesSent: this.purgesSent,
      purgesReceived: this.purgesReceived,
      fillsLed: this.fillsLed,
      fillsFollowed: this.fillsFollowed,
    };
  }

  /** Told of every change of `status` or `bus`. Returns a function that removes the listener. */
  onStateChange(listener: (state: SharedTierState) => void): () => void {
    return addListener(this.stateListeners, listener);
  }

  private emitState(): void {
    if (this.stateListeners.length === 0) return;
    const state = this.state();
    for (const l of [...this.stateListeners]) l(state);
  }

  // ---------------------------------------------------------------------------------------------
  // Reading and writing

  /** Every usable stored variant of a URL (primary key), oldest first. Never rejects. */
  async variants(url: string): Promise<StoredResponse[]> {
    if (!this.link.isUp()) return [];
    this.reads++;
    let reply: Reply;
    try {
      reply = await this.link.script(READ_VARIANTS, [this.urlPrefix + url], [this.recordPrefix]);
    } catch {
      return [];
    }
    if (!Array.isArray(reply)) {
      this.noteGarbage('url-set-type', this.urlPrefix + url);
      return [];
    }
    const now = this.now();
    const out: StoredResponse[] = [];
    for (let i = 0; i + 1 < reply.length; i += 2) {
      const member = String(reply[i]);
      const value = reply[i + 1];
      if (!Buffer.isBuffer(value)) {
        this.noteGarbage('record-type', this.recordPrefix + member);
        continue;
      }
      const decoded = decodeRecord(value);
      if (!decoded.ok) {
        this.badRecord(decoded.reason, url, member);
        continue;
      }
      const entry = decoded.entry;
      if (entry.key !== member || entry.url !== url) {
        this.badRecord('key', url, member);
        continue;
      }
      if (entry.expiresAt > now) out.push(entry);
    }
    if (out.length === 0) return [];
    this.hits++;
    if (out.length > 1) out.sort((a, b) => a.info.responseTime - b.info.responseTime);
    return out;
  }

  /** Writes (or replaces) a variant. False when skipped: too big, no life left, down, full. Never rejects. */
  async store(entry: StoredResponse): Promise<boolean> {
    // Bodies kept in a disk store's files are large by definition: they stay local.
    if (!this.link.isUp() || !Buffer.isBuffer(entry.body) || entry.body.length > this.maxObjectBytes) return this.skip();
    const ttl = redisTtlMs(entry, this.now(), this.keepRevalidatableMs);
    if (ttl < 1) return this.skip();
    const record = encodeRecord(entry as InMemoryResponse);
    if (record.length > this.maxObjectBytes) return this.skip();
    const keys = [this.recordPrefix + entry.key, this.urlPrefix + entry.url];
    for (const tag of entry.tags) keys.push(this.tagPrefix + tag);
    try {
      await this.link.script(STORE, keys, [record, String(ttl), entry.key, this.recordPrefix]);
    } catch (err) {
      if (isOutOfMemory(err) && !this.full) {
        this.full = true;
        this.log.warn({ err: (err as Error).message }, 'redis cache tier is full: responses are not written to it');
      }
      return this.skip();
    }
    if (this.full) {
      this.full = false;
      this.log.info('redis cache tier accepts writes again');
    }
    this.writes++;
    return true;
  }

  /** Drops one variant (by its entry key) from Redis, without telling other instances. */
  async delete(key: string): Promise<boolean> {
    if (!this.link.isUp()) return false;
    const url = primaryKeyOf(key);
    try {
      return (await this.link.script(DELETE_VARIANT, [this.recordPrefix + key, this.urlPrefix + url], [key])) === 1;
    } catch {
      return false;
    }
  }

  private skip(): false {
    this.skipped++;
    return false;
  }

  // ---------------------------------------------------------------------------------------------
  // Purges

  /** Deletes every variant of a URL, and tells every other instance. Never rejects. */
  async purgeUrl(url: string): Promise<PurgeResult> {
    if (!this.link.isUp()) return unreached(0);
    let deleted = 0;
    let ok = true;
    try {
      deleted = Number(await this.link.script(PURGE_URL, [this.urlPrefix + url], [this.recordPrefix]));
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
      const match = globEscape(this.urlPrefix + prefix) + '*';
      let cursor = '0';
      do {
        const reply = await this.link.call(['SCAN', cursor, 'MATCH', match, 'COUNT', SCAN_COUNT]);
        if (!Array.isArray(reply) || reply.length !== 2 || !Array.isArray(reply[1])) throw new Error('unexpected SCAN reply');
        cursor = String(reply[0]);
        const counts = await Promise.all(reply[1].map((key) => this.link.script(PURGE_URL, [key as Buffer], [this.recordPrefix])));
        for (const n of counts) deleted += Number(n);
      } while (cursor !== '0');
    } catch {
      ok = false;
    }
    return this.announce('prefix', prefix, deleted, ok);
  }

  /** Deletes every entry carrying `tag`, in batches, and tells every other instance. Never rejects. */
  async purgeTag(tag: string): Promise<PurgeResult> {
    if (!this.link.isUp()) return unreached(0);
    let deleted = 0;
    let ok = true;
    try {
      for (;;) {
        const reply = await this.link.script(PURGE_TAG_BATCH, [this.tagPrefix + tag], [this.recordPrefix, this.urlPrefix, String(TAG_BATCH)]);
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
    return addListener(this.purgeListeners, listener);
  }

  /** Publishes a purge and waits until every subscriber acknowledged it, or the ack timeout. */
  private async announce(kind: PurgeKind, value: string, deleted: number, deletedOk: boolean): Promise<PurgeResult> {
    if (!this.link.isUp()) return unreached(deleted);
    const id = `${this.instance}.${++this.purgeSeq}`;
    let done!: () => void;
    const settled = new Promise<void>((resolve) => (done = resolve));
    const pending: PendingPurge = { acks: new Set(), expected: -1, done };
    this.pendingPurges.set(id, pending);
    const timer = setTimeout(done, this.purgeAckTimeoutMs);
    try {
      const receivers = await this.link.call(['PUBLISH', this.purgeChannel, JSON.stringify({ id, from: this.instance, kind, value })]);
      this.purgesSent++;
      pending.expected = Number(receivers);
      if (pending.acks.size >= pending.expected) done();
      await settled;
    } catch {
      return unreached(deleted);
    } finally {
      clearTimeout(timer);
      this.pendingPurges.delete(id);
    }
    const acknowledged = pending.acks.size;
    const reachedAll = deletedOk && acknowledged >= pending.expected;
    if (!reachedAll) {
      this.log.warn({ kind, value, instances: pending.expected, acknowledged, deletedOk }, 'redis cache tier: a purge may not have reached every instance');
    }
    return { deleted, instances: pending.expected, acknowledged, reachedAll };
  }

  private readonly onMessage = (channel: string, message: Buffer): void => {
    if (channel === this.fillChannel) {
      this.wakeFillWaiters(message.toString(), 'released');
    } else if (channel === this.ackChannel) {
      const [id, from] = message.toString().split(' ');
      const pending = id === undefined ? undefined : this.pendingPurges.get(id);
      if (pending !== undefined && from !== undefined) this.ack(pending, from);
    } else if (channel === this.purgeChannel) {
      void this.onPurgeMessage(message);
    }
  };

  private ack(pending: PendingPurge, from: string): void {
    pending.acks.add(from);
    if (pending.expected >= 0 && pending.acks.size >= pending.expected) pending.done();
  }

  private async onPurgeMessage(message: Buffer): Promise<void> {
    let m: { id?: unknown; from?: unknown; kind?: unknown; value?: unknown };
    try {
      m = JSON.parse(message.toString()) as typeof m;
    } catch {
      return;
    }
    if (typeof m.id !== 'string' || typeof m.from !== 'string' || typeof m.value !== 'string') return;
    if (m.kind !== 'url' && m.kind !== 'prefix' && m.kind !== 'tag') return;
    if (m.from === this.instance) {
      // Our own purge: the engine purged its local tier itself; count ourselves as acknowledged.
      const pending = this.pendingPurges.get(m.id);
      if (pending !== undefined) this.ack(pending, this.instance);
      return;
    }
    this.purgesReceived++;
    await this.deliver({ kind: m.kind, value: m.value });
    try {
      await this.link.call(['PUBLISH', this.ackPrefix + m.from, `${m.id} ${this.instance}`]);
    } catch {
      // The purger's wait ends with its timeout and reports the purge as not acknowledged by all.
    }
  }

  /** Runs the purge listeners, waiting for them (bounded by the ack timeout). */
  private async deliver(notice: PurgeNotice): Promise<void> {
    if (this.purgeListeners.length === 0) return;
    const runs = this.purgeListeners.map((l) =>
      Promise.resolve()
        .then(() => l(notice))
        .catch((err: unknown) => this.log.warn({ err, notice }, 'redis cache tier: a purge listener failed')),
    );
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(runs), new Promise<void>((resolve) => (timer = setTimeout(resolve, this.purgeAckTimeoutMs)))]);
    clearTimeout(timer);
  }

  // ---------------------------------------------------------------------------------------------
  // Request collapsing across instances

  /** Tries to become the one instance that fetches `key` (ttlMs bounds a leader that never releases). */
  async claimFill(key: string, ttlMs: number): Promise<FillClaim> {
    if (!this.link.isUp()) return 'unavailable';
    if (this.heldFills.has(key)) return 'follower';
    const token = `${this.instance}.${++this.fillSeq}`;
    try {
      const reply = await this.link.call(['SET', this.lockPrefix + key, token, 'NX', 'PX', String(Math.max(1, Math.ceil(ttlMs)))]);
      if (reply === null) {
        this.fillsFollowed++;
        return 'follower';
      }
      this.heldFills.set(key, token);
      this.fillsLed++;
      return 'leader';
    } catch {
      return 'unavailable';
    }
  }

  /** The leader is done with `key` (stored or not): deletes its lock if still held, wakes the followers. */
  async releaseFill(key: string): Promise<void> {
    const token = this.heldFills.get(key);
    if (token === undefined) return;
    this.heldFills.delete(key);
    if (!this.link.isUp()) return;
    try {
      await this.link.script(RELEASE_FILL, [this.lockPrefix + key], [token, this.fillChannel, key]);
    } catch {
      // The lock expires by itself; followers poll for that.
    }
  }

  /** Waits until the leader of `key` released it (or its lock is gone), at most `timeoutMs`. */
  waitForFill(key: string, timeoutMs: number): Promise<FillWait> {
    if (!this.link.isUp()) return Promise.resolve('unavailable');
    return new Promise<FillWait>((resolve) => {
      let finished = false;
      const lockKey = this.lockPrefix + key;
      const check = (): void => {
        this.link.call(['EXISTS', lockKey]).then(
          (n) => {
            if (n === 0) waiter.finish('released');
          },
          ignore,
        );
      };
      const timer = setTimeout(() => waiter.finish('timeout'), timeoutMs);
      const poll = setInterval(check, this.fillPollMs);
      const waiter: FillWaiter = {
        finish: (result) => {
          if (finished) return;
          finished = true;
          clearTimeout(timer);
          clearInterval(poll);
          const set = this.fillWaiters.get(key);
          set?.delete(waiter);
          if (set?.size === 0) this.fillWaiters.delete(key);
          resolve(result);
        },
      };
      let set = this.fillWaiters.get(key);
      if (set === undefined) this.fillWaiters.set(key, (set = new Set()));
      set.add(waiter);
      // Registered first, then checked: a release between claimFill and now is not missed.
      check();
    });
  }

  private wakeFillWaiters(key: string, result: FillWait): void {
    const set = this.fillWaiters.get(key);
    if (set === undefined) return;
    for (const w of [...set]) w.finish(result);
  }

  private wakeAllFillWaiters(result: FillWait): void {
    for (const key of [...this.fillWaiters.keys()]) this.wakeFillWaiters(key, result);
  }

  // ---------------------------------------------------------------------------------------------

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const key of [...this.heldFills.keys()]) await this.releaseFill(key);
    this.wakeAllFillWaiters('unavailable');
    for (const p of this.pendingPurges.values()) p.done();
    await this.link.close();
  }

  /** A record that is not one: deleted (unless written by another format version), logged once per kind. */
  private badRecord(reason: DecodeFailure | 'key', url: string, member: string): void {
    if (reason === 'version') return; // another Portico version's record: not ours to judge
    this.noteGarbage(`record-${reason}`, this.recordPrefix + member);
    void this.link.script(DELETE_VARIANT, [this.recordPrefix + member, this.urlPrefix + url], [member]).catch(ignore);
  }

  private noteGarbage(kind: string, key: string): void {
    this.garbage++;
    if (this.loggedGarbage.has(kind)) return;
    this.loggedGarbage.add(kind);
    this.log.warn({ kind, key }, 'redis cache tier: a value under our keys is not a valid record; deleted and treated as a miss (logged once per kind)');
  }
}

function addListener<T>(list: T[], listener: T): () => void {
  list.push(listener);
  return () => {
    const i = list.indexOf(listener);
    if (i >= 0) list.splice(i, 1);
  };
}

function unreached(deleted: number): PurgeResult {
  return { deleted, instances: 0, acknowledged: 0, reachedAll: false };
}

/** A literal for SCAN MATCH: glob metacharacters escaped. */
function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}

function ignore(): void {}
