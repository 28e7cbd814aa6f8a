/** A plain HTTP client for tests: one request on a fresh connection, whole body as a string. */
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';

export interface Reply {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

export interface RequestOptions {
  readonly method?: string;
  readonly headers?: Record<string, string | string[]>;
  readonly body?: string | Buffer;
  /** Source address, e.g. 127.0.0.7 (any 127/8 address works on loopback). */
  readonly localAddress?: string;
  readonly rejectUnauthorized?: boolean;
  /** Send this request target as is (the URL's path is normalised by the URL parser otherwise). */
  readonly path?: string;
}

export function request(url: string, options: RequestOptions = {}): Promise<Reply> {
  const u = new URL(url);
  const send = u.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise<Reply>((resolve, reject) => {
    const req = send(
      {
        host: u.hostname,
        port: u.port,
        path: options.path ?? u.pathname + u.search,
        method: options.method ?? 'GET',
        headers: options.headers,
        agent: false,
        localAddress: options.localAddress,
        rejectUnauthorized: options.rejectUnauthorized ?? false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

/** Polls `check` until it returns true or `timeoutMs` passes (for state that changes on its own timer). */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 5_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
