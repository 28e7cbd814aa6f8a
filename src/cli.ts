/**
 * `portico` — the command line: flags and config in, a running proxy out; signals for reload and
 * shutdown. By default this process becomes the supervisor (src/workers/supervisor.ts) and serves from
 * worker processes it starts with the same command line; `--no-supervise` serves from this process.
 */
import { fileURLToPath } from 'node:url';
import { ConfigError } from './config/errors.js';
import { loadConfig, parseCliArgs, USAGE, type CliArgs } from './config/flags.js';
import type { Config } from './config/schema.js';
import { createLogger, type Logger } from './core/log.js';
import { VERSION } from './admin/version.js';
import { listenerSpecs } from './listeners.js';
import { requestsInFlight } from './pipeline/session.js';
import { Portico } from './server.js';
import { runSupervisor, workerCount } from './workers/supervisor.js';
import { configForWorker, configFromSupervisor, workerRole, WorkerLink, type WorkerRole } from './workers/worker.js';

/** Exit status of a process that stopped on a fatal error (EX_SOFTWARE). */
const FATAL_EXIT = 70;

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
  const role = workerRole();
  // A worker serves the config its supervisor validated (the file may have changed since).
  if (role !== null) return serve(args, configFromSupervisor(), role);
  let config: Config;
  try {
    config = loadConfig(args);
  } catch (err) {
    return reportStartupError(err);
  }
  if (args.check) {
    process.stdout.write('config OK\n');
    return 0;
  }
  if (!args.noSupervise) return supervise(config, argv);
  return serve(args, config, null);
}

/** This process supervises: it binds the listeners and runs the workers. */
async function supervise(config: Config, argv: readonly string[]): Promise<number> {
  const log = createLogger(config.log.level);
  try {
    return await runSupervisor({
      config,
      count: workerCount(config.workers),
      log,
      drainMs: config.shutdown.drain_timeout,
      listeners: listenerSpecs(config),
      script: fileURLToPath(import.meta.url),
      args: argv,
    });
  } catch (err) {
    return reportStartupError(err);
  }
}

/** This process serves: alone (--no-supervise), or as one of the supervisor's workers. */
async function serve(args: CliArgs, config: Config, role: WorkerRole | null): Promise<number> {
  const log = role === null ? createLogger(config.log.level) : createLogger(config.log.level).child({ worker: role.slot });
  const share = (c: Config) => (role === null ? c : configForWorker(c, role));
  const link = role === null ? undefined : new WorkerLink();
  reportFatalErrors(log);
  // The file as last read for a reload, whole: what workers started after a successful reload serve.
  let reread = config;
  let portico: Portico;
  try {
    portico = await Portico.start(share(config), {
      log,
      loadConfig: args.configPath ? () => share((reread = loadConfig(args))) : undefined,
      onReloaded: link && (() => link.serving(reread)),
      peers: link,
      supervised: role?.addresses,
    });
  } catch (err) {
    return reportStartupError(err);
  }
  link?.attach(portico);
  process.on('SIGHUP', () => {
    try {
      portico.reload();
    } catch (err) {
      log.error({ problems: err instanceof ConfigError ? err.problems : [(err as Error).message] }, 'reload rejected; the previous config keeps running');
    }
  });
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    const drainMs = portico.config.shutdown.drain_timeout;
    log.info({ signal, drainMs }, 'shutting down: letting in-flight requests finish');
    portico.close(drainMs).then(
      () => {
        log.info('stopped');
        process.exit(0);
      },
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  // A worker whose supervisor is gone gets no more connections: it finishes what it has and leaves.
  if (role !== null) process.on('disconnect', () => stop('supervisor gone'));
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

function reportStartupError(err: unknown): number {
  if (err instanceof ConfigError) {
    for (const line of err.problems) process.stderr.write(`portico: ${line}\n`);
    return 2;
  }
  process.stderr.write(`portico: ${(err as Error)?.stack ?? String(err)}\n`);
  return 1;
}

const code = await main(process.argv.slice(2));
// A worker's IPC channel would keep it alive: it leaves at once (stderr, a pipe, is written synchronously).
if (code >= 0) {
  if (workerRole() !== null) process.exit(code);
  process.exitCode = code;
}
