/**
 * `portico` — the command line: flags and config in, a running proxy out; signals for reload and
 * shutdown. By default this process becomes the supervisor (src/workers/supervisor.ts) and serves from
 * worker processes it starts with the same command line; `--no-supervise` serves from this process.
 */
import './v8-flags.js'; // first: V8 settings apply to everything loaded after
import { fileURLToPath } from 'node:url';
import { VERSION } from './admin/version.js';
import { loadCheckedConfig, parseCliArgs, USAGE, type CliArgs } from './config/flags.js';
import type { Config } from './config/schema.js';
import { createLogger, ignoreBrokenOutput } from './core/log.js';
import { listenerSpecs } from './listener-specs.js';
import { startupBanner } from './startup-banner.js';
import { reportStartupError } from './startup-error.js';
import { isWorkerProcess } from './workers/messages.js';
import { runSupervisor, workerCount } from './workers/supervisor.js';

// A closed terminal (EIO) or a reader that went away (EPIPE) must never kill the proxy.
ignoreBrokenOutput(process.stdout);
ignoreBrokenOutput(process.stderr);

async function main(argv: readonly string[]): Promise<number> {
  let args: CliArgs;
  try {
    args = parseCliArgs(argv);
  } catch (err) {
    return reportStartupError(err);
  }
  if (args.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (args.version) {
    process.stdout.write(`portico ${VERSION}\n`);
    return 0;
  }
  // The proxy's code is loaded by the processes that serve, never by the supervisor.
  if (isWorkerProcess()) return (await import('./serving.js')).serveAsWorker(args);
  let config: Config;
  try {
    let warnings: readonly string[];
    ({ config, warnings } = loadCheckedConfig(args));
    // Said once: by the process the user started.
    for (const w of warnings) process.stderr.write(`portico: warning: ${w}\n`);
  } catch (err) {
    return reportStartupError(err);
  }
  if (args.check) {
    process.stdout.write(`${startupBanner({ version: VERSION, config, source: args.configPath }).join('\n')}\nconfig OK\n`);
    return 0;
  }
  if (!args.noSupervise) return supervise(args, config, argv);
  return (await import('./serving.js')).serve(args, config, null);
}

/** This process supervises: it binds the listeners and runs the workers. */
async function supervise(args: CliArgs, config: Config, argv: readonly string[]): Promise<number> {
  const log = createLogger(config.log.level);
  try {
    return await runSupervisor({
      config,
      count: workerCount(config.workers),
      log,
      drainMs: config.shutdown.drain_timeout,
      listeners: listenerSpecs(config),
      // Without a config file there is nothing to re-read: SIGHUP is the terminal closing, so stop.
      hangup: args.configPath ? 'reload' : 'stop',
      onServing: (addresses) => {
        if (config.log.level === 'silent') return;
        const banner = startupBanner({ version: VERSION, config, source: args.configPath, addresses, pid: process.pid, workers: workerCount(config.workers) });
        process.stderr.write(`${banner.join('\n')}\n`);
      },
      script: fileURLToPath(import.meta.url),
      args: argv,
    });
  } catch (err) {
    return reportStartupError(err, args.configPath);
  }
}

const code = await main(process.argv.slice(2));
// A worker's IPC channel would keep it alive: it leaves at once (stderr, a pipe, is written synchronously).
if (code >= 0) {
  if (isWorkerProcess()) process.exit(code);
  process.exitCode = code;
}
