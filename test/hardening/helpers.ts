/**
 * Fault injection for the hardening tests: origins that die, hang, never read or send broken framing.
 * The client that reports whether a response arrived complete is fetchOutcome (test/helpers/http.ts).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { Worker } from 'node:worker_threads';

/** Open sockets of a server, as the server sees them. */
export interface SocketCount {
  readonly open: number;
  /** Connections accepted so far. */
  readonly accepted: number;
}

export interface FaultOrigin {
  readonly url: string;
  readonly port: number;
  readonly server: Server;
  readonly sockets: ReadonlySet<Socket>;
  readonly counts: SocketCount;
  /** Requests received (headers parsed). */
  readonly requests: IncomingMessage[];
  setHandler(handler: (req: IncomingMessage, res: ServerResponse) => unknown): void;
  close(): Promise<void>;
}

/** An HTTP origin on 127.0.0.1:0 that counts its sockets; the handler gets the request before its body is read. */
export async function faultOrigin(
  handler: (req: IncomingMessage, res: ServerResponse) => unknown = (_q, s) => s.end('ok'),
  options: { keepAliveTimeout?: number } = {},
): Promise<FaultOrigin> {
  let current = handler;
  const sockets = new Set<Socket>();
  const requests: IncomingMessage[] = [];
  let accepted = 0;
  const server = createServer({ keepAliveTimeout: options.keepAliveTimeout ?? 5_000 }, (req, res) => {
    requests.push(req);
    current(req, res);
  });
  server.on('connection', (s: Socket) => {
    accepted++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await listen(server);
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    server,
    sockets,
    get counts() {
      return { open: sockets.size, accepted };
    },
    requests,
    setHandler: (h) => {
      current = h;
    },
    close: () => closeServer(server, sockets),
  };
}

export interface RawOrigin {
  readonly url: string;
  readonly port: number;
  readonly sockets: ReadonlySet<Socket>;
  readonly counts: SocketCount;
  close(): Promise<void>;
}

/** A TCP origin that answers each connection with `onConnection` (raw bytes, no HTTP parser). */
export async function rawOrigin(onConnection: (socket: Socket) => void, options: { pauseOnConnect?: boolean } = {}): Promise<RawOrigin> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server = createNetServer({ pauseOnConnect: options.pauseOnConnect ?? false }, (s) => {
    accepted++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => s.destroy());
    onConnection(s);
  });
  await listen(server);
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    sockets,
    get counts() {
      return { open: sockets.size, accepted };
    },
    close: () => closeServer(server, sockets),
  };
}

/** Answers every request on the connection with `response` once the request head has arrived. */
export function answerWith(response: string | Buffer): (socket: Socket) => void {
  return (socket) => {
    let head = '';
    const onData = (chunk: Buffer) => {
      head += chunk.toString('latin1');
      if (head.includes('\r\n\r\n')) {
        socket.off('data', onData);
        socket.end(response);
      }
    };
    socket.on('data', onData);
  };
}

export interface BlackHole {
  /** http://127.0.0.1:PORT of a listener whose accept queue is full: new connections never complete. */
  readonly url: string;
  close(): Promise<void>;
}

/**
 * A listener that never completes a TCP handshake (connect timeout path): a worker thread listens with
 * backlog 1 and blocks, and two connections fill the accept queue; the kernel then drops further SYNs.
 */
export async function blackHole(): Promise<BlackHole> {
  const flag = new SharedArrayBuffer(4);
  const worker = new Worker(
    `const { workerData, parentPort } = require('node:worker_threads');
     const net = require('node:net');
     const server = net.createServer(() => {});
     server.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {
       parentPort.postMessage(server.address().port);
       setImmediate(() => { Atomics.wait(new Int32Array(workerData), 0, 0); server.close(); process.exit(0); });
     });`,
    { eval: true, workerData: flag },
  );
  const port = await new Promise<number>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  const fillers: Socket[] = [];
  for (let i = 0; i < 2; i++) {
    const s = connect(port, '127.0.0.1');
    s.on('error', () => {});
    fillers.push(s);
    await new Promise<void>((resolve) => s.once('connect', () => resolve()));
  }
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      for (const s of fillers) s.destroy();
      const view = new Int32Array(flag);
      Atomics.store(view, 0, 1);
      Atomics.notify(view, 0);
      await worker.terminate();
    },
  };
}

/**
 * The stack of an error that escaped to the process, with Node's "Emitted 'error' event on X instance
 * at:" part when it was an unhandled 'error' event (Node adds it only when it prints a fatal error).
 */
export function escapedStack(err: Error): string {
  const enhance = Object.getOwnPropertySymbols(err).find((s) => s.description === 'kEnhanceStackBeforeInspector');
  const fn = enhance === undefined ? undefined : (err as unknown as Record<symbol, unknown>)[enhance];
  try {
    if (typeof fn === 'function') return String(fn.call(err));
  } catch {
    // fall through to the plain stack
  }
  return err.stack ?? String(err);
}

/** Resolves when `socket` (or every socket in the set) has closed. */
export function closed(socket: Socket): Promise<void> {
  if (socket.destroyed && socket.closed) return Promise.resolve();
  return new Promise((resolve) => socket.once('close', () => resolve()));
}

/** Resolves with the next event `name` of `emitter`. */
export function once<T = unknown>(emitter: NodeJS.EventEmitter, name: string): Promise<T> {
  return new Promise((resolve) => emitter.once(name, (value: T) => resolve(value)));
}

function listen(server: Server | NetServer): Promise<void> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
}

function closeServer(server: Server | NetServer, sockets: Set<Socket>): Promise<void> {
  return new Promise((resolve) => {
    for (const s of sockets) s.destroy();
    server.close(() => resolve());
  });
}
