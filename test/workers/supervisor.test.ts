/**
 * The default process shape — one worker under a supervisor — seen from the clients: when the worker
 * dies (a crash is a bug, never an outage), the connections that arrive meanwhile wait for its
 * replacement instead of being refused, and the replacement answers within a second.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { startCli, type RunningCli } from '../helpers/cli.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { request, waitFor } from '../helpers/http.js';

const cleanup = cleanupAfterEach();

/** The supervisor's child processes: its worker and its spare (Linux: /proc/PID/task/PID/children). */
function childrenOf(pid: number): number[] {
  return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
}

/** The worker's pid, from the supervisor's "all workers serving" line. */
async function firstWorker(cli: RunningCli): Promise<number> {
  await waitFor(() => cli.lines.some((l) => l.msg === 'all workers serving'), 10_000, 'the workers to serve');
  return cli.lines.find((l) => l.msg === 'all workers serving')!.workers[0] as number;
}

/** Waits until the supervisor has a spare next to its worker (two children), and returns the spare's pid. */
async function spareOf(cli: RunningCli, worker: number): Promise<number> {
  let others: number[] = [];
  await waitFor(() => (others = childrenOf(cli.child.pid!).filter((p) => p !== worker)).length === 1, 10_000, 'a spare next to the worker');
  return others[0]!;
}

interface Sent {
  readonly startedAt: number;
  readonly ms: number;
  readonly status?: number;
  readonly error?: string;
}

/** `loops` clients, each sending requests one after another on new connections until `stop()`. */
function traffic(url: string, loops: number): { sent: Sent[]; halt: () => void; stop: () => Promise<void> } {
  const sent: Sent[] = [];
  let running = true;
  const loop = async (n: number) => {
    for (let i = 0; running; i++) {
      const startedAt = Date.now();
      try {
        const reply = await request(`${url}/page-${n}-${i}`);
        sent.push({ startedAt, ms: Date.now() - startedAt, status: reply.status });
      } catch (err) {
        sent.push({ startedAt, ms: Date.now() - startedAt, error: (err as NodeJS.ErrnoException).code ?? String(err) });
      }
    }
  };
  const all = Promise.all(Array.from({ length: loops }, (_, n) => loop(n)));
  return {
    sent,
    halt: () => {
      running = false;
    },
    stop: async () => {
      running = false;
      await all;
    },
  };
}

describe('the supervisor (default: one worker)', () => {
  it('a worker killed under load is replaced by the spare: no connection refused, answered within 1 s', async () => {
    const origin = await cleanup.origin((_req, res) => res.end('hello'));
    const cli = await startCli(['--reverse', '127.0.0.1:0', '--upstream', origin.url, '--log-level', 'info'], ['reverse']);
    const first = await firstWorker(cli);
    const firstSpare = await spareOf(cli, first);
    const load = traffic(cli.urls.reverse!, 4);
    // Whatever fails, the clients stop first, then Portico (which ends any request still waiting).
    cleanup.push(async () => {
      load.halt();
      await cli.stop();
      await load.stop();
    });
    await waitFor(() => load.sent.filter((s) => s.status === 200).length >= 50, 10_000, 'traffic through the first worker');

    const killedAt = Date.now();
    process.kill(first, 'SIGKILL');
    await waitFor(() => load.sent.some((s) => s.startedAt > killedAt + 1_000), 10_000, 'traffic for a second after the kill');
    const takeover = cli.lines.find((l) => l.msg?.startsWith('a worker stopped; the spare takes its place'));
    expect(takeover).toMatchObject({ pid: first, signal: 'SIGKILL', replacement: firstSpare });
    // Once the spare serves, a new spare is loaded next to it: a second crash is covered the same way.
    const secondSpare = await spareOf(cli, firstSpare);
    expect([first, firstSpare]).not.toContain(secondSpare);
    const secondKilledAt = Date.now();
    process.kill(firstSpare, 'SIGKILL');
    await waitFor(() => load.sent.some((s) => s.startedAt > secondKilledAt + 1_000), 10_000, 'traffic for a second after the second kill');
    await load.stop();

    const errors = load.sent.filter((s) => s.error !== undefined);
    // Only a request in flight inside a killed worker can fail (reset): at most one per client per kill.
    expect(errors.map((e) => e.error)).not.toContain('ECONNREFUSED');
    expect(errors.length).toBeLessThanOrEqual(8);
    expect(load.sent.filter((s) => s.status !== undefined && s.status !== 200)).toEqual([]);
    // Every request sent after a kill was answered, and within a second.
    const afterKills = load.sent.filter((s) => s.startedAt > killedAt && s.error === undefined);
    expect(afterKills.length).toBeGreaterThan(20);
    expect(Math.max(...afterKills.map((s) => s.ms))).toBeLessThan(1_000);
    expect(cli.child.exitCode).toBe(null);
    expect(cli.lines.filter((l) => l.msg?.startsWith('a worker stopped')).map((l) => l.replacement)).toEqual([firstSpare, secondSpare]);
  });

  it('stops its spare with the workers: SIGTERM leaves no process behind', async () => {
    const origin = await cleanup.origin((_req, res) => res.end('hello'));
    const cli = await startCli(['--reverse', '127.0.0.1:0', '--upstream', origin.url, '--log-level', 'info'], ['reverse']);
    cleanup.push(cli.stop);
    const worker = await firstWorker(cli);
    const spare = await spareOf(cli, worker);
    cli.child.kill('SIGTERM');
    expect(await cli.exited).toBe(0);
    for (const pid of [worker, spare]) expect(() => process.kill(pid, 0)).toThrow(/ESRCH/);
  });
});
