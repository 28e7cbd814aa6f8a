/**
 * The disk store: two files per entry under `dir` — `dir/ab/<sha256 of key>.meta` (the stored response
 * without its body, as JSON) and `…body` (the body's bytes) — each written to a temporary file and
 * renamed into place, body first, so a crash never leaves a half-written entry (a body without its
 * meta is removed at start). A body is written as it arrives (openWrite): a gigabyte download is never
 * held in memory. Bodies up to SMALL_BODY are read into memory on a hit; larger ones are streamed from
 * their file (FileBody), whole or by ranges. Freshening an entry (a 304) rewrites only its meta.
 *
 * An in-memory table (key → size, files, expiry, in LRU order) is rebuilt from the meta files on start
 * and every entry found is reported to the index above (StoreIndex), so the cache survives a restart;
 * the same byte bound and LRU eviction as the memory store apply to the files' sizes. After a restart,
 * recency is approximated by the files' modification times.
 */
import { createHash } from 'node:crypto';
import { createWriteStream, mkdirSync, rmSync, type WriteStream } from 'node:fs';
import { mkdir, readdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CacheStore, StoreListener, StoreOptions, StoreStats } from './store.js';
import type { BodyWriter, FileBody, StoredBody, StoredResponse } from './stored-response.js';

/** Bodies up to this size are read into memory on a hit; larger ones are streamed from their file. */
const SMALL_BODY = 64 * 1024;
const META = '.meta';
const BODY = '.body';
const FORMAT = 2;

interface IndexEntry {
  readonly key: string;
  readonly url: string;
  readonly tags: readonly string[];
  readonly expiresAt: number;
  /** Bytes on disk: meta and body. */
  readonly size: number;
  /** The path of the entry's files without the extension. */
  readonly base: string;
}

type Meta = Omit<StoredResponse, 'body'> & { readonly format: number; readonly bodyLength: number };

export class DiskStore implements CacheStore {
  /** Insertion order is LRU order: the first entry is the least recently used. */
  private readonly index = new Map<string, IndexEntry>();
  private listener: StoreListener = { found() {}, lost() {} };
  private readonly locks = new Map<string, Promise<unknown>>();
  /** Streaming writes not yet committed: their temporary files. */
  private readonly writers = new Set<DiskBodyWriter>();
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
    // Streaming writes go to dir/tmp until they are committed: emptied (a crash's leftovers) and made
    // before the first one.
    rmSync(join(dir, 'tmp'), { recursive: true, force: true });
    mkdirSync(join(dir, 'tmp'), { recursive: true });
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
    const e = this.index.get(key);
    if (e === undefined) return undefined;
    if (e.expiresAt <= this.now()) {
      await this.withLock(key, () => this.remove(key, true));
      return undefined;
    }
    const entry = await this.read(e);
    if (entry === null) {
      if (this.index.get(key) === e) {
        this.unindex(key, true);
        await unlinkEntry(e.base);
      }
      return undefined;
    }
    // Mark as most recently used.
    if (this.index.get(key) === e) {
      this.index.delete(key);
      this.index.set(key, e);
    }
    return entry;
  }

  openWrite(): BodyWriter {
    const writer = new DiskBodyWriter(this.tmpName(join(this.dir, 'tmp', 'body')), this.maxEntryBytes, (w) => this.writers.delete(w));
    this.writers.add(writer);
    return writer;
  }

  async set(entry: StoredResponse): Promise<boolean> {
    await this.loaded;
    const body = entry.body;
    if (body.length + 2048 > this.maxEntryBytes) {
      if (isWriter(body)) body.abort();
      await this.delete(entry.key);
      return false;
    }
    return this.withLock(entry.key, async () => {
      const base = this.baseFor(entry.key);
      await mkdir(join(base, '..'), { recursive: true });
      const meta = Buffer.from(JSON.stringify(metaOf(entry, body.length)));
      // The body first: a meta file always names a complete body.
      if (Buffer.isBuffer(body)) await writeAtomically(base + BODY, body, this.tmpName(base));
      else if (isWriter(body)) {
        if (!(body instanceof DiskBodyWriter) || !(await body.commit(base + BODY))) return false;
      } else if (body.path !== base + BODY) {
        return false; // a file body belongs to the entry it came from (a freshened entry keeps its file)
      }
      await writeAtomically(base + META, meta, this.tmpName(base));
      this.unindex(entry.key);
      this.addToIndex({ key: entry.key, url: entry.url, tags: entry.tags, expiresAt: entry.expiresAt, size: meta.length + body.length, base });
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
    for (const writer of this.writers) writer.abort();
    await this.loaded.catch(() => undefined);
    await Promise.allSettled([...this.locks.values()]);
  }

  // -------------------------------------------------------------------------------------------

  private baseFor(key: string): string {
    const hash = createHash('sha256').update(key).digest('hex');
    return join(this.dir, hash.slice(0, 2), hash);
  }

  private tmpName(base: string): string {
    return `${base}.${process.pid}.${++this.tmpCounter}.tmp`;
  }

  /** The stored response from its files (body in memory when small), or null when they are unusable. */
  private async read(e: IndexEntry): Promise<StoredResponse | null> {
    let meta: Meta;
    try {
      meta = JSON.parse(await readFile(e.base + META, 'utf8')) as Meta;
    } catch {
      return null;
    }
    if (meta.format !== FORMAT || meta.key !== e.key) return null;
    let body: StoredBody;
    if (meta.bodyLength <= SMALL_BODY) {
      try {
        body = await readFile(e.base + BODY);
      } catch {
        return null;
      }
      if (body.length !== meta.bodyLength) return null;
    } else {
      body = { kind: 'file', path: e.base + BODY, length: meta.bodyLength } satisfies FileBody;
    }
    const { format: _format, bodyLength: _length, ...rest } = meta;
    return { ...rest, body };
  }

  /** Deletes an entry's files; `lost` when it left on its own (expired) rather than by request. */
  private async remove(key: string, lost = false): Promise<boolean> {
    const e = this.index.get(key);
    if (e === undefined) return false;
    this.unindex(key, lost);
    await unlinkEntry(e.base);
    return true;
  }

  private async evictOverflow(): Promise<void> {
    while (this.bytes > this.maxBytes && this.index.size > 0) {
      const oldest = this.index.values().next().value as IndexEntry;
      this.unindex(oldest.key, true);
      this.evictions++;
      await unlinkEntry(oldest.base);
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

  /** Rebuilds the table from the meta files; removes temporary files, orphans and unreadable entries. */
  private async load(): Promise<void> {
    const found: { e: IndexEntry; mtime: number }[] = [];
    for (const sub of await readdir(this.dir, { withFileTypes: true })) {
      if (!sub.isDirectory() || sub.name === 'tmp') continue;
      const subdir = join(this.dir, sub.name);
      const names = new Set(await readdir(subdir));
      for (const name of names) {
        const file = join(subdir, name);
        if (name.endsWith('.tmp') || (!name.endsWith(META) && !name.endsWith(BODY))) {
          await unlink(file).catch(() => undefined); // temporary, or another format's file
          continue;
        }
        if (name.endsWith(BODY)) {
          if (!names.has(name.slice(0, -BODY.length) + META)) await unlink(file).catch(() => undefined);
          continue;
        }
        const loaded = await readIndexEntry(file.slice(0, -META.length));
        if (loaded === null) await unlinkEntry(file.slice(0, -META.length));
        else found.push(loaded);
      }
    }
    found.sort((a, b) => a.mtime - b.mtime);
    const now = this.now();
    for (const { e } of found) {
      if (e.expiresAt <= now || this.index.has(e.key)) {
        await unlinkEntry(e.base);
        continue;
      }
      this.addToIndex(e);
      this.listener.found(e);
    }
    await this.evictOverflow();
  }
}

/** A body written to a temporary file as it arrives; committed by renaming it into place. */
class DiskBodyWriter implements BodyWriter {
  readonly kind = 'writer';
  length = 0;
  private readonly file: WriteStream;
  private failed = false;
  private done = false;

  constructor(
    private readonly tmp: string,
    private readonly max: number,
    private readonly onDone: (writer: DiskBodyWriter) => void,
  ) {
    this.file = createWriteStream(tmp, { flags: 'w' });
    // A disk that fails (full, gone) fails the write; the response to the client goes on regardless.
    this.file.on('error', () => {
      this.failed = true;
    });
  }

  write(chunk: Buffer): Promise<void> | null {
    if (this.failed || this.done) return null;
    this.length += chunk.length;
    if (this.length > this.max) {
      this.abort();
      return null;
    }
    if (this.file.write(chunk)) return null;
    return new Promise<void>((resolve) => {
      const go = () => {
        this.file.off('drain', go);
        this.file.off('close', go);
        resolve();
      };
      this.file.on('drain', go);
      this.file.on('close', go);
    });
  }

  /** Finishes the file and moves it to `path`; false when the write failed (nothing is stored). */
  async commit(path: string): Promise<boolean> {
    if (this.done || this.failed) {
      this.abort();
      return false;
    }
    this.done = true;
    this.onDone(this);
    const closed = await new Promise<boolean>((resolve) => {
      this.file.end(() => resolve(!this.failed));
      this.file.once('error', () => resolve(false));
    });
    if (!closed) {
      await unlink(this.tmp).catch(() => undefined);
      return false;
    }
    await rename(this.tmp, path);
    return true;
  }

  abort(): void {
    if (this.done) return;
    this.done = true;
    this.onDone(this);
    this.file.destroy();
    void unlink(this.tmp).catch(() => undefined);
  }
}

function isWriter(body: StoredBody): body is BodyWriter {
  return !Buffer.isBuffer(body) && body.kind === 'writer';
}

function metaOf(entry: StoredResponse, bodyLength: number): Meta {
  const { body: _body, ...rest } = entry;
  return { ...rest, format: FORMAT, bodyLength };
}

async function writeAtomically(path: string, data: Buffer, tmp: string): Promise<void> {
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}

async function unlinkEntry(base: string): Promise<void> {
  await Promise.all([unlink(base + META).catch(() => undefined), unlink(base + BODY).catch(() => undefined)]);
}

async function readIndexEntry(base: string): Promise<{ e: IndexEntry; mtime: number } | null> {
  try {
    const text = await readFile(base + META, 'utf8');
    const meta = JSON.parse(text) as Meta;
    if (meta.format !== FORMAT || typeof meta.key !== 'string') return null;
    const [info, body] = await Promise.all([stat(base + META), stat(base + BODY)]);
    if (body.size !== meta.bodyLength) return null;
    return {
      e: { key: meta.key, url: meta.url, tags: meta.tags, expiresAt: meta.expiresAt, size: info.size + body.size, base },
      mtime: info.mtimeMs,
    };
  } catch {
    return null;
  }
}
