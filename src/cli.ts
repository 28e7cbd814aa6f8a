/**
 * `portico` — the command line: flags and config in, a running proxy out; signals for reload and
 * shutdown. By default this process becomes the supervisor (src/workers/supervisor.ts) and serves from
 * worker processes it starts with the same command line; `--no-supervise` serves from this process.
 */
import './v8-flags.js'; // first: V8 settings apply to everything loaded after
import { fileURLToPath } from 'node:url';
import { VERSION } from './admin/version.js';
import { ConfigError } from './config/errors.js';
import { loadCheckedConfig, parseCliArgs, USAGE, type CliArgs } from './config/flags.js';
import type { Config } from './config/schema.js';
import { createLogger, ignoreBrokenOutput, type Logger } from './core/log.js';
import { listenerSpecs } from './listeners.js';
import { attachAccessLog, createAccessLog } from './observe/access-log.js';
import { requestsInFlight } from './pipeline/session.js';
import { Portico } from './server.js';
import { startupBanner } from './startup-banner.js';
import { runSupervisor, workerCount } from './workers/supervisor.js';
import { configForWorker, isWorkerProcess, startOrder, WorkerLink, type StartOrder } from './workers/worker.js';

/** Exit status of a process that stopped on a fatal error (EX_SOFTWARE). */
const FATAL_EXIT = 70;

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
  if (isWorkerProcess()) {
    // A worker serves the config its supervisor checked (the file may have changed since), once told
    // to: until then it is the supervisor's spare, loaded and waiting. A terminal's SIGHUP (closed) and
    // SIGINT (Ctrl-C) reach the whole process group: the supervisor decides what they mean.
    process.on('SIGHUP', () => undefined);
    process.on('SIGINT', () => undefined);
    const order = await startOrder();
    return order === null ? 0 : serve(args, order.config, order);
  }
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
  return serve(args, config, null);
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

/** This process serves: alone (--no-supervise), or as one of the supervisor's workers. */
async function serve(args: CliArgs, config: Config, worker: Pick<StartOrder, 'role' | 'sockets'> | null): Promise<number> {
  const role = worker?.role ?? null;
  const log = role === null ? createLogger(config.log.level) : createLogger(config.log.level).child({ worker: role.slot });
  const access = createAccessLog({ ...config.log.access, anonymize: config.log.anonymize }, log);
  if (access) attachAccessLog(log, access);
  const share = (c: Config) => (role === null ? c : configForWorker(c, role));
  const link = role === null ? undefined : new WorkerLink();
  reportFatalErrors(log);
  // The file as last read for a reload, whole: what workers started after a successful reload serve.
  let reread = config;
  let portico: Portico;
  try {
    portico = await Portico.start(share(config), {
      log,
      // A reload runs every check a start does (files, patterns, pool names), with the file named.
      loadConfig: args.configPath ? () => share((reread = loadCheckedConfig(args).config)) : undefined,
      onReloaded: link && (() => link.serving(reread)),
      peers: link,
      shared: worker?.sockets,
    });
  } catch (err) {
    access?.close();
    return reportStartupError(err, args.configPath);
  }
  link?.attach(portico);
  // Under the supervisor, the supervisor prints the start-up block (with its own pid: the one to signal).
  if (config.log.level !== 'silent' && role === null) {
    const banner = startupBanner({ version: VERSION, config, source: args.configPath, addresses: portico.addresses(), pid: process.pid });
    process.stderr.write(`${banner.join('\n')}\n`);
  }
  // logrotate's postrotate convention (as nginx): reopen the access-log file.
  process.on('SIGUSR1', () => {
    access?.reopen();
    log.info({ file: config.log.access.file }, 'SIGUSR1: access log reopened');
  });
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    const drainMs = portico.config.shutdown.drain_timeout;
    log.info(
      { signal, drainMs },
      signal === 'SIGHUP' ? 'SIGHUP without --config (terminal closed?): shutting down, letting in-flight requests finish' : 'shutting down: letting in-flight requests finish',
    );
    portico.close(drainMs).then(
      () => {
        log.info('stopped');
        access?.close();
        process.exit(0);
      },
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  if (role !== null) {
    // A worker takes its reloads from the supervisor (over IPC); a terminal's SIGHUP is the supervisor's (see main).
    // A worker whose supervisor is gone gets no more connections: it finishes what it has and leaves.
    process.on('disconnect', () => stop('supervisor gone'));
  } else if (!args.configPath) {
    process.on('SIGHUP', () => stop('SIGHUP'));
  } else {
    process.on('SIGHUP', () => {
      try {
        portico.reload();
      } catch (err) {
        log.error({ problems: err instanceof ConfigError ? err.problems : [(err as Error).message] }, 'reload rejected; the previous config keeps running');
      }
    });
  }
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  return -1; // keep running
}

/**
 * A fatal error is a bug, and must not pass silently: it is logged with the requests in flight (the
 * one that caused it is usually the newest), and the process exits for its supervisor to replace it.
 */
function reportFatalErrors(log: Logger): void {
  const fatal = (err: unknown, origin: string) => {
    try {
      log.fatal({ err, origin, inFlight: requestsInFlight(10) }, 'fatal error: this process stops (its supervisor starts a new one)');
      log.flush();
    } finally {
      process.exit(FATAL_EXIT);
    }
  };
  process.on('uncaughtException', fatal);
  process.on('unhandledRejection', (reason) => fatal(reason, 'unhandledRejection'));
}

/** Prints a start-up error: a config problem names its file (when it has none yet), anything else its stack. */
function reportStartupError(err: unknown, source?: string): number {
  if (err instanceof ConfigError) {
    for (const line of err.problems) {
      const named = source === undefined || line.startsWith(`${source}: `) || line.startsWith('--') ? line : `${source}: ${line}`;
      process.stderr.write(`portico: ${named}\n`);
    }
    return 2;
  }
  process.stderr.write(`portico: ${(err as Error)?.stack ?? String(err)}\n`);
  return 1;
}

const code = await main(process.argv.slice(2));
// A worker's IPC channel would keep it alive: it leaves at once (stderr, a pipe, is written synchronously).
if (code >= 0) {
  if (isWorkerProcess()) process.exit(code);
  process.exitCode = code;
}
