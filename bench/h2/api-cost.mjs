#!/usr/bin/env node
// What Node's HTTP/2 compatibility API costs over its stream API, per request, on a bare server that
// answers a constant 1 KiB body over TLS, next to what a Portico cache hit costs over h2 and over
// HTTPS/1.1 (dist/ must be built): CPU microseconds per request of the server process (from /proc,
// so other load on the machine does not skew it), h2load with a fixed request count.
//   node bench/h2/api-cost.mjs [requests=100000] [rounds=3]
import { spawn, execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import selfsigned from 'selfsigned';
import { spawnPortico } from './spawn-portico.mjs';

const [requests = 100_000, rounds = 3] = process.argv.slice(2).map(Number);
const dir = mkdtempSync(path.join(tmpdir(), 'portico-h2api-'));
const pems = await selfsigned.generate([{ name: 'commonName', value: 'localhost' }], { keyType: 'ec' });
writeFileSync(path.join(dir, 'cert.pem'), pems.cert);
writeFileSync(path.join(dir, 'key.pem'), pems.private);

const SERVER = `
import http2 from 'node:http2';
import https from 'node:https';
import { readFileSync } from 'node:fs';
const [mode, dir] = process.argv.slice(2);
const body = Buffer.alloc(1024, 'x');
const tls = { cert: readFileSync(dir + '/cert.pem'), key: readFileSync(dir + '/key.pem') };
const head = ['content-type', 'text/plain', 'content-length', '1024', 'cache-control', 'max-age=60'];
let server;
if (mode === 'compat') server = http2.createSecureServer({ ...tls, allowHTTP1: true }, (req, res) => { res.writeHead(200, head); res.end(body); });
else if (mode === 'stream') {
  server = http2.createSecureServer({ ...tls, allowHTTP1: true });
  server.on('stream', (s) => { s.respond({ ':status': 200, 'content-type': 'text/plain', 'content-length': 1024, 'cache-control': 'max-age=60' }); s.end(body); });
} else server = https.createServer(tls, (req, res) => { res.writeHead(200, head); res.end(body); });
server.listen(0, '127.0.0.1', () => process.stdout.write(server.address().port + '\\n'));
`;
writeFileSync(path.join(dir, 'server.mjs'), SERVER);

// Portico's origin: 1 KiB, cacheable; Portico itself listens on a port the OS picks.
const ORIGIN = `
import http from 'node:http';
const body = Buffer.alloc(1024, 'x');
const server = http.createServer((req, res) => res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=3600' }).end(body));
server.listen(0, '127.0.0.1', () => process.stdout.write(server.address().port + '\\n'));
`;
writeFileSync(path.join(dir, 'origin.mjs'), ORIGIN);
const origin = spawn(process.execPath, [path.join(dir, 'origin.mjs')], { stdio: ['ignore', 'pipe', 'inherit'] });
const originPort = await new Promise((resolve) => origin.stdout.once('data', (d) => resolve(Number(String(d).trim()))));

/** Portico from dist/ with a TLS listener; resolves with its child process and port. */
async function startPortico() {
  const conf = path.join(dir, 'portico.yaml');
  writeFileSync(conf, `reverse:
  tls_listen: 127.0.0.1:0
  tls: { cert: ${dir}/cert.pem, key: ${dir}/key.pem }
  routes: [{ path: /, pool: o }]
pools:
  o:
    servers: [{ url: http://127.0.0.1:${originPort} }]
log: { level: info, stats_interval: 0 }
`);
  const { child, port } = await spawnPortico(conf);
  return { child, port };
}

function cpuSeconds(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

/** The processes of a Portico (supervisor and worker): every one's CPU counts. */
function treePids(pid) {
  const out = [pid];
  try {
    for (const child of readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean)) out.push(...treePids(Number(child)));
  } catch {}
  return out;
}

async function measure(mode) {
  let child;
  let port;
  if (mode.startsWith('portico')) ({ child, port } = await startPortico());
  else {
    child = spawn(process.execPath, [path.join(dir, 'server.mjs'), mode, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
    port = await new Promise((resolve) => child.stdout.once('data', (d) => resolve(Number(String(d).trim()))));
  }
  const h1 = mode.endsWith('https1');
  const args = ['-t1', '-c10', h1 ? '--h1' : '-m10', `https://127.0.0.1:${port}/`];
  execFileSync('h2load', ['-n', '20000', ...args], { stdio: 'ignore' }); // warm-up (JIT)
  const pids = treePids(child.pid);
  const cpu = () => pids.reduce((a, pid) => a + cpuSeconds(pid), 0);
  const before = cpu();
  const out = execFileSync('h2load', ['-n', String(requests), ...args]).toString();
  const used = cpu() - before;
  child.kill();
  await new Promise((resolve) => child.once('exit', resolve));
  const rps = Number(/finished in [\d.]+m?s, ([\d.]+) req\/s/.exec(out)[1]);
  return { mode, usPerRequest: (used * 1e6) / requests, rps };
}

const results = { compat: [], stream: [], https1: [], 'portico-h2': [], 'portico-https1': [] };
for (let r = 0; r < rounds; r++) for (const mode of Object.keys(results)) results[mode].push(await measure(mode));
origin.kill();
rmSync(dir, { recursive: true, force: true });
const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(`| server (1 KiB constant over TLS, ${requests.toLocaleString('en-US')} requests, median of ${rounds}) | CPU µs per request | req/s |`);
console.log('|---|---:|---:|');
for (const [mode, rs] of Object.entries(results)) {
  const label = { compat: 'http2 compatibility API (h2, 10 conns × 10 streams)', stream: "http2 stream API ('stream' event, h2, 10 × 10)", https1: 'https (HTTP/1.1, 10 connections)', 'portico-h2': 'Portico cache hit, h2 (10 × 10)', 'portico-https1': 'Portico cache hit, HTTPS/1.1 (10 connections)' }[mode];
  console.log(`| ${label} | ${median(rs.map((x) => x.usPerRequest)).toFixed(1)} | ${Math.round(median(rs.map((x) => x.rps))).toLocaleString('en-US')} |`);
}
