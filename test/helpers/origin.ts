/** Test origins: real HTTP servers on 127.0.0.1:0 that record every request that reaches them. */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { TestClock } from './clock.js';

export interface RecordedRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingMessage['headers'];
  readonly rawHeaders: readonly string[];
  readonly remoteAddress: string;
  readonly body: string;
}

export type OriginHandler = (req: IncomingMessage, res: ServerResponse, body: string) => unknown;

export interface Origin {
  readonly url: string;
  readonly port: number;
  readonly server: Server;
  readonly requests: RecordedRequest[];
  /** Requests whose path (without query) equals `path`. */
  count(path?: string): number;
  /** Replace the handler (e.g. make the origin fail). */
  setHandler(handler: OriginHandler): void;
  close(): Promise<void>;
}

export interface OriginOptions {
  /** The port to listen on (default: one the OS chooses). */
  readonly port?: number;
  /**
   * Stamps every response's Date from this clock instead of the real one (a handler may still set its
   * own Date, or turn it off with `res.sendDate = false`).
   */
  readonly clock?: TestClock;
}

/** Starts an origin. The handler sees the whole request body as a string. */
export async function startOrigin(handler: OriginHandler = (_req, res) => res.end('ok'), options: OriginOptions = {}): Promise<Origin> {
  const { port = 0, clock } = options;
  const requests: RecordedRequest[] = [];
  const sockets = new Set<Socket>();
  let current = handler;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      requests.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        remoteAddress: req.socket.remoteAddress ?? '',
        body,
      });
      if (clock !== undefined) stampDate(res, clock);
      Promise.resolve(current(req, res, body)).catch((err: unknown) => {
        res.destroy(err as Error);
      });
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const bound = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${bound}`,
    port: bound,
    server,
    requests,
    count: (path) => (path === undefined ? requests.length : requests.filter((r) => r.url.split('?')[0] === path).length),
    setHandler: (h) => {
      current = h;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** An address on loopback that refuses connections (a port we bound and released). */
export async function deadAddress(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

/**
 * Sets Date from `clock` when the head is written, unless the handler set its own or turned Date off
 * (Node would otherwise write the real time).
 */
function stampDate(res: ServerResponse, clock: TestClock): void {
  const writeHead = res.writeHead;
  res.writeHead = function (this: ServerResponse, ...args: Parameters<ServerResponse['writeHead']>) {
    if (this.sendDate && !this.hasHeader('date')) this.setHeader('date', clock.httpDate());
    return writeHead.apply(this, args);
  } as ServerResponse['writeHead'];
}
