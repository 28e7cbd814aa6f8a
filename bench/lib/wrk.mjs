// wrk with a generated Lua script: sets the request (absolute-form for forward proxies) and prints
// a machine-readable summary from done().
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { childCpuFromTimes, runProcess } from './procs.mjs';

const luaString = (s) => `"${String(s).replace(/[\\"]/g, (c) => `\\${c}`)}"`;

let scripts = 0;

/**
 * target: { port, access } of the server under load; requestPath: origin path; originHost: "127.0.0.1:PORT".
 * urls: null (every request for requestPath), { unique: TAG } (a new URL every request:
 * requestPath?miss=TAG-0, -1, …) or { cycle: N, tag: TAG } (requestPath?set=TAG&u=0 … N−1, in turn, again
 * and again). The origin serves its file whatever the query; a cache keys on it. TAG keeps the URLs of
 * one run apart from every other run's. siteHost: the Host header of a reverse proxy's requests (default:
 * the address wrk connects to).
 * Returns the script file to pass to wrk.
 */
export function writeWrkScript(tmp, { access, requestPath, originHost, delayMs = 0, urls = null, siteHost = null }) {
  const file = path.join(tmp, `wrk-${++scripts}.lua`);
  const lines = ['wrk.method = "GET"'];
  // Paced load: each connection waits this long before its next request.
  if (delayMs > 0) lines.push(`delay = function() return ${Math.round(delayMs)} end`);
  const target = access === 'forward' ? `http://${originHost}${requestPath}` : requestPath;
  if (access === 'forward') lines.push(`wrk.headers["Host"] = ${luaString(originHost)}`);
  else if (siteHost) lines.push(`wrk.headers["Host"] = ${luaString(siteHost)}`);
  lines.push(`wrk.path = ${luaString(target)}`);
  if (urls) {
    // One wrk thread (-t1): one counter, so the URLs of a run are exactly the ones described.
    const next = urls.unique !== undefined ? `${luaString(`${target}?miss=${urls.unique}-`)} .. n` : `${luaString(`${target}?set=${urls.tag}&u=`)} .. (n % ${urls.cycle})`;
    lines.push(`local n = -1
request = function()
  n = n + 1
  return wrk.format(nil, ${next})
end`);
  }
  lines.push(`
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('BENCH_JSON {"requests":%.0f,"bytes":%.0f,"duration_us":%.0f,"connect":%.0f,"read":%.0f,"write":%.0f,"status":%.0f,"timeout":%.0f,"p50":%.1f,"p90":%.1f,"p99":%.1f,"max":%.1f,"mean":%.1f}\\n',
    summary.requests, summary.bytes, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
`);
  writeFileSync(file, lines.join('\n'));
  return file;
}

/**
 * Runs wrk once, under bash so that `times` reports wrk's own CPU seconds (load-generator check).
 * Resolves { ok, result?, reason?, raw }.
 */
export async function runWrk(wrkBin, { port, script, seconds, connections = 50, threads = 1 }) {
  const args = [`-t${threads}`, `-c${connections}`, `-d${seconds}s`, '--latency', '--timeout', '5s', '-s', script, `http://127.0.0.1:${port}/`];
  const r = await runProcess('wrk', '/bin/bash', ['-c', '"$0" "$@"; rc=$?; times 1>&2; exit $rc', wrkBin, ...args], { timeoutMs: (seconds + 30) * 1000 });
  const raw = `${r.stdout}\n${r.stderr}`;
  const line = r.stdout.split('\n').find((l) => l.startsWith('BENCH_JSON '));
  if (!line) return { ok: false, reason: `wrk failed (${r.code ?? r.signal}): ${raw.trim().split('\n').slice(-4).join(' | ')}`, raw };
  const result = JSON.parse(line.slice('BENCH_JSON '.length));
  result.seconds = result.duration_us / 1e6;
  result.rps = result.requests / result.seconds;
  result.clientCpu = childCpuFromTimes(r.stderr);
  return { ok: true, result, raw, command: `wrk ${args.join(' ')}` };
}

