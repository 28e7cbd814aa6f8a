#!/usr/bin/env node
// `npm run soak`: minutes of steady load through both front doors of a real Portico (`node dist/cli.js
// --config …`, its own process), with one backend of the reverse pool killed (SIGKILL) and started
// again half-way. Reports requests, unexpected errors (there should be none: the pool has other
// backends and retries) and Portico's RSS over time (from /proc/PID/status), as a paragraph and tables.
//
// Processes: Portico; a "stable" origin process (backends a and c of the pool, the forward proxy's
// origin, and the TCP echo target for CONNECT); backend b alone in its own process, the one killed.
// Every process is started here and stopped by its PID (its process group), never by name.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, killAllSync, logTail, sleep, startProcess, stopAll, stopProcess, waitForPort } from './lib/procs.mjs';
import { bodyFor } from './lib/soak-origin.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..');

const USAGE = `Usage: npm run soak -- [options]

  --duration T      how long the load runs: 180, 90s, 3m (default 3m)
  --kill-at F       when backend b is killed, as a fraction of the duration (default 0.5)
  --down T          how long it stays dead before it is started again (default 15s)
  --sample T        RSS / rate sampling period (default 5s)
  --reverse N       concurrent reverse-proxy clients (default 8)
  --forward N       concurrent forward-proxy clients (default 4)
  --connect N       concurrent CONNECT tunnel loops (default 2)
  --no-build        use dist/ as it is (default: \`npm run build\` first)
  --keep-tmp        keep the temporary directory (config, logs)
  --help
`;

function seconds(text, flag) {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(String(text));
  if (!m) fail(`${flag}: expected a duration like 180, 90s or 3m, got "${text}"`);
  const n = Number(m[1]);
  return m[2] === 'm' ? n * 60 : m[2] === 'ms' ? n / 1000 : n;
}

function fail(message) {
  process.stderr.write(`soak: ${message}\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const o = { duration: 180, killAt: 0.5, down: 15, sample: 5, reverse: 8, forward: 4, connect: 2, build: true, keepTmp: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const [flag, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = () => inline ?? argv[++i] ?? fail(`${flag}: expected a value`);
    const count = () => {
      const n = Number(value());
      if (!Number.isInteger(n) || n < 0) fail(`${flag}: expected a whole number`);
      return n;
    };
    switch (flag) {
      case '--duration': o.duration = seconds(value(), flag); break;
      case '--kill-at': o.killAt = Number(value()); break;
      case '--down': o.down = seconds(value(), flag); break;
      case '--sample': o.sample = seconds(value(), flag); break;
      case '--reverse': o.reverse = count(); break;
      case '--forward': o.forward = count(); break;
      case '--connect': o.connect = count(); break;
      case '--no-build': o.build = false; break;
      case '--keep-tmp': o.keepTmp = true; break;
      case '--help': case '-h': process.stdout.write(USAGE); process.exit(0); break;
      default: fail(`unknown option ${a}\n${USAGE}`);
    }
  }
  if (!(o.killAt > 0 && o.killAt < 1)) fail('--kill-at: expected a fraction between 0 and 1');
  if (o.duration < 10) fail('--duration: at least 10 s');
  return o;
}

// ---------------------------------------------------------------------------------------------------
// Counters

const KINDS = ['reverse', 'forward', 'connect'];
const totals = Object.fromEntries(KINDS.map((k) => [k, { ok: 0, errors: 0, hits: 0 }]));
let intervalRequests = 0;
let intervalErrors = 0;
const errorKinds = new Map(); // message → count
const errorSamples = [];
const startedAt = Date.now();
const elapsed = () => (Date.now() - startedAt) / 1000;

function ok(kind, hit = false) {
  totals[kind].ok++;
  if (hit) totals[kind].hits++;
  intervalRequests++;
}

function error(kind, what) {
  totals[kind].errors++;
  intervalErrors++;
  const key = `${kind}: ${what}`;
  errorKinds.set(key, (errorKinds.get(key) ?? 0) + 1);
  if (errorSamples.length < 10) errorSamples.push(`${elapsed().toFixed(1)}s ${key}`);
}

// ---------------------------------------------------------------------------------------------------
// Load

const SIZES = [512, 4096, 32 * 1024];
const expected = new Map();
function expectedBody(pathname, size) {
  const key = `${pathname}?${size}`;
  let body = expected.get(key);
  if (body === undefined) {
    body = bodyFor(pathname, size);
    expected.set(key, body);
  }
  return body;
}

const pick = (n) => Math.floor(Math.random() * n);

/** One GET; resolves with an error description, or null when the answer is whole and right. */
function get(agent, options, pathname, size) {
  return new Promise((resolve) => {
    const req = http.request({ ...options, agent, method: 'GET' }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('error', (err) => resolve({ error: `response broke off (${err.code ?? err.message})` }));
      res.on('end', () => {
        if (!res.complete) return resolve({ error: 'response incomplete' });
        if (res.statusCode !== 200) return resolve({ error: `status ${res.statusCode} ${String(res.headers['proxy-status'] ?? '').replace(/;.*details=/, ' ')}`.trim() });
        const body = Buffer.concat(chunks);
        if (!body.equals(expectedBody(pathname, size))) return resolve({ error: `wrong body (${body.length} bytes)` });
        resolve({ error: null, hit: /^portico; hit/.test(String(res.headers['cache-status'] ?? '')) });
      });
    });
    req.setTimeout(15_000, () => req.destroy(new Error('no answer within 15 s')));
    req.on('error', (err) => resolve({ error: `request failed (${err.code ?? err.message})` }));
    req.end();
  });
}

function requestTarget() {
  const cacheable = Math.random() < 0.7;
  const n = pick(cacheable ? 200 : 1000);
  const size = SIZES[pick(SIZES.length)];
  const pathname = cacheable ? `/c/${n}` : `/nc/${n}`;
  return { pathname, size, query: `${pathname}?size=${size}` };
}

async function reverseLoop(port, agent, until) {
  while (Date.now() < until) {
    const t = requestTarget();
    const r = await get(agent, { host: '127.0.0.1', port, path: t.query, headers: { host: 'app.test' } }, t.pathname, t.size);
    if (r.error) error('reverse', r.error);
    else ok('reverse', r.hit);
  }
}

async function forwardLoop(port, originPort, agent, until) {
  while (Date.now() < until) {
    const t = requestTarget();
    const host = `127.0.0.1:${originPort}`;
    const r = await get(agent, { host: '127.0.0.1', port, path: `http://${host}/f${t.query}`, headers: { host } }, `/f${t.pathname}`, t.size);
    if (r.error) error('forward', r.error);
    else ok('forward', r.hit);
  }
}

const PAYLOAD = bodyFor('/tunnel', 16 * 1024);

/** One CONNECT tunnel: open, 16 kB there and back, close (alternately by end() and by destroy()). */
function tunnelOnce(port, echoPort, n) {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let stage = 'head';
    let buffer = Buffer.alloc(0);
    let settled = false;
    const done = (err) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) socket.destroy();
      resolve(err);
    };
    const timer = setTimeout(() => done(`tunnel: no progress within 15 s (stage ${stage})`), 15_000);
    socket.on('error', (err) => done(`tunnel failed (${err.code ?? err.message}, stage ${stage})`));
    socket.on('close', () => done(stage === 'closing' ? null : `tunnel closed early (stage ${stage})`));
    socket.on('connect', () => socket.write(`CONNECT 127.0.0.1:${echoPort} HTTP/1.1\r\nHost: 127.0.0.1:${echoPort}\r\n\r\n`));
    socket.on('data', (chunk) => {
      buffer = Buffer.concat([buffer, chunk]);
      if (stage === 'head') {
        const end = buffer.indexOf('\r\n\r\n');
        if (end < 0) return;
        const status = buffer.subarray(0, buffer.indexOf('\r\n')).toString('latin1');
        if (!/^HTTP\/1\.1 200 /.test(status)) return done(`tunnel refused: ${status}`);
        buffer = buffer.subarray(end + 4);
        stage = 'echo';
        socket.write(PAYLOAD);
      }
      if (stage === 'echo' && buffer.length >= PAYLOAD.length) {
        if (!buffer.subarray(0, PAYLOAD.length).equals(PAYLOAD)) return done('tunnel: echoed bytes differ');
        stage = 'closing';
        if (n % 2 === 0) socket.end();
        else socket.destroy();
      }
    });
  });
}

async function connectLoop(port, echoPort, until) {
  for (let n = 0; Date.now() < until; n++) {
    const err = await tunnelOnce(port, echoPort, n);
    if (err) error('connect', err);
    else ok('connect');
  }
}

// ---------------------------------------------------------------------------------------------------
// Processes and sampling

function rssOf(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** The admin API's view of the pool's servers, or null. */
function poolServers(adminPort) {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port: adminPort, path: '/api/pools', agent: false, timeout: 2_000 }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')).pools.find((p) => p.name === 'app').servers);
        } catch {
          resolve(null);
        }
      });
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(null));
  });
}

/** `a:up b:down c:up` from the admin API; `names` maps a backend port to its name. */
async function backendStates(adminPort, names) {
  const servers = await poolServers(adminPort);
  if (servers === null) return '?';
  return servers.map((s) => `${names.get(new URL(s.url).port) ?? s.url}:${s.state}`).sort().join(' ');
}

function startOrigin(tmp, name, args) {
  return startProcess(`origin-${name}`, process.execPath, [path.join(here, 'lib', 'soak-origin.mjs'), '--name', name, ...args], {
    logFile: path.join(tmp, `origin-${name}.log`),
  });
}

const mb = (bytes) => (bytes / 1024 / 1024).toFixed(1);

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (o.build) {
    const r = spawnSync(process.execPath, [path.join(repo, 'node_modules/typescript/bin/tsc'), '-p', path.join(repo, 'tsconfig.build.json')], { cwd: repo, encoding: 'utf8' });
    if (r.status !== 0) fail(`npm run build failed:\n${r.stdout}${r.stderr}`);
  }
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'portico-soak-'));
  const cleanup = async () => {
    await stopAll();
    if (!o.keepTmp) rmSync(tmp, { recursive: true, force: true });
  };
  process.on('SIGINT', () => {
    killAllSync();
    process.exit(130);
  });
  process.on('exit', killAllSync);

  const [portA, portB, portC, portOrigin, portEcho, portReverse, portForward, portAdmin] = await Promise.all(Array.from({ length: 8 }, freePort));
  const names = new Map([[String(portA), 'a'], [String(portB), 'b'], [String(portC), 'c']]);
  const stable = startOrigin(tmp, 'stable', ['--http', `${portA},${portC},${portOrigin}`, '--echo', String(portEcho)]);
  let killable = startOrigin(tmp, 'b', ['--http', String(portB)]);
  for (const [port, proc] of [[portA, stable], [portC, stable], [portOrigin, stable], [portEcho, stable], [portB, killable]]) await waitForPort(port, proc);

  const config = {
    reverse: { listen: `127.0.0.1:${portReverse}`, routes: [{ path: '/', pool: 'app' }] },
    pools: {
      app: {
        servers: [{ url: `http://127.0.0.1:${portA}` }, { url: `http://127.0.0.1:${portB}` }, { url: `http://127.0.0.1:${portC}` }],
        retries: 2,
        health: { path: '/health', interval: '1s', timeout: '500ms', rise: 2, fall: 2 },
        passive: { max_fails: 3, fail_timeout: '10s' },
      },
    },
    forward: { listen: `127.0.0.1:${portForward}`, upstream_proxy: 'direct', connect_ports: [portEcho] },
    admin: { listen: `127.0.0.1:${portAdmin}` },
    log: { level: 'warn', stats_interval: 0 },
  };
  const configFile = path.join(tmp, 'portico.json');
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  const portico = startProcess('portico', process.execPath, [path.join(repo, 'dist', 'cli.js'), '--config', configFile], {
    cwd: repo,
    logFile: path.join(tmp, 'portico.log'),
  });
  await waitForPort(portReverse, portico);
  await waitForPort(portForward, portico);
  await waitForPort(portAdmin, portico);

  const durationMs = o.duration * 1000;
  const begin = Date.now();
  const until = begin + durationMs;
  const killAt = begin + durationMs * o.killAt;
  const restartAt = killAt + o.down * 1000;
  process.stdout.write(
    `soak: ${o.duration} s of load (reverse ×${o.reverse}, forward ×${o.forward}, CONNECT ×${o.connect}); backend b killed at ${((killAt - begin) / 1000).toFixed(0)} s, back at ${((restartAt - begin) / 1000).toFixed(0)} s; Portico pid ${portico.pid}\n`,
  );

  const events = [];
  const schedule = (async () => {
    await sleep(killAt - Date.now());
    process.kill(-killable.pid, 'SIGKILL');
    await killable.exited;
    events.push({ at: (Date.now() - begin) / 1000, what: 'b killed' });
    await sleep(Math.max(0, restartAt - Date.now()));
    killable = startOrigin(tmp, 'b', ['--http', String(portB)]);
    await waitForPort(portB, killable);
    events.push({ at: (Date.now() - begin) / 1000, what: 'b restarted' });
  })();

  const samples = [];
  let stopSampling = false;
  const sampler = (async () => {
    let last = Date.now();
    while (!stopSampling) {
      await sleep(Math.min(o.sample * 1000, Math.max(0, until - Date.now()) + 50));
      const now = Date.now();
      const rss = rssOf(portico.pid);
      const states = await backendStates(portAdmin, names);
      const happened = events.filter((e) => e.at > (last - begin) / 1000 && e.at <= (now - begin) / 1000).map((e) => e.what);
      samples.push({ at: (now - begin) / 1000, rss, rate: intervalRequests / ((now - last) / 1000), errors: intervalErrors, states, events: happened.join(', ') });
      intervalRequests = 0;
      intervalErrors = 0;
      last = now;
      if (now >= until) break;
    }
  })();

  const reverseAgent = new http.Agent({ keepAlive: true, maxSockets: o.reverse });
  const forwardAgent = new http.Agent({ keepAlive: true, maxSockets: o.forward });
  const loops = [
    ...Array.from({ length: o.reverse }, () => reverseLoop(portReverse, reverseAgent, until)),
    ...Array.from({ length: o.forward }, () => forwardLoop(portForward, portOrigin, forwardAgent, until)),
    ...Array.from({ length: o.connect }, () => connectLoop(portForward, portEcho, until)),
  ];
  await Promise.all(loops);
  await schedule;
  stopSampling = true;
  await sampler;
  reverseAgent.destroy();
  forwardAgent.destroy();

  const servers = (await poolServers(portAdmin)) ?? [];
  const attempts = servers
    .map((srv) => ({ name: names.get(new URL(srv.url).port) ?? srv.url, requests: srv.requests, errors: srv.errors }))
    .sort((x, y) => x.name.localeCompare(y.name));
  const alive = portico.info.done ? `Portico exited during the run (${portico.info.signal ?? portico.info.code})${logTail(portico)}` : null;
  await stopProcess(portico, 5_000);
  await stopProcess(killable, 2_000);
  await stopProcess(stable, 2_000);

  report(o, samples, events, alive, attempts);
  await cleanup();
  const errors = KINDS.reduce((n, k) => n + totals[k].errors, 0);
  process.exitCode = errors > 0 || alive ? 1 : 0;
}

function report(o, samples, events, died, attempts) {
  const requests = KINDS.reduce((n, k) => n + totals[k].ok + totals[k].errors, 0);
  const errors = KINDS.reduce((n, k) => n + totals[k].errors, 0);
  const rss = samples.map((s) => s.rss).filter((r) => r !== null);
  // Memory after warm-up: the first sample at or after 20% of the run, against the last one.
  const settledIndex = Math.max(0, samples.findIndex((s) => s.at >= o.duration * 0.2));
  const rssSettled = samples[settledIndex]?.rss ?? rss[0] ?? 0;
  const rssEnd = rss.at(-1) ?? 0;
  const rssMax = Math.max(...rss);
  const growth = rssEnd - rssSettled;
  const flat = Math.abs(growth) < Math.max(16 * 1024 * 1024, rssSettled * 0.15);
  const kill = events.find((e) => e.what === 'b killed');
  const back = events.find((e) => e.what === 'b restarted');

  const lines = [];
  lines.push('');
  lines.push(
    `**Result.** ${o.duration} s of steady load through both front doors (reverse: ${o.reverse} keep-alive clients, 70% cacheable; forward: ${o.forward} clients sending absolute-URI requests; ${o.connect} CONNECT loops each opening a tunnel, echoing 16 kB and closing it) made ${requests.toLocaleString('en-US')} requests and tunnels (${(requests / o.duration).toFixed(0)}/s). ` +
      `Backend b of the three-server pool was killed with SIGKILL at ${kill ? kill.at.toFixed(0) : '?'} s and started again at ${back ? back.at.toFixed(0) : '?'} s. ` +
      `${errors === 0 ? 'There were no unexpected errors' : `There were ${errors} unexpected errors`}${died ? `, and ${died}` : ''}. ` +
      `Portico's RSS was ${mb(rssSettled)} MB after warm-up (${samples[settledIndex]?.at.toFixed(0) ?? '?'} s) and ${mb(rssEnd)} MB at the end (peak ${mb(rssMax)} MB): ${flat ? 'flat' : 'growing'} (${growth >= 0 ? '+' : ''}${mb(growth)} MB).`,
  );
  lines.push('');
  lines.push('| traffic | requests | errors | cache hits |');
  lines.push('|---|---:|---:|---:|');
  for (const k of KINDS) {
    const t = totals[k];
    lines.push(`| ${k === 'connect' ? 'CONNECT tunnels' : `${k} proxy`} | ${(t.ok + t.errors).toLocaleString('en-US')} | ${t.errors} | ${k === 'connect' ? '—' : `${((t.hits / Math.max(1, t.ok)) * 100).toFixed(0)}%`} |`);
  }
  lines.push('');
  lines.push('| backend | attempts | failed attempts (retried on another backend) |');
  lines.push('|---|---:|---:|');
  for (const a of attempts) lines.push(`| ${a.name} | ${a.requests.toLocaleString('en-US')} | ${a.errors} |`);
  lines.push('');
  // About a dozen rows: evenly spaced samples, plus every one with an event or an error.
  const step = Math.max(1, Math.round(samples.length / 12));
  lines.push(`| time | Portico RSS | req/s | errors | pool (a b c) | event |`);
  lines.push('|---:|---:|---:|---:|---|---|');
  samples.forEach((s, i) => {
    if (i % step !== step - 1 && i !== samples.length - 1 && !s.events && s.errors === 0 && i !== settledIndex) return;
    lines.push(`| ${s.at.toFixed(0)} s | ${s.rss === null ? '?' : `${mb(s.rss)} MB`} | ${s.rate.toFixed(0)} | ${s.errors} | ${s.states} | ${s.events} |`);
  });
  lines.push(`RSS is VmRSS from /proc/PID/status of the Portico process, sampled every ${o.sample} s; req/s and errors are over the ${o.sample} s before each row.`);
  if (errorKinds.size > 0) {
    lines.push('');
    lines.push('Unexpected errors:');
    for (const [what, n] of [...errorKinds].sort((a, b) => b[1] - a[1])) lines.push(`- ${n} × ${what}`);
    lines.push('First ones:');
    for (const s of errorSamples) lines.push(`- ${s}`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().catch(async (err) => {
  process.stderr.write(`soak: ${err.stack ?? err}\n`);
  killAllSync();
  process.exit(1);
});
