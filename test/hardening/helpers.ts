/**
 * Fault injection for the hardening tests: origins that die, hang, never read or send broken framing,
 * clients that walk away, and a client that reports whether a response arrived complete.
 */
import { createServer, request as httpRequest, type Agent, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
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

/** What a client saw of one response. */
export interface Outcome {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  /** True only when the response ended cleanly and its framing says it was all there. */
  readonly complete: boolean;
  /** The client-side error, if the transfer broke (e.g. 'aborted', ECONNRESET). */
  readonly error: string | undefined;
}

export interface FetchOptions {
  readonly method?: string;
  readonly headers?: Record<string, string>;
  readonly body?: string | Buffer;
  /** Absolute-form target for a forward proxy: the request goes to `url`'s host with this as the path. */
  readonly path?: string;
  /** Called once the response head has arrived (before the body). */
  readonly onResponse?: (res: IncomingMessage) => void;
  /**
   * Gives up after this long: before the head, the promise rejects with code 'HANG'; after it, the
   * outcome is incomplete with error 'HANG'. No limit by default.
   */
  readonly timeoutMs?: number;
  /** A keep-alive agent to reuse connections; by default each request has a fresh connection. */
  readonly agent?: Agent;
}

/**
 * One request on a fresh connection; resolves (never rejects) once the response ends or breaks, with
 * whether it was complete. Rejects only when no response head arrived at all.
 */
export function fetchOutcome(url: string, options: FetchOptions = {}): Promise<Outcome> {
  const u = new URL(url);
  return new Promise<Outcome>((resolve, reject) => {
    let timedOut = false;
    const req = httpRequest(
      {
        host: u.hostname,
        port: u.port,
        path: options.path ?? u.pathname + u.search,
        method: options.method ?? 'GET',
        headers: options.headers,
        agent: options.agent ?? false,
      },
      (res) => {
        options.onResponse?.(res);
        const chunks: Buffer[] = [];
        let done = false;
        const finish = (complete: boolean, error?: string) => {
          if (done) return;
          done = true;
          if (timer !== undefined) clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), complete, error: timedOut ? 'HANG' : error });
        };
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => finish(res.complete));
        res.on('aborted', () => finish(false, 'aborted'));
        res.on('error', (err: NodeJS.ErrnoException) => finish(false, err.code ?? err.message));
        res.on('close', () => finish(res.complete && res.readableEnded, res.complete ? undefined : 'closed'));
      },
    );
    const timer =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            req.destroy(Object.assign(new Error(`no response within ${options.timeoutMs} ms`), { code: 'HANG' }));
          }, options.timeoutMs);
    req.on('error', (err) => {
      if (timer !== undefined) clearTimeout(timer);
      reject(err);
    });
    req.end(options.body);
  });
}

export interface RawExchange {
  /** Every byte the server sent before it closed (or before the deadline). */
  readonly received: Buffer;
  /** The server neither closed the connection nor reset it within the deadline. */
  readonly timedOut: boolean;
  readonly error: string | undefined;
}

/**
 * Sends raw bytes on a fresh connection to 127.0.0.1:`port`, half-closes, and collects the answer until
 * the server closes the connection (or `deadlineMs` passes: then the connection is destroyed).
 */
export function rawExchange(port: number, bytes: string | Buffer, deadlineMs: number): Promise<RawExchange> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let error: string | undefined;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      socket.destroy();
    }, deadlineMs);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', (err: NodeJS.ErrnoException) => (error = err.code ?? err.message));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ received: Buffer.concat(chunks), timedOut, error });
    });
    socket.end(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes);
  });
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
