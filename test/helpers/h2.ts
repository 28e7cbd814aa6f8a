/** A small client over Node's own `http2` module: one session, requests with their whole answers. */
import { connect, type ClientHttp2Session, type IncomingHttpHeaders, type IncomingHttpStatusHeader, type OutgoingHttpHeaders } from 'node:http2';

export interface H2Reply {
  readonly status: number;
  readonly headers: IncomingHttpHeaders & IncomingHttpStatusHeader;
  readonly body: Buffer;
  readonly text: string;
  /** Interim responses (1xx) in the order they came. */
  readonly informational: (IncomingHttpHeaders & IncomingHttpStatusHeader)[];
  readonly trailers: IncomingHttpHeaders | undefined;
}

/**
 * Connects to `url` (https: or http: for h2c with prior knowledge), accepting any certificate; resolves
 * once the server's SETTINGS are in (its stream and header limits hold from then on).
 */
export async function h2Connect(url: string, settings?: Parameters<typeof connect>[1]): Promise<ClientHttp2Session> {
  const session = connect(url, { rejectUnauthorized: false, ...settings });
  await new Promise<void>((resolve, reject) => {
    session.once('remoteSettings', () => resolve());
    session.once('error', reject);
  });
  session.on('error', () => {});
  return session;
}

/** One request on `session`; resolves with the whole answer. */
export function h2Request(session: ClientHttp2Session, path: string, headers: OutgoingHttpHeaders = {}, body?: Buffer | string): Promise<H2Reply> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':path': path, ...headers }, { endStream: body === undefined });
    const informational: H2Reply['informational'] = [];
    let head: (IncomingHttpHeaders & IncomingHttpStatusHeader) | undefined;
    let trailers: IncomingHttpHeaders | undefined;
    const chunks: Buffer[] = [];
    stream.on('headers', (h) => informational.push(h));
    stream.on('response', (h) => (head = h));
    stream.on('trailers', (t) => (trailers = t));
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('error', reject);
    stream.on('close', () => {
      if (head === undefined) {
        reject(new Error(`stream closed without a response (code ${stream.rstCode})`));
        return;
      }
      const all = Buffer.concat(chunks);
      resolve({ status: Number(head[':status']), headers: head, body: all, text: all.toString('utf8'), informational, trailers });
    });
    if (body !== undefined) stream.end(body);
  });
}

/** Closes a session and waits for it. */
export function h2Close(session: ClientHttp2Session): Promise<void> {
  if (session.closed || session.destroyed) return Promise.resolve();
  return new Promise((resolve) => session.close(() => resolve()));
}
