/**
 * A real redis-server for tests: started on a free port on 127.0.0.1 (no persistence, DEBUG allowed
 * from loopback), ready once it answers PING; it can be killed with SIGKILL and restarted on the same
 * port. Only the process this helper started is ever signalled, by its PID.
 *
 * The binary is $REDIS_SERVER, else redis-server on the PATH (Debian's package: .ci/run installs it).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { createClient, RESP_TYPES } from '@redis/client';

const READY_TIMEOUT_MS = 5_000;

export interface RedisServer {
  readonly port: number;
  readonly url: string;
  /** PID of the running server, or null while it is stopped. */
  pid(): number | null;
  /** SIGKILL, then waits for the process to be gone. */
  kill(): Promise<void>;
  /** Starts it again on the same port (after kill()), ready when this resolves. */
  restart(): Promise<void>;
  /** A plain client to look at or tamper with the data (Buffer replies); closed by stop(). */
  admin(): Promise<AdminClient>;
  stop(): Promise<void>;
}

function makeAdmin(url: string) {
  return createClient({ url, RESP: 2, commandOptions: { typeMapping: { [RESP_TYPES.BLOB_STRING]: Buffer } } });
}
export type AdminClient = ReturnType<typeof makeAdmin>;

export async function startRedisServer(extraArgs: readonly string[] = []): Promise<RedisServer> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    try {
      const child = await launch(port, extraArgs);
      return handle(port, child, extraArgs);
    } catch (err) {
      lastError = err; // the port was taken meanwhile: another one
    }
  }
  throw lastError;
}

function handle(port: number, first: ChildProcess, extraArgs: readonly string[]): RedisServer {
  let child: ChildProcess | null = first;
  const url = `redis://127.0.0.1:${port}`;
  const admins: AdminClient[] = [];
  const kill = async (): Promise<void> => {
    const c = child;
    child = null;
    if (c === null || c.exitCode !== null || c.signalCode !== null) return;
    const exited = once(c, 'exit');
    c.kill('SIGKILL');
    await exited;
  };
  return {
    port,
    url,
    pid: () => child?.pid ?? null,
    kill,
    async restart() {
      await kill();
      child = await launch(port, extraArgs);
    },
    async admin() {
      const client = makeAdmin(url);
      client.on('error', () => undefined);
      await client.connect();
      admins.push(client);
      return client;
    },
    async stop() {
      for (const a of admins) a.destroy();
      admins.length = 0;
      await kill();
    },
  };
}

async function launch(port: number, extraArgs: readonly string[]): Promise<ChildProcess> {
  const bin = process.env.REDIS_SERVER ?? 'redis-server';
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--enable-debug-command', 'local', '--loglevel', 'warning', ...extraArgs];
  const child = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  let failure: Error | null = null;
  child.once('error', (err) => (failure = new Error(`cannot run ${bin} (install redis-server, or set REDIS_SERVER): ${err.message}`)));
  child.once('exit', (code) => (failure ??= new Error(`redis-server on port ${port} exited (${code}): ${stderr.trim()}`)));
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (failure) throw failure;
    const pid = await serverPid(port);
    if (pid !== null && pid === child.pid) {
      running.add(child);
      child.once('exit', () => running.delete(child));
      return child;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  if (child.exitCode === null) child.kill('SIGKILL');
  throw failure ?? new Error(`redis-server on port ${port} did not answer PING within ${READY_TIMEOUT_MS} ms`);
}

/** The process id of the server answering on `port` (so that another one on a reused port is not taken for ours). */
function serverPid(port: number): Promise<number | null> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let data = '';
    const done = (pid: number | null) => {
      socket.destroy();
      resolve(pid);
    };
    socket.setTimeout(500, () => done(null));
    socket.on('error', () => done(null));
    socket.on('connect', () => socket.write('INFO server\r\n'));
    socket.on('data', (d) => {
      data += d.toString();
      const m = /process_id:(\d+)/.exec(data);
      if (m) done(Number(m[1]));
      else if (data.startsWith('-')) done(null);
    });
  });
}

/** Servers still running when the test process exits are killed with it. */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of running) c.kill('SIGKILL');
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
