#!/usr/bin/env node
// `npm run bench`: Portico side by side with nginx, HAProxy, Squid, Varnish, node-http-proxy,
// proxy-chain and a bare Node http server, every one limited to one worker, loaded in turn by the
// same client, several rounds (median). Prints markdown tables and writes bench/results/latest.md.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkBody, cacheEvidence, sampleRequest } from './lib/check.mjs';
import { SIZES, startOrigin } from './lib/origin.mjs';
import { inspectPeers, PEERS } from './lib/peers.mjs';
import {
  findBinary,
  foreignCpuSeconds,
  groupPeakRss,
  groupsCpuSeconds,
  killAllSync,
  logTail,
  runProcess,
  sleep,
  snapshotAllCpu,
  stopAll,
  stopProcess,
  trackedPids,
} from './lib/procs.mjs';
import { renderReport } from './lib/report.mjs';
import { SCENARIOS } from './lib/scenarios.mjs';
import { runH2load } from './lib/h2load.mjs';
import { runWrk, writeWrkScript } from './lib/wrk.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..');

const USAGE = `Usage: npm run bench -- [options]

  --quick            development mode: ${'2'} s per row, 1 s warm-up, 1 round
  --only A,B         run only these scenarios: ${SCENARIOS.map((s) => s.id).join(', ')}
                     (reverse-redis-1k: Portico's hits from memory, hits from Redis and misses, with
                     --cache-redis; reverse-redis-shared: two Portico instances sharing one Redis or
                     not, and the origin requests each way; both start a redis-server of their own
                     and are skipped without one: apt-get install -y redis-server)
  --peers A,B        run only these servers (direct is always kept): ${Object.keys(PEERS).join(', ')}
  --rounds N         measured rounds per row, median reported (default 3)
  --duration S       seconds per measured round (default 10)
  --warmup S         warm-up seconds per row, also fills the caches (default 3)
  --connections N    concurrent connections (wrk -c, CONNECT setup loops) (default 50)
  --no-build         do not run \`npm run build\` first (use dist/ as it is)
  --install          apt-get install the missing Debian packages first (needs root)
  --keep-tmp         keep the temporary directory (configs, logs) for inspection
  --profile DIR      run Portico under \`node --cpu-prof\` and write its .cpuprofile files to DIR
  --out FILE         where to write the report (default bench/results/latest.md)
  --baseline REF     also run Portico as of git REF (built in a temporary worktree with npm ci and
                     npm run build) as a "Portico before" row next to every Portico row: before/after
                     in one run
  --help
`;

function parseArgs(argv) {
  const o = { baseline: null, profile: null, quick: false, only: null, peers: null, rounds: 3, duration: 10, warmup: 3, connections: 50, build: true, install: false, keepTmp: false, out: path.join(here, 'results', 'latest.md') };
  const explicit = new Set();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const [flag, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined) fail(`${flag}: expected a value`);
      return v;
    };
    const num = (min) => {
      const v = Number(value());
      if (!Number.isFinite(v) || v < min) fail(`${flag}: expected a number ≥ ${min}`);
      return v;
    };
    switch (flag) {
      case '--quick': o.quick = true; break;
      case '--only': o.only = value().split(',').map((s) => s.trim()).filter(Boolean); break;
      case '--peers': o.peers = value().split(',').map((s) => s.trim()).filter(Boolean); break;
      case '--rounds': o.rounds = Math.round(num(1)); explicit.add('rounds'); break;
      case '--duration': o.duration = num(1); explicit.add('duration'); break;
      case '--warmup': o.warmup = num(0); explicit.add('warmup'); break;
      case '--connections': o.connections = Math.round(num(1)); break;
      case '--no-build': o.build = false; break;
      case '--install': o.install = true; break;
      case '--keep-tmp': o.keepTmp = true; break;
      case '--profile': o.profile = path.resolve(value()); break;
      case '--out': o.out = path.resolve(value()); break;
      case '--baseline': o.baseline = value(); break;
      case '--help': case '-h': process.stdout.write(USAGE); process.exit(0); break;
      default: fail(`unknown option ${a}`);
    }
  }
  if (o.quick) {
    if (!explicit.has('rounds')) o.rounds = 1;
    if (!explicit.has('duration')) o.duration = 2;
    if (!explicit.has('warmup')) o.warmup = 1;
  }
  if (o.only) {
    const unknown = o.only.filter((id) => !SCENARIOS.some((s) => s.id === id));
    if (unknown.length) fail(`--only: unknown scenario ${unknown.join(', ')} (known: ${SCENARIOS.map((s) => s.id).join(', ')})`);
  }
  if (o.peers) {
    const unknown = o.peers.filter((id) => !(id in PEERS));
    if (unknown.length) fail(`--peers: unknown server ${unknown.join(', ')} (known: ${Object.keys(PEERS).join(', ')})`);
  }
  o.argv = argv;
  return o;
}

function fail(message) {
  process.stderr.write(`bench: ${message}\n\n${USAGE}`);
  process.exit(2);
}

const log = (msg) => process.stderr.write(`[bench] ${msg}\n`);

// ---------------------------------------------------------------------------------------------
// Cleanup: every child (by PID / process group) and the temp dir, whatever way we leave.

let tmp = null;
let keepTmp = false;
let cleaning = null;

function cleanup() {
  cleaning ??= (async () => {
    await stopAll().catch(() => {});
    if (tmp && !keepTmp) rmSync(tmp, { recursive: true, force: true });
    else if (tmp) log(`kept ${tmp}`);
    // The --baseline worktree was in tmp: forget it in the repository's list too.
    if (tmp && !keepTmp) spawnSync('git', ['worktree', 'prune'], { cwd: repo });
  })();
  return cleaning;
}

process.on('exit', () => {
  killAllSync();
  if (tmp && !keepTmp) {
    try {
      rmSync(tmp, { recursive: true, force: true });
    } catch {
      // best effort
    }
  }
});
let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    if (interrupted) return;
    interrupted = true;
    log(`${signal}: stopping every server started by the bench`);
    cleanup().finally(() => process.exit(128 + (os.constants.signals[signal] ?? 1)));
  });
}
function fatal(err) {
  if (interrupted) return; // servers are being stopped under us: the signal handler exits
  log(`error: ${err?.stack ?? err}`);
  cleanup().finally(() => process.exit(1));
}
process.on('uncaughtException', fatal);
process.on('unhandledRejection', fatal);

// ---------------------------------------------------------------------------------------------

const median = (xs) => {
  const v = xs.filter((x) => x !== null && x !== undefined && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
};

async function buildPortico(opts) {
  const cli = path.join(repo, 'dist', 'cli.js');
  if (!opts.build) {
    return existsSync(cli) ? { ok: true, note: 'not rebuilt (--no-build)' } : { ok: false, reason: 'dist/cli.js is missing (run npm run build)' };
  }
  log('building Portico (npm run build)');
  const r = await runProcess('npm run build', 'npm', ['run', '-s', 'build'], { cwd: repo, timeoutMs: 300_000 });
  if (r.code !== 0) {
    const text = `${r.stdout}\n${r.stderr}`;
    const errors = text.split('\n').filter((l) => /error/i.test(l));
    const first = (errors.length ? errors : text.trim().split('\n')).slice(0, 2).join('; ');
    return { ok: false, reason: `npm run build failed: ${first}${errors.length > 2 ? ` (+${errors.length - 2} more)` : ''}` };
  }
  if (!existsSync(cli)) return { ok: false, reason: 'npm run build produced no dist/cli.js' };
  return { ok: true };
}

/**
 * `--baseline REF`: a detached worktree of REF inside the temp dir, installed and built as a fresh clone
 * would be. { ok, dir, label } or { ok: false, reason } (the rows then say why).
 */
async function buildBaseline(ref) {
  const sha = await runProcess('git rev-parse', 'git', ['rev-parse', '--short', `${ref}^{commit}`], { cwd: repo, timeoutMs: 10_000 });
  if (sha.code !== 0) return { ok: false, reason: `--baseline ${ref}: not a commit (${sha.stderr.trim()})` };
  const short = sha.stdout.trim();
  const dir = path.join(tmp, `baseline-${short}`);
  const steps = [
    ['git worktree add', 'git', ['worktree', 'add', '--detach', dir, short], repo],
    ['npm ci', 'npm', ['ci', '--no-audit', '--no-fund'], dir],
    ['npm run build', 'npm', ['run', '-s', 'build'], dir],
  ];
  for (const [name, bin, args, cwd] of steps) {
    log(`baseline ${short}: ${name}`);
    const r = await runProcess(name, bin, args, { cwd, timeoutMs: 600_000 });
    if (r.code !== 0) return { ok: false, reason: `--baseline ${ref}: ${name} failed: ${(r.stderr || r.stdout).trim().split('\n').slice(-2).join(' | ')}` };
  }
  return { ok: true, dir, ref, sha: short, label: `Portico before (${short})` };
}

async function installMissing(peerInfo, needWrk) {
  // Several peers need the same package (redis-server): name it once.
  const pkgs = [...new Set(Object.values(peerInfo).filter((p) => !p.installed && p.missing?.startsWith('not installed (apt-get')).map((p) => PEERS[p.id].apt))];
  if (needWrk) pkgs.push('wrk');
  if (!findBinary('h2load')) pkgs.push('nghttp2-client');
  if (pkgs.length === 0) return;
  if (process.getuid?.() !== 0) {
    log(`--install needs root; run: apt-get install -y ${pkgs.join(' ')}`);
    return;
  }
  log(`apt-get install -y ${pkgs.join(' ')}`);
  const r = await runProcess('apt-get', 'apt-get', ['install', '-y', ...pkgs], { timeoutMs: 600_000, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  if (r.code !== 0) log(`apt-get install failed: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
}

async function gitDescribe() {
  const head = await runProcess('git', 'git', ['rev-parse', '--short', 'HEAD'], { cwd: repo, timeoutMs: 10000 });
  const dirty = await runProcess('git', 'git', ['status', '--porcelain', '--', 'src'], { cwd: repo, timeoutMs: 10000 });
  if (head.code !== 0) return null;
  return `${head.stdout.trim()}${dirty.stdout.trim() ? ' + uncommitted changes in src/' : ''}`;
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  keepTmp = opts.keepTmp;
  const scenarios = SCENARIOS.filter((s) => !opts.only || opts.only.includes(s.id));
  const startedAt = new Date();
  const loadBefore = os.loadavg();

  let wrkBin = findBinary('wrk');
  const h2loadBin = findBinary('h2load');
  if (!h2loadBin && scenarios.some((s) => s.mode === 'h2load')) log('h2load is not installed (apt-get install -y nghttp2-client): the TLS rows will fail');
  let peerInfo = await inspectPeers();
  if (opts.install) {
    await installMissing(peerInfo, !wrkBin);
    wrkBin = findBinary('wrk');
    peerInfo = await inspectPeers();
  }
  const nginxBin = PEERS.nginx.bin;
  if (!nginxBin) {
    fail('nginx is the origin of every scenario and is not installed: apt-get install -y nginx-light (or npm run bench -- --install)');
  }
  const missing = Object.values(peerInfo).filter((p) => !p.installed);
  if (!wrkBin) log('wrk is not installed (apt-get install -y wrk): the HTTP rows will fail');
  for (const p of missing) log(`${p.label}: ${p.missing}`);

  tmp = mkdtempSync(path.join(os.tmpdir(), 'portico-bench-'));
  chmodSync(tmp, 0o755); // nginx workers and squid run as other users
  const portico = await buildPortico(opts);
  if (!portico.ok) log(`Portico rows will fail: ${portico.reason}`);
  const baseline = opts.baseline === null ? null : await buildBaseline(opts.baseline);
  if (baseline && !baseline.ok) log(`Portico before rows will fail: ${baseline.reason}`);

  const wrkVersion = wrkBin ? /wrk ([^\s]+)/.exec((await runProcess('wrk', wrkBin, ['-v'], { timeoutMs: 5000 })).stdout)?.[1] : null;
  const porticoVersion = JSON.parse(readFileSync(path.join(repo, 'package.json'), 'utf8')).version;
  const env = {
    date: startedAt.toISOString(),
    nproc: os.availableParallelism?.() ?? os.cpus().length,
    cpu: os.cpus()[0]?.model?.trim() ?? 'unknown',
    kernel: `${os.type()} ${os.release()}`,
    memGiB: (os.totalmem() / 1024 ** 3).toFixed(1),
    node: process.version,
    wrk: wrkVersion,
    portico: `${porticoVersion} (git ${(await gitDescribe()) ?? '?'})${portico.note ? `, ${portico.note}` : ''}`,
    porticoBuild: portico,
    baseline,
    peers: peerInfo,
    loadBefore,
    opts,
  };

  log(`starting the nginx origin in ${tmp}`);
  const origin = await startOrigin(tmp, nginxBin);
  const ctx = { tmp, origin, repo, portico, baseline, wrkBin, h2loadBin, opts };

  const results = [];
  for (const sc of scenarios) {
    log(`scenario ${sc.id}`);
    results.push(await runScenario(ctx, sc, peerInfo));
  }
  env.loadAfter = os.loadavg();
  env.finishedAt = new Date().toISOString();
  await origin.stop();

  const markdown = renderReport({ env, results });
  process.stdout.write(`\n${markdown}\n`);
  mkdirSync(path.dirname(opts.out), { recursive: true });
  writeFileSync(opts.out, markdown);
  log(`wrote ${path.relative(process.cwd(), opts.out) || opts.out}`);
  await cleanup();
}

// ---------------------------------------------------------------------------------------------

/** With --baseline, a "Portico before" row goes before the Portico row of the scenarios both can run. */
function withBaseline(sc, ctx) {
  const i = sc.peers.indexOf('portico');
  if (ctx.baseline === null || i < 0 || sc.baselineRow === false) return sc.peers;
  return [...sc.peers.slice(0, i), 'portico-before', ...sc.peers.slice(i)];
}

async function runScenario(ctx, sc, peerInfo) {
  const { origin, opts } = ctx;
  const size = SIZES[sc.body];
  const expectedBody = origin.bodies[sc.body] ?? size;
  const peerIds = withBaseline(sc, ctx).filter((id) => id === 'direct' || !opts.peers || opts.peers.includes(id));
  const rows = peerIds.map((id) => ({
    id,
    label: id === 'portico-before' && ctx.baseline?.label ? ctx.baseline.label : PEERS[id].label,
    status: 'ok', // ok | failed | invalid | missing
    reason: null,
    problems: new Set(),
    notes: [],
    rounds: [],
    server: null,
  }));
  const active = () => rows.filter((r) => r.status === 'ok' || r.status === 'invalid');
  const usesWrk = sc.mode === 'http' || sc.mode === 'pair';

  // 1. Start every server of the scenario (idle ones cost nothing measurable), fresh caches.
  for (const row of rows) {
    const info = peerInfo[row.id];
    if (info && !info.installed) {
      row.status = 'missing';
      row.reason = info.missing;
      continue;
    }
    if (usesWrk && !ctx.wrkBin) {
      row.status = 'failed';
      row.reason = 'wrk is not installed (apt-get install -y wrk)';
      continue;
    }
    if (sc.mode === 'h2load' && !ctx.h2loadBin) {
      row.status = 'failed';
      row.reason = 'h2load is not installed (apt-get install -y nghttp2-client)';
      continue;
    }
    try {
      row.server = await PEERS[row.id].start(ctx, sc);
      if (row.server.command) row.notes.push(`\`${row.server.command}\``);
    } catch (err) {
      row.status = 'failed';
      row.reason = `did not start: ${oneLine(err.message)}`;
    }
  }

  // 2. A sample request must come back right (from every instance of a row) before any load.
  const requestLike = usesWrk || sc.mode === 'h2load';
  for (const row of active()) {
    if (!requestLike) continue;
    for (const instance of row.server.instances ?? [row.server]) {
      const res = await sampleRequest(instance, sc.path, origin.host, sc.tls);
      const problem = checkBody(res, row.server.noOrigin ? size : expectedBody);
      if (problem) {
        row.status = 'failed';
        row.reason = `sample response wrong: ${oneLine(problem)}`;
        break;
      }
    }
  }

  // 3. Warm-up (JIT, connection pools, and the caches for hit rows), then check hits are hits.
  for (const row of active()) {
    const w = await loadOnce(ctx, sc, row, Math.max(opts.warmup || 0.5, sc.warmup ?? 0), 'warm-up');
    const dead = exitedProc(row.server);
    if (dead) {
      row.status = 'failed';
      row.reason = `${dead.name} exited during the warm-up (${dead.info.signal ?? `code ${dead.info.code}`})${oneLine(logTail(dead, 3))}`;
      continue;
    }
    if (!w.ok) {
      row.status = 'failed';
      row.reason = `warm-up failed: ${oneLine(w.reason)}`;
      continue;
    }
    if (requestLike && expectOf(sc, row) === 'hit' && row.id !== 'direct' && !row.server.noOrigin) {
      const res = await sampleRequest(row.server, samplePath(sc), origin.host, sc.tls);
      const problem = checkBody(res, expectedBody);
      if (problem) {
        row.status = 'failed';
        row.reason = `sample response after warm-up wrong: ${oneLine(problem)}`;
        continue;
      }
      const ev = cacheEvidence(res.headers);
      row.notes.push(ev.evidence);
      if (ev.hit === false) row.problems.add(`after warm-up the response is not a hit (${ev.evidence})`);
      const hitFrom = PEERS[row.id].hitFrom;
      const fromRedis = /;\s*detail=redis\b/i.test(res.headers['cache-status'] ?? '');
      if (hitFrom && fromRedis !== (hitFrom === 'redis')) row.problems.add(`after warm-up the hit is not from ${hitFrom} (${ev.evidence})`);
    }
    if (sc.mode === 'pair') {
      const problem = await checkSharing(ctx, sc, row);
      if (problem) row.problems.add(problem);
    }
  }

  // 4. Measured rounds, interleaved across servers so that drift in machine load hits all alike.
  for (let round = 0; round < opts.rounds; round++) {
    for (const row of active()) {
      const m = await loadOnce(ctx, sc, row, opts.duration, `round-${round + 1}`);
      const dead = exitedProc(row.server);
      if (dead) {
        row.status = 'failed';
        row.reason = `${dead.name} exited during round ${round + 1} (${dead.info.signal ?? `code ${dead.info.code}`})${oneLine(logTail(dead, 3))}`;
        continue;
      }
      if (!m.ok) {
        row.status = 'failed';
        row.reason = `round ${round + 1} failed: ${oneLine(m.reason)}`;
        continue;
      }
      row.rounds.push(m);
      for (const p of validateRound(sc, row, m, size)) row.problems.add(p);
      if (m.errors?.status > 0 && !row.failureSample) {
        // wrk only counts non-2xx answers; show what one looks like.
        const res = await sampleRequest(row.server, samplePath(sc), origin.host, sc.tls);
        row.failureSample = res.ok
          ? `a request after the round got ${res.status}${res.headers['proxy-status'] ? ` (Proxy-Status: ${res.headers['proxy-status']})` : ''}: ${oneLine(res.body.toString('utf8', 0, 160))}`
          : `a request after the round failed: ${res.reason}`;
        row.problems.add(row.failureSample);
      }
      await sleep(200);
    }
  }

  // 5. Peak RSS, then stop; what the Node servers logged (warnings, errors) goes into the notes.
  for (const row of rows) {
    const instances = row.server ? (row.server.instances ?? [row.server]).filter((s) => s.proc) : [];
    if (instances.length) row.peakRss = instances.reduce((a, s) => a + groupPeakRss(s.proc.pid), 0);
    if (row.server?.redis) row.redisPeakRss = groupPeakRss(row.server.redis.proc.pid);
    for (const [i, instance] of instances.entries()) {
      await stopProcess(instance.proc, instance.stopGraceMs);
      if (instance.logsToStderr) {
        const summary = summarizeLog(instance.proc.logFile);
        if (summary) row.notes.push(instances.length > 1 ? `instance ${i + 1} ${summary}` : summary);
      }
    }
    if (row.server?.redis) await stopProcess(row.server.redis.proc);
    if (row.status === 'ok' && row.problems.size > 0) row.status = 'invalid';
    if (row.status === 'invalid' && !row.reason) row.reason = [...row.problems].join('; ');
    summarize(row);
  }
  return { scenario: sc, rows: rows.map(({ server, problems, ...r }) => r) };
}

/** What the origin's counter must show for a row: its peer's own expectation (a miss row among hits), or the scenario's. */
const expectOf = (sc, row) => PEERS[row.id]?.expect ?? sc.expect;

/** The first process of a row's server (an instance, its redis-server) that has exited, or undefined. */
function exitedProc(server) {
  return [...(server.instances ?? [server]).map((s) => s.proc), server.redis?.proc].find((p) => p?.info.done);
}

/**
 * One load run (wrk or the CONNECT generator) with CPU and origin accounting around it (and the
 * redis-server's CPU and commands for the rows that have one). `phase` is 'warm-up' or 'round-N'; the
 * rows with URL sets use it to make URLs that no earlier run asked for.
 */
async function loadOnce(ctx, sc, row, seconds, phase) {
  const { origin, opts } = ctx;
  const warmup = phase === 'warm-up';
  const serverPids = (row.server.instances ?? [row.server]).map((s) => s.proc?.pid).filter(Boolean);
  const redis = row.server.redis ?? null;
  const ours = new Set([...trackedPids(), origin.proc.pid]);
  const cpu0 = groupsCpuSeconds([...serverPids, redis?.proc.pid, origin.proc.pid]);
  const snap0 = warmup ? null : snapshotAllCpu();
  const origin0 = await origin.requests();
  const redis0 = redis ? await redis.commands().catch((err) => err) : null;
  if (redis0 instanceof Error) return { ok: false, reason: `redis-server did not answer INFO: ${redis0.message}` };
  const t0 = process.hrtime.bigint();
  let m;
  if (sc.mode === 'h2load') {
    const r = await runH2load(ctx.h2loadBin, { tmp: ctx.tmp, port: row.server.port, path: sc.path, seconds: Math.max(1, Math.round(seconds)), connections: sc.connections, streams: sc.streams, h1: sc.h1 });
    if (!r.ok) return r;
    const h = r.result;
    const expected = sc.h1 ? 'http/1.1' : 'h2';
    if (h.protocol !== expected) return { ok: false, reason: `h2load negotiated ${h.protocol ?? 'nothing'}, expected ${expected}` };
    m = {
      ok: true,
      value: h.rps,
      requests: h.requests,
      seconds: h.seconds,
      p50: h.p50,
      p99: h.p99,
      bytes: h.dataBytes,
      errors: { connect: 0, read: 0, write: 0, timeout: h.failed, status: h.non2xx },
      clientCpu: h.clientCpu,
      command: r.command,
    };
  } else if (sc.mode === 'http' || sc.mode === 'pair') {
    m = await wrkLoad(ctx, sc, row, seconds, phase);
    if (!m.ok) return m;
  } else {
    const throughput = sc.mode === 'connect-throughput';
    const spec = {
      mode: throughput ? 'throughput' : 'setup',
      proxy: row.id === 'direct' ? null : row.server.port,
      target: origin.host,
      path: sc.path,
      size: SIZES[sc.body],
      seconds: warmup && throughput ? 0.1 : seconds,
      concurrency: throughput ? 1 : opts.connections,
    };
    const r = await runProcess('connect-load', process.execPath, [path.join(here, 'lib', 'connect-load.mjs'), JSON.stringify(spec)], { timeoutMs: (seconds + 120) * 1000 });
    const line = r.stdout.split('\n').find((l) => l.startsWith('BENCH_JSON '));
    if (!line) return { ok: false, reason: `load generator failed (${r.code ?? r.signal}): ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ')}` };
    const g = JSON.parse(line.slice('BENCH_JSON '.length));
    if (g.completed === 0) return { ok: false, reason: `no transfer completed; errors: ${JSON.stringify(g.errorSamples)}` };
    m = {
      ok: true,
      value: throughput ? g.mbps : g.rate,
      requests: g.completed,
      seconds: g.seconds,
      p50: g.p50,
      p99: g.p99,
      bytes: g.bodyBytes,
      genErrors: g.errors,
      errorSamples: g.errorSamples,
      clientCpu: g.clientCpu,
    };
  }
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const origin1 = await origin.requests();
  const cpu1 = groupsCpuSeconds([...serverPids, redis?.proc.pid, origin.proc.pid]);
  m.originRequests = origin1 - origin0;
  m.serverCpu = serverPids.length ? serverPids.reduce((a, pid) => a + cpu1.get(pid) - cpu0.get(pid), 0) : null;
  m.originCpu = cpu1.get(origin.proc.pid) - cpu0.get(origin.proc.pid);
  if (redis) {
    const redis1 = await redis.commands().catch((err) => err);
    if (redis1 instanceof Error) return { ok: false, reason: `redis-server did not answer INFO: ${redis1.message}` };
    m.redisCommands = redis1 - redis0;
    m.redisCpu = cpu1.get(redis.proc.pid) - cpu0.get(redis.proc.pid);
  }
  m.wall = wall;
  if (snap0) m.foreignCpu = foreignCpuSeconds(snap0, snapshotAllCpu(), ours);
  return m;
}

/** The URL a check asks for: the scenario's path, or the first URL of its fixed URL set. */
function samplePath(sc) {
  return sc.urlTag === undefined ? sc.path : `${sc.path}?set=${sc.urlTag}&u=0`;
}

/**
 * wrk against the row's server; for a two-instance row, one wrk against each instance at the same time,
 * with the same script (the same URLs in the same order: both miss each URL at about the same moment,
 * the hardest case for sharing), added up: requests and req/s summed, p50/p99 the higher of the two.
 */
async function wrkLoad(ctx, sc, row, seconds, phase) {
  const { origin, opts } = ctx;
  const delayMs = sc.rate ? (opts.connections * 1000) / sc.rate : 0;
  const urls = PEERS[row.id].urls === 'unique' ? { unique: phase } : sc.urlSet ? { cycle: sc.urlSet, tag: sc.urlTag ?? phase } : null;
  const spec = { access: row.server.access, requestPath: sc.path, originHost: origin.host, delayMs, urls, siteHost: row.server.siteHost };
  // One URL: one script for every run of the row. URL sets: a script per run, with URLs of its own.
  const script = urls ? writeWrkScript(ctx.tmp, spec) : (row.script ??= writeWrkScript(ctx.tmp, spec));
  const instances = row.server.instances ?? [row.server];
  const runs = await Promise.all(
    instances.map((s) => runWrk(ctx.wrkBin, { port: s.port, script, seconds: Math.max(1, Math.round(seconds)), connections: opts.connections })),
  );
  const failed = runs.find((r) => !r.ok);
  if (failed) return failed;
  const ws = runs.map((r) => r.result);
  const sum = (f) => ws.reduce((a, w) => a + f(w), 0);
  return {
    ok: true,
    value: sum((w) => w.rps),
    requests: sum((w) => w.requests),
    perInstance: ws.map((w) => w.requests),
    seconds: Math.max(...ws.map((w) => w.seconds)),
    p50: Math.max(...ws.map((w) => w.p50)) / 1000,
    p99: Math.max(...ws.map((w) => w.p99)) / 1000,
    bytes: sum((w) => w.bytes),
    errors: { connect: sum((w) => w.connect), read: sum((w) => w.read), write: sum((w) => w.write), timeout: sum((w) => w.timeout), status: sum((w) => w.status) },
    clientCpu: ws.every((w) => w.clientCpu !== null) ? sum((w) => w.clientCpu) : null,
    command: runs.length > 1 ? `${runs.length} × ${runs[0].command} (one per instance, at once)` : runs[0].command,
  };
}

/**
 * Two-instance rows, after the warm-up: a URL fetched through the first instance, then asked of the
 * second, which must answer it from Redis when they share one and must not have it when they do not.
 * Returns a problem or null; the second answer's Cache-Status goes into the row's notes.
 */
async function checkSharing(ctx, sc, row) {
  const [a, b] = row.server.instances;
  const url = `${sc.path}?sharing-check`;
  const first = await sampleRequest(a, url, ctx.origin.host);
  await sleep(200); // the write to Redis completes after the response
  const second = await sampleRequest(b, url, ctx.origin.host);
  const problem = checkBody(first, ctx.origin.bodies[sc.body]) ?? checkBody(second, ctx.origin.bodies[sc.body]);
  if (problem) return `sharing check: ${oneLine(problem)}`;
  const cs = second.headers['cache-status'] ?? 'no Cache-Status';
  row.notes.push(`the second instance, asked for a URL the first has just fetched: Cache-Status: ${cs}`);
  const hit = /;\s*hit\b/i.test(cs);
  if (PEERS[row.id].originPerUrl === 1) return hit && /detail=redis\b/i.test(cs) ? null : `the second instance did not answer from Redis (${cs})`;
  return hit ? `the second instance answered from a cache it should not have (${cs})` : null;
}

/** Reasons this round's number cannot be trusted (empty when it can). */
function validateRound(sc, row, m, size) {
  const out = [];
  const direct = row.id === 'direct';
  if (sc.mode === 'h2load') {
    const e = m.errors;
    if (e.status > 0) out.push(`${e.status} responses were not 2xx`);
    if (e.timeout > Math.max(5, m.requests * 0.001)) out.push(`${e.timeout} requests failed, errored or timed out in ${m.requests}`);
    const perResponse = m.bytes / Math.max(1, m.requests);
    // h2load counts the body bytes of the requests still in flight when the time is up, too.
    if (perResponse < size - 16 || perResponse > size * 1.02 + 64) out.push(`${Math.round(perResponse)} body bytes per response, expected ${size}`);
  } else if (sc.mode === 'http' || sc.mode === 'pair') {
    const e = m.errors;
    if (e.status > 0) out.push(`${e.status} responses were not 2xx/3xx`);
    const socketErrors = e.connect + e.read + e.write + e.timeout;
    if (socketErrors > Math.max(5, m.requests * 0.001)) out.push(`socket errors: connect ${e.connect}, read ${e.read}, write ${e.write}, timeout ${e.timeout} in ${m.requests} requests`);
    const perResponse = m.bytes / Math.max(1, m.requests);
    if (perResponse < size || perResponse > size + 2048) out.push(`${Math.round(perResponse)} bytes per response, expected ${size} + headers`);
  } else {
    if (m.genErrors > Math.max(2, m.requests * 0.005)) out.push(`${m.genErrors} failed ${sc.mode === 'connect-setup' ? 'tunnels' : 'transfers'}: ${JSON.stringify(m.errorSamples)}`);
  }
  if (!direct && !row.server.noOrigin) {
    const expect = expectOf(sc, row);
    if (expect === 'hit' && m.originRequests > m.requests * 0.01) {
      out.push(`not served from cache: the origin answered ${m.originRequests} of ${m.requests} requests`);
    }
    if (expect === 'miss' && m.originRequests < m.requests * 0.98) {
      out.push(`the origin saw only ${m.originRequests} of ${m.requests} requests: the proxy answered some itself`);
    }
  }
  // Where the hits came from: a hit from Redis reads it (one command at least), a hit from memory does not.
  const hitFrom = PEERS[row.id]?.hitFrom;
  if (hitFrom === 'redis' && m.redisCommands < m.requests) {
    out.push(`${m.redisCommands} Redis commands for ${m.requests} requests: not every hit was read from Redis`);
  }
  if (hitFrom === 'memory' && m.redisCommands > m.requests * 0.01) {
    out.push(`${m.redisCommands} Redis commands for ${m.requests} requests: hits from memory should not ask Redis`);
  }
  if (sc.mode === 'pair') out.push(...pairProblems(sc, row, m));
  return out;
}

/**
 * Two-instance rows: each round asks for URLs no instance has seen (its own set of N), and both
 * instances ask for all of them. Apart, each fetches every URL once: 2N origin requests, no more (one
 * fetch per URL per process) and no fewer. Sharing one Redis, each URL is fetched once for both — N,
 * plus the URLs both fetched anyway (both missed it at the same moment and the fill lock did not keep
 * the second out): the row is shown as long as that stays under 1.5N (per URL: 1.00 … 1.50), which
 * only sharing explains; near 2N the instances did not share (Redis unreachable, or too slow: its
 * breaker opens after three commands over the 100 ms command_timeout, and the stderr note says so).
 */
function pairProblems(sc, row, m) {
  const n = sc.urlSet;
  const fewest = Math.min(...m.perInstance);
  if (fewest < n) return [`an instance served ${fewest} requests, fewer than the ${n} URLs of the set: run longer (--duration)`];
  if (m.originRequests < n) return [`the origin saw ${m.originRequests} requests for ${n} URLs no instance had seen: something else answered`];
  if (PEERS[row.id].originPerUrl === 1) {
    return m.originRequests < n * 1.5 ? [] : [`the origin saw ${m.originRequests} requests for ${n} URLs: the instances did not share the cache`];
  }
  if (m.originRequests < 2 * n) return [`the origin saw ${m.originRequests} requests for ${n} URLs, fewer than the ${2 * n} two caches apart must make`];
  return m.originRequests > 2 * n * 1.01 ? [`the origin saw ${m.originRequests} requests for ${n} URLs, more than one per URL per instance`] : [];
}

function summarize(row) {
  const rs = row.rounds;
  if (rs.length === 0) return;
  row.value = median(rs.map((r) => r.value));
  row.p50 = median(rs.map((r) => r.p50));
  row.p99 = median(rs.map((r) => r.p99));
  const seconds = rs.reduce((a, r) => a + r.seconds, 0);
  const wall = rs.reduce((a, r) => a + r.wall, 0);
  row.measuredSeconds = seconds;
  row.cpu = rs.every((r) => r.serverCpu !== null) ? rs.reduce((a, r) => a + r.serverCpu, 0) : null;
  row.cpuShare = row.cpu !== null ? row.cpu / wall : null;
  row.originCpuShare = rs.reduce((a, r) => a + r.originCpu, 0) / wall;
  row.clientCpuShare = rs.every((r) => r.clientCpu !== null) ? Math.max(...rs.map((r) => r.clientCpu / r.seconds)) : null;
  row.foreignShare = rs.every((r) => r.foreignCpu !== undefined) ? rs.reduce((a, r) => a + r.foreignCpu, 0) / wall : null;
  row.originRequests = rs.reduce((a, r) => a + r.originRequests, 0);
  row.requests = rs.reduce((a, r) => a + r.requests, 0);
  row.originPerRound = median(rs.map((r) => r.originRequests));
  row.requestsPerRound = median(rs.map((r) => r.requests));
  if (rs.every((r) => r.redisCpu !== undefined)) {
    row.redisCpu = rs.reduce((a, r) => a + r.redisCpu, 0);
    row.redisCpuShare = row.redisCpu / wall;
    row.redisCommands = rs.reduce((a, r) => a + r.redisCommands, 0);
    // INFO's counter includes the commands run inside Portico's Lua scripts (a hit is one script call).
    const rss = row.redisPeakRss ? `, peak RSS ${Math.round(row.redisPeakRss / 1024 ** 2)} MB` : '';
    row.notes.push(`Redis: ${(row.redisCommands / Math.max(1, row.requests)).toFixed(2)} commands per request (its scripts' included)${rss}`);
  }
  row.roundValues = rs.map((r) => r.value);
  const errs = rs.reduce((a, r) => a + (r.errors ? r.errors.connect + r.errors.read + r.errors.write + r.errors.timeout : r.genErrors), 0);
  if (errs) row.notes.push(`${errs} socket errors`);
  row.command = rs[0].command;
}

/** "log: N lines; 2× 'backend down: …'" from a server's stderr (pino JSON lines or plain text). */
function summarizeLog(file) {
  let text;
  try {
    text = readFileSync(file, 'utf8').trim();
  } catch {
    return null;
  }
  const lines = withoutBanner(text.split('\n'));
  if (!text || lines.length === 0) return null;
  const counts = new Map();
  for (const line of lines) {
    let key;
    try {
      const j = JSON.parse(line);
      key = [j.msg, j.reason ?? j.err?.message ?? j.problems?.[0]].filter(Boolean).join(': ');
    } catch {
      key = line.replace(/\(node:\d+\)/, '').replace(/\d+/g, 'N').trim();
    }
    if (!key) continue;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const top = [...counts].sort((a, b) => b[1] - a[1]).slice(0, 3).map(([k, n]) => `${n}× "${oneLine(k).slice(0, 140)}"`);
  return `stderr: ${lines.length} line${lines.length > 1 ? 's' : ''}, ${top.join(', ')}`;
}

/**
 * Portico's start-up block (src/startup-banner.ts: "portico 0.1.0 · pid N · …", then indented lines) goes
 * to stderr at every log level; it says nothing about the run.
 */
function withoutBanner(lines) {
  if (!/^portico \S+ · pid \d+/.test(lines[0] ?? '')) return lines;
  let i = 1;
  while (i < lines.length && /^ {2}\S/.test(lines[i])) i++;
  return lines.slice(i);
}

const oneLine = (s) => String(s).replace(/\s+/g, ' ').trim().slice(0, 400);

main().catch(fatal);
