/**
 * `GET /api/explain`: what a front door would decide for a request, and why, without sending it — a
 * dry run of the very phases a real request goes through (src/pipeline/runner.ts dryRun), so it cannot
 * disagree with them. The rate limits are not charged; proxy authentication is taken as given (`user`),
 * and at a forward door with proxy authentication a query without `user` is a request without
 * credentials (407).
 *
 *   forward door: `url` is an http:// URL (a relayed request, `method` GET by default) or https:// /
 *                 host:port (a CONNECT);
 *   reverse door: `url` is the URL the client asked for (its host is the Host header), `upgrade` makes
 *                 it an Upgrade request.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { dryRun, type Door } from '../pipeline/runner.js';
import { Session, type EntryKind, type FrontDoor, type RequestHead, type SessionSink } from '../pipeline/session.js';
import type { Page } from '../pipeline/pages.js';
import { normalizeAddress } from '../policy/cidr-list.js';
import { silentLogger } from '../core/log.js';

export interface ExplainQuery {
  readonly door: FrontDoor;
  readonly url: string;
  readonly client: string;
  readonly userAgent: string | undefined;
  readonly user: string | undefined;
  /** Method of a plain HTTP request (https URLs at the forward door are CONNECTs). */
  readonly method: string;
  /** The Upgrade header of a reverse-door Upgrade request (e.g. websocket). */
  readonly upgrade: string | undefined;
}

/** The listener the imagined request arrives on. */
export interface ExplainListener {
  readonly host: string;
  readonly port: number;
}

export interface Explanation {
  readonly decision: 'allow' | 'deny';
  /** The rule that decided (its label), or null when a built-in check or the default did. */
  readonly rule: string | null;
  /** The phase that decided: client, admission, resolve, rules, or proxy (let through). */
  readonly phase: string;
  /** The status a refused request gets; null when it would be proxied. */
  readonly status: number | null;
  readonly reason: string;
  readonly request: {
    readonly door: FrontDoor;
    readonly kind: EntryKind;
    readonly method: string;
    readonly target: string;
    readonly client: string;
    readonly userAgent: string | null;
    readonly user: string | null;
  };
}

const QUIET: SessionSink = { log: silentLogger, onDone: undefined, onBlocked: undefined };

/** A session that goes nowhere: it only carries the imagined request through the phases. */
class DryRunSession extends Session {
  get answered(): boolean {
    return false;
  }

  respond(_page: Page): void {}

  abort(): void {}
}

/** Throws a TypeError with a readable message when the URL cannot be a request for this door. */
export async function explain(door: Door<unknown>, listener: ExplainListener, q: ExplainQuery): Promise<Explanation> {
  const { kind, head } = imagine(q, listener);
  const session = new DryRunSession(q.door, kind, head, normalizeAddress(q.client), 'http', QUIET);
  session.user = q.user;
  let outcome;
  try {
    outcome = await dryRun(session, door);
  } finally {
    session.finish(0);
  }
  const request = {
    door: q.door,
    kind,
    method: session.method,
    target: session.url,
    client: session.clientAddress,
    userAgent: q.userAgent ?? null,
    user: q.user ?? null,
  };
  const rules = door.rules;
  if (outcome.phase === 'proxy') {
    const reason =
      outcome.verdict !== null
        ? `${outcome.verdict.label} is the first rule that matches; its action is allow`
        : rules.size === 0
          ? `${q.door}.rules is empty: everything the earlier checks let in is allowed`
          : `none of the ${rules.size} rules matches: allowed by default`;
    return { decision: 'allow', rule: outcome.verdict?.label ?? null, phase: 'proxy', status: null, reason, request };
  }
  if (outcome.phase === 'rules') {
    const label = outcome.verdict!.label;
    return { decision: 'deny', rule: label, phase: 'rules', status: 403, reason: `${label} is the first rule that matches; its action is deny`, request };
  }
  const reason = outcome.error?.message ?? `answered by the ${q.door} proxy itself with ${outcome.status}`;
  return { decision: 'deny', rule: null, phase: outcome.phase, status: outcome.status, reason: `${outcome.phase}: ${reason}`, request };
}

/** The request the query describes, as the door would receive it. */
function imagine(q: ExplainQuery, listener: ExplainListener): { kind: EntryKind; head: RequestHead } {
  const url = parseUrl(q.url);
  const headers: IncomingHttpHeaders = {};
  if (q.userAgent !== undefined) headers['user-agent'] = q.userAgent;
  let kind: EntryKind = 'http';
  let method = q.method.toUpperCase();
  let target: string;
  if (q.door === 'forward') {
    if (url.protocol === 'https:') {
      kind = 'connect';
      method = 'CONNECT';
      target = url.host + (url.port === '' ? ':443' : '');
      headers.host = target;
    } else {
      target = url.href;
      headers.host = url.host;
    }
  } else {
    target = url.pathname + url.search;
    headers.host = url.host;
    if (q.upgrade !== undefined) {
      kind = 'upgrade';
      headers.connection = 'upgrade';
      headers.upgrade = q.upgrade;
    }
  }
  const rawHeaders: string[] = [];
  for (const [name, value] of Object.entries(headers)) rawHeaders.push(name, String(value));
  const head: RequestHead = {
    method,
    url: target,
    headers,
    rawHeaders,
    httpVersion: '1.1',
    httpVersionMajor: 1,
    httpVersionMinor: 1,
    socket: { localAddress: listener.host, localPort: listener.port },
  };
  return { kind, head };
}

function parseUrl(text: string): URL {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `https://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new TypeError(`url: expected an http:// or https:// URL or host:port, got "${text}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`url: expected an http:// or https:// URL, got "${text}"`);
  return url;
}
