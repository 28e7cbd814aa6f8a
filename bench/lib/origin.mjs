// The origin: one nginx worker serving fixed files.
//   /c/1k, /c/100k     Cache-Control: public, max-age=3600   (hit scenarios)
//   /nc/1k, /nc/100k   Cache-Control: no-store               (miss scenarios)
//   /big/200m          200 MB, for CONNECT throughput
// plus stub_status on a second port, whose request counter proves hits (the origin saw nothing)
// and misses (the origin saw every request).
import { chmodSync, mkdirSync, openSync, closeSync, ftruncateSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { freePort, startProcess, stopProcess, waitForPort } from './procs.mjs';

export const SIZES = { '1k': 1024, '100k': 100 * 1024, '200m': 200 * 1000 * 1000 };

/** Deterministic printable content, so that a proxy mangling bytes is caught. */
export function makeBody(size, seed) {
  const buf = Buffer.allocUnsafe(size);
  const alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    buf[i] = alphabet.charCodeAt(x % alphabet.length);
  }
  for (let i = 63; i < size; i += 64) buf[i] = 10; // newlines
  return buf;
}

/** nginx directives shared by every nginx we start (origin and reverse-proxy peer). */
export function nginxPreamble(dir) {
  return `daemon off;
master_process on;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 16384; }
`;
}

export function nginxHttpCommon(dir) {
  return `  access_log off;
  client_body_temp_path ${dir}/tmp/body;
  proxy_temp_path ${dir}/tmp/proxy;
  fastcgi_temp_path ${dir}/tmp/fastcgi;
  uwsgi_temp_path ${dir}/tmp/uwsgi;
  scgi_temp_path ${dir}/tmp/scgi;
  keepalive_requests 10000000;
  keepalive_timeout 120s;
  tcp_nodelay on;
  default_type application/octet-stream;
`;
}

export function prepareNginxDir(dir) {
  mkdirSync(path.join(dir, 'tmp'), { recursive: true });
  chmodSync(dir, 0o755);
  chmodSync(path.join(dir, 'tmp'), 0o777);
}

export async function startOrigin(tmp, nginxBin) {
  const dir = path.join(tmp, 'origin');
  const www = path.join(dir, 'www');
  prepareNginxDir(dir);
  for (const sub of ['c', 'nc', 'big']) mkdirSync(path.join(www, sub), { recursive: true, mode: 0o755 });
  const bodies = {};
  for (const [name, seed] of [['1k', 11], ['100k', 22]]) {
    bodies[name] = makeBody(SIZES[name], seed);
    writeFileSync(path.join(www, 'c', name), bodies[name], { mode: 0o644 });
    writeFileSync(path.join(www, 'nc', name), bodies[name], { mode: 0o644 });
  }
  // 200 MB sparse file: reads come from the page cache, no disk involved.
  const fd = openSync(path.join(www, 'big', '200m'), 'w', 0o644);
  ftruncateSync(fd, SIZES['200m']);
  closeSync(fd);
  for (const d of [www, path.join(www, 'c'), path.join(www, 'nc'), path.join(www, 'big')]) chmodSync(d, 0o755);

  const port = await freePort();
  const statusPort = await freePort();
  const conf = path.join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    `${nginxPreamble(dir)}http {
${nginxHttpCommon(dir)}  sendfile on;
  tcp_nopush on;
  open_file_cache max=64 inactive=600s;
  open_file_cache_valid 600s;
  server {
    listen 127.0.0.1:${port} backlog=4096;
    root ${www};
    location /c/ { add_header Cache-Control "public, max-age=3600"; }
    location /nc/ { add_header Cache-Control "no-store"; }
    location /big/ { }
  }
  server {
    listen 127.0.0.1:${statusPort};
    location = /status { stub_status; }
  }
}
`,
  );
  const proc = startProcess('origin nginx', nginxBin, ['-e', path.join(dir, 'error.log'), '-p', dir, '-c', conf], { logFile: path.join(dir, 'stderr.log') });
  await waitForPort(port, proc);
  await waitForPort(statusPort, proc);
  const origin = {
    port,
    statusPort,
    proc,
    bodies,
    host: `127.0.0.1:${port}`,
    url: (p) => `http://127.0.0.1:${port}${p}`,
    /** Requests the origin has handled so far (excluding our status polls). */
    async requests() {
      const text = await httpGetText(statusPort, '/status');
      const m = /\n\s*(\d+)\s+(\d+)\s+(\d+)/.exec(text);
      if (!m) throw new Error(`unexpected stub_status output: ${text}`);
      origin.polls += 1;
      return Number(m[3]) - origin.polls;
    },
    polls: 0,
    stop: () => stopProcess(proc),
  };
  return origin;
}

function httpGetText(port, p) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: p, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve(text));
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error('status request timed out')));
  });
}
