// Markdown rendering of one bench run: environment, one table per scenario, Portico against the
// targets of issue 7.
import { PEERS } from './peers.mjs';
import { TARGETS } from './scenarios.mjs';

const fmtInt = (n) => Math.round(n).toLocaleString('en-US');
const fmtNum = (n, digits = 2) => (n === null || n === undefined || !Number.isFinite(n) ? '—' : n.toFixed(digits));
const fmtMs = (n) => (n === null || n === undefined ? '—' : n < 10 ? n.toFixed(2) : n < 100 ? n.toFixed(1) : fmtInt(n));
const fmtPct = (share) => (share === null || share === undefined ? '—' : `${Math.round(share * 100)}%`);
const esc = (s) => String(s).replace(/\|/g, '\\|');

function value(sc, v) {
  if (v === null || v === undefined) return '—';
  return sc.unit === 'MB/s' ? fmtInt(v) : fmtInt(v);
}

function find(result, id) {
  return result.rows.find((r) => r.id === id);
}

const usable = (row) => row && row.status === 'ok' && row.value !== undefined && row.value !== null;

function ratio(row, ref) {
  if (!usable(row) || !usable(ref)) return null;
  return row.value / ref.value;
}

export function renderReport({ env, results }) {
  const o = env.opts;
  const out = [];
  out.push('# Portico benchmark');
  out.push('');
  out.push(`- date: ${env.date} (finished ${env.finishedAt ?? '?'})`);
  out.push(`- command: \`npm run bench${o.argv.length ? ` -- ${o.argv.join(' ')}` : ''}\``);
  out.push(`- machine: ${env.nproc} × ${env.cpu}, ${env.memGiB} GiB, ${env.kernel}; load average before ${env.loadBefore.map((x) => x.toFixed(2)).join(' ')}, after ${env.loadAfter?.map((x) => x.toFixed(2)).join(' ') ?? '?'}`);
  const versions = [`Node ${env.node}`, `Portico ${env.portico}`, `wrk ${env.wrk ?? 'not installed'}`];
  for (const id of ['nginx', 'haproxy', 'squid', 'varnish', 'node-http-proxy', 'proxy-chain']) {
    const p = env.peers[id];
    versions.push(`${p.label} ${p.installed ? (p.version ?? '?') : p.missing}`);
  }
  const redis = env.peers['portico-redis'];
  if (redis) versions.push(`redis-server ${redis.installed ? (redis.version ?? '?') : redis.missing}`);
  out.push(`- versions: ${versions.join('; ')}`);
  out.push(
    `- load: \`wrk -t1 -c${o.connections} -d${o.duration}s --latency\` (CONNECT rows: bench/lib/connect-load.mjs), ${o.warmup} s warm-up per server (it also fills the caches), ${o.rounds} measured round${o.rounds > 1 ? 's' : ''} per server interleaved across servers, median shown`,
  );
  const pairs = results.some((r) => r.scenario.mode === 'pair') ? ', and the *Portico pair* rows: two Portico processes under one load, each with its own wrk' : '';
  out.push(`- every server is limited to one worker (nginx \`worker_processes 1\`, HAProxy \`nbthread 1\`, Squid \`workers 1\`, Varnish \`thread_pools=1\`, one Node process) except the *Portico --workers 2* row, which shows how Portico scales${pairs}; the origin is one nginx worker`);
  if (!env.porticoBuild.ok) out.push(`- **Portico: ${env.porticoBuild.reason}**`);
  if (env.baseline?.ok) out.push(`- baseline (\`--baseline ${env.baseline.ref}\`): *${env.baseline.label}* rows run git ${env.baseline.sha}, installed (npm ci) and built in a temporary worktree, next to the current Portico`);
  else if (env.baseline) out.push(`- **baseline: ${env.baseline.reason}**`);
  const foreign = results.flatMap((r) => r.rows.map((row) => row.foreignShare)).filter((x) => x !== null && x !== undefined);
  if (foreign.length) {
    const avg = foreign.reduce((a, b) => a + b, 0) / foreign.length;
    const worst = Math.max(...foreign);
    out.push(
      `- other processes (not started by the bench) used ${fmtPct(avg)} of a core on average during the measured rounds, ${fmtPct(worst)} at worst${avg > 0.1 || worst > 0.3 ? ' — **the machine was busy: numbers are disturbed, re-run on a quiet machine**' : ' (a quiet machine)'}`,
    );
  }
  out.push('');
  out.push(
    'Columns: *× direct* = throughput relative to wrk going straight to the origin; *CPU* = user+system seconds of the server\'s processes over all measured rounds (% = share of one core over the measured time); *CPU µs/req* = that CPU divided by the requests served (tunnels or transfers in the CONNECT rows); *Redis CPU* = the same for the row\'s redis-server; *peak RSS* = VmHWM summed over the server\'s processes; *client* = the load generator\'s share of one core (≈100% means the client, not the server, is the limit); *origin* = the origin nginx\'s share of one core. A row is **invalid** (no number shown) when its responses were wrong, when a "hit" row reached the origin for more than 1% of requests, or when a "miss" row did not reach it for every request.',
  );
  out.push('');

  for (const result of results) {
    const sc = result.scenario;
    const direct = find(result, 'direct');
    const refs = sc.refs.filter((id) => result.rows.some((r) => r.id === id));
    out.push(`## ${sc.title} (\`${sc.id}\`)`);
    out.push('');
    out.push(`${sc.what}.`);
    const foreign = result.rows.map((r) => r.foreignShare).filter((x) => x !== null && x !== undefined);
    if (foreign.length) {
      const avg = foreign.reduce((a, b) => a + b, 0) / foreign.length;
      out.push(`Other processes on the machine used ${fmtPct(avg)} of a core on average while this scenario was measured.`);
    }
    out.push('');
    const unit = sc.unit ?? 'req/s';
    // Two-instance rows: what each round served and what the origin saw (medians of the rounds).
    const perRound = sc.mode === 'pair';
    const redisColumn = result.rows.some((r) => r.redisCpu !== undefined);
    const header = [
      'server',
      unit,
      'p50 ms',
      'p99 ms',
      '× direct',
      ...refs.map((id) => `× ${PEERS[id].label}`),
      ...(perRound ? ['requests per round', 'origin requests per round', 'per URL'] : []),
      'CPU s (% core)',
      'CPU µs/req',
      ...(redisColumn ? ['Redis CPU s (% core)'] : []),
      'peak RSS MB',
      'client',
      'origin',
      'check',
    ];
    out.push(`| ${header.join(' | ')} |`);
    out.push(`|${header.map((h, i) => (i === 0 || i === header.length - 1 ? '---' : '---:')).join('|')}|`);
    for (const row of result.rows) {
      const cells = [esc(row.label)];
      if (row.status === 'ok') {
        cells.push(value(sc, row.value), fmtMs(row.p50), fmtMs(row.p99), row.id === 'direct' ? '1.00' : fmtNum(ratio(row, direct)));
        for (const id of refs) cells.push(id === row.id ? '1.00' : fmtNum(ratio(row, find(result, id))));
      } else {
        const word = row.status === 'missing' ? 'not installed' : row.status;
        cells.push(`**${word}**`, '—', '—', '—', ...refs.map(() => '—'));
      }
      if (perRound) {
        const known = row.originPerRound !== undefined && row.originPerRound !== null;
        cells.push(known ? fmtInt(row.requestsPerRound) : '—', known ? fmtInt(row.originPerRound) : '—', known ? fmtNum(row.originPerRound / sc.urlSet) : '—');
      }
      cells.push(row.cpu !== null && row.cpu !== undefined ? `${fmtNum(row.cpu, 1)} (${fmtPct(row.cpuShare)})` : '—');
      // Per request (per tunnel or transfer in the CONNECT rows): the cost that throughput ratios hide.
      cells.push(row.status === 'ok' && row.cpu !== null && row.cpu !== undefined && row.requests > 0 ? fmtNum((row.cpu / row.requests) * 1e6, 0) : '—');
      if (redisColumn) cells.push(row.redisCpu !== undefined ? `${fmtNum(row.redisCpu, 1)} (${fmtPct(row.redisCpuShare)})` : '—');
      cells.push(row.peakRss ? fmtNum(row.peakRss / 1024 ** 2, 0) : '—');
      cells.push(fmtPct(row.clientCpuShare));
      cells.push(fmtPct(row.originCpuShare));
      cells.push(esc(checkText(sc, row)));
      out.push(`| ${cells.join(' | ')} |`);
    }
    out.push('');
    for (const row of result.rows) {
      for (const n of row.notes) if (n.startsWith('`')) out.push(`${row.label}: ${n}  `);
    }
    out.push('');
  }

  out.push('## Portico against the targets of issue 7');
  out.push('');
  out.push('| target | measured | met |');
  out.push('|---|---:|---|');
  const byId = new Map(results.map((r) => [r.scenario.id, r]));
  for (const t of TARGETS) {
    const result = byId.get(t.scenario);
    if (!result) continue;
    const of = find(result, t.of);
    const ref = find(result, t.ref);
    let measured = '—';
    let met = 'n/a';
    if (!usable(of)) met = `n/a (Portico ${of ? of.status : 'not run'})`;
    else if (!usable(ref)) met = `n/a (${PEERS[t.ref].label} ${ref ? (ref.status === 'missing' ? 'not installed' : ref.status) : 'not run'})`;
    else if (t.metric === 'p99') {
      const r = of.p99 / ref.p99;
      measured = `${fmtNum(r)}× (${fmtMs(of.p99)} vs ${fmtMs(ref.p99)} ms)`;
      met = r <= t.max ? 'yes' : `**no** (${fmtNum(r / t.max)}× over)`;
    } else {
      const r = of.value / ref.value;
      measured = `${fmtNum(r)}×`;
      met = r >= t.min ? 'yes' : `**no** (${Math.round((1 - r / t.min) * 100)}% short)`;
    }
    out.push(`| ${esc(t.text)} | ${measured} | ${met} |`);
  }
  const rssRows = results.flatMap((r) => r.rows.filter((row) => (row.id === 'portico' || row.id === 'portico-nocache') && row.peakRss));
  if (rssRows.length) {
    const peak = Math.max(...rssRows.map((r) => r.peakRss));
    const limit = (100 + 256) * 1024 ** 2;
    out.push(`| RSS under load ≤ 100 MB + cache size (256 MB default) | ${fmtNum(peak / 1024 ** 2, 0)} MB peak | ${peak <= limit ? 'yes' : '**no**'} |`);
  }
  out.push('');
  return out.join('\n');
}

function checkText(sc, row) {
  if (row.status === 'missing' || row.status === 'failed') return row.reason ?? '';
  const parts = [];
  if (row.status === 'invalid') {
    parts.push(`INVALID: ${row.reason}`);
    if (row.value !== undefined) parts.push(`(measured ${value(sc, row.value)} ${sc.unit ?? 'req/s'}, not counted)`);
  } else {
    parts.push('ok');
  }
  if (row.id !== 'direct' && row.id !== 'ceiling' && row.requests) {
    parts.push(`origin saw ${fmtInt(row.originRequests)} of ${fmtInt(row.requests)}`);
  }
  for (const n of row.notes) if (!n.startsWith('`')) parts.push(n);
  if (row.roundValues && row.roundValues.length > 1) parts.push(`rounds ${row.roundValues.map((v) => fmtInt(v)).join('/')}`);
  return parts.join('; ');
}
