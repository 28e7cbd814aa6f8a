/** The store contract (store-conformance.ts) for every store, and what is particular to each. */
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DiskStore } from '../../src/cache/disk-store.js';
import { MemoryStore } from '../../src/cache/memory-store.js';
import type { StoreOptions } from '../../src/cache/store.js';
import { entry, storeConformance } from './store-conformance.js';

storeConformance('memory', async () => ({ make: async (o) => new MemoryStore(o), reopen: null, cleanup: async () => undefined }));

storeConformance('disk', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'portico-store-'));
  const open = async (o: StoreOptions) => {
    const s = new DiskStore(dir, o);
    await s.ready();
    return s;
  };
  return { make: open, reopen: open, cleanup: () => rm(dir, { recursive: true, force: true }) };
});

describe('disk store files', () => {
  it('cleans temporary and corrupt files on start and keeps good ones', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'portico-store-'));
    const options = { maxBytes: 1 << 20, maxEntryBytes: 64 * 1024, sweepIntervalMs: 0 };
    const first = new DiskStore(dir, options);
    await first.set(entry('http://a/good'));
    await first.close();
    await mkdir(join(dir, 'zz'), { recursive: true });
    await writeFile(join(dir, 'zz', 'junk.entry'), 'not an entry');
    await writeFile(join(dir, 'zz', 'half.entry.1.2.tmp'), 'partial write');
    const second = new DiskStore(dir, options);
    await second.ready();
    expect(await readdir(join(dir, 'zz'))).toEqual([]);
    expect(second.stats().entries).toBe(1);
    expect((await second.get(entry('http://a/good').key))?.body.toString()).toBe('body');
    await second.close();
    await rm(dir, { recursive: true, force: true });
  });
});
