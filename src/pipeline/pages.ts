/**
 * What the proxy answers by itself, as complete pages: error pages (every ProxyError: status, RFC 9209
 * Proxy-Status and a short body saying what went wrong), the "blocked by policy" page naming the rule,
 * and the page for requests that are not proxy requests. HTML for browsers, plain text for tools. A page
 * is written by whichever downstream the request came on (src/pipeline/downstream.ts).
 */
import { ERROR_KINDS, type ProxyError } from '../core/errors.js';

export interface Page {
  readonly status: number;
  readonly title: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
  /** Close the connection after this page (malformed requests: what follows cannot be trusted). */
  readonly close?: boolean;
}

const STYLE = 'font-family:system-ui,sans-serif;max-width:40em;margin:4em auto;padding:0 1em;line-height:1.5';

function html(title: string, inner: string): string {
  return `<!doctype html><html><head><meta charset="utf-8"><meta name="robots" content="noindex"><title>${escapeHtml(title)}</title></head><body style="${STYLE}">${inner}<hr><p><small>Portico</small></p></body></html>\n`;
}

function wantsHtml(accept: string | undefined): boolean {
  return accept !== undefined && accept.includes('text/html');
}

const PLAIN = 'text/plain; charset=utf-8';
const HTML = 'text/html; charset=utf-8';

/** The page for a ProxyError: its status, Proxy-Status, and a short body saying why. */
export function errorPage(err: ProxyError, accept: string | undefined): Page {
  const kind = ERROR_KINDS[err.code];
  const headers = {
    'content-type': wantsHtml(accept) ? HTML : PLAIN,
    'cache-control': 'no-store',
    'proxy-status': `portico; error=${kind.proxyStatus}; details=${quoteSf(err.message)}`,
    ...err.headers,
  };
  const body = wantsHtml(accept)
    ? html(`${err.status} ${kind.title}`, `<h1>${err.status} ${kind.title}</h1><p>${escapeHtml(err.message)}</p>`)
    : `${err.status} ${kind.title}: ${err.message}\n`;
  return { status: err.status, title: kind.title, headers, body, close: err.source === 'client' && err.status === 400 };
}

/** 403 for a request denied by an access rule; names the rule. */
export function blockedPage(target: string, ruleLabel: string, accept: string | undefined): Page {
  const headers = {
    'cache-control': 'no-store',
    'proxy-status': `portico; error=http_request_denied; details=${quoteSf(`blocked by rule ${ruleLabel}`)}`,
  };
  if (wantsHtml(accept)) {
    return {
      status: 403,
      title: 'Forbidden',
      headers: { ...headers, 'content-type': HTML },
      body: html(
        'Blocked by policy',
        `<h1>Blocked by policy</h1><p>Access to <strong>${escapeHtml(target)}</strong> is blocked by this proxy's policy.</p><p>Rule: <code>${escapeHtml(ruleLabel)}</code></p><p>If you think this is a mistake, contact the administrator of this proxy.</p>`,
      ),
    };
  }
  return { status: 403, title: 'Forbidden', headers: { ...headers, 'content-type': PLAIN }, body: `403 Forbidden: Access to ${target} is blocked by policy (rule ${ruleLabel}).\n` };
}

/** The answer to an origin-form request (`GET /`) sent to the forward listener. */
export function notAProxyRequestPage(host: string, accept: string | undefined): Page {
  const pac = `http://${host}/proxy.pac`;
  const headers = { 'cache-control': 'no-store' };
  if (wantsHtml(accept)) {
    return {
      status: 400,
      title: 'Bad Request',
      headers: { ...headers, 'content-type': HTML },
      body: html(
        'Portico forward proxy',
        `<h1>This is a proxy</h1><p>This address is Portico's forward proxy, not a web server.</p><p>Configure <code>${escapeHtml(host)}</code> as the HTTP and HTTPS proxy of your browser or tool, or point the browser at the proxy auto-config file <a href="${escapeHtml(pac)}">${escapeHtml(pac)}</a>.</p>`,
      ),
    };
  }
  const text = `This is Portico's forward proxy, not a web server. Configure ${host} as the HTTP and HTTPS proxy of your browser or tool (e.g. curl -x http://${host} http://example.com/), or use the proxy auto-config file ${pac}.`;
  return { status: 400, title: 'Bad Request', headers: { ...headers, 'content-type': PLAIN }, body: `400 Bad Request: ${text}\n` };
}

/** A 200 the proxy answers itself (the PAC file, OPTIONS or TRACE with Max-Forwards: 0). */
export function localPage(contentType: string, body: string, headers: Readonly<Record<string, string>> = {}): Page {
  return { status: 200, title: 'OK', headers: { 'content-type': contentType, ...headers }, body };
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** RFC 8941 sf-string. */
function quoteSf(text: string): string {
  return `"${text.replace(/[\\"]/g, '\\$&').replace(/[^\x20-\x7e]/g, '?')}"`;
}
