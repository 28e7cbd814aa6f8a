/**
 * The pipeline tests' setup: a real Portico (forward, reverse, admin) with a recording logger, in front
 * of one backend that counts what reaches it — plain requests and Upgrade requests (a WebSocket, or
 * any other protocol it switches to and echoes) — and clients for every entry point: a plain request
 * through either door, a CONNECT, an Upgrade. Every request can come from its own loopback address
 * (127.0.0.0/8 all lands on lo), so that its access-log line is told apart by `client`.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import type { ConfigInput } from '../../src/config/schema.js';
import { requestsInFlight } from '../../src/pipeline/session.js';
import { recordingLogger, type LogLine } from '../balance/logs.js';
import { connectThrough } from '../forward/helpers.js';
import type { TestClock } from '../helpers/clock.js';
import { fetchOutcome, waitFor } from '../helpers/http.js';
import { startOrigin, type Origin } from '../helpers/origin.js';
import { startPortico, type RunningPortico } from '../helpers/portico.js';
import { exchangeHead } from '../helpers/raw.js';

/** What one request came back with, whatever the entry point. */
export interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

export interface Backend {
  readonly origin: Origin;
  /** Upgrade requests that reached the backend: path and Upgrade header. */
  readonly upgrades: { readonly url: string; readonly upgrade: string }[];
  /** Plain requests plus Upgrade requests whose path contains `marker`. */
  reached(marker: string): number;
}

/** A backend that answers `ok METHOD URL` and accepts every Upgrade (WebSocket or any other protocol). */
export async function startBackend(): Promise<Backend> {
  const origin = await startOrigin((req, res) => res.end(`ok ${req.method} ${req.url}`));
  const wss = new WebSocketServer({ noServer: true });
  const upgrades: { url: string; upgrade: string }[] = [];
  origin.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    const upgrade = req.headers.upgrade ?? '';
    upgrades.push({ url: req.url ?? '', upgrade });
    if (upgrade.toLowerCase() === 'websocket') {
      wss.handleUpgrade(req, socket, head, (ws) => ws.send('hello'));
      return;
    }
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${upgrade}\r\n\r\n`);
    socket.pipe(socket);
  });
  return {
    origin,
    upgrades,
    reached: (marker) => origin.requests.filter((r) => r.url.includes(marker)).length + upgrades.filter((u) => u.url.includes(marker)).length,
  };
}

export interface Rig {
  readonly portico: RunningPortico;
  readonly lines: LogLine[];
  readonly forwardPort: number;
  readonly reversePort: number;
  readonly adminPort: number;
  /** Every access-log line (`msg: request`). */
  accessLines(): LogLine[];
  close(): Promise<void>;
}

/** Starts Portico with `config` and a recording logger (and `clock`, if given). */
export async function startRig(config: ConfigInput, clock?: TestClock): Promise<Rig> {
  const { log, lines } = recordingLogger();
  const portico = await startPortico(config, { log, now: clock?.now });
  const portOf = (url: string | undefined) => (url === undefined ? 0 : Number(new URL(url).port));
  return {
    portico,
    lines,
    forwardPort: portOf(portico.forwardUrl),
    reversePort: portOf(portico.reverseUrl || undefined),
    adminPort: portOf(portico.adminUrl),
    accessLines: () => lines.filter((l) => l.msg === 'request'),
    close: () => portico.stop(),
  };
}

/** Basic credentials for Proxy-Authorization. */
export const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

export interface Sent {
  /** Source address (default 127.0.0.1). */
  readonly client?: string;
  readonly method?: string;
  readonly headers?: Record<string, string>;
}

/** A plain request to the reverse listener; `host` is the Host header. */
export async function reverseHttp(rig: Rig, host: string, path: string, sent: Sent = {}): Promise<Answer> {
  const o = await fetchOutcome(`http://127.0.0.1:${rig.reversePort}${path}`, {
    method: sent.method,
    path,
    headers: { host, ...sent.headers },
    localAddress: sent.client,
  });
  return { status: o.status, headers: o.headers, body: o.body.toString('utf8') };
}

/** An absolute-form request through the forward listener. */
export async function forwardHttp(rig: Rig, url: string, sent: Sent = {}): Promise<Answer> {
  const o = await fetchOutcome(url, { proxy: `http://127.0.0.1:${rig.forwardPort}`, method: sent.method, headers: sent.headers, localAddress: sent.client });
  return { status: o.status, headers: o.headers, body: o.body.toString('utf8') };
}

/** A CONNECT through the forward listener; an established tunnel is closed at once. */
export async function forwardConnect(rig: Rig, authority: string, sent: Sent = {}): Promise<Answer> {
  const reply = await connectThrough(rig.forwardPort, authority, sent.headers, { localAddress: sent.client });
  if (reply.status === 200) reply.socket.destroy();
  return { status: reply.status, headers: reply.headers, body: reply.body };
}

/**
 * An Upgrade request (`Connection: Upgrade`, `Upgrade: upgrade`, and the WebSocket handshake fields)
 * to the listener on `port`; a switched connection (101) is closed at once.
 */
export async function upgradeRequest(port: number, host: string, path: string, upgrade: string, sent: Sent = {}): Promise<Answer> {
  let text = `${sent.method ?? 'GET'} ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: Upgrade\r\nUpgrade: ${upgrade}\r\n`;
  text += 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n';
  for (const [name, value] of Object.entries(sent.headers ?? {})) text += `${name}: ${value}\r\n`;
  const reply = await exchangeHead(port, `${text}\r\n`, { localAddress: sent.client, opens: (status) => status === 101 });
  if (reply.status === 101) reply.socket.destroy();
  return { status: reply.status, headers: reply.headers, body: reply.body };
}

/** Resolves once every request Portico started has finished (written its access-log line). */
export function allFinished(): Promise<void> {
  return waitFor(() => requestsInFlight(1).length === 0, 5_000, 'every request to finish');
}

/** Loopback addresses, a fresh one per call: 127.0.<n>.<m>, from `base` (a /16 prefix such as '127.0'). */
export function addresses(base: string): () => string {
  let n = 0;
  return () => {
    n++;
    return `${base}.${Math.floor(n / 250)}.${(n % 250) + 1}`;
  };
}
