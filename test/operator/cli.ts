/**
 * The built CLI as a child process, found ready by the start-up block it prints on stderr (printed at
 * every log level short of silent), which names each listener's address.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { stopChild } from '../helpers/cli.js';
import { waitFor } from '../helpers/http.js';

export interface Running {
  readonly child: ChildProcess;
  /** `http://host:port` by listener name (reverse, forward, admin) from the start-up block. */
  readonly urls: Record<string, string>;
  stdout(): string;
  stderr(): string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stop(): Promise<void>;
}

export async function startPortico(args: readonly string[], options: SpawnOptions = {}): Promise<Running> {
  const child = spawn(process.execPath, ['dist/cli.js', ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...options });
  let out = '';
  let err = '';
  child.stdout?.on('data', (c: Buffer) => (out += c.toString('utf8')));
  child.stdout?.on('error', () => undefined);
  child.stderr?.on('data', (c: Buffer) => (err += c.toString('utf8')));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const stop = () => stopChild(child, exited);
  try {
    await waitFor(() => /\n {2}logs {5}/.test(err) || child.exitCode !== null, 15_000, `the start-up block (stderr: ${err})`);
  } catch (e) {
    await stop();
    throw e;
  }
  if (child.exitCode !== null) throw new Error(`portico exited with ${child.exitCode}: ${err}`);
  return { child, urls: bannerUrls(err), stdout: () => out, stderr: () => err, exited, stop };
}

/** Listener URLs from the start-up block's `  reverse  http://…`, `  forward  http://…`, `  admin    http://…/` lines. */
export function bannerUrls(text: string): Record<string, string> {
  const urls: Record<string, string> = {};
  for (const m of text.matchAll(/^ {2}(reverse|forward|admin) +(https?:\/\/[^\s/]+)/gm)) urls[m[1]!] ??= m[2]!;
  return urls;
}
