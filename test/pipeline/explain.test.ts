/**
 * `GET /api/explain` is a dry run of the phases a real request goes through; this table proves that it
 * agrees with them. Every row is asked of explain and then sent for real, from the address the row
 * names, through the door it names: explain's decision, phase and status must be what the real request
 * met (a refusal's status, or the backend's answer when explain allows it), and a rule explain names
 * must be the rule the block page names. Time-of-day rules read Portico's clock, set to 03:00.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api } from '../admin/helpers.js';
import { TestClock } from '../helpers/clock.js';
import { basic, forwardConnect, forwardHttp, reverseHttp, startBackend, startRig, upgradeRequest, type Answer, type Backend, type Rig } from './rig.js';

/** One request, as explain's query names it. */
interface Row {
  readonly door: 'forward' | 'reverse';
  /** Forward: an http:// URL, or https:// / host:port for a CONNECT. Reverse: the URL asked for (its host is Host). */
  readonly url: string;
  readonly method?: string;
  /** The client address (default 127.0.0.9). */
  readonly client?: string;
  /** Forward: the authenticated user (default alice); null sends no credentials. */
  readonly user?: string | null;
  readonly userAgent?: string;
  /** Reverse: the Upgrade header. */
  readonly upgrade?: string;
  /** The forward proxy with forward.deny_private (and no authentication). */
  readonly strict?: boolean;
  readonly expect: { readonly decision: 'allow' | 'deny'; readonly phase: string; readonly status: number | null; readonly rule?: string };
}

const PASSWORDS: Record<string, string> = { alice: 'alice-pw', bob: 'bob-pw' };
const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
const LONG = 'x'.repeat(1100);

const clock = new TestClock();
let backend: Backend;
let main: Rig;
let strict: Rig;
/** The day Portico's clock is on (03:00 local time, tomorrow). */
let today: (typeof DAYS)[number];

beforeAll(async () => {
  const at3 = new Date();
  at3.setHours(24 + 3, 0, 0, 0);
  clock.advance(at3.getTime() - Date.now());
  today = DAYS[at3.getDay()]!;
  const otherDay = DAYS[(at3.getDay() + 3) % 7]!;
  backend = await startBackend();
  const B = backend.origin.port;
  main = await startRig(
    {
      forward: {
        listen: '127.0.0.1:0',
        upstream_proxy: 'direct',
        clients: ['127.0.0.0/16'],
        connect_ports: [443, B],
        auth: { users: PASSWORDS },
        rules: [
          { name: 'ads', action: 'deny', host: ['*.ads.test'] },
          { name: 'bots', action: 'deny', user_agent: 'BadBot' },
          { name: 'no-delete', action: 'deny', method: ['DELETE'] },
          { name: 'interns', action: 'deny', user: ['bob'], port: [B] },
          { name: 'night', action: 'deny', host: ['night.test'], time: '02:00-04:00' },
          { name: 'lunch', action: 'deny', port: [B], time: '12:00-13:00' },
          { name: 'today', action: 'deny', host: ['daily.test'], days: today },
          { name: 'other-day', action: 'deny', port: [B], days: otherDay },
        ],
      },
      reverse: {
        listen: '127.0.0.1:0',
        routes: [
          { host: 'app.test', path: '/', pool: 'web' },
          { host: 'blocked.test', path: '/', pool: 'web' },
        ],
        rules: [
          { name: 'admin-area', action: 'deny', path: ['/admin/'] },
          { name: 'no-bots', action: 'deny', user_agent: 'BadBot' },
          { name: 'read-only-docs', action: 'deny', method: ['DELETE', 'PUT'], path: ['/docs/'] },
          { name: 'no-ws-to-static', action: 'deny', header: { upgrade: '^websocket$' }, path: ['/static/'] },
          { name: 'night-reports', action: 'deny', path: ['/reports/'], time: '02:00-04:00' },
          { name: 'blocked-host', action: 'deny', host: ['blocked.test'] },
          { name: 'outsiders', action: 'deny', path: ['/intranet/'], client: ['127.1.0.0/16'] },
          { name: 'secret-versions', action: 'deny', path: ['/^\\/v[0-9]+\\/secret/'] },
        ],
      },
      pools: { web: { servers: [{ url: backend.origin.url }], retries: 0 } },
      admin: { listen: '127.0.0.1:0' },
      limits: { max_url_length: 1024 },
      cache: { enabled: false },
    },
    clock,
  );
  strict = await startRig({
    forward: { listen: '127.0.0.1:0', upstream_proxy: 'direct', deny_private: true, connect_ports: [443, B] },
    admin: { listen: '127.0.0.1:0' },
    cache: { enabled: false },
  });
});

afterAll(async () => {
  await main?.close();
  await strict?.close();
  await backend?.origin.close();
});

const allow = { decision: 'allow', phase: 'proxy', status: null } as const;
const denied = (phase: string, status: number) => ({ decision: 'deny', phase, status }) as const;
const rule = (name: string, door: 'forward' | 'reverse', index: number) => ({ decision: 'deny', phase: 'rules', status: 403, rule: `"${name}" (${door}.rules[${index}])` }) as const;

/** The rows; `B`, `FWD`, `REV` and `ADMIN` in a URL are the backend's and the listeners' ports. */
const rows: Row[] = [
  // The forward proxy: relayed requests.
  { door: 'forward', url: 'http://127.0.0.1:B/f/plain', expect: allow },
  { door: 'forward', url: 'http://127.0.0.1:B/f/put', method: 'PUT', expect: allow },
  { door: 'forward', url: 'http://127.0.0.1:B/f/outsider', client: '127.1.0.5', expect: denied('client', 403) },
  { door: 'forward', url: `http://127.0.0.1:B/${LONG}`, expect: denied('admission', 414) },
  { door: 'forward', url: 'http://127.0.0.1:B/f/anonymous', user: null, expect: denied('resolve', 407) },
  { door: 'forward', url: 'http://127.0.0.1:FWD/', expect: denied('resolve', 508) },
  { door: 'forward', url: 'http://localhost:FWD/x', expect: denied('resolve', 508) },
  { door: 'forward', url: 'http://127.0.0.1:ADMIN/api/stats', expect: denied('resolve', 403) },
  { door: 'forward', url: 'http://localhost:REV/', expect: denied('resolve', 403) },
  { door: 'forward', url: 'http://banner.ads.test/pixel', expect: rule('ads', 'forward', 0) },
  { door: 'forward', url: 'http://127.0.0.1:B/f/bot', userAgent: 'BadBot/2.0', expect: rule('bots', 'forward', 1) },
  { door: 'forward', url: 'http://127.0.0.1:B/f/delete', method: 'DELETE', expect: rule('no-delete', 'forward', 2) },
  { door: 'forward', url: 'http://127.0.0.1:B/f/intern', user: 'bob', expect: rule('interns', 'forward', 3) },
  { door: 'forward', url: 'http://night.test/', expect: rule('night', 'forward', 4) },
  { door: 'forward', url: 'http://daily.test/', expect: rule('today', 'forward', 6) },
  // The forward proxy: CONNECT.
  { door: 'forward', url: '127.0.0.1:B', expect: allow },
  { door: 'forward', url: '127.0.0.1:B', client: '127.1.0.6', expect: denied('client', 403) },
  { door: 'forward', url: '127.0.0.1:B', user: null, expect: denied('resolve', 407) },
  { door: 'forward', url: '127.0.0.1:8443', expect: denied('resolve', 403) },
  { door: 'forward', url: 'https://tracker.ads.test/', expect: rule('ads', 'forward', 0) },
  { door: 'forward', url: 'https://night.test/', expect: rule('night', 'forward', 4) },
  { door: 'forward', url: '127.0.0.1:B', user: 'bob', expect: rule('interns', 'forward', 3) },
  // The forward proxy with forward.deny_private: literal private addresses, before any DNS.
  { door: 'forward', strict: true, url: 'http://10.1.2.3/', expect: denied('resolve', 403) },
  { door: 'forward', strict: true, url: 'http://192.168.1.1:8080/router', expect: denied('resolve', 403) },
  { door: 'forward', strict: true, url: 'http://[fd00::1]/', expect: denied('resolve', 403) },
  { door: 'forward', strict: true, url: 'http://127.0.0.1:B/loopback', expect: denied('resolve', 403) },
  { door: 'forward', strict: true, url: '10.0.0.1:443', expect: denied('resolve', 403) },
  // The reverse proxy: plain requests.
  { door: 'reverse', url: 'http://app.test/r/plain', expect: allow },
  { door: 'reverse', url: 'http://nowhere.test/', expect: denied('resolve', 404) },
  { door: 'reverse', url: `http://app.test/${LONG}`, expect: denied('admission', 414) },
  { door: 'reverse', url: 'http://app.test/admin/users', expect: rule('admin-area', 'reverse', 0) },
  { door: 'reverse', url: 'http://app.test/r/bot', userAgent: 'BadBot', expect: rule('no-bots', 'reverse', 1) },
  { door: 'reverse', url: 'http://app.test/docs/1', method: 'DELETE', expect: rule('read-only-docs', 'reverse', 2) },
  { door: 'reverse', url: 'http://app.test/docs/1', expect: allow },
  { door: 'reverse', url: 'http://app.test/static/app.js', expect: allow },
  { door: 'reverse', url: 'http://app.test/reports/daily', expect: rule('night-reports', 'reverse', 4) },
  { door: 'reverse', url: 'http://blocked.test/', expect: rule('blocked-host', 'reverse', 5) },
  { door: 'reverse', url: 'http://app.test/intranet/wiki', client: '127.1.0.7', expect: rule('outsiders', 'reverse', 6) },
  { door: 'reverse', url: 'http://app.test/intranet/wiki', expect: allow },
  { door: 'reverse', url: 'http://app.test/v2/secret/key', expect: rule('secret-versions', 'reverse', 7) },
  // The reverse proxy: Upgrade requests.
  { door: 'reverse', url: 'http://app.test/chat', upgrade: 'websocket', expect: allow },
  { door: 'reverse', url: 'http://app.test/tunnel', upgrade: 'foo/1', expect: allow },
  { door: 'reverse', url: 'http://app.test/chat', upgrade: 'h2c', expect: denied('admission', 400) },
  { door: 'reverse', url: 'http://nowhere.test/chat', upgrade: 'websocket', expect: denied('resolve', 404) },
  { door: 'reverse', url: 'http://app.test/admin/socket', upgrade: 'websocket', expect: rule('admin-area', 'reverse', 0) },
  { door: 'reverse', url: 'http://app.test/admin/socket', upgrade: 'foo/1', expect: rule('admin-area', 'reverse', 0) },
  { door: 'reverse', url: 'http://app.test/static/live', upgrade: 'websocket', expect: rule('no-ws-to-static', 'reverse', 3) },
  { door: 'reverse', url: 'http://app.test/static/live', upgrade: 'foo/1', expect: allow },
];

/** The row's URL with the ports filled in. */
function urlOf(row: Row): string {
  const port = (url: string | undefined) => new URL(url!).port;
  const rig = row.strict ? strict : main;
  return row.url
    .replace(':B', `:${backend.origin.port}`)
    .replace(':FWD', `:${port(rig.portico.forwardUrl)}`)
    .replace(':REV', `:${port(main.portico.reverseUrl)}`)
    .replace(':ADMIN', `:${port(main.portico.adminUrl)}`);
}

/** What explain says of the row. */
async function explained(row: Row, url: string): Promise<Record<string, any>> {
  const q = new URLSearchParams({ door: row.door, url, client: row.client ?? '127.0.0.9', method: row.method ?? 'GET' });
  const user = row.door === 'forward' && !row.strict ? (row.user === undefined ? 'alice' : row.user) : null;
  if (user !== null) q.set('user', user);
  if (row.userAgent !== undefined) q.set('user_agent', row.userAgent);
  if (row.upgrade !== undefined) q.set('upgrade', row.upgrade);
  const reply = await api(`${(row.strict ? strict : main).portico.adminUrl}/api/explain?${q}`);
  expect(reply.status, JSON.stringify(reply.json)).toBe(200);
  return reply.json;
}

/** The row sent for real. */
async function sentForReal(row: Row, url: string): Promise<Answer> {
  const rig = row.strict ? strict : main;
  const user = row.door === 'forward' && !row.strict ? (row.user === undefined ? 'alice' : row.user) : null;
  const headers: Record<string, string> = {};
  if (row.userAgent !== undefined) headers['user-agent'] = row.userAgent;
  if (user !== null) headers['proxy-authorization'] = basic(user, PASSWORDS[user]!);
  const sent = { client: row.client ?? '127.0.0.9', method: row.method, headers };
  if (row.door === 'forward') {
    if (url.startsWith('http://')) return forwardHttp(rig, url, sent);
    const target = new URL(url.includes('://') ? url : `https://${url}`);
    return forwardConnect(rig, target.host + (target.port === '' ? ':443' : ''), sent);
  }
  const target = new URL(url);
  const path = target.pathname + target.search;
  if (row.upgrade !== undefined) return upgradeRequest(rig.reversePort, target.host, path, row.upgrade, sent);
  return reverseHttp(rig, target.host, path, sent);
}

describe('GET /api/explain agrees with what the request meets', () => {
  it('has a row for every kind of decision', () => {
    expect(rows.length).toBeGreaterThanOrEqual(30);
    expect(new Set(rows.map((r) => r.expect.phase))).toEqual(new Set(['client', 'admission', 'resolve', 'rules', 'proxy']));
  });

  it.each(rows.map((row) => [describeRow(row), row] as const))('%s', async (_name, row) => {
    const url = urlOf(row);
    const answer = await explained(row, url);
    const real = await sentForReal(row, url);
    // What explain says is what the row expects …
    expect({ decision: answer.decision, phase: answer.phase, status: answer.status, ...(row.expect.rule ? { rule: answer.rule } : {}) }).toEqual(row.expect);
    // … and what the request met.
    if (answer.decision === 'allow') {
      expect(real.status, real.body).toBe(row.upgrade !== undefined ? 101 : 200);
    } else {
      expect(real.status, real.body).toBe(answer.status);
      expect(String(real.headers['proxy-status'])).toMatch(/^portico; error=/);
      if (answer.rule !== null) expect(real.body).toContain(`(rule ${answer.rule})`);
    }
  });
});

function describeRow(row: Row): string {
  const what = [
    row.strict ? 'deny_private' : '',
    row.method && row.method !== 'GET' ? row.method : '',
    row.url.length > 60 ? `${row.url.slice(0, 40)}…(${row.url.length})` : row.url,
    row.upgrade ? `Upgrade: ${row.upgrade}` : '',
    row.client ? `from ${row.client}` : '',
    row.user === null ? 'no credentials' : row.user ? `as ${row.user}` : '',
    row.userAgent ? `UA ${row.userAgent}` : '',
  ].filter(Boolean);
  const outcome = row.expect.decision === 'allow' ? 'allowed' : `${row.expect.status} at ${row.expect.phase}${row.expect.rule ? ` by ${row.expect.rule}` : ''}`;
  return `${row.door}: ${what.join(' ')} → ${outcome}`;
}
