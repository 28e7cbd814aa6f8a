/**
 * The tests' raw-bytes client, for what Node's HTTP client would not send (malformed requests, HTTP/1.0,
 * odd targets) or where the exact bytes of the answer matter.
 */
import { connect, type Socket } from 'node:net';

export interface RawOptions {
  /** Source address, e.g. 127.0.0.7. */
  readonly localAddress?: string;
  /** Stop (and close the connection) as soon as what arrived matches. */
  readonly endAfter?: RegExp;
  /** Half-close the connection once the bytes are written (the server sees the client's FIN). */
  readonly halfClose?: boolean;
  /** Give up after this long: the connection is destroyed and the answer says `timedOut`. */
  readonly deadlineMs?: number;
}

export interface RawAnswer {
  /** Every byte the server sent before it closed (or before `endAfter` matched, or the deadline). */
  readonly received: Buffer;
  /** The same as latin1 text. */
  readonly text: string;
  /** The server neither closed the connection nor reset it within the deadline. */
  readonly timedOut: boolean;
  readonly error: string | undefined;
}

/** Sends raw bytes on a fresh connection to 127.0.0.1:`port` and collects the answer until the server closes it. */
export function rawExchange(port: number, bytes: string | Buffer, options: RawOptions = {}): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1', localAddress: options.localAddress });
    const chunks: Buffer[] = [];
    let error: string | undefined;
    let timedOut = false;
    let settled = false;
    const settle = () => {
      if (settled) return;
      settled = true;
      if (timer !== undefined) clearTimeout(timer);
      const received = Buffer.concat(chunks);
      resolve({ received, text: received.toString('latin1'), timedOut, error });
    };
    const timer =
      options.deadlineMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            socket.destroy();
          }, options.deadlineMs);
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      if (options.endAfter?.test(Buffer.concat(chunks).toString('latin1'))) {
        socket.destroy();
        settle();
      }
    });
    socket.on('error', (err: NodeJS.ErrnoException) => (error = err.code ?? err.message));
    socket.on('close', settle);
    const data = typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes;
    if (options.halfClose) socket.end(data);
    else socket.write(data);
  });
}

/** A response read byte for byte: its status line, its fields in the order sent, its body. */
export interface RawResponse {
  readonly statusLine: string;
  readonly status: number;
  readonly fields: readonly (readonly [string, string])[];
  readonly body: string;
}

/** Splits the first response in `text` (latin1) into status line, fields and body (the rest). */
export function parseRawResponse(text: string): RawResponse {
  const end = text.indexOf('\r\n\r\n');
  const [statusLine = '', ...lines] = (end < 0 ? text : text.slice(0, end)).split('\r\n');
  const fields = lines.map((l) => {
    const colon = l.indexOf(':');
    return [l.slice(0, colon), l.slice(colon + 1).trim()] as const;
  });
  return { statusLine, status: Number(statusLine.split(' ')[1]), fields, body: end < 0 ? '' : text.slice(end + 4) };
}

/** The first value of field `name` (any case), or undefined. */
export function fieldOf(response: RawResponse, name: string): string | undefined {
  const lower = name.toLowerCase();
  return response.fields.find(([n]) => n.toLowerCase() === lower)?.[1];
}

/** The answer to a request head sent with exchangeHead. */
export interface HeadReply {
  readonly status: number;
  /** The status line and header lines. */
  readonly head: string;
  /** Header fields, names in lower case (the last of repeated ones). */
  readonly headers: Record<string, string>;
  /** For an answer that closes the connection, its body (read to the end). */
  readonly body: string;
  /** For an answer that opens the connection (`opens`), the socket; bytes after the head are unshifted back. */
  readonly socket: Socket;
}

export interface HeadOptions {
  /** Source address, e.g. 127.0.0.7. */
  readonly localAddress?: string;
  /** Statuses that turn the connection into a tunnel (default 200, for CONNECT, and 101). */
  readonly opens?: (status: number) => boolean;
}

/**
 * Sends a request head (`text`, up to and including its blank line) on a fresh connection to
 * 127.0.0.1:`port`. An answer that opens the connection resolves as soon as its head has arrived, with
 * the socket to go on with; any other once the server has closed the connection, with its body.
 */
export function exchangeHead(port: number, text: string, options: HeadOptions = {}): Promise<HeadReply> {
  const opens = options.opens ?? ((status: number) => status === 200 || status === 101);
  return new Promise<HeadReply>((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1', localAddress: options.localAddress });
    let buffer = Buffer.alloc(0);
    let parsed: Omit<HeadReply, 'body'> | null = null;
    const onData = (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      if (parsed !== null) return;
      const end = buffer.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buffer.subarray(0, end).toString('latin1');
      const rest = buffer.subarray(end + 4);
      const lines = head.split('\r\n');
      const status = Number(lines[0]!.split(' ')[1]);
      const headers: Record<string, string> = {};
      for (const line of lines.slice(1)) {
        const i = line.indexOf(':');
        headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
      }
      parsed = { status, head, headers, socket };
      if (opens(status)) {
        socket.removeListener('data', onData);
        socket.removeListener('error', reject);
        if (rest.length > 0) socket.unshift(rest);
        resolve({ ...parsed, body: '' });
      } else {
        buffer = rest;
      }
    };
    socket.on('data', onData);
    socket.on('error', reject);
    socket.on('close', () => {
      if (parsed === null) reject(new Error(`connection closed before an answer: ${buffer.toString('latin1')}`));
      else if (!opens(parsed.status)) resolve({ ...parsed, body: buffer.toString('utf8') });
    });
    socket.write(text);
  });
}
