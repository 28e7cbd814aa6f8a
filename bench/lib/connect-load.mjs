// Load generator for the CONNECT rows (wrk cannot speak CONNECT). Runs as its own process so that
// its CPU is separate from the harness and from the server under test.
//
//   node connect-load.mjs '{"mode":"setup"|"throughput","proxy":PORT|null,"target":"127.0.0.1:PORT",
//                          "path":"/c/1k","size":1024,"seconds":10,"concurrency":50}'
//
// setup:      `concurrency` loops, each: new TCP connection → CONNECT target (unless direct) → wait
//             for 200 → GET path (Connection: close) → read the whole response → close. One
//             completion = one new tunnel + one small GET.
// throughput: `concurrency` loops, each: new tunnel → GET path (a 200 MB file) → read it all; the rate
//             is body bytes / wall time.
// Prints one JSON line. Reads use a single static buffer (net `onread`): no allocation per chunk.
import net from 'node:net';

const opts = JSON.parse(process.argv[2]);
const { mode, proxy, target, path, size, seconds, concurrency } = opts;
const targetPort = Number(target.slice(target.lastIndexOf(':') + 1));
const connectReq = Buffer.from(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`, 'latin1');
const getReq = Buffer.from(`GET ${path} HTTP/1.1\r\nHost: ${target}\r\nUser-Agent: portico-bench\r\nConnection: close\r\n\r\n`, 'latin1');
const readBuffer = Buffer.allocUnsafe(1 << 20);

const latencies = [];
let completed = 0;
let errors = 0;
const errorSamples = new Map();
let bodyBytes = 0;
let active = 0;
const startedAt = process.hrtime.bigint();
const endAt = startedAt + BigInt(Math.round(seconds * 1e9));
let lastEnd = startedAt;
let finished = false;

function noteError(reason) {
  errors += 1;
  errorSamples.set(reason, (errorSamples.get(reason) ?? 0) + 1);
}

const START = 0;
const TUNNEL_HEAD = 1;
const RESPONSE_HEAD = 2;
const BODY = 3;
const DONE = 4;

function loop() {
  if (process.hrtime.bigint() >= endAt) {
    active -= 1;
    if (active === 0) finish();
    return;
  }
  const t0 = process.hrtime.bigint();
  let state = START;
  let head = '';
  let remaining = 0;
  let settled = false;
  const socket = net.connect({
    host: '127.0.0.1',
    port: proxy ?? targetPort,
    noDelay: true,
    onread: {
      buffer: readBuffer,
      callback(n, buf) {
        onBytes(buf, 0, n);
        return true;
      },
    },
  });
  socket.setTimeout(30000, () => fail('timeout'));
  socket.on('error', (err) => fail(err.code ?? err.message));
  socket.on('end', () => {
    if (state !== DONE) fail(`closed in state ${state}`);
  });
  socket.on('connect', () => {
    if (proxy) {
      state = TUNNEL_HEAD;
      socket.write(connectReq);
    } else {
      state = RESPONSE_HEAD;
      socket.write(getReq);
    }
  });

  function onBytes(buf, start, end) {
    while (start < end && !settled) {
      if (state === TUNNEL_HEAD || state === RESPONSE_HEAD) {
        const chunk = buf.toString('latin1', start, end);
        head += chunk;
        const idx = head.indexOf('\r\n\r\n');
        if (idx < 0) {
          if (head.length > 65536) return fail('header too large');
          return;
        }
        const consumedFromChunk = chunk.length - (head.length - (idx + 4));
        const statusLine = head.slice(0, head.indexOf('\r\n'));
        const status = Number(statusLine.split(' ')[1]);
        if (state === TUNNEL_HEAD) {
          if (status !== 200) return fail(`CONNECT answered ${statusLine}`);
          head = '';
          state = RESPONSE_HEAD;
          start += consumedFromChunk;
          socket.write(getReq);
          continue;
        }
        if (status !== 200) return fail(`GET answered ${statusLine}`);
        const m = /\r\ncontent-length:\s*(\d+)/i.exec(head.slice(0, idx + 2));
        if (!m) return fail('no content-length');
        const length = Number(m[1]);
        if (length !== size) return fail(`content-length ${length}, expected ${size}`);
        remaining = length;
        head = '';
        state = BODY;
        start += consumedFromChunk;
        if (remaining === 0) return done();
        continue;
      }
      if (state === BODY) {
        const n = Math.min(end - start, remaining);
        remaining -= n;
        bodyBytes += n;
        start += n;
        if (remaining === 0) return done();
        if (start < end) return fail('bytes after the response');
        return;
      }
      return;
    }
  }

  function done() {
    if (settled) return;
    settled = true;
    state = DONE;
    const t1 = process.hrtime.bigint();
    latencies.push(Number(t1 - t0) / 1e6);
    completed += 1;
    lastEnd = t1;
    socket.destroy();
    setImmediate(loop);
  }

  function fail(reason) {
    if (settled) return;
    settled = true;
    noteError(reason);
    socket.destroy();
    setImmediate(loop);
  }
}

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx];
}

function finish() {
  if (finished) return;
  finished = true;
  const wall = Number(lastEnd - startedAt) / 1e9;
  const sorted = Float64Array.from(latencies).sort();
  const cpu = process.cpuUsage();
  const out = {
    mode,
    completed,
    errors,
    errorSamples: Object.fromEntries([...errorSamples].slice(0, 5)),
    seconds: wall,
    rate: wall > 0 ? completed / wall : 0,
    mbps: wall > 0 ? bodyBytes / 1e6 / wall : 0,
    bodyBytes,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    max: sorted.length ? sorted[sorted.length - 1] : null,
    clientCpu: (cpu.user + cpu.system) / 1e6,
  };
  process.stdout.write(`BENCH_JSON ${JSON.stringify(out)}\n`);
  process.exit(0);
}

for (let i = 0; i < concurrency; i++) {
  active += 1;
  loop();
}
