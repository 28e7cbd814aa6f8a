/**
 * "Why can't I open that site?": the forward listener's `/blocked` page lists what this proxy
 * recently refused for the client that asks (by its address), naming the rule.
 *
 * It exists because of HTTPS: a browser never shows a proxy's answer to CONNECT (that would let any
 * proxy forge pages for any https:// site), so a blocked HTTPS site shows only the browser's generic
 * ERR_TUNNEL_CONNECTION_FAILED, never the block page. The user can open http://PROXY/blocked to see
 * which rule it was. Plain-HTTP requests get the block page itself.
 *
 * One list per process, kept by the server (it outlives config reloads), bounded: the newest entries
 * per client, few clients.
 */
import type { BlockedRequest } from '../policy/rules.js';
import { escapeHtml, type Page } from '../pipeline/pages.js';

const PER_CLIENT = 20;
const MAX_CLIENTS = 1000;

export class RecentBlocks {
  private readonly byClient = new Map<string, BlockedRequest[]>();

  record(blocked: BlockedRequest): void {
    let list = this.byClient.get(blocked.client);
    if (list === undefined) {
      if (this.byClient.size >= MAX_CLIENTS) this.byClient.delete(this.byClient.keys().next().value!);
      list = [];
      this.byClient.set(blocked.client, list);
    }
    list.unshift(blocked);
    if (list.length > PER_CLIENT) list.length = PER_CLIENT;
  }

  forClient(client: string): readonly BlockedRequest[] {
    return this.byClient.get(client) ?? [];
  }
}

/** The `/blocked` page for `client`. */
export function recentBlocksPage(blocks: RecentBlocks, client: string, accept: string | undefined): Page {
  const list = blocks.forClient(client);
  const headers = { 'cache-control': 'no-store' };
  const when = (at: number) => new Date(at).toLocaleTimeString('en-GB', { hour12: false });
  if (accept !== undefined && accept.includes('text/html')) {
    const rows = list
      .map((b) => `<tr><td>${when(b.at)}</td><td>${escapeHtml(b.method)}</td><td><code>${escapeHtml(b.target)}</code></td><td>${escapeHtml(b.rule)}</td></tr>`)
      .join('');
    const body = `<!doctype html><html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Blocked by this proxy</title></head><body style="font-family:system-ui,sans-serif;max-width:48em;margin:3em auto;padding:0 1em;line-height:1.5"><h1>Recently blocked for ${escapeHtml(client)}</h1>${
      list.length === 0
        ? '<p>Nothing was blocked for your address recently.</p>'
        : `<table style="border-collapse:collapse" cellpadding="6"><tr><th align="left">Time</th><th align="left">Method</th><th align="left">Site</th><th align="left">Rule</th></tr>${rows}</table>`
    }<p>For an <code>https://</code> site your browser shows only a generic error (such as ERR_TUNNEL_CONNECTION_FAILED): browsers never display what a proxy answers to an HTTPS tunnel request. This page tells you which rule it was. If you think it is a mistake, contact the administrator of this proxy.</p><hr><p><small>Portico forward proxy</small></p></body></html>\n`;
    return { status: 200, title: 'OK', headers: { ...headers, 'content-type': 'text/html; charset=utf-8' }, body };
  }
  const lines = list.map((b) => `${when(b.at)}  ${b.method} ${b.target}  blocked by rule ${b.rule}`);
  const body = list.length === 0 ? `Nothing was blocked for ${client} recently.\n` : `Recently blocked for ${client}:\n${lines.join('\n')}\n`;
  return { status: 200, title: 'OK', headers: { ...headers, 'content-type': 'text/plain; charset=utf-8' }, body };
}
