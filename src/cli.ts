/** `portico` — the command line: flags and config in, a running proxy out; signals for reload and shutdown. */
import cluster from 'node:cluster';
import { ConfigError } from './config/errors.js';
import { loadCheckedConfig, parseCliArgs, USAGE } from './config/flags.js';
import type { Config } from './config/schema.js';
import { VERSION } from './admin/version.js';
import { createLogger, ignoreBrokenOutput } from './log.js';
import { attachAccessLog, createAccessLog } from './observe/access-log.js';
import { Portico } from './server.js';
import { startupBanner } from './startup-banner.js';
import { runPrimary, workerCount } from './workers/primary.js';
import { configForWorker, workerRole, WorkerLink } from './workers/worker.js';

// A closed terminal (EIO) or a reader that went away (EPIPE) must never kill the proxy.
ignoreBrokenOutput(process.stdout);
ignoreBrokenOutput(process.stderr);

async function main(argv: readonly string[]): Promise<number> {
  let args;
  let config;
  let warnings: readonly string[];
  try {
    args = parseCliArgs(argv);
    if (args.help) {
      process.stdout.write(USAGE);
      return 0;
    }
    if (args.version) {
      process.stdout.write(`portico ${VERSION}\n`);
      return 0;
    }
    ({ config, warnings } = loadCheckedConfig(args));
  } catch (err) {
    return reportStartupError(err);
  }
  const role = workerRole();
  // Said once: by the process the user started (with --workers N, the primary).
  if (role === null) for (const w of warnings) process.stderr.write(`portico: warning: ${w}\n`);
  if (args.check) {
    process.stdout.write(`${startupBanner({ version: VERSION, config, source: args.configPath }).join('\n')}\nconfig OK\n`);
    return 0;
  }
  // Without a config file there is nothing to re-read: SIGHUP is the terminal closing, so stop.
  const hangup = args.configPath ? 'reload' : 'stop';
  const workers = workerCount(config.workers);
  if (workers > 1 && cluster.isPrimary) {
    const primaryLog = createLogger(config.log.level);
    void runPrimary({ count: workers, log: primaryLog, drainMs: config.shutdown.drain_timeout, hangup }).then((status) => process.exit(status));
    return -1;
  }
  const log = role === null ? createLogger(config.log.level) : createLogger(config.log.level).child({ worker: role.slot });
  const access = createAccessLog({ ...config.log.access, anonymize: config.log.anonymize }, log);
  if (access) attachAccessLog(log, access);
  const share = (c: Config) => (role === null ? c : configForWorker(c, role));
  const link = role === null ? undefined : new WorkerLink();
  let portico: Portico;
  try {
    portico = await Portico.start(share(config), {
      log,
      // A reload runs every check a start does (files, patterns, pool names), with the file named.
      loadConfig: args.configPath ? () => share(loadCheckedConfig(args).config) : undefined,
      peers: link,
    });
  } catch (err) {
    access?.close();
    return reportStartupError(err, args.configPath);
  }
  link?.attach(portico);
  if (config.log.level !== 'silent' && (role === null || role.slot === 1)) {
    const banner = startupBanner({ version: VERSION, config, source: args.configPath, addresses: portico.addresses(), pid: process.pid, workers: role?.count });
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
    log.info({ signal, drainMs }, signal === 'SIGHUP' ? 'SIGHUP without --config (terminal closed?): shutting down, letting in-flight requests finish' : 'shutting down: letting in-flight requests finish');
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
    // A worker takes its reloads from the primary (over IPC); a terminal's SIGHUP is the primary's to handle.
    process.on('SIGHUP', () => undefined);
  } else if (hangup === 'stop') {
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
  if (cluster.isWorker) process.exit(code);
  process.exitCode = code;
}
