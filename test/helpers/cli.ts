/** The real CLI as a child process (`node dist/cli.js …`, built by test/global-setup.ts), with its JSON log lines. */
import { spawn, type ChildProcess } from 'node:child_process';
import { waitFor } from './http.js';

export interface RunningCli {
  readonly child: ChildProcess;
  /** Every stdout line, parsed as JSON when it is ({ msg } otherwise). */
  readonly lines: Record<string, any>[];
  readonly stderr: () => string;
  readonly exited: Promise<number | null>;
  /** `http://host:port` of each listener named in `listeners`, from the first "listening" line. */
  readonly urls: Record<string, string>;
  /** Stops it if it still runs (SIGTERM, then SIGKILL after 5 s). */
  readonly stop: () => Promise<void>;
}

/** How node runs the CLI: flags before the script, and environment variables added to this one's. */
export interface NodeOptions {
  readonly execArgv?: readonly string[];
  readonly env?: Record<string, string>;
}

/** Starts the CLI with `args` and waits until each of `listeners` (e.g. "reverse", "admin") listens. */
export async function startCli(args: readonly string[], listeners: readonly string[], node: NodeOptions = {}): Promise<RunningCli> {
  const child = spawn(process.execPath, [...(node.execArgv ?? []), 'dist/cli.js', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: node.env ? { ...process.env, ...node.env } : process.env,
  });
  const lines: Record<string, any>[] = [];
  let buffer = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    buffer += chunk.toString('utf8');
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      try {
        lines.push(JSON.parse(line));
      } catch {
        lines.push({ msg: line });
      }
    }
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const stop = () => stopChild(child, exited);
  const address = (name: string) => lines.find((l) => l.msg === 'listening' && l.listener === name)?.address as string | undefined;
  try {
    await waitFor(() => listeners.every((name) => address(name) !== undefined) || child.exitCode !== null, 15_000, `the CLI to listen (stderr: ${stderr})`);
  } catch (err) {
    await stop();
    throw err;
  }
  if (child.exitCode !== null) throw new Error(`the CLI exited with ${child.exitCode}: ${stderr}`);
  const urls = Object.fromEntries(listeners.map((name) => [name, `http://${address(name)}`]));
  return { child, lines, stderr: () => stderr, exited, urls, stop };
}

/** Stops `child` if it still runs (SIGTERM, then SIGKILL after 5 s); resolves once `exited` has. */
export async function stopChild(child: ChildProcess, exited: Promise<unknown>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}
