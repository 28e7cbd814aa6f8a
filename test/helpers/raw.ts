/**
 * The tests' raw-bytes client, for what Node's HTTP client would not send (malformed requests, HTTP/1.0,
 * odd targets) or where the exact bytes of the answer matter.
 */
import { connect } from 'node:net';

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
