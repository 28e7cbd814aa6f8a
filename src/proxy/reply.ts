/** Writing to the client: a reply (from cache or upstream), or an error page that says what went wrong. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { CacheReply } from '../cache/types.js';
import { ERROR_KINDS, ProxyError } from './errors.js';

/**
 * Writes a reply. A streamed body that fails half-way destroys the client connection, so the client
 * sees a truncated transfer and never a short response passed off as complete.
 */
export function writeReply(res: ServerResponse, reply: CacheReply, extraHeaders: readonly string[] | null): void {
  const headers = extraHeaders === null ? reply.rawHeaders : reply.rawHeaders.concat(extraHeaders);
  res.writeHead(reply.status, reply.statusMessage || undefined, headers);
  const body = reply.body;
  if (body === null) {
    res.end();
  } else if (Buffer.isBuffer(body)) {
    res.end(body);
  } else {
    pipeBody(body, res);
  }
}

function pipeBody(body: Readable, res: ServerResponse): void {
  const onError = () => {
    body.unpipe(res);
    res.destroy();
  };
  body.once('error', onError);
  // Ends without 'end' (destroyed by the upstream side): the client must not see a clean end.
  body.once('close', () => {
    if (!body.readableEnded && !res.writableEnded) onError();
  });
  res.once('close', () => {
    if (!body.readableEnded) body.destroy();
  });
  body.pipe(res);
}

/** Writes an error response (or drops the connection when the response has already started). */
export function writeError(req: IncomingMessage, res: ServerResponse, err: ProxyError, proxyName = 'portico'): void {
  if (res.writableEnded) return; // already answered in full
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const kind = ERROR_KINDS[err.code];
  const wantsHtml = (req.headers.accept ?? '').includes('text/html');
  const body = wantsHtml ? errorHtml(err.status, kind.title, err.message) : `${err.status} ${kind.title}: ${err.message}\n`;
  const headers: Record<string, string | number> = {
    'content-type': wantsHtml ? 'text/html; charset=utf-8' : 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    'proxy-status': `${proxyName}; error=${kind.proxyStatus}; details=${quoteSf(err.message)}`,
    ...err.headers,
  };
  if (err.source === 'client' && err.status === 400) headers.connection = 'close';
  res.writeHead(err.status, headers);
  res.end(req.method === 'HEAD' ? undefined : body);
}

function errorHtml(status: number, title: string, message: string): string {
  const text = escapeHtml(message);
  return `<!doctype html><html><head><meta charset="utf-8"><title>${status} ${title}</title></head><body style="font-family:system-ui,sans-serif;max-width:40em;margin:4em auto;padding:0 1em"><h1>${status} ${title}</h1><p>${text}</p><hr><p><small>Portico</small></p></body></html>\n`;
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** RFC 8941 sf-string. */
export function quoteSf(text: string): string {
  return `"${text.replace(/[\\"]/g, '\\$&').replace(/[^\x20-\x7e]/g, '?')}"`;
}

/** Turns any thrown value into a ProxyError. */
export function asProxyError(err: unknown): ProxyError {
  if (err instanceof ProxyError) return err;
  return new ProxyError('internal', 'the proxy failed to handle this request', { cause: err });
}
