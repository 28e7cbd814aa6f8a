/**
 * What each process of a running Portico loads, recorded by a module hook in every process: the
 * supervisor never loads the proxy itself (it binds sockets and runs workers: its RSS is about 20 MB
 * smaller for it), and node-redis is loaded only where `cache.redis` asks for it (about 15 MB of RSS
 * in each process otherwise). Both are easy to undo by one static import; this says so at once.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { startCli, type RunningCli } from '../helpers/cli.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { waitFor } from '../helpers/http.js';

const cleanup = cleanupAfterEach();

interface Processes {
  readonly supervisor: number;
  readonly worker: number;
  readonly spare: number;
  /** The modules `pid` has loaded so far (resolved URLs). */
  readonly modulesOf: (pid: number) => string[];
}

/** Starts a supervised Portico with the hook; resolves once the supervisor, its worker and its spare all run. */
async function startRecorded(extraArgs: readonly string[]): Promise<Processes> {
  const dir = mkdtempSync(path.join(tmpdir(), 'portico-imports-'));
  cleanup.push(async () => rmSync(dir, { recursive: true, force: true }));
  const origin = await cleanup.origin((_req, res) => res.end('hello'));
  const cli: RunningCli = await startCli(['--reverse', '127.0.0.1:0', '--upstream', origin.url, '--log-level', 'info', ...extraArgs], ['reverse'], {
    execArgv: ['--import', path.resolve('test/helpers/record-imports.mjs')],
    env: { RECORD_IMPORTS_DIR: dir },
  });
  cleanup.push(() => cli.stop());
  await waitFor(() => cli.lines.some((l) => l.msg === 'all workers serving'), 10_000, 'the workers to serve');
  const worker = cli.lines.find((l) => l.msg === 'all workers serving')!.workers[0] as number;
  const supervisor = cli.child.pid!;
  const children = () => readFileSync(`/proc/${supervisor}/task/${supervisor}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  let spare = 0;
  await waitFor(() => (spare = children().find((p) => p !== worker) ?? 0) !== 0, 10_000, 'a spare next to the worker');
  const modulesOf = (pid: number) => {
    try {
      return readFileSync(path.join(dir, `${pid}.txt`), 'utf8').trim().split('\n');
    } catch {
      return [];
    }
  };
  return { supervisor, worker, spare, modulesOf };
}

const has = (modules: readonly string[], part: string) => modules.some((m) => m.includes(part));

/** Waits until `pid` has loaded a module whose URL contains `part` (a spare loads while it waits). */
async function loads(p: Processes, pid: number, part: string): Promise<void> {
  await waitFor(() => has(p.modulesOf(pid), part), 10_000, `process ${pid} to load ${part}`);
}

describe('what each process loads', () => {
  it('the supervisor loads config and workers, not the proxy; no process loads node-redis without cache.redis', async () => {
    const p = await startRecorded([]);
    for (const pid of [p.worker, p.spare]) {
      await loads(p, pid, '/dist/server.js');
      await loads(p, pid, '/dist/cache/engine.js');
    }
    const supervisor = p.modulesOf(p.supervisor);
    expect(has(supervisor, '/dist/workers/supervisor.js')).toBe(true);
    expect(has(supervisor, '/dist/config/flags.js')).toBe(true);
    // (Checking a config compiles its rules and cache rules: those modules are the supervisor's too.)
    for (const proxyCode of ['/dist/server.js', '/dist/serving.js', '/dist/listeners.js', '/dist/pipeline/runner.js', '/dist/cache/engine.js', '/dist/reverse/', '/node_modules/undici/']) {
      expect(has(supervisor, proxyCode), proxyCode).toBe(false);
    }
    for (const pid of [p.supervisor, p.worker, p.spare]) {
      expect(has(p.modulesOf(pid), '@redis/client')).toBe(false);
      expect(has(p.modulesOf(pid), '/dist/cache/redis/redis-tier.js')).toBe(false);
    }
  });

  it('with cache.redis, the worker and the waiting spare load node-redis (the supervisor still does not)', async () => {
    // Nothing listens there: the start waits at most 1 s for the link and serves from memory.
    const p = await startRecorded(['--cache-redis', 'redis://127.0.0.1:1']);
    await loads(p, p.worker, '@redis/client');
    await loads(p, p.spare, '@redis/client');
    expect(has(p.modulesOf(p.supervisor), '@redis/client')).toBe(false);
  });
});
