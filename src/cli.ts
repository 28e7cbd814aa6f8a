/** `portico` — the command line: flags and config in, a running proxy out; signals for reload and shutdown. */
import cluster from 'node:cluster';
import { readFileSync } from 'node:fs';
import { ConfigError } from './config/errors.js';
import { loadConfig, parseCliArgs, USAGE } from './config/flags.js';
import type { Config } from './config/schema.js';
import { createLogger } from './core/log.js';
import { Portico } from './server.js';
import { runPrimary, workerCount } from './workers/primary.js';
import { configForWorker, workerRole, WorkerLink } from './workers/worker.js';

const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

async function main(argv: readonly string[]): Promise<number> {
  let args;
  let config;
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
    config = loadConfig(args);
  } catch (err) {
    return reportStartupError(err);
  }
  if (args.check) {
    process.stdout.write('config OK\n');
    return 0;
  }
  const workers = workerCount(config.workers);
  if (workers > 1 && cluster.isPrimary) {
    const primaryLog = createLogger(config.log.level);
    void runPrimary({ count: workers, log: primaryLog, drainMs: config.shutdown.drain_timeout }).then((status) => process.exit(status));
    return -1;
  }
  const role = workerRole();
  const log = role === null ? createLogger(config.log.level) : createLogger(config.log.level).child({ worker: role.slot });
  const share = (c: Config) => (role === null ? c : configForWorker(c, role));
  const link = role === null ? undefined : new WorkerLink();
  let portico: Portico;
  try {
    portico = await Portico.start(share(config), { log, loadConfig: args.configPath ? () => share(loadConfig(args)) : undefined, peers: link });
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
  return -1; // keep running
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
  if (cluster.isWorker) process.exit(code);
  process.exitCode = code;
}
