#!/usr/bin/env node
// Flow-control windows and throughput through Portico's TLS listener over a link with latency: a TCP
// relay in this process delays every chunk by DELAY ms each way (RTT = 2 × DELAY) without touching the
// machine's network. Uploads (POST, the client's body flows against Portico's receive windows:
// reverse.http2.stream_window / connection_window) for several window settings, and downloads (a
// streamed miss: Portico sends against the client's windows), next to HTTPS/1.1 through the same
// relay. dist/ must be built.
//   node bench/h2/windows.mjs [MiB=32] [delayMs=10]
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import selfsigned from 'selfsigned';
import { spawnPortico } from './spawn-portico.mjs';

const [mib = 32, delay = 10] = process.argv.slice(2).map(Number);
const SIZE = mib * 1024 * 1024;
const chunk = Buffer.alloc(64 * 1024, 'x');
const dir = mkdtempSync(path.join(tmpdir(), 'portico-h2win-'));
const pems = await selfsigned.generate([{ name: 'commonName', value: 'localhost' }], { keyType: 'ec' });
writeFileSync(path.join(dir, 'cert.pem'), pems.cert);
writeFileSync(path.join(dir, 'key.pem'), pems.private);

// The origin: counts an upload's bytes; sends SIZE bytes for GET, uncacheable.
const origin = http.createServer((req, res) => {
  if (req.method === 'POST') {
    let n = 0;
    req.on('data', (c) => (n += c.length));
    req.on('end', () => res.end(String(n)));
    return;
  }
  res.writeHead(200, { 'content-length': SIZE, 'cache-control': 'no-store' });
  let sent = 0;
  const pump = () => {
    while (sent < SIZE) {
      sent += chunk.length;
      if (!res.write(chunk)) return void res.once('drain', pump);
    }
    res.end();
  };
  pump();
});
await new Promise((r) => origin.listen(0, '127.0.0.1', r));

function delayRelay(targetPort) {
  const server = net.createServer((c) => {
    const u = net.connect(targetPort, '127.0.0.1');
    const forward = (a, b) =>
      a.on('data', (d) => setTimeout(() => b.writable && b.write(d), delay)).on('end', () => setTimeout(() => b.end(), delay)).on('error', () => b.destroy());
    forward(c, u);
    forward(u, c);
  });
  return new Promise((r) => server.listen(0, '127.0.0.1', () => r(server)));
}

async function startPortico(http2Config) {
  const conf = path.join(dir, `portico-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(conf, `reverse:
  tls_listen: 127.0.0.1:0
  tls: { cert: ${dir}/cert.pem, key: ${dir}/key.pem }
  http2: { ${http2Config} }
  routes: [{ path: /, pool: o }]
pools:
  o:
    servers: [{ url: http://127.0.0.1:${origin.address().port} }]
limits: { max_body_size: 1gb }
log: { level: info, stats_interval: 0 }
`);
  const { child, port } = await spawnPortico(conf);
  const relay = await delayRelay(port);
  return {
    port: relay.address().port,
    stop: async () => {
      relay.close();
      child.kill();
      await new Promise((r) => child.once('exit', r));
    },
  };
}

function send(writable) {
  let sent = 0;
  const pump = () => {
    while (sent < SIZE) {
      sent += chunk.length;
      if (!writable.write(chunk)) return void writable.once('drain', pump);
    }
    writable.end();
  };
  pump();
}

async function overH2(port, upload, clientSettings) {
  const session = http2.connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false, settings: clientSettings?.settings });
  await new Promise((r) => session.once('remoteSettings', r));
  if (clientSettings?.connectionWindow) session.setLocalWindowSize(clientSettings.connectionWindow);
  const t = performance.now();
  let bytes = 0;
  await new Promise((resolve, reject) => {
    const stream = session.request({ ':method': upload ? 'POST' : 'GET', ':path': upload ? '/up' : '/down' }, { endStream: !upload });
    stream.on('data', (d) => (bytes += d.length));
    stream.on('end', resolve);
    stream.on('error', reject);
    if (upload) send(stream);
  });
  const ms = performance.now() - t;
  session.close();
  if (!upload && bytes !== SIZE) throw new Error(`downloaded ${bytes} bytes`);
  return ms;
}

async function overHttps1(port, upload) {
  const t = performance.now();
  await new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, method: upload ? 'POST' : 'GET', path: upload ? '/up' : '/down', rejectUnauthorized: false, agent: false }, (res) => {
      res.resume();
      res.on('end', resolve);
    });
    req.on('error', reject);
    if (upload) send(req);
    else req.end();
  });
  return performance.now() - t;
}

const mbps = (ms) => `${(SIZE / 1048576 / (ms / 1000)).toFixed(0)} MB/s`;
const rows = [];
const WINDOWS = [
  ['Node defaults: 64 KiB stream, 64 KiB connection', 'stream_window: 65535, connection_window: 65535'],
  ['1 MiB stream, 8 MiB connection', 'stream_window: 1mb, connection_window: 8mb'],
  ['4 MiB stream, 16 MiB connection (default)', 'stream_window: 4mb, connection_window: 16mb'],
  ['8 MiB stream, 32 MiB connection', 'stream_window: 8mb, connection_window: 32mb'],
];
for (const [label, config] of WINDOWS) {
  const p = await startPortico(config);
  rows.push([`h2 upload, Portico windows: ${label}`, mbps(await overH2(p.port, true))]);
  if (config.includes('4mb')) {
    rows.push([`HTTPS/1.1 upload`, mbps(await overHttps1(p.port, true))]);
    rows.push([`h2 download, client windows: Node defaults (64 KiB)`, mbps(await overH2(p.port, false))]);
    rows.push([`h2 download, client windows: Chromium's (6 MiB stream, 15 MiB connection)`, mbps(await overH2(p.port, false, { settings: { initialWindowSize: 6 * 1024 * 1024 }, connectionWindow: 15 * 1024 * 1024 }))]);
    rows.push([`HTTPS/1.1 download`, mbps(await overHttps1(p.port, false))]);
  }
  await p.stop();
}
origin.close();
rmSync(dir, { recursive: true, force: true });
console.log(`| ${mib} MiB through Portico's TLS listener, RTT ${2 * delay} ms | throughput |`);
console.log('|---|---:|');
for (const [k, v] of rows) console.log(`| ${k} | ${v} |`);
process.exit(0);
