/**
 * A raw origin (no HTTP library on its side) that reads each request head on a connection and answers
 * it with the bytes a `Responder` chooses: a good response, or a broken one followed by a FIN, a reset,
 * a stall, or the connection left open for the next request. Built on `rawOrigin`; used by the
 * origin-fault corpus and the fuzzer.
 */
import type { Socket } from 'node:net';
import { rawOrigin, type RawOrigin } from './helpers.js';

/** What the origin does after the reply's bytes: FIN, RST, nothing at all, or read the next request. */
export type AfterReply = 'end' | 'reset' | 'stall' | 'keep';

/** Bytes to write, or a pause between writes (so that what was written goes out on its own first). */
export type ReplyStep = string | Buffer | { readonly pauseMs: number };

export interface ScriptedReply {
  readonly steps: readonly ReplyStep[];
  readonly then: AfterReply;
  /** Written only once this settles (to hold a response while concurrent requests pile up). */
  readonly hold?: Promise<unknown>;
  /** With `keep`: FIN when no next request came within this long (a server's keep-alive timeout). */
  readonly idleCloseMs?: number;
}

export interface OriginRequest {
  readonly method: string;
  readonly target: string;
  /** Lower-case names; repeated fields joined with ", ". */
  readonly headers: Readonly<Record<string, string>>;
}

export type Responder = (req: OriginRequest) => ScriptedReply;

/** A reply as it went out: `closed` settles when its connection has closed (either side). */
export interface SentReply {
  readonly request: OriginRequest;
  readonly reply: ScriptedReply;
  readonly closed: Promise<void>;
}

export interface ScriptedOrigin extends RawOrigin {
  /** Every request whose head arrived, in order. */
  readonly requests: readonly OriginRequest[];
  readonly sent: readonly SentReply[];
  respondWith(responder: Responder): void;
  /** Resolves when the origin has received `count` requests in all (at once if it already has). */
  received(count: number, timeoutMs?: number): Promise<boolean>;
  /** Resolves true once `test` holds, checked now and after each request that arrives; false after `timeoutMs`. */
  until(test: () => boolean, timeoutMs?: number): Promise<boolean>;
}

/** latin1: every byte of a corpus string goes out as written (NUL, CR, 0xFF...). */
export const bytes = (step: string | Buffer): Buffer => (typeof step === 'string' ? Buffer.from(step, 'latin1') : step);

/** A well-formed response (keep-alive) with a Content-Length body. */
export function goodReply(body: string, headers: Readonly<Record<string, string>> = {}, status = '200 OK'): ScriptedReply {
  const lines = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  return { steps: [`HTTP/1.1 ${status}\r\n${lines}Content-Length: ${Buffer.byteLength(body, 'latin1')}\r\n\r\n${body}`], then: 'keep' };
}

const MAX_HEAD = 256 * 1024;

export async function scriptedOrigin(responder: Responder): Promise<ScriptedOrigin> {
  let respond = responder;
  const requests: OriginRequest[] = [];
  const sent: SentReply[] = [];
  const waiters: Array<{ test: () => boolean; resolve: (ok: boolean) => void }> = [];
  const arrived = (req: OriginRequest) => {
    requests.push(req);
    for (let i = waiters.length - 1; i >= 0; i--) {
      if (waiters[i]!.test()) waiters.splice(i, 1)[0]!.resolve(true);
    }
  };
  const until = (test: () => boolean, timeoutMs = 2_000) =>
    test()
      ? Promise.resolve(true)
      : new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => {
            const i = waiters.indexOf(waiter);
            if (i >= 0) waiters.splice(i, 1)[0]!.resolve(false);
          }, timeoutMs);
          const waiter = {
            test,
            resolve: (ok: boolean) => {
              clearTimeout(timer);
              resolve(ok);
            },
          };
          waiters.push(waiter);
        });

  const onConnection = (socket: Socket) => {
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    let buffered: Buffer = Buffer.alloc(0);
    let skipBody = 0;
    let busy = false;
    let idle: NodeJS.Timeout | undefined;
    const onData = (chunk: Buffer) => {
      clearTimeout(idle);
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      pump();
    };
    const pump = () => {
      while (!busy) {
        if (skipBody > 0) {
          const n = Math.min(skipBody, buffered.length);
          skipBody -= n;
          buffered = buffered.subarray(n);
          if (skipBody > 0) return;
        }
        const end = buffered.indexOf('\r\n\r\n');
        if (end < 0) {
          if (buffered.length > MAX_HEAD) socket.destroy();
          return;
        }
        const head = buffered.subarray(0, end).toString('latin1');
        buffered = buffered.subarray(end + 4);
        const req = parseRequestHead(head);
        skipBody = Number(req.headers['content-length'] ?? 0) || 0;
        clearTimeout(idle);
        const reply = respond(req);
        sent.push({ request: req, reply, closed });
        arrived(req);
        busy = true;
        void write(socket, reply).then(() => {
          busy = false;
          if (reply.then === 'keep' && !socket.destroyed) {
            if (reply.idleCloseMs !== undefined) idle = setTimeout(() => socket.end(), reply.idleCloseMs);
            pump();
          } else socket.off('data', onData);
        });
      }
    };
    socket.on('data', onData);
    socket.once('close', () => clearTimeout(idle));
  };

  const raw = await rawOrigin(onConnection);
  return Object.assign(raw, {
    requests,
    sent,
    respondWith: (r: Responder) => {
      respond = r;
    },
    received: (count: number, timeoutMs?: number) => until(() => requests.length >= count, timeoutMs),
    until,
  });
}

async function write(socket: Socket, reply: ScriptedReply): Promise<void> {
  if (reply.hold !== undefined) await reply.hold;
  for (const step of reply.steps) {
    if (socket.destroyed) return;
    if (typeof step === 'object' && 'pauseMs' in step) await new Promise((r) => setTimeout(r, step.pauseMs));
    else socket.write(bytes(step));
  }
  if (socket.destroyed) return;
  switch (reply.then) {
    case 'end':
      socket.end();
      break;
    case 'reset':
      // Let the bytes go out first: a reset discards what is still queued in the kernel.
      await new Promise<void>((resolve) => (socket.writableLength === 0 ? resolve() : socket.once('drain', () => resolve())));
      socket.resetAndDestroy();
      break;
    case 'stall':
    case 'keep':
      break;
  }
}

function parseRequestHead(head: string): OriginRequest {
  const [line = '', ...fields] = head.split('\r\n');
  const [method = '', target = ''] = line.split(' ');
  const headers: Record<string, string> = {};
  for (const field of fields) {
    const colon = field.indexOf(':');
    if (colon <= 0) continue;
    const name = field.slice(0, colon).trim().toLowerCase();
    const value = field.slice(colon + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  return { method, target, headers };
}
