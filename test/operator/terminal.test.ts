/**
 * Portico on a terminal (a real pseudo-terminal from util-linux `script`): one coloured line per
 * request, and a terminal that goes away — which sends SIGHUP and then fails every write with EIO —
 * neither kills a proxy that has a config file to reload, nor leaves one without a config running.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { writeTempFile } from '../admin/helpers.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { request, waitFor } from '../helpers/http.js';
import { bannerUrls } from './cli.js';

const SCRIPT = '/usr/bin/script';
const hasScript = existsSync(SCRIPT);
if (!hasScript) console.warn(`terminal tests skipped: ${SCRIPT} (util-linux) is not installed`);

const cleanup = cleanupAfterEach();
const plain = (text: string) => text.replace(/\x1b\[[0-9;]*m/g, '').replace(/\r/g, '');

interface OnTerminal {
  readonly script: ChildProcess;
  /** Everything the terminal showed, colours included. */
  screen(): string;
  /** The Portico process (its pid from the start-up block). */
  readonly pid: number;
  readonly urls: Record<string, string>;
}

async function onTerminal(args: readonly string[]): Promise<OnTerminal> {
  const command = [process.execPath, 'dist/cli.js', ...args].join(' ');
  const script = spawn(SCRIPT, ['-qfec', command, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: undefined } });
  let screen = '';
  script.stdout!.on('data', (c: Buffer) => (screen += c.toString('utf8')));
  const shownPid = () => Number(/ · pid (\d+)/.exec(plain(screen))?.[1] ?? 0);
  cleanup.push(async () => {
    // Read the pid from the screen even when the start-up wait below failed: with --config, the
    // terminal going away only reloads Portico, so it has to be killed by its pid.
    const pid = shownPid();
    if (script.exitCode === null && script.signalCode === null) script.kill('SIGKILL');
    if (pid > 0) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  });
  await waitFor(() => /\n {2}logs {5}/.test(plain(screen)), 15_000, `the start-up block on the terminal (${screen})`);
  return { script, screen: () => screen, pid: shownPid(), urls: bannerUrls(plain(screen)) };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe.skipIf(!hasScript)('on a terminal', () => {
  it('prints one line per request: time, status (coloured), method, URL, cache result, upstream, ms', async () => {
    const origin = await cleanup.origin((req, res) => {
      if (req.url === '/missing') res.statusCode = 404;
      res.setHeader('cache-control', 'max-age=60');
      res.end('hello');
    });
    const t = await onTerminal(['--reverse', '127.0.0.1:0', '--upstream', origin.url]);
    const before = t.screen().length;
    await request(`${t.urls.reverse}/a`);
    await request(`${t.urls.reverse}/a`);
    await request(`${t.urls.reverse}/a`, { headers: { 'cache-control': 'no-cache' } });
    await request(`${t.urls.reverse}/missing`);
    await waitFor(() => plain(t.screen().slice(before)).split('\n').filter(Boolean).length >= 4, 5_000, 'four request lines');
    const shown = t.screen().slice(before);
    const lines = plain(shown).split('\n').filter(Boolean);
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatch(new RegExp(`^\\d\\d:\\d\\d:\\d\\d\\.\\d{3} 200 GET /a miss → ${origin.url} \\d+ms$`));
    expect(lines[1]).toMatch(/^\d\d:\d\d:\d\d\.\d{3} 200 GET \/a hit \d+ms$/);
    expect(lines[2]).toMatch(/ 200 GET \/a bypass → /);
    expect(lines[3]).toMatch(/ 404 GET \/missing miss → /);
    // Coloured by status: 2xx green, 4xx yellow.
    expect(shown).toContain('\x1b[32m200\x1b[39m GET /a');
    expect(shown).toContain('\x1b[33m404\x1b[39m GET /missing');
  });

  it('the terminal closing stops a Portico started without --config: gracefully, port released', async () => {
    const origin = await cleanup.origin();
    const t = await onTerminal(['--reverse', '127.0.0.1:0', '--upstream', origin.url]);
    expect((await request(`${t.urls.reverse}/`)).status).toBe(200);
    t.script.kill('SIGKILL'); // the terminal goes away: the kernel sends SIGHUP
    await waitFor(() => !alive(t.pid), 10_000, 'Portico to stop');
    await expect(request(`${t.urls.reverse}/`)).rejects.toThrow(/ECONNREFUSED/);
  });

  it('with --config, the terminal closing reloads, and the failing writes (EIO) do not kill it', async () => {
    const origin = await cleanup.origin();
    const file = writeTempFile('portico.yaml', `reverse: { listen: 127.0.0.1:0, routes: [{ pool: web }] }\npools: { web: { servers: [{ url: "${origin.url}" }] } }\n`);
    const t = await onTerminal(['--config', file]);
    t.script.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 300));
    // Every request writes a log line to the terminal that is gone.
    for (let i = 0; i < 30; i++) expect((await request(`${t.urls.reverse}/p${i}`)).status).toBe(200);
    await new Promise((r) => setTimeout(r, 200));
    expect(alive(t.pid)).toBe(true);
    process.kill(t.pid, 'SIGTERM');
    await waitFor(() => !alive(t.pid), 10_000, 'Portico to stop after SIGTERM');
  });
});
