// The servers compared, each limited to one worker (but the Portico --workers row) and configured for the same job.
// start(ctx, scenario) → { port, proc, access: 'reverse' | 'forward' }; throws with a reason on failure.
// A server may also bring a redis-server (`redis`, bench/lib/redis.mjs) or be several instances
// (`instances`: the started servers, the first of which is the server itself).
// What a peer may say about its row, beside the scenario: `expect` ('miss' where the scenario's rows are
// hits), `urls` ('unique': a new URL every request), `hitFrom` ('memory' | 'redis': where its hits must
// come from), `originPerUrl` (two-instance rows: origin requests per URL of the set once both are filled).
import { mkdirSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { nginxHttpCommon, nginxPreamble, prepareNginxDir, SIZES } from './origin.mjs';
import { startRedis } from './redis.mjs';
import { findBinary, freePort, runProcess, startProcess, stopProcess, waitForPort } from './procs.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const peerScripts = path.join(here, '..', 'peers');
const require = createRequire(import.meta.url);

let counter = 0;
const peerDir = (ctx, name) => {
  const dir = path.join(ctx.tmp, `${name}-${++counter}`);
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o755);
  return dir;
};

function npmVersion(pkg) {
  try {
    // Packages with an "exports" map hide package.json from require.resolve: find it next to the entry.
    let dir = path.dirname(require.resolve(pkg));
    for (;;) {
      try {
        const json = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8'));
        if (json.name === pkg) return json.version;
      } catch {
        // keep walking up
      }
      const up = path.dirname(dir);
      if (up === dir) return null;
      dir = up;
    }
  } catch {
    return null;
  }
}

function firstLine(text, re) {
  const m = re.exec(text);
  return m ? m[1] : null;
}

async function binVersion(bin, args, re) {
  const r = await runProcess(`${bin} version`, bin, args, { timeoutMs: 10000 });
  return firstLine(`${r.stdout}\n${r.stderr}`, re);
}

const nodeBin = process.execPath;

async function startNodeScript(ctx, name, script, args) {
  const dir = peerDir(ctx, name);
  const port = await freePort();
  const proc = startProcess(name, nodeBin, [path.join(peerScripts, script), String(port), ...args], { logFile: path.join(dir, 'stderr.log') });
  await waitForPort(port, proc);
  return { port, proc, logsToStderr: true };
}

/** What the peers that start a redis-server say about it (inspectPeers() finds it, or says how to install it). */
const REDIS_SERVER = {
  binary: 'redis-server',
  apt: 'redis-server',
  version: (bin) => binVersion(bin, ['--version'], /v=([\w.]+)/),
};

export const PEERS = {
  direct: {
    label: 'direct (nginx origin)',
    async start(ctx) {
      return { port: ctx.origin.port, proc: null, access: 'reverse' };
    },
  },

  nginx: {
    label: 'nginx',
    binary: 'nginx',
    apt: 'nginx-light',
    version: (bin) => binVersion(bin, ['-v'], /nginx\/([\w.]+)/),
    async start(ctx, scenario) {
      const dir = peerDir(ctx, 'nginx');
      prepareNginxDir(dir);
      const port = await freePort();
      const cache = scenario.expect === 'hit';
      if (cache) {
        mkdirSync(path.join(dir, 'cache'), { recursive: true });
        chmodSync(path.join(dir, 'cache'), 0o777);
      }
      const conf = path.join(dir, 'nginx.conf');
      writeFileSync(
        conf,
        `${nginxPreamble(dir)}http {
${nginxHttpCommon(dir)}${cache ? `  proxy_cache_path ${dir}/cache levels=1:2 keys_zone=bench:16m max_size=256m inactive=1h use_temp_path=off;\n` : ''}  upstream origin {
    server 127.0.0.1:${ctx.origin.port};
    keepalive 64;
    keepalive_requests 10000000;
  }
  sendfile on;
  proxy_buffer_size 16k;
  proxy_buffers 8 16k;
  proxy_busy_buffers_size 32k;
  server {
    listen 127.0.0.1:${port}${scenario.tls ? ' ssl http2' : ''} backlog=4096;
${scenario.tls ? await nginxTls(ctx) : ''}    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
${cache ? '      proxy_cache bench;\n      proxy_cache_lock on;\n      add_header X-Cache-Status $upstream_cache_status;\n' : '      proxy_buffering on;\n'}    }
  }
}
`,
      );
      const proc = startProcess('nginx', this.bin, ['-e', path.join(dir, 'error.log'), '-p', dir, '-c', conf], { logFile: path.join(dir, 'stderr.log') });
      await waitForPort(port, proc);
      return { port, proc, access: 'reverse' };
    },
  },

  haproxy: {
    label: 'HAProxy',
    binary: 'haproxy',
    apt: 'haproxy',
    version: (bin) => binVersion(bin, ['-v'], /HA-?Proxy version ([\w.+~-]+)/i),
    async start(ctx) {
      const dir = peerDir(ctx, 'haproxy');
      const port = await freePort();
      const conf = path.join(dir, 'haproxy.cfg');
      writeFileSync(
        conf,
        `global
  nbthread 1
  maxconn 4096
  pidfile ${dir}/haproxy.pid

defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  option http-keep-alive
  http-reuse always

frontend bench
  bind 127.0.0.1:${port}
  default_backend origin

backend origin
  server o1 127.0.0.1:${ctx.origin.port}
`,
      );
      const proc = startProcess('haproxy', this.bin, ['-db', '-f', conf], { logFile: path.join(dir, 'stderr.log') });
      await waitForPort(port, proc);
      return { port, proc, access: 'reverse' };
    },
  },

  varnish: {
    label: 'Varnish',
    binary: 'varnishd',
    apt: 'varnish',
    version: (bin) => binVersion(bin, ['-V'], /varnish-([\w.]+)/),
    async start(ctx) {
      const dir = peerDir(ctx, 'varnish');
      const port = await freePort();
      const proc = startProcess(
        'varnish',
        this.bin,
        ['-F', '-n', path.join(dir, 'work'), '-a', `127.0.0.1:${port}`, '-b', `127.0.0.1:${ctx.origin.port}`, '-s', 'malloc,256m', '-T', 'none', '-p', 'thread_pools=1'],
        { logFile: path.join(dir, 'stderr.log') },
      );
      await waitForPort(port, proc, 30000);
      return { port, proc, access: 'reverse' };
    },
  },

  squid: {
    label: 'Squid',
    binary: 'squid',
    apt: 'squid',
    version: (bin) => binVersion(bin, ['-v'], /Version ([\w.]+)/),
    async start(ctx) {
      const dir = peerDir(ctx, 'squid');
      chmodSync(dir, 0o777); // squid drops to its own user (cache_effective_user) when started as root
      const port = await freePort();
      const conf = path.join(dir, 'squid.conf');
      writeFileSync(
        conf,
        `http_port 127.0.0.1:${port}
workers 1
pid_filename ${dir}/squid.pid
cache_log ${dir}/cache.log
access_log none
cache_store_log none
coredump_dir ${dir}
cache_mem 256 MB
maximum_object_size_in_memory 1 MB
memory_cache_shared off
http_access allow localhost
http_access deny all
icp_port 0
htcp_port 0
pinger_enable off
dns_nameservers 127.0.0.1
shutdown_lifetime 0 seconds
visible_hostname portico-bench
max_filedescriptors 65536
client_persistent_connections on
server_persistent_connections on
`,
      );
      const proc = startProcess('squid', this.bin, ['-N', '-f', conf], { logFile: path.join(dir, 'stderr.log') });
      proc.logFile = path.join(dir, 'cache.log'); // squid's own log says why it failed
      await waitForPort(port, proc, 20000);
      return { port, proc, access: 'forward' };
    },
  },

  'node-http-proxy': {
    label: 'node-http-proxy',
    npm: 'http-proxy',
    version: () => npmVersion('http-proxy'),
    async start(ctx) {
      return { ...(await startNodeScript(ctx, 'node-http-proxy', 'node-http-proxy.mjs', [ctx.origin.url('')])), access: 'reverse' };
    },
  },

  'proxy-chain': {
    label: 'proxy-chain',
    npm: 'proxy-chain',
    version: () => npmVersion('proxy-chain'),
    async start(ctx) {
      return { ...(await startNodeScript(ctx, 'proxy-chain', 'proxy-chain.mjs', [])), access: 'forward' };
    },
  },

  ceiling: {
    label: 'bare Node http (constant)',
    async start(ctx, scenario) {
      return { ...(await startNodeScript(ctx, 'node-ceiling', 'node-ceiling.mjs', [String(SIZES[scenario.body])])), access: 'reverse', noOrigin: true };
    },
  },

  portico: {
    label: 'Portico',
    portico: true,
    async start(ctx, scenario) {
      return startPortico(ctx, scenario, { cache: true });
    },
  },

  // `--baseline REF`: the same row from another commit (built in a temporary worktree), side by side,
  // for before/after comparisons in one run.
  'portico-before': {
    label: 'Portico before',
    portico: true,
    async start(ctx, scenario) {
      if (!ctx.baseline?.ok) throw new Error(ctx.baseline?.reason ?? 'needs --baseline REF');
      return startPortico(ctx, scenario, { cache: true, id: 'portico-before', root: ctx.baseline.dir });
    },
  },

  'portico-nocache': {
    label: 'Portico --no-cache',
    portico: true,
    async start(ctx, scenario) {
      return startPortico(ctx, scenario, { cache: false });
    },
  },

  // Not limited to one worker: shows how Portico scales with --workers (one per core here).
  'portico-workers': {
    label: 'Portico --workers 2',
    portico: true,
    async start(ctx, scenario) {
      return startPortico(ctx, scenario, { cache: true, workers: 2 });
    },
  },

  // The shared tier (cache.redis), each row with a redis-server of its own. Three rows of one setup: hits
  // from memory (the memory tier holds the object, Redis is not asked), hits from Redis (a memory tier
  // too small for it), and misses (a new URL every request).
  'portico-redis': {
    label: 'Portico --cache-redis, memory hit',
    ...REDIS_SERVER,
    portico: true,
    hitFrom: 'memory',
    async start(ctx, scenario) {
      return startPorticoWithRedis(ctx, scenario, this.bin, 'portico-redis');
    },
  },

  // The memory tier's bound (1 KiB) is below the size of the 1 KiB response's entry (body + headers),
  // so the memory tier refuses it: every request is a local miss answered from Redis (the copy into
  // the memory tier that follows a Redis hit is refused too, as it would be for an evicted entry).
  'portico-redis-tier': {
    label: 'Portico --cache-redis, Redis hit',
    ...REDIS_SERVER,
    portico: true,
    hitFrom: 'redis',
    async start(ctx, scenario) {
      return startPorticoWithRedis(ctx, scenario, this.bin, 'portico-redis-tier', ['--cache-size', '1kb']);
    },
  },

  // A real miss with the shared tier on: memory miss, Redis miss, the fill lock in Redis, the origin,
  // and the response written to both tiers.
  'portico-redis-miss': {
    label: 'Portico --cache-redis, miss (new URL each request)',
    ...REDIS_SERVER,
    portico: true,
    expect: 'miss',
    urls: 'unique',
    async start(ctx, scenario) {
      return startPorticoWithRedis(ctx, scenario, this.bin, 'portico-redis-miss');
    },
  },

  // Two instances under the same load (the reverse-redis-shared scenario), as two machines behind a
  // load balancer would be: each `--no-supervise` (one Node process; the supervisor and its idle spare
  // would make six Node processes on this machine's two cores).
  'portico-pair': {
    label: 'Portico pair, apart (no Redis)',
    portico: true,
    originPerUrl: 2,
    async start(ctx, scenario) {
      return startPorticoPair(ctx, scenario, 'portico-pair', null);
    },
  },

  'portico-pair-redis': {
    label: 'Portico pair, sharing one Redis',
    ...REDIS_SERVER,
    portico: true,
    originPerUrl: 1,
    async start(ctx, scenario) {
      return startPorticoPair(ctx, scenario, 'portico-pair-redis', this.bin);
    },
  },
};

/** Portico with `--cache-redis` on a redis-server of its own (`redisBin`: found by inspectPeers()). */
async function startPorticoWithRedis(ctx, scenario, redisBin, id, extraArgs = []) {
  const redis = await startRedis(redisBin, peerDir(ctx, 'redis'));
  try {
    const server = await startPortico(ctx, scenario, { cache: true, id, args: ['--cache-redis', redis.url, ...extraArgs] });
    return { ...server, redis };
  } catch (err) {
    await stopProcess(redis.proc);
    throw err;
  }
}

/**
 * Two Portico instances, sharing a redis-server of their own when `redisBin` is given:
 * { port/proc of the first, instances, redis }. Both are one site, as behind a load balancer: every
 * request to either carries the same Host (the cache key is the URL the client asked for, Host
 * included; with each instance's own address in it, nothing would be shared).
 */
async function startPorticoPair(ctx, scenario, id, redisBin) {
  const redis = redisBin ? await startRedis(redisBin, peerDir(ctx, 'redis')) : null;
  const instances = [];
  try {
    for (const name of ['a', 'b']) {
      const args = ['--no-supervise', ...(redis ? ['--cache-redis', redis.url] : [])];
      instances.push({ ...(await startPortico(ctx, scenario, { cache: true, id: `${id}-${name}`, args })), siteHost: 'bench.test' });
    }
  } catch (err) {
    for (const s of instances) await stopProcess(s.proc);
    if (redis) await stopProcess(redis.proc);
    throw err;
  }
  return { ...instances[0], instances, redis, command: `2 × ${instances[0].command}` };
}

/**
 * The certificate of the TLS rows (one per run, P-256 like the tests'): { cert, key } file paths.
 * nginx and Portico serve the same one, with TLS 1.3 negotiated by both (the same cipher suite).
 */
async function benchCert(ctx) {
  if (ctx.tlsFiles) return ctx.tlsFiles;
  const { default: selfsigned } = await import('selfsigned');
  const pems = await selfsigned.generate([{ name: 'commonName', value: 'localhost' }], {
    keyType: 'ec',
    extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }, { type: 7, ip: '127.0.0.1' }] }],
  });
  const cert = path.join(ctx.tmp, 'bench-cert.pem');
  const key = path.join(ctx.tmp, 'bench-key.pem');
  writeFileSync(cert, pems.cert);
  writeFileSync(key, pems.private, { mode: 0o644 });
  ctx.tlsFiles = { cert, key };
  return ctx.tlsFiles;
}

/** nginx's TLS lines for the TLS rows: HTTP/2 is on by the listen line (\`listen … ssl http2\`, nginx < 1.25). */
async function nginxTls(ctx) {
  const { cert, key } = await benchCert(ctx);
  return `    ssl_certificate ${cert};
    ssl_certificate_key ${key};
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:SSL:1m;
`;
}

/** `id` names the row's profile directory; `args` are more flags (after the usual ones). */
/** `root` is the checkout whose dist/ runs (another one for the baseline row). */
async function startPortico(ctx, scenario, { cache, workers = 1, id = workers > 1 ? 'portico-workers' : cache ? 'portico' : 'portico-nocache', args: extraArgs = [], root = ctx.repo }) {
  const build = root === ctx.repo ? ctx.portico : ctx.baseline;
  if (!build?.ok) throw new Error(build?.reason ?? 'not built');
  const dir = peerDir(ctx, id);
  const port = await freePort();
  const cli = path.join(root, 'dist', 'cli.js');
  let args;
  if (scenario.tls) {
    // The reverse TLS listener: h2 and http/1.1 by ALPN (the load generator picks one).
    const { cert, key } = await benchCert(ctx);
    const conf = path.join(dir, 'portico.yaml');
    writeFileSync(
      conf,
      `reverse:
  tls_listen: 127.0.0.1:${port}
  tls: { cert: ${cert}, key: ${key} }
  routes: [{ path: /, pool: origin }]
pools:
  origin:
    servers: [{ url: ${ctx.origin.url('')} }]
log:
  level: warn
`,
    );
    args = [cli, '--config', conf, '--log-level', 'warn'];
  } else if (scenario.access === 'forward') {
    const conf = path.join(dir, 'portico.yaml');
    writeFileSync(
      conf,
      `forward:
  listen: 127.0.0.1:${port}
  connect_ports: [${ctx.origin.port}]
log:
  level: warn
`,
    );
    args = [cli, '--config', conf, '--log-level', 'warn'];
  } else {
    args = [cli, '--reverse', `127.0.0.1:${port}`, '--upstream', ctx.origin.url(''), '--log-level', 'warn'];
  }
  if (!cache) args.push('--no-cache');
  if (workers > 1) args.push('--workers', String(workers));
  args.push(...extraArgs);
  if (ctx.opts.profile) {
    const profDir = path.join(ctx.opts.profile, `${scenario.id}-${id}`);
    mkdirSync(profDir, { recursive: true });
    args.unshift('--cpu-prof', '--cpu-prof-dir', profDir);
  }
  const proc = startProcess('portico', nodeBin, args, { cwd: root, logFile: path.join(dir, 'stderr.log') });
  await waitForPort(port, proc);
  const shown = args.filter((a, i) => !ctx.opts.profile || i > 2).map((a) => (a === cli ? 'dist/cli.js' : a.startsWith(ctx.tmp) ? path.basename(a) : a));
  return { port, proc, access: scenario.access, logsToStderr: true, stopGraceMs: ctx.opts.profile ? 15000 : 3000, command: `node ${shown.join(' ')}` };
}

/** Resolves binaries and versions; marks peers that are not installed. */
export async function inspectPeers() {
  const out = {};
  for (const [id, peer] of Object.entries(PEERS)) {
    const entry = { id, label: peer.label, installed: true, version: null, missing: null };
    if (peer.binary) {
      peer.bin = findBinary(peer.binary);
      if (!peer.bin) {
        entry.installed = false;
        entry.missing = `not installed (apt-get install -y ${peer.apt})`;
      } else {
        entry.version = await peer.version(peer.bin).catch(() => null);
      }
    } else if (peer.npm) {
      entry.version = peer.version();
      if (!entry.version) {
        entry.installed = false;
        entry.missing = `not installed (npm install --save-dev ${peer.npm})`;
      }
    }
    out[id] = entry;
  }
  return out;
}
