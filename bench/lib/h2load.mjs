// h2load (Debian package nghttp2-client) for the TLS rows: HTTP/2 with multiplexed streams, or
// HTTP/1.1 (--h1) over the same TLS, same client. h2load prints no percentiles: they come from its
// per-request log (--log-file: start µs, status, duration µs).
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { childCpuFromTimes, runProcess } from './procs.mjs';

let runs = 0;

/**
 * One timed run against https://127.0.0.1:PORT/PATH. `streams` requests in flight per connection
 * (HTTP/2; ignored with h1). Resolves { ok, result?, reason?, command }.
 */
export async function runH2load(h2loadBin, { tmp, port, path: requestPath, seconds, warmup = 0, connections, streams, h1 }) {
  const log = path.join(tmp, `h2load-${++runs}.log`);
  const args = ['-t1', `-c${connections}`, `-D${seconds}`, `--log-file=${log}`];
  if (warmup > 0) args.push(`--warm-up-time=${warmup}`);
  if (h1) args.push('--h1');
  else args.push(`-m${streams}`);
  args.push(`https://127.0.0.1:${port}${requestPath}`);
  const r = await runProcess('h2load', '/bin/bash', ['-c', '"$0" "$@"; rc=$?; times 1>&2; exit $rc', h2loadBin, ...args], { timeoutMs: (seconds + warmup + 60) * 1000 });
  const raw = `${r.stdout}\n${r.stderr}`;
  const command = `h2load ${args.filter((a) => !a.startsWith('--log-file')).join(' ')}`;
  const done = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(raw);
  const finished = /finished in ([\d.]+)(m?s), ([\d.]+) req\/s/.exec(raw);
  const status = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(raw);
  const traffic = /traffic: .*?\((\d+)\) total, .*?\((\d+)\) headers .*?, .*?\((\d+)\) data/.exec(raw);
  const protocol = /Application protocol: (\S+)/.exec(raw)?.[1] ?? null;
  if (!done || !finished) {
    rmSync(log, { force: true });
    return { ok: false, reason: `h2load failed (${r.code ?? r.signal}): ${raw.trim().split('\n').slice(-4).join(' | ')}`, command };
  }
  const durations = readDurations(log);
  rmSync(log, { force: true });
  const seconds_ = Number(finished[1]) / (finished[2] === 'ms' ? 1000 : 1);
  const succeeded = Number(done[4]);
  return {
    ok: true,
    command,
    result: {
      requests: succeeded,
      seconds: seconds_,
      rps: Number(finished[3]),
      failed: Number(done[5]) + Number(done[6]) + Number(done[7]),
      non2xx: status ? Number(status[2]) + Number(status[3]) + Number(status[4]) : 0,
      dataBytes: traffic ? Number(traffic[3]) : 0,
      p50: percentile(durations, 0.5),
      p99: percentile(durations, 0.99),
      protocol,
      clientCpu: childCpuFromTimes(r.stderr),
    },
  };
}

/** Request durations in ms from h2load's log (tab-separated: start µs, status, duration µs). */
function readDurations(file) {
  let text;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return new Float64Array(0);
  }
  const lines = text.split('\n');
  const out = new Float64Array(lines.length);
  let n = 0;
  for (const line of lines) {
    const tab = line.lastIndexOf('\t');
    if (tab > 0) out[n++] = Number(line.slice(tab + 1)) / 1000;
  }
  return out.subarray(0, n).sort();
}

function percentile(sorted, q) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

