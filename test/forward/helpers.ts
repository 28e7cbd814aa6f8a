/**
 * Helpers for forward-proxy tests: a ForwardProxy on its own listener (so tests can inject a clock,
 * a DNS lookup or an environment and count what it handled), a CONNECT client, HTTPS origins with
 * self-signed certificates, and curl. Plain requests through the proxy: viaProxy (test/helpers/http.ts).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo, LookupFunction, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { validateConfig } from '../../src/config/load.js';
import type { ConfigInput } from '../../src/config/schema.js';
import type { OwnListener } from '../../src/forward/destination-guard.js';
import { ForwardProxy } from '../../src/forward/forward-proxy.js';
import { silentLogger, type Logger } from '../../src/core/log.js';
import type { ExchangeRecord } from '../../src/pipeline/session.js';
import { admissionCheck } from '../../src/runtime.js';
import { exchangeHead, type HeadReply } from '../helpers/raw.js';
import { selfSignedCert } from '../helpers/tls.js';

export interface Handled {
  readonly record: ExchangeRecord;
  readonly status: number;
}

export interface RunningForward {
  readonly url: string;
  readonly port: number;
  readonly proxy: ForwardProxy;
  /** Every request and tunnel the proxy finished, in order. */
  readonly handled: Handled[];
  close(): Promise<void>;
}

export interface ForwardExtras {
  readonly env?: NodeJS.ProcessEnv;
  readonly now?: () => Date;
  readonly lookup?: LookupFunction;
  readonly readFile?: (path: string) => string;
  readonly log?: Logger;
  /** This process's other listeners (admin, reverse); the forward listener itself is always added. */
  readonly ownAddresses?: readonly OwnListener[];
}

type ForwardInput = NonNullable<ConfigInput['forward']>;

/** A ForwardProxy (no cache) on 127.0.0.1:0, wired like src/server.ts wires it. */
export async function startForward(config: Omit<ForwardInput, 'listen'> = {}, extras: ForwardExtras = {}): Promise<RunningForward> {
  const fullConfig = validateConfig({ forward: { listen: '127.0.0.1:0', upstream_proxy: 'direct', ...config } });
  const forwardConfig = fullConfig.forward!;
  const handled: Handled[] = [];
  // The listener's port is known once it listens: the guard asks for the list at each check.
  let own: readonly OwnListener[] = extras.ownAddresses ?? [];
  const proxy = new ForwardProxy({
    config: forwardConfig,
    admission: admissionCheck(fullConfig.limits, forwardConfig.rate_limit, 'the forward proxy'),
    cache: null,
    sink: { log: extras.log ?? silentLogger, onDone: (record, status) => handled.push({ record, status }), onBlocked: undefined },
    env: extras.env ?? {},
    now: extras.now,
    lookup: extras.lookup,
    readFile: extras.readFile,
    ownAddresses: () => own,
  });
  const sockets = new Set<Socket>();
  const server = createServer({ keepAliveTimeout: 5_000 });
  server.on('request', (req: IncomingMessage, res: ServerResponse) => proxy.handleRequest(req, res));
  server.on('connect', (req: IncomingMessage, socket: Duplex, head: Buffer) => proxy.handleConnect(req, socket, head));
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  own = [{ key: 'forward.listen', host: '127.0.0.1', port }, ...own];
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    proxy,
    handled,
    close: () =>
      new Promise<void>((resolve) => {
        proxy.stop();
        proxy.closeTunnels();
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

export type ConnectReply = HeadReply;

/** Sends `CONNECT authority` and parses the proxy's answer (a 200 leaves the tunnel open on `socket`). */
export function connectThrough(
  port: number,
  authority: string,
  headers: Record<string, string> = {},
  options: { localAddress?: string } = {},
): Promise<ConnectReply> {
  let text = `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n`;
  for (const [name, value] of Object.entries(headers)) text += `${name}: ${value}\r\n`;
  return exchangeHead(port, `${text}\r\n`, { ...options, opens: (status) => status === 200 });
}

/** Speaks TLS over an established tunnel and sends one GET; resolves with status and body. */
export async function httpsGetOverTunnel(socket: Socket, host: string, path: string): Promise<{ status: number; body: string; tls: TLSSocket }> {
  const tls = tlsConnect({ socket, servername: host === '127.0.0.1' ? undefined : host, rejectUnauthorized: false });
  await new Promise<void>((resolve, reject) => {
    tls.once('secureConnect', () => resolve());
    tls.once('error', reject);
  });
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host, path, method: 'GET', createConnection: () => tls, headers: { host } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), tls }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

export interface HttpsOrigin {
  readonly port: number;
  readonly url: string;
  readonly server: HttpsServer;
  readonly paths: string[];
  close(): Promise<void>;
}

/** An HTTPS origin with a self-signed certificate for localhost / 127.0.0.1. */
export async function startHttpsOrigin(body = 'secure hello'): Promise<HttpsOrigin> {
  const cert = await selfSignedCert('localhost');
  const paths: string[] = [];
  const sockets = new Set<Socket>();
  const server = createHttpsServer({ key: cert.key, cert: cert.cert }, (req, res) => {
    paths.push(req.url ?? '');
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><title>secure</title><p id="msg">${body}</p>`);
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('secureConnection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `https://127.0.0.1:${port}`,
    server,
    paths,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

export const CURL = '/usr/bin/curl';
export const hasCurl = existsSync(CURL);

/** Runs curl (never through any proxy from the environment) and resolves with its output and exit code. */
export function curl(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(CURL, ['--noproxy', '', '-sS', '--max-time', '10', ...args], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** A DNS lookup for tests: names in `table` resolve to 127.0.0.1 (or the given address), others fail with ENOTFOUND; every call is recorded. */
export function fakeLookup(table: Record<string, string> = {}): LookupFunction & { calls: string[] } {
  const calls: string[] = [];
  const lookup = ((hostname: string, options: unknown, callback: (...args: unknown[]) => void) => {
    calls.push(hostname);
    const cb = typeof options === 'function' ? (options as typeof callback) : callback;
    const all = typeof options === 'object' && options !== null && (options as { all?: boolean }).all === true;
    const address = table[hostname] ?? (hostname === 'localhost' || /^\d+\.\d+\.\d+\.\d+$/.test(hostname) ? '127.0.0.1' : undefined);
    process.nextTick(() => {
      if (address === undefined) {
        const err = Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND', hostname });
        cb(err);
      } else if (all) {
        cb(null, [{ address, family: 4 }]);
      } else {
        cb(null, address, 4);
      }
    });
  }) as LookupFunction & { calls: string[] };
  lookup.calls = calls;
  return lookup;
}
