/**
 * The process that serves: alone (`--no-supervise`), or as one of the supervisor's workers (and, until
 * it is told to serve, its loaded spare). Starts Portico with its access log, and owns the process's
 * signals (reload, reopen the log, drain and stop) and its fatal errors. Loaded only by a serving
 * process: the supervisor never loads the proxy's code.
 */
import { loadRedisTier } from './cache/door-caches.js';
import { ConfigError } from './config/errors.js';
import { loadCheckedConfig, type CliArgs } from './config/flags.js';
import type { Config } from './config/schema.js';
import { createLogger, type Logger } from './core/log.js';
import { VERSION } from './admin/version.js';
import { attachAccessLog, createAccessLog } from './observe/access-log.js';
import { requestsInFlight } from './pipeline/session.js';
import { Portico } from './server.js';
import { startupBanner } from './startup-banner.js';
import { reportStartupError } from './startup-error.js';
import { PRELOAD_ENV } from './workers/messages.js';
import { configForWorker, startOrder, WorkerLink, type StartOrder } from './workers/worker.js';

/** Exit status of a process that stopped on a fatal error (EX_SOFTWARE). */
const FATAL_EXIT = 70;

/**
 * A worker serves the config its supervisor checked (the file may have changed since), once told to:
 * until then it is the supervisor's spare, loaded and waiting. A terminal's SIGHUP (closed) and SIGINT
 * (Ctrl-C) reach the whole process group: the supervisor decides what they mean.
 */
export async function serveAsWorker(args: CliArgs): Promise<number> {
  process.on('SIGHUP', () => undefined);
  process.on('SIGINT', () => undefined);
  // A failed load is not this waiting spare's to report: the start that needs the tier rejects with it.
  if (process.env[PRELOAD_ENV] === 'redis') loadRedisTier().catch(() => undefined);
  const order = await startOrder();
  return order === null ? 0 : serve(args, order.config, order);
}

/** This process serves: alone (--no-supervise), or as one of the supervisor's workers. */
export async function serve(args: CliArgs, config: Config, worker: Pick<StartOrder, 'role' | 'sockets'> | null): Promise<number> {
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
