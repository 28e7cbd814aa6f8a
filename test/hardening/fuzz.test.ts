/**
 * A seeded fuzzer over both front doors: mutated origin responses (on a first fill, a revalidation, a
 * background revalidation, and HEAD) and mutated client requests, thousands of cases per run. After
 * every case: nothing escaped the process (uncaught exception, unhandled rejection), a healthy URL is
 * still answered, and the cache holds nothing it should not — a stored response for the case's URL
 * must be one the origin sent with valid, complete framing (fuzz-kit's `frameResponse`), byte for byte.
 * The client's view is checked too: never a connection dropped with nothing sent, never a hang, never
 * a clean-looking response whose body is not what the origin's framing declared.
 *
 * Seeds. By default two seeds run, half the cases each: a FIXED one (the same cases on every run and
 * every machine: a regression baseline that CI keeps green) and one derived from the UTC DATE (new
 * cases every day; the same all day long, so re-running a red job replays it, and it is printed, so a
 * failure can be replayed on any later day). Not Math.random: a flaky-looking CI failure must be
 * reproducible from the log alone. Replay:
 *   FUZZ_SEED=<seed> [FUZZ_CASES=<n>]   that seed only, n cases (default 5200)
 *   FUZZ_SEED=<seed> FUZZ_CASE=<i>      that one case, with its bytes printed
 * Each case draws from its own PRNG (seed, index), so case i is the same whether run alone or in a run.
 * FUZZ_LANES=<n> sets how many cases run side by side (default 8; 1 = one at a time), FUZZ_TIMING=1
 * prints CPU per case and the slowest cases.
 *
 * Passive health is off for these pools (max_fails 0): nearly every case breaks the origin, and with
 * the default (3 failures in 30 s) the single backend would be out after the third case, leaving every
 * later reverse case a 503. origin-faults.test.ts covers the defaults.
 */
import { Agent } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../src/config/schema.js';
import { startOrigin, type Origin } from '../helpers/origin.js';
import { startPortico, type RunningPortico } from '../helpers/portico.js';
import {
  caseRng,
  dateSeed,
  escapeBytes,
  frameResponse,
  int,
  mutate,
  pick,
  REQUEST_TEMPLATES,
  responseTemplates,
  weighted,
  type Framed,
  type Rng,
} from './fuzz-kit.js';
import { fetchOutcome } from '../helpers/http.js';
import { rawExchange } from '../helpers/raw.js';
import { escapedStack } from './helpers.js';
import { goodReply, scriptedOrigin, type ScriptedOrigin, type ScriptedReply } from './scripted-origin.js';

const FIXED_SEED = 0x5eedf00d;
const DEFAULT_CASES = 5_200;
const env = process.env;
const seeds = env.FUZZ_SEED !== undefined ? [Number(env.FUZZ_SEED) >>> 0] : [FIXED_SEED, dateSeed()];
const only = env.FUZZ_CASE !== undefined ? Number(env.FUZZ_CASE) : undefined;
const totalCases = env.FUZZ_CASES !== undefined ? Number(env.FUZZ_CASES) : DEFAULT_CASES;
const casesPerSeed = Math.ceil(totalCases / seeds.length);
/** Cases run this many at a time (see attributeEscapes); FUZZ_LANES=1 runs them one by one. */
const LANES = only !== undefined ? 1 : Math.max(1, Number(env.FUZZ_LANES ?? 8));

const TIMEOUT = '200ms';
const CLIENT_DEADLINE_MS = 3_000;
const HEALTHY = 'healthy-body';
/** Print at most this many examples of each kind of failure. */
const EXAMPLES = 3;

// --- what escapes the process -----------------------------------------------------------------------------

/** An error that escaped, and the cases that were running (or had just finished) when it did. */
interface Escape {
  readonly text: string;
  readonly during: readonly number[];
}
const escapes: Escape[] = [];
/** Cases running now, and the last few finished (an error may surface a moment after its case). */
const active = new Set<number>();
const recent: number[] = [];
const record = (text: string) => escapes.push({ text, during: [...new Set([...active, ...recent])] });
const onUncaught = (err: unknown) => record(`uncaughtException: ${describeError(err)}`);
const onRejection = (reason: unknown) => record(`unhandledRejection: ${describeError(reason)}`);
function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  return escapedStack(err).split('\n').filter((l) => !l.includes('vitest')).slice(0, 12).join('\n      ');
}

// --- the rig: one proxy with both doors, three origins --------------------------------------------------

interface Rig {
  readonly proxy: RunningPortico;
  /** One fuzz origin per lane: cases running side by side never share an upstream connection. */
  readonly fz: readonly ScriptedOrigin[];
  readonly rq: Origin;
  readonly healthy: ScriptedOrigin;
  /** Replies the fuzz origin gives per path, in order (the last one repeats). */
  readonly script: Map<string, ScriptedReply[]>;
}

let rig: Rig;

beforeAll(async () => {
  process.on('uncaughtException', onUncaught);
  process.on('unhandledRejection', onRejection);
  const script = new Map<string, ScriptedReply[]>();
  const respond = (req: { target: string }) => {
    const queue = script.get(new URL(req.target, 'http://x').pathname);
    if (queue === undefined || queue.length === 0) return goodReply('unscripted', { 'Cache-Control': 'no-store' });
    return queue.length > 1 ? queue.shift()! : queue[0]!;
  };
  const fz: ScriptedOrigin[] = [];
  for (let lane = 0; lane < LANES; lane++) fz.push(await scriptedOrigin(respond));
  const rq = await startOrigin((req, res) => res.writeHead(200, { 'cache-control': 'max-age=60', 'content-type': 'text/plain' }).end(`ok ${req.method} ${req.url}`));
  const healthy = await scriptedOrigin(() => goodReply(HEALTHY, { 'Cache-Control': 'no-store' }));
  const timeouts = { connect: '1s', response_header: TIMEOUT, idle: TIMEOUT };
  const pool = (url: string) => ({ servers: [{ url }], passive: { max_fails: 0 } });
  const proxy = await startPortico({
    reverse: {
      listen: '127.0.0.1:0',
      timeouts,
      routes: [
        { path: '/healthy/', pool: 'healthy' },
        ...fz.map((_, lane) => ({ path: `/fz${lane}/`, pool: `fz${lane}` })),
        { path: '/', pool: 'rq' },
      ],
    },
    pools: { ...Object.fromEntries(fz.map((o, lane) => [`fz${lane}`, pool(o.url)])), rq: pool(rq.url), healthy: pool(healthy.url) },
    forward: {
      listen: '127.0.0.1:0',
      upstream_proxy: 'direct',
      timeouts,
      // Mutated requests must never reach anything but these three origins.
      rules: [{ action: 'allow', host: '127.0.0.1', port: [...fz.map((o) => o.port), rq.port, healthy.port] }, { action: 'deny' }],
    },
  } as ConfigInput);
  rig = { proxy, fz, rq, healthy, script };
  console.log(
    `fuzz: seeds ${seeds.map((s) => `${s}${s === FIXED_SEED ? ' (fixed)' : env.FUZZ_SEED === undefined ? ' (from the date)' : ''}`).join(', ')}; ` +
      `${only !== undefined ? `case ${only} only` : `${casesPerSeed} cases each`}. Replay: FUZZ_SEED=<seed> [FUZZ_CASES=<n> | FUZZ_CASE=<i>]`,
  );
}, 30_000);

afterAll(async () => {
  process.off('uncaughtException', onUncaught);
  process.off('unhandledRejection', onRejection);
  checkAgent.destroy();
  await rig?.proxy.stop();
  await Promise.all([...(rig?.fz ?? []).map((o) => o.close()), rig?.rq.close(), rig?.healthy.close()]);
});

// --- one client request -----------------------------------------------------------------------------------

type Door = 'reverse' | 'forward';

type Seen =
  | { readonly kind: 'response'; readonly status: number; readonly complete: boolean; readonly body: string; readonly proxyError: boolean; readonly error?: string }
  | { readonly kind: 'dropped'; readonly error: string }
  | { readonly kind: 'hang' };

/** For the checks after each case (healthy URL, what is stored): connections kept alive, to spare CPU. */
const checkAgent = new Agent({ keepAlive: true, maxSockets: 64 });

async function see(door: Door, origin: { url: string }, path: string, options: { method?: string; headers?: Record<string, string>; agent?: Agent } = {}): Promise<Seen> {
  const p = rig.proxy;
  const run =
    door === 'reverse'
      ? fetchOutcome(`${p.reverseUrl}${path}`, { ...options, timeoutMs: CLIENT_DEADLINE_MS })
      : fetchOutcome(`${origin.url}${path}`, { ...options, proxy: p.forwardUrl!, timeoutMs: CLIENT_DEADLINE_MS });
  try {
    const o = await run;
    if (o.error === 'HANG') return { kind: 'hang' };
    const proxyError = typeof o.headers['proxy-status'] === 'string' && o.status >= 500;
    return { kind: 'response', status: o.status, complete: o.complete, body: o.body.toString('latin1'), proxyError, error: o.error };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    return code === 'HANG' ? { kind: 'hang' } : { kind: 'dropped', error: code };
  }
}

function show(seen: Seen): string {
  if (seen.kind === 'dropped') return `connection dropped with nothing sent (${seen.error})`;
  if (seen.kind === 'hang') return `no response within ${CLIENT_DEADLINE_MS} ms`;
  return `${seen.status} ${seen.complete ? 'complete' : `incomplete (${seen.error ?? 'closed'})`}${seen.proxyError ? ' proxy error' : ''} body ${escapeBytes(seen.body, 40)}`;
}

function showFramed(f: Framed): string {
  if (f.kind === 'complete') return `complete ${f.status} with body ${escapeBytes(f.body, 40)}`;
  if (f.kind === 'truncated') return `truncated${f.status === null ? ' in the head' : ` ${f.status}`}`;
  return `invalid (${f.reason})`;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// --- the checks every case ends with ----------------------------------------------------------------------

async function healthyCheck(door: Door, problems: string[]): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
  const h = await see(door, rig.healthy, '/healthy/x', { agent: checkAgent });
  if (!(h.kind === 'response' && h.complete && h.status === 200 && h.body === HEALTHY)) problems.push(`healthy URL: ${show(h)}`);
}

/** What the cache holds for `path` (any age, never the origin), checked against what may be stored. */
async function storeCheck(door: Door, origin: { url: string }, path: string, allowed: ReadonlyArray<{ status: number; body: string }>, why: string, problems: string[]): Promise<void> {
  const held = await see(door, origin, path, { headers: { 'cache-control': 'only-if-cached, max-stale' }, agent: checkAgent });
  if (held.kind === 'response' && held.complete && held.status === 504 && held.proxyError) return;
  if (held.kind === 'response' && held.complete && allowed.some((a) => a.status === held.status && a.body === held.body)) return;
  problems.push(`stored: only-if-cached got ${show(held)}; the origin's response was ${why}`);
}

// --- response cases ---------------------------------------------------------------------------------------

type Mode = 'miss' | 'revalidate' | 'background' | 'head';

interface CaseResult {
  readonly index: number;
  readonly what: string;
  readonly bytes: string;
  readonly problems: readonly string[];
}

const letters = (rng: Rng, n: number) => Array.from({ length: n }, () => String.fromCharCode(97 + int(rng, 26))).join('');

async function responseCase(seed: number, index: number, rng: Rng, lane: number, again: boolean): Promise<CaseResult> {
  const problems: string[] = [];
  const door: Door = rng() < 0.5 ? 'reverse' : 'forward';
  const mode = weighted<Mode>(rng, [
    ['miss', 55],
    ['revalidate', 20],
    ['background', 10],
    ['head', 15],
  ]);
  const body = `fz${index}-${letters(rng, 1 + int(rng, 40))}`;
  const stored = `stored-${index}`;
  const templates = responseTemplates(rng, body, '"v1"');
  const template = mode !== 'miss' && mode !== 'head' && rng() < 0.5 ? templates.find((t) => t.name === '304')! : pick(rng, templates);
  const { bytes, applied } = mutate(rng, template.bytes);
  const then = weighted<'end' | 'reset' | 'keep'>(rng, [
    ['end', 65],
    ['reset', 15],
    ['keep', 20],
  ]);
  const hostile: ScriptedReply = { steps: [bytes], then, idleCloseMs: then === 'keep' ? 30 : undefined };
  const path = `/fz${lane}/${seed.toString(36)}-${index}${again ? '-again' : ''}`;
  const what = `response ${door} ${mode} ${template.name} [${applied.join(', ') || 'unmutated'}] then ${then}`;
  const { script } = rig;
  const fz = rig.fz[lane]!;

  if (mode === 'revalidate' || mode === 'background') {
    const cc = mode === 'revalidate' ? 'max-age=0' : 'max-age=0, stale-while-revalidate=60';
    script.set(path, [goodReply(stored, { ETag: '"v1"', 'Cache-Control': cc }), hostile]);
    const first = await see(door, fz, path);
    if (!(first.kind === 'response' && first.complete && first.status === 200 && first.body === stored)) {
      return { index, what, bytes, problems: [`setup: the response to store came back as ${show(first)}`] };
    }
  } else {
    script.set(path, [hostile]);
  }

  const method = mode === 'head' ? 'HEAD' : 'GET';
  const seen = await see(door, fz, path, { method });
  if (mode === 'background' && !(await fz.until(() => fz.sent.some((s) => s.reply === hostile), 1_500))) problems.push('the background revalidation never reached the origin');

  // Settle: the connections that carried the mutated reply close (a kept one after 30 ms idle).
  const carried = fz.sent.filter((s) => s.reply === hostile);
  const closed = await Promise.race([Promise.all(carried.map((s) => s.closed)).then(() => true), sleep(2_000).then(() => false)]);
  if (!closed) problems.push('leak: the upstream connection of the mutated response was still open 2 s later');
  script.delete(path);

  // What the client saw.
  const ending = then === 'reset' ? 'reset' : 'fin';
  const asGet = frameResponse(bytes, 'GET', ending);
  const asSent = frameResponse(bytes, method, ending);
  if (seen.kind !== 'response') problems.push(`client: ${show(seen)}`);
  else if (mode === 'background') {
    if (!(seen.complete && seen.status === 200 && seen.body === stored)) problems.push(`client: the stale copy was expected at once, got ${show(seen)}`);
  } else if (seen.complete && !seen.proxyError && method === 'GET' && !(mode === 'revalidate' && seen.status === 200 && seen.body === stored)) {
    if (asGet.kind === 'complete' && seen.status === asGet.status && seen.body !== asGet.body) problems.push(`client: ${show(seen)}, but the origin's response was ${showFramed(asGet)}`);
    if (asGet.kind === 'truncated' && seen.status === asGet.status) problems.push(`client: ${show(seen)} looks complete, but the origin's response was ${showFramed(asGet)}`);
  }

  await healthyCheck(door, problems);

  // What may be stored: the stored copy on the revalidation paths, and what the origin sent if its framing
  // was valid and complete (for HEAD only if the proxy asked the origin with GET).
  const allowed: Array<{ status: number; body: string }> = [];
  if (mode === 'revalidate' || mode === 'background') allowed.push({ status: 200, body: stored });
  const askedWithGet = carried.some((s) => s.request.method === 'GET');
  if (askedWithGet && asGet.kind === 'complete') allowed.push({ status: asGet.status, body: asGet.body });
  await storeCheck(door, fz, path, allowed, `${showFramed(asSent)}${mode === 'head' ? ' (to a HEAD)' : ''}`, problems);
  return { index, what, bytes, problems };
}

// --- request cases ----------------------------------------------------------------------------------------

async function requestCase(seed: number, index: number, rng: Rng, again: boolean): Promise<CaseResult> {
  const problems: string[] = [];
  const door: Door = rng() < 0.5 ? 'reverse' : 'forward';
  const template = pick(rng, REQUEST_TEMPLATES);
  const path = `/rq/${seed.toString(36)}-${index}${again ? '-again' : ''}`;
  const { rq, proxy } = rig;
  const target = door === 'reverse' ? path : `${rq.url}${path}`;
  const host = door === 'reverse' ? 'fuzz.test' : `127.0.0.1:${rq.port}`;
  const { bytes, applied } = mutate(rng, template.bytes.replaceAll('{T}', target).replaceAll('{H}', host));
  const what = `request ${door} ${template.name} [${applied.join(', ') || 'unmutated'}]`;
  const port = Number(new URL(door === 'reverse' ? proxy.reverseUrl : proxy.forwardUrl!).port);

  const answer = await rawExchange(port, bytes, { halfClose: true, deadlineMs: CLIENT_DEADLINE_MS });
  const text = answer.text;
  if (text.length > 0 && !/^HTTP\/1\.1 [1-5]\d\d /.test(text)) problems.push(`client: the answer is not an HTTP/1.1 response: ${escapeBytes(text, 60)}`);
  if (answer.timedOut) problems.push(`client: the connection was still open ${CLIENT_DEADLINE_MS} ms after the request and the client's FIN (${text.length} bytes received)`);

  await healthyCheck(door, problems);
  // A stored response for the canonical URL can only be the origin's answer to a GET of it.
  await storeCheck(door, rq, path, [{ status: 200, body: `ok GET ${path}` }], `"ok GET ${path}"`, problems);
  return { index, what, bytes, problems };
}

// --- the run ---------------------------------------------------------------------------------------------

/** Groups failures by what went wrong (numbers, ports and bodies left out). */
function signature(problem: string): string {
  return problem
    .split('\n')[0]!
    .replace(/"[^"]*"/g, '"…"')
    .replace(/\d+/g, 'N')
    .slice(0, 160);
}

/** Runs case `index` of `seed` (again: on a fresh URL, to see whether an escaped error comes back alone). */
async function runCase(seed: number, index: number, lane: number, again = false): Promise<CaseResult> {
  const rng = caseRng(seed, index);
  active.add(index);
  try {
    return await (rng() < 0.6 ? responseCase(seed, index, rng, lane, again) : requestCase(seed, index, rng, again));
  } finally {
    active.delete(index);
    recent.push(index);
    if (recent.length > LANES) recent.shift();
  }
}

/**
 * Cases run LANES at a time (the run is latency-bound, not CPU-bound). An error that escapes names the
 * cases that were running; each of those is then run again alone to see which one it was (up to a few
 * per kind of error). With FUZZ_LANES=1 every case runs alone.
 */
const CONFIRM_PER_KIND = 3;

async function attributeEscapes(seed: number, found: readonly Escape[], results: Map<number, CaseResult>): Promise<string[]> {
  const unattributed: string[] = [];
  const confirmed = new Map<string, number>();
  const tried = new Map<number, readonly string[]>();
  for (const e of found) {
    const kind = signature(e.text);
    if ((confirmed.get(kind) ?? 0) >= CONFIRM_PER_KIND) {
      confirmed.set(kind, confirmed.get(kind)! + 1);
      continue;
    }
    let culprit: number | undefined;
    for (const index of e.during) {
      if (!tried.has(index)) {
        const mark = escapes.length;
        await runCase(seed, index, 0, true);
        await new Promise((resolve) => setTimeout(resolve, 20));
        tried.set(index, escapes.slice(mark).map((x) => signature(x.text)));
      }
      if (tried.get(index)!.includes(kind)) {
        culprit = index;
        break;
      }
    }
    if (culprit === undefined) {
      unattributed.push(`escaped while cases ${e.during.join(', ')} ran; none of them reproduced it alone: ${e.text}`);
      continue;
    }
    confirmed.set(kind, (confirmed.get(kind) ?? 0) + 1);
    const r = results.get(culprit)!;
    results.set(culprit, { ...r, problems: [...r.problems, `escaped: ${e.text}${e.during.length > 1 ? ' (reproduced with the case alone)' : ''}`] });
  }
  for (const [kind, n] of confirmed) if (n > CONFIRM_PER_KIND) unattributed.push(`${n - CONFIRM_PER_KIND} more escaped errors like "${kind}" (not attributed: ${CONFIRM_PER_KIND} examples are enough)`);
  return unattributed;
}

describe('fuzz: mutated origin responses and client requests through both doors', () => {
  it.each(seeds)('seed %i', async (seed) => {
    const started = Date.now();
    const indexes = only !== undefined ? [only] : Array.from({ length: casesPerSeed }, (_, i) => i);
    const results = new Map<number, CaseResult>();
    const slowest: Array<[number, string]> = [];
    const mark = escapes.length;
    let next = 0;
    const lane = async (laneIndex: number) => {
      while (next < indexes.length) {
        const index = indexes[next++]!;
        const t0 = performance.now();
        const result = await runCase(seed, index, laneIndex);
        if (env.FUZZ_TIMING) slowest.push([performance.now() - t0, `${index} ${result.what}`]);
        results.set(index, result);
      }
    };
    const cpu = process.cpuUsage();
    await Promise.all(Array.from({ length: LANES }, (_, i) => lane(i)));
    const used = process.cpuUsage(cpu);
    if (env.FUZZ_TIMING) console.log(`cpu per case: ${((used.user + used.system) / 1000 / indexes.length).toFixed(2)} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const unattributed = await attributeEscapes(seed, escapes.slice(mark), results);

    const all = [...results.values()];
    const failed = all.filter((r) => r.problems.length > 0);
    const responses = all.filter((r) => r.what.startsWith('response')).length;
    if (env.FUZZ_TIMING) console.log(slowest.sort((a, b) => b[0] - a[0]).slice(0, 40).map(([ms, w]) => `${ms.toFixed(0)} ms ${w}`).join('\n'));
    if (only !== undefined) for (const r of all) console.log(`case ${r.index}: ${r.what}\n  bytes: ${escapeBytes(r.bytes, 4000)}\n  ${r.problems.join('\n  ') || 'no problem'}`);
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    console.log(`fuzz seed ${seed}: ${all.length} cases (${responses} responses, ${all.length - responses} requests) in ${seconds} s, ${failed.length} failed`);
    if (failed.length === 0 && unattributed.length === 0) return;

    const groups = new Map<string, CaseResult[]>();
    for (const f of failed) for (const p of new Set(f.problems.map(signature))) groups.set(p, [...(groups.get(p) ?? []), f]);
    const report = [...groups.entries()]
      .sort((a, b) => b[1].length - a[1].length)
      .map(([sig, cases]) => {
        const examples = cases.slice(0, EXAMPLES).map((c) => {
          const detail = c.problems.find((p) => signature(p) === sig)!;
          return `    FUZZ_SEED=${seed} FUZZ_CASE=${c.index}: ${c.what}\n      bytes: ${escapeBytes(c.bytes, 200)}\n      ${detail.replaceAll('\n', '\n      ')}`;
        });
        return `  ${cases.length} × ${sig}\n${examples.join('\n')}`;
      });
    const indexList = failed.map((f) => f.index).sort((a, b) => a - b).join(' ');
    expect.fail(`${failed.length} of ${all.length} fuzz cases failed (seed ${seed}); cases: ${indexList}\n${report.join('\n')}${unattributed.length ? `\n  ${unattributed.join('\n  ')}` : ''}`);
  }, 600_000);
});
