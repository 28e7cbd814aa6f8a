/**
 * Every hostile origin response of origin-corpus.ts, through both front doors, on every cache path:
 * first fill, revalidation of a stored entry, background (stale-while-revalidate) revalidation,
 * stale-if-error, collapsed waiters, and HEAD. After each case: (a) nothing was thrown out of the
 * proxy (uncaught exception, unhandled rejection), (b) the client saw what the corpus says, (c) a
 * healthy URL through the same proxy still answers, (d) nothing truncated or malformed was stored.
 *
 * Defaults everywhere (passive health stays at max_fails 3 / fail_timeout 30 s, retries 2) except the
 * upstream timeouts, shortened so that the stall shapes are quick. Every case has its own origin
 * listener (so its own backend, pooled connections and health state) and its own URL.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../src/config/schema.js';
import { startOrigin, type Origin } from '../helpers/origin.js';
import { startPortico, type RunningPortico } from '../helpers/portico.js';
import { fetchOutcome } from '../helpers/http.js';
import { escapedStack } from './helpers.js';
import { FINE, MARKER, ORIGIN_CORPUS, STORED_BODY, STORED_ETAG, type Expected, type OriginShape } from './origin-corpus.js';
import { goodReply, scriptedOrigin, type ScriptedOrigin, type ScriptedReply } from './scripted-origin.js';

const PATHS = ['miss', 'revalidate', 'background', 'stale-if-error', 'collapsed', 'head'] as const;
type CachePath = (typeof PATHS)[number];

/** Upstream timeouts of both doors (response head, idle body). */
const TIMEOUT = '250ms';
/** A client gives up on the proxy after this long. */
const CLIENT_DEADLINE_MS = 4_000;
/** How many concurrent clients ask for the URL on the collapsed path. */
const COLLAPSED = 4;
const HEALTHY = 'healthy-body';
const LATER = 'later-good-body';
const ERROR_STATUSES = new Set([500, 502, 503, 504]);

// --- (a) what escapes the proxy --------------------------------------------------------------------

const escaped: string[] = [];
const onUncaught = (err: unknown) => escaped.push(`uncaughtException: ${describeError(err)}`);
const onRejection = (reason: unknown) => escaped.push(`unhandledRejection: ${describeError(reason)}`);
beforeAll(() => {
  process.on('uncaughtException', onUncaught);
  process.on('unhandledRejection', onRejection);
});
afterAll(() => {
  process.off('uncaughtException', onUncaught);
  process.off('unhandledRejection', onRejection);
});

function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  return escapedStack(err).split('\n').filter((line) => !line.includes('node_modules/vitest') && !line.includes('@vitest')).slice(0, 14).join('\n    ');
}

// --- what a client saw, and what it should have seen ---------------------------------------------------

type Seen =
  | { readonly kind: 'response'; readonly status: number; readonly complete: boolean; readonly body: string; readonly headers: IncomingHttpHeaders; readonly error?: string }
  | { readonly kind: 'dropped'; readonly error: string }
  | { readonly kind: 'hang' };

type Spec = { readonly kind: 'ok'; readonly status: number; readonly body: string } | { readonly kind: 'error'; readonly status: number } | { readonly kind: 'truncated'; readonly status: number };

function show(seen: Seen): string {
  if (seen.kind === 'dropped') return `connection dropped with nothing sent (${seen.error})`;
  if (seen.kind === 'hang') return `no response within ${CLIENT_DEADLINE_MS} ms`;
  const ps = seen.headers['proxy-status'];
  const what = seen.complete ? 'complete' : `incomplete (${seen.error ?? 'closed'})`;
  return `${seen.status} ${what}, ${seen.body.length} body bytes ${JSON.stringify(seen.body.slice(0, 40))}${ps ? `, Proxy-Status: ${String(ps)}` : ''}`;
}

function showSpec(spec: Spec): string {
  if (spec.kind === 'ok') return `${spec.status} complete ${JSON.stringify(spec.body)}`;
  if (spec.kind === 'error') return `${spec.status} with Proxy-Status`;
  return `${spec.status} truncated (or 502/504 with Proxy-Status)`;
}

function isProxyError(seen: Seen, status?: number): boolean {
  return (
    seen.kind === 'response' &&
    seen.complete &&
    (status === undefined ? seen.status >= 500 : seen.status === status) &&
    typeof seen.headers['proxy-status'] === 'string' &&
    !seen.body.includes(MARKER)
  );
}

function matches(seen: Seen, spec: Spec): boolean {
  if (seen.kind !== 'response') return false;
  switch (spec.kind) {
    case 'ok':
      return seen.complete && seen.status === spec.status && seen.body === spec.body;
    case 'error':
      return isProxyError(seen, spec.status);
    case 'truncated':
      return (!seen.complete && seen.status === spec.status) || isProxyError(seen, 502) || isProxyError(seen, 504);
  }
}

const asList = (e: Expected | readonly Expected[]): readonly Expected[] => (typeof e === 'string' ? [e] : e);

function spec(e: Expected, shape: OriginShape, head: boolean): Spec {
  const status = shape.status ?? 200;
  switch (e) {
    case 'ok':
      return { kind: 'ok', status, body: head ? '' : (shape.body ?? '') };
    case '502':
      return { kind: 'error', status: 502 };
    case '504':
      return { kind: 'error', status: 504 };
    case 'truncated':
      return { kind: 'truncated', status };
  }
}

const STORED: Spec = { kind: 'ok', status: 200, body: STORED_BODY };

/** What each client must see for `shape` on `path`. */
function expectedFor(shape: OriginShape, path: CachePath): readonly Spec[] {
  const status = shape.status ?? 200;
  switch (path) {
    case 'miss':
    case 'collapsed':
      return asList(shape.get).map((e) => spec(e, shape, false));
    case 'head':
      return asList(shape.head).map((e) => spec(e, shape, true));
    case 'revalidate':
      // A 304 is merged into the stored response (RFC 9111 §4.3.4): the client gets the stored body.
      return asList(shape.get).map((e) => (e === 'ok' && status === 304 ? STORED : spec(e, shape, false)));
    case 'background':
      // The client gets the stale copy at once; the hostile answer only reaches the background fetch.
      return [STORED];
    case 'stale-if-error':
      return asList(shape.get).flatMap((e): Spec[] => {
        // A failure seen in the head is an error before anything was relayed: serve the stored copy. One
        // seen only in the body (HEAD is fine with it) may also end as a 502 (RFC 5861 says MAY).
        if (e === '502' || e === '504') return asList(shape.head).includes('ok') ? [STORED, spec(e, shape, false)] : [STORED];
        if (e === 'ok' && status === 304) return [STORED];
        if (ERROR_STATUSES.has(status)) return [STORED];
        if (e === 'truncated') return [spec(e, shape, false), STORED];
        return [spec(e, shape, false)];
      });
  }
}

/** Bodies that a later cache hit for the case's URL may legitimately carry. */
function storableBodies(shape: OriginShape, path: CachePath): Set<string> {
  const bodies = new Set<string>();
  if (path === 'revalidate' || path === 'background' || path === 'stale-if-error') bodies.add(STORED_BODY);
  if (asList(shape.get).includes('ok') && (shape.status ?? 200) === 200) bodies.add(shape.body ?? '');
  return bodies;
}

// --- the doors -----------------------------------------------------------------------------------------

interface Case {
  readonly id: string;
  readonly shape: OriginShape;
  readonly path: CachePath;
  readonly origin: ScriptedOrigin;
}

interface Door {
  readonly proxy: RunningPortico;
  /** A request for the case's URL through this door. */
  see(c: Case, options?: { method?: string; headers?: Record<string, string> }): Promise<Seen>;
  healthy(): Promise<Seen>;
  /** Whether a well-formed 5xx is an acceptable answer once the origin is good again (passive health). */
  readonly mayBeDown: boolean;
}

async function observe(run: Promise<Awaited<ReturnType<typeof fetchOutcome>>>): Promise<Seen> {
  try {
    const o = await run;
    if (o.error === 'HANG') return { kind: 'hang' };
    return { kind: 'response', status: o.status, complete: o.complete, body: o.body.toString('latin1'), headers: o.headers, error: o.error };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    return code === 'HANG' ? { kind: 'hang' } : { kind: 'dropped', error: code };
  }
}

const timeouts = { connect: '1s', response_header: TIMEOUT, idle: TIMEOUT };

async function reverseDoor(cases: readonly Case[], healthy: Origin): Promise<Door> {
  const config = {
    reverse: {
      listen: '127.0.0.1:0',
      timeouts,
      routes: [{ path: '/healthy/', pool: 'healthy' }, ...cases.map((c) => ({ path: `/${c.id}/`, pool: c.id }))],
    },
    pools: Object.fromEntries([['healthy', { servers: [{ url: healthy.url }] }], ...cases.map((c) => [c.id, { servers: [{ url: c.origin.url }] }])]),
  } as ConfigInput;
  const proxy = await startPortico(config);
  return {
    proxy,
    mayBeDown: true,
    see: (c, options = {}) => observe(fetchOutcome(`${proxy.reverseUrl}/${c.id}/page`, { ...options, timeoutMs: CLIENT_DEADLINE_MS })),
    healthy: () => observe(fetchOutcome(`${proxy.reverseUrl}/healthy/x`, { timeoutMs: CLIENT_DEADLINE_MS })),
  };
}

async function forwardDoor(healthy: Origin): Promise<Door> {
  const proxy = await startPortico({ forward: { listen: '127.0.0.1:0', upstream_proxy: 'direct', timeouts } } as ConfigInput);
  const via = (target: string, options: { method?: string; headers?: Record<string, string> } = {}) =>
    observe(fetchOutcome(target, { ...options, proxy: proxy.forwardUrl!, timeoutMs: CLIENT_DEADLINE_MS }));
  return {
    proxy,
    mayBeDown: false,
    see: (c, options) => via(`${c.origin.url}/${c.id}/page`, options),
    healthy: () => via(`${healthy.url}/healthy/x`),
  };
}

// --- one case -----------------------------------------------------------------------------------------

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function hostileReply(shape: OriginShape): ScriptedReply {
  return { steps: shape.steps, then: shape.then };
}

const STORED_CC: Partial<Record<CachePath, string>> = {
  revalidate: 'max-age=0',
  background: 'max-age=0, stale-while-revalidate=60',
  'stale-if-error': 'max-age=0, stale-if-error=60',
};

/** Waits until the connections that carried the hostile replies have closed (a kept one: briefly). */
async function settle(origin: ScriptedOrigin, shape: OriginShape, problems: string[]): Promise<void> {
  if (shape.then === 'keep') {
    await sleep(15);
  } else {
    const hostile = origin.sent.filter((s) => s.reply.steps === shape.steps);
    const closed = await Promise.race([Promise.all(hostile.map((s) => s.closed)).then(() => true), sleep(1_500).then(() => false)]);
    if (!closed) problems.push(`(leak) the upstream connection of the broken response was still open 1.5 s later`);
    await sleep(2);
  }
  await new Promise((resolve) => setImmediate(resolve));
}

async function runCase(door: Door, c: Case): Promise<string[]> {
  const problems: string[] = [];
  const { shape, path, origin } = c;
  const mark = escaped.length;
  const hostile = hostileReply(shape);

  // A stored response first, for the paths that revalidate one.
  const storedCc = STORED_CC[path];
  if (storedCc !== undefined) {
    origin.respondWith(() => goodReply(STORED_BODY, { ETag: STORED_ETAG, 'Cache-Control': storedCc }));
    const first = await door.see(c);
    if (!matches(first, STORED)) return [`setup: the good response to store was answered with ${show(first)}`];
  }

  // (b) the client's view of the hostile answer.
  const expected = expectedFor(shape, path);
  const check = (seen: Seen, who: string) => {
    if (!expected.some((e) => matches(seen, e))) problems.push(`(b) ${who} saw ${show(seen)}; expected ${expected.map(showSpec).join(' or ')}`);
  };
  const before = origin.requests.length;
  if (path === 'collapsed') {
    let release!: () => void;
    const hold = new Promise<void>((resolve) => (release = resolve));
    let first = true;
    origin.respondWith(() => {
      if (!first) return hostile;
      first = false;
      return { ...hostile, hold };
    });
    const clients = Array.from({ length: COLLAPSED }, () => door.see(c));
    await origin.received(before + 1);
    await sleep(20); // the other requests reach the proxy and wait behind the first one
    release();
    (await Promise.all(clients)).forEach((seen, i) => check(seen, `client ${i + 1} of ${COLLAPSED}`));
  } else {
    origin.respondWith(() => hostile);
    const seen = await door.see(c, path === 'head' ? { method: 'HEAD' } : {});
    check(seen, 'the client');
    if (path === 'background' && !(await origin.received(before + 1, 1_500))) problems.push('the background revalidation never reached the origin');
  }
  await settle(origin, shape, problems);

  // (a) nothing escaped.
  const afterHostile = escaped.slice(mark);
  for (const e of afterHostile) problems.push(`(a) ${e}`);

  // (c) the proxy still serves a healthy URL.
  const healthy = await door.healthy();
  if (!matches(healthy, { kind: 'ok', status: 200, body: HEALTHY })) problems.push(`(c) the healthy URL then got ${show(healthy)}`);

  // (d) nothing truncated or malformed was stored: what the cache holds (only-if-cached, any age), then
  // a normal request once the origin answers a good, different body.
  const storable = storableBodies(shape, path);
  const cached = await door.see(c, { headers: { 'cache-control': 'only-if-cached, max-stale' } });
  const cachedOk = cached.kind === 'response' && cached.complete && ((cached.status === 200 && storable.has(cached.body)) || (cached.status === 504 && isProxyError(cached, 504)));
  if (!cachedOk) problems.push(`(d) only-if-cached then got ${show(cached)}; stored may only be ${[...storable].map((b) => JSON.stringify(b)).join(' or ') || 'nothing'}`);
  origin.respondWith(() => goodReply(LATER, { ETag: '"v3"', 'Cache-Control': 'max-age=60' }));
  const later = await door.see(c);
  const laterOk =
    (later.kind === 'response' && later.complete && later.status === 200 && (later.body === LATER || storable.has(later.body))) || (door.mayBeDown && isProxyError(later));
  if (!laterOk) problems.push(`(d) with the origin good again, the client got ${show(later)}; expected 200 ${JSON.stringify(LATER)}${storable.size ? ` or a stored ${[...storable].map((b) => JSON.stringify(b)).join('/')}` : ''}`);
  await sleep(2);
  for (const e of escaped.slice(mark + afterHostile.length)) problems.push(`(a, during the checks) ${e}`);
  return problems;
}

// --- the suite -----------------------------------------------------------------------------------------

function casesFor(door: string): Array<Omit<Case, 'origin'>> {
  return ORIGIN_CORPUS.flatMap((shape, s) => PATHS.map((path) => ({ id: `${door[0]}${s}-${path}`, shape, path })));
}

describe('origin corpus', () => {
  it('has at least 40 shapes with distinct names', () => {
    expect(ORIGIN_CORPUS.length).toBeGreaterThanOrEqual(40);
    expect(new Set(ORIGIN_CORPUS.map((s) => s.name)).size).toBe(ORIGIN_CORPUS.length);
    // The good bodies are told apart from every broken one.
    for (const good of [FINE, STORED_BODY, LATER, HEALTHY]) expect(good).not.toContain(MARKER);
  });
});

describe.each(['reverse', 'forward'] as const)('the %s proxy, a hostile origin', (doorName) => {
  const cases = new Map<string, Case>();
  let door: Door;
  let healthy: Origin;
  const opened: Array<{ close(): Promise<void> }> = [];

  beforeAll(async () => {
    healthy = await startOrigin((_req, res) => res.writeHead(200, { 'cache-control': 'no-store' }).end(HEALTHY));
    opened.push(healthy);
    for (const c of casesFor(doorName)) {
      const origin = await scriptedOrigin(() => goodReply(FINE));
      opened.push(origin);
      cases.set(c.id, { ...c, origin });
    }
    door = doorName === 'reverse' ? await reverseDoor([...cases.values()], healthy) : await forwardDoor(healthy);
  }, 60_000);

  afterAll(async () => {
    await door?.proxy.stop();
    await Promise.all(opened.map((o) => o.close()));
  });

  // Shapes that wait for the proxy's timeouts (undici's timers tick every ~0.5 s, so each wait is 0.5-1 s)
  // run concurrently; an error escaping during that group is reported by every case of the group. Set
  // ORIGIN_FAULTS_SERIAL=1 to run them one at a time and see which one it was.
  const quick = ORIGIN_CORPUS.filter((shape) => shape.then !== 'stall');
  const slow = ORIGIN_CORPUS.filter((shape) => shape.then === 'stall');
  const idOf = (shape: OriginShape, path: CachePath) => `${doorName[0]}${ORIGIN_CORPUS.indexOf(shape)}-${path}`;
  const run = async (id: string, concurrent: boolean) => {
    const c = cases.get(id)!;
    const problems = await runCase(door, c);
    const tag = concurrent ? ' (run concurrently with the other stall cases)' : '';
    if (problems.length > 0) expect.fail(`${doorName} / ${c.path} / ${c.shape.name}${tag}:\n  ${problems.join('\n  ')}`);
  };

  describe.each(PATHS)('%s', (path) => {
    it.each(quick.map((shape) => ({ shape, id: idOf(shape, path) })))('$shape.name', ({ id }) => run(id, false));
  });

  const serial = process.env.ORIGIN_FAULTS_SERIAL === '1';
  describe(`stalls${serial ? '' : ' (concurrently)'}`, () => {
    const stallCases = PATHS.flatMap((path) => slow.map((shape) => ({ shape, path, id: idOf(shape, path) })));
    (serial ? it : it.concurrent).each(stallCases)('$path: $shape.name', ({ id }) => run(id, !serial));
  });
});
