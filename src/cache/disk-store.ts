/**
 * The disk store: one file per entry under `dir` (`dir/ab/<sha256 of key>.entry`), written to a
 * temporary file and renamed into place, so a crash never leaves a half-written entry. An in-memory
 * table (key → size, file, expiry, in LRU order) is rebuilt from the files' headers on start and every
 * entry found is reported to the index above (StoreIndex), so the cache survives a restart; the same
 * byte bound and LRU eviction as the memory store apply to the files' sizes. After a restart, recency is
 * approximated by the files' modification times.
 *
 * File format: "PCS1", a 4-byte big-endian length, that many bytes of JSON metadata (the
 * StoredResponse without its body), then the body.
 */
import { createHash } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CacheStore, StoreListener, StoreOptions, StoreStats } from './store.js';
import type { StoredResponse } from './stored-response.js';

const MAGIC = Buffer.from('PCS1');
const PREFIX_BYTES = 8;

interface IndexEntry {
  readonly key: string;
  readonly url: string;
  readonly tags: readonly string[];
  readonly expiresAt: number;
  readonly size: number;
  readonly file: string;
}

type Meta = Omit<StoredResponse, 'body'> & { readonly bodyLength: number };

export class DiskStore implements CacheStore {
  /** Insertion order is LRU order: the first entry is the least recently used. */
  private readonly index = new Map<string, IndexEntry>();
  private listener: StoreListener = { found() {}, lost() {} };
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly now: () => number;
  private readonly maxBytes: number;
  private readonly maxEntryBytes: number;
  private readonly timer: NodeJS.Timeout | null;
  private readonly loaded: Promise<void>;
  private bytes = 0;
  private evictions = 0;
  private tmpCounter = 0;

  constructor(
    private readonly dir: string,
    options: StoreOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.maxBytes = options.maxBytes;
    this.maxEntryBytes = Math.min(options.maxEntryBytes, options.maxBytes);
    this.loaded = this.load();
    // Operations report a failed load themselves; this only keeps it from being an unhandled rejection.
    this.loaded.catch(() => undefined);
    const interval = options.sweepIntervalMs ?? 60_000;
    this.timer = interval > 0 ? setInterval(() => void this.sweep().catch(() => undefined), interval) : null;
    this.timer?.unref();
  }

  /** The listener hears of every entry found on disk, whether read before this call or after. */
  listen(listener: StoreListener): void {
    this.listener = listener;
    for (const e of this.index.values()) listener.found(e);
  }

  /** Resolves once the table has been rebuilt from the files on disk. */
  ready(): Promise<void> {
    return this.loaded;
  }

  async get(key: string): Promise<StoredResponse | undefined> {
    await this.loaded;
    return this.read(key);
  }

  async set(entry: StoredResponse): Promise<boolean> {
    await this.loaded;
    return this.withLock(entry.key, async () => {
      const data = serialise(entry);
      if (data.length > this.maxEntryBytes) {
        await this.remove(entry.key);
        return false;
      }
      const file = this.fileFor(entry.key);
      const tmp = `${file}.${process.pid}.${++this.tmpCounter}.tmp`;
      await mkdir(join(file, '..'), { recursive: true });
      try {
        await writeFile(tmp, data);
        await rename(tmp, file);
      } catch (err) {
        await unlink(tmp).catch(() => undefined);
        throw err;
      }
      this.unindex(entry.key);
      this.addToIndex({ key: entry.key, url: entry.url, tags: entry.tags, expiresAt: entry.expiresAt, size: data.length, file });
      await this.evictOverflow();
      return true;
    });
  }

  async delete(key: string): Promise<boolean> {
    await this.loaded;
    return this.withLock(key, () => this.remove(key));
  }

  async sweep(): Promise<number> {
    await this.loaded;
    const now = this.now();
    const expired: string[] = [];
    for (const e of this.index.values()) if (e.expiresAt <= now) expired.push(e.key);
    let n = 0;
    for (const key of expired) if (await this.withLock(key, () => this.remove(key, true))) n++;
    return n;
  }

  stats(): StoreStats {
    return { entries: this.index.size, bytes: this.bytes, maxBytes: this.maxBytes, evictions: this.evictions };
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.loaded.catch(() => undefined);
    await Promise.allSettled([...this.locks.values()]);
  }

  // -------------------------------------------------------------------------------------------

  private fileFor(key: string): string {
    const hash = createHash('sha256').update(key).digest('hex');
    return join(this.dir, hash.slice(0, 2), `${hash}.entry`);
  }

  private async read(key: string): Promise<StoredResponse | undefined> {
    const e = this.index.get(key);
    if (e === undefined) return undefined;
    if (e.expiresAt <= this.now()) {
      await this.withLock(key, () => this.remove(key, true));
      return undefined;
    }
    let data: Buffer;
    try {
      data = await readFile(e.file);
    } catch {
      if (this.index.get(key) === e) this.unindex(key, true);
      return undefined;
    }
    const entry = deserialise(data);
    if (entry === null || entry.key !== key) {
      if (this.index.get(key) === e) this.unindex(key, true);
      await unlink(e.file).catch(() => undefined);
      return undefined;
    }
    // Mark as most recently used.
    if (this.index.get(key) === e) {
      this.index.delete(key);
      this.index.set(key, e);
    }
    return entry;
  }

  /** Deletes an entry's file; `lost` when it left on its own (expired) rather than by request. */
  private async remove(key: string, lost = false): Promise<boolean> {
    const e = this.index.get(key);
    if (e === undefined) return false;
    this.unindex(key, lost);
    await unlink(e.file).catch(() => undefined);
    return true;
  }

  private async evictOverflow(): Promise<void> {
    while (this.bytes > this.maxBytes && this.index.size > 0) {
      const oldest = this.index.values().next().value as IndexEntry;
      this.unindex(oldest.key, true);
      this.evictions++;
      await unlink(oldest.file).catch(() => undefined);
    }
  }

  /** Serialises operations on one key (a write and a delete must not interleave). */
  private withLock<T>(key: string, task: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(key) ?? Promise.resolve();
    const next = prev.then(task, task);
    const settled = next.catch(() => undefined);
    this.locks.set(key, settled);
    void settled.then(() => {
      if (this.locks.get(key) === settled) this.locks.delete(key);
    });
    return next;
  }

  private addToIndex(e: IndexEntry): void {
    this.index.set(e.key, e);
    this.bytes += e.size;
  }

  private unindex(key: string, lost = false): void {
    const e = this.index.get(key);
    if (e === undefined) return;
    this.index.delete(key);
    this.bytes -= e.size;
    if (lost) this.listener.lost(key);
  }

  private async load(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const found: { e: IndexEntry; mtime: number }[] = [];
    for (const sub of await readdir(this.dir, { withFileTypes: true })) {
      if (!sub.isDirectory()) continue;
      const subdir = join(this.dir, sub.name);
      for (const name of await readdir(subdir)) {
        const file = join(subdir, name);
        if (name.endsWith('.tmp')) {
          await unlink(file).catch(() => undefined);
          continue;
        }
        if (!name.endsWith('.entry')) continue;
        const loaded = await readIndexEntry(file);
        if (loaded === null) {
          await unlink(file).catch(() => undefined);
          continue;
        }
        found.push(loaded);
      }
    }
    found.sort((a, b) => a.mtime - b.mtime);
    const now = this.now();
    for (const { e } of found) {
      if (e.expiresAt <= now || this.index.has(e.key)) {
        await unlink(e.file).catch(() => undefined);
        continue;
      }
      this.addToIndex(e);
      this.listener.found(e);
    }
    await this.evictOverflow();
  }
}

function serialise(entry: StoredResponse): Buffer {
  const { body, ...rest } = entry;
  const meta = Buffer.from(JSON.stringify({ ...rest, bodyLength: body.length }));
  const prefix = Buffer.allocUnsafe(PREFIX_BYTES);
  MAGIC.copy(prefix, 0);
  prefix.writeUInt32BE(meta.length, 4);
  return Buffer.concat([prefix, meta, body]);
}

function deserialise(data: Buffer): StoredResponse | null {
  if (data.length < PREFIX_BYTES || !data.subarray(0, 4).equals(MAGIC)) return null;
  const metaLength = data.readUInt32BE(4);
  if (PREFIX_BYTES + metaLength > data.length) return null;
  let meta: Meta;
  try {
    meta = JSON.parse(data.toString('utf8', PREFIX_BYTES, PREFIX_BYTES + metaLength)) as Meta;
  } catch {
    return null;
  }
  const body = data.subarray(PREFIX_BYTES + metaLength);
  if (body.length !== meta.bodyLength) return null;
  const { bodyLength: _, ...rest } = meta;
  return { ...rest, body };
}

async function readIndexEntry(file: string): Promise<{ e: IndexEntry; mtime: number } | null> {
  let handle;
  try {
    handle = await open(file, 'r');
    const prefix = Buffer.alloc(PREFIX_BYTES);
    const { bytesRead } = await handle.read(prefix, 0, PREFIX_BYTES, 0);
    if (bytesRead < PREFIX_BYTES || !prefix.subarray(0, 4).equals(MAGIC)) return null;
    const metaLength = prefix.readUInt32BE(4);
    const metaBuf = Buffer.alloc(metaLength);
    const read = await handle.read(metaBuf, 0, metaLength, PREFIX_BYTES);
    if (read.bytesRead < metaLength) return null;
    const meta = JSON.parse(metaBuf.toString('utf8')) as Meta;
    const info = await stat(file);
    if (info.size !== PREFIX_BYTES + metaLength + meta.bodyLength) return null;
    return {
      e: { key: meta.key, url: meta.url, tags: meta.tags, expiresAt: meta.expiresAt, size: info.size, file },
      mtime: info.mtimeMs,
    };
  } catch {
    return null;
  } finally {
    await handle?.close();
  }
}
