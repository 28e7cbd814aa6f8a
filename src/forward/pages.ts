/**
 * What the forward proxy itself answers: the "blocked by policy" page, the page for requests that are
 * not proxy requests, and error responses written raw to a CONNECT socket (which has no
 * ServerResponse).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { ERROR_KINDS, type ProxyError } from '../proxy/errors.js';
import { escapeHtml, quoteSf } from '../proxy/reply.js';

export interface Page {
  readonly status: number;
  readonly title: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

const STYLE = 'font-family:system-ui,sans-serif;max-width:40em;margin:4em auto;padding:0 1em;line-height:1.5';

function html(title: string, inner: string): string {
  return `<!doctype html><html><head><meta charset="utf-8"><meta name="robots" content="noindex"><title>${escapeHtml(title)}</title></head><body style="${STYLE}">${inner}<hr><p><small>Portico forward proxy</small></p></body></html>\n`;
}

function wantsHtml(accept: string | undefined): boolean {
  return accept !== undefined && accept.includes('text/html');
}

/** 403 for a request denied by an access rule; names the rule. */
export function blockedPage(target: string, ruleLabel: string, accept: string | undefined): Page {
  const message = `Access to ${target} is blocked by policy (rule ${ruleLabel}).`;
  const headers = {
    'cache-control': 'no-store',
    'proxy-status': `portico; error=http_request_denied; details=${quoteSf(`blocked by rule ${ruleLabel}`)}`,
  };
  if (wantsHtml(accept)) {
    return {
      status: 403,
      title: 'Forbidden',
      headers: { ...headers, 'content-type': 'text/html; charset=utf-8' },
      body: html(
        'Blocked by policy',
        `<h1>Blocked by policy</h1><p>Access to <strong>${escapeHtml(target)}</strong> is blocked by this proxy's policy.</p><p>Rule: <code>${escapeHtml(ruleLabel)}</code></p><p>If you think this is a mistake, contact the administrator of this proxy.</p>`,
      ),
    };
  }
  return { status: 403, title: 'Forbidden', headers: { ...headers, 'content-type': 'text/plain; charset=utf-8' }, body: `403 Forbidden: ${message}\n` };
}

/** The answer to an origin-form request (`GET /`) sent to the forward listener. */
export function notAProxyRequestPage(host: string, accept: string | undefined): Page {
  const pac = `http://${host}/proxy.pac`;
  const text = `This is Portico's forward proxy, not a web server. Configure ${host} as the HTTP and HTTPS proxy of your browser or tool (e.g. curl -x http://${host} http://example.com/), or use the proxy auto-config file ${pac}.`;
  if (wantsHtml(accept)) {
    return {
      status: 400,
      title: 'Bad Request',
      headers: { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' },
      body: html(
        'Portico forward proxy',
        `<h1>This is a proxy</h1><p>This address is Portico's forward proxy, not a web server.</p><p>Configure <code>${escapeHtml(host)}</code> as the HTTP and HTTPS proxy of your browser or tool, or point the browser at the proxy auto-config file <a href="${escapeHtml(pac)}">${escapeHtml(pac)}</a>.</p>`,
      ),
    };
  }
  return { status: 400, title: 'Bad Request', headers: { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' }, body: `400 Bad Request: ${text}\n` };
}

/** A ProxyError as a page (plain text: used for CONNECT, where nobody renders HTML). */
export function errorPage(err: ProxyError): Page {
  const kind = ERROR_KINDS[err.code];
  return {
    status: err.status,
    title: kind.title,
    headers: {
      'content-type': 'text/plain; charset=utf-8',
      'cache-control': 'no-store',
      'proxy-status': `portico; error=${kind.proxyStatus}; details=${quoteSf(err.message)}`,
      ...err.headers,
    },
    body: `${err.status} ${kind.title}: ${err.message}\n`,
  };
}

export function sendPage(req: IncomingMessage, res: ServerResponse, page: Page): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(page.status, { ...page.headers, 'content-length': Buffer.byteLength(page.body) });
  res.end(req.method === 'HEAD' ? undefined : page.body);
}

/** How long a refused CONNECT socket may stay half-closed before it is destroyed. */
const LINGER_MS = 2_000;

/** Writes `page` to a CONNECT socket and closes it. */
export function sendRawPage(socket: Duplex, page: Page): void {
  if (socket.destroyed || !socket.writable) {
    socket.destroy();
    return;
  }
  let head = `HTTP/1.1 ${page.status} ${page.title}\r\n`;
  for (const name in page.headers) head += `${name}: ${page.headers[name]}\r\n`;
  head += `content-length: ${Buffer.byteLength(page.body)}\r\nconnection: close\r\n\r\n`;
  socket.end(head + page.body);
  setTimeout(() => socket.destroy(), LINGER_MS).unref();
}
