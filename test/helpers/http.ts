/**
 * The tests' HTTP client: one request on a fresh connection (unless given an agent), to a server or
 * through a forward proxy. `fetchOutcome` says what a client saw, complete or not (it never rejects
 * once a response head has arrived); `request` is the same for a response that must arrive whole, with
 * its body as a string. For bytes Node's client would not send, see raw.ts.
 */
import { request as httpRequest, type Agent, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';

/** A whole response. */
export interface Reply {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

/** What a client saw of one response. */
export interface Outcome {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  /** True only when the response ended cleanly and its framing says it was all there. */
  readonly complete: boolean;
  /** The client-side error, if the transfer broke (e.g. 'aborted', ECONNRESET, 'HANG'). */
  readonly error: string | undefined;
}

export interface RequestOptions {
  readonly method?: string;
  readonly headers?: Record<string, string | string[]>;
  readonly body?: string | Buffer;
  /**
   * Send it through the forward proxy at this URL: the request target is `url` itself (absolute form),
   * with Host from `url` unless `headers` has one.
   */
  readonly proxy?: string;
  /** Send this request target as is (the URL's path is normalised by the URL parser otherwise). */
  readonly path?: string;
  /** Source address, e.g. 127.0.0.7 (any 127/8 address works on loopback). */
  readonly localAddress?: string;
  /** For https URLs; false by default (tests use self-signed certificates). */
  readonly rejectUnauthorized?: boolean;
  /** A keep-alive agent to reuse connections; by default each request has a fresh connection. */
  readonly agent?: Agent;
  /** Called once the response head has arrived (before the body). */
  readonly onResponse?: (res: IncomingMessage) => void;
  /**
   * Gives up after this long: before the head, the promise rejects with code 'HANG'; after it, the
   * outcome is incomplete with error 'HANG'. No limit by default.
   */
  readonly timeoutMs?: number;
}

/** One request; rejects when no response head arrived or the response broke off. */
export async function request(url: string, options: RequestOptions = {}): Promise<Reply> {
  const outcome = await fetchOutcome(url, options);
  if (!outcome.complete) throw Object.assign(new Error(`the response from ${url} broke off (${outcome.error})`), { code: outcome.error });
  return { status: outcome.status, headers: outcome.headers, body: outcome.body.toString('utf8') };
}

/** An absolute-form request (`GET http://host/path HTTP/1.1`) through the forward proxy at `proxyUrl`. */
export function viaProxy(proxyUrl: string, targetUrl: string, options: Omit<RequestOptions, 'proxy'> = {}): Promise<Reply> {
  return request(targetUrl, { ...options, proxy: proxyUrl });
}

/**
 * One request; resolves (never rejects) once the response ends or breaks, with whether it was
 * complete. Rejects only when no response head arrived at all.
 */
export function fetchOutcome(url: string, options: RequestOptions = {}): Promise<Outcome> {
  const target = new URL(url);
  const server = options.proxy === undefined ? target : new URL(options.proxy);
  const send = server.protocol === 'https:' ? httpsRequest : httpRequest;
  const headers: Record<string, string | string[]> = {};
  if (options.proxy !== undefined) headers.host = target.host;
  // Node's client sends a DELETE or OPTIONS body without any framing unless told.
  const named = (name: string) => Object.keys(options.headers ?? {}).some((n) => n.toLowerCase() === name);
  if (options.body !== undefined && !named('transfer-encoding') && !named('content-length')) headers['content-length'] = String(Buffer.byteLength(options.body));
  if (named('host')) delete headers.host;
  Object.assign(headers, options.headers);
  return new Promise<Outcome>((resolve, reject) => {
    let timedOut = false;
    const req = send(
      {
        host: server.hostname,
        port: server.port,
        path: options.path ?? (options.proxy === undefined ? target.pathname + target.search : url),
        method: options.method ?? 'GET',
        headers,
        agent: options.agent ?? false,
        localAddress: options.localAddress,
        rejectUnauthorized: options.rejectUnauthorized ?? false,
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

/** Polls `check` until it returns true or `timeoutMs` passes (for state that changes on its own timer). */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 5_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
