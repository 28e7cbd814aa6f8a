// Child processes of the benchmark: spawned in their own process group, tracked by PID, killed by
// PID (never by name) on stop, on exit, on Ctrl-C and on errors. Also: free ports, readiness probes,
// and CPU / peak-RSS readings from /proc.
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';

const tracked = new Map(); // pid -> { name, child, exited: Promise<void> }

export const CLK_TCK = (() => {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const n = Number.parseInt(r.stdout, 10);
  return Number.isFinite(n) && n > 0 ? n : 100;
})();

/** Finds an executable on PATH or in the sbin directories (nginx, squid, haproxy live there). */
export function findBinary(name) {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/local/sbin', '/usr/sbin', '/sbin', '/usr/local/bin', '/usr/bin'];
  for (const dir of dirs) {
    if (!dir) continue;
    const file = path.join(dir, name);
    if (existsSync(file)) return file;
  }
  return null;
}

/**
 * Spawns a long-running child in its own process group with stdout/stderr going to `logFile`.
 * Returns { pid, name, logFile, exited, exitInfo() }.
 */
export function startProcess(name, command, args, { cwd, env, logFile } = {}) {
  const fd = logFile ? openSync(logFile, 'a') : 'ignore';
  let child;
  try {
    child = spawn(command, args, { cwd, env: env ?? process.env, detached: true, stdio: ['ignore', fd, fd] });
  } finally {
    if (typeof fd === 'number') closeSync(fd);
  }
  const info = { code: null, signal: null, error: null, done: false };
  const exited = new Promise((resolve) => {
    child.once('error', (err) => {
      info.error = err;
      info.done = true;
      resolve();
    });
    child.once('exit', (code, signal) => {
      info.code = code;
      info.signal = signal;
      info.done = true;
      resolve();
    });
  });
  const proc = { name, pid: child.pid, child, logFile, exited, info };
  if (child.pid) tracked.set(child.pid, proc);
  exited.then(() => {
    // Keep the group entry until stop(): children of the group may still be alive.
  });
  return proc;
}

/** Runs a command to completion (tracked while it runs). Resolves { code, signal, stdout, stderr }; `.pid` on the promise. */
export function runProcess(name, command, args, { cwd, env, timeoutMs } = {}) {
  let pid = null;
  const promise = new Promise((resolve) => {
    const child = spawn(command, args, { cwd, env: env ?? process.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    pid = child.pid;
    const proc = { name, pid: child.pid, child, info: { done: false } };
    if (child.pid) tracked.set(child.pid, proc);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    let timer;
    if (timeoutMs) {
      timer = setTimeout(() => killGroup(child.pid, 'SIGKILL'), timeoutMs);
    }
    const finish = (code, signal, error) => {
      clearTimeout(timer);
      proc.info.done = true;
      killGroup(child.pid, 'SIGKILL'); // any grandchildren left behind
      tracked.delete(child.pid);
      resolve({ code, signal, stdout, stderr, error });
    };
    child.once('error', (err) => finish(null, null, err));
    child.once('close', (code, signal) => finish(code, signal, null));
  });
  promise.pid = pid; // the spawned process (its group), for CPU accounting while it runs
  return promise;
}

function killGroup(pid, signal) {
  if (!pid) return false;
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    try {
      process.kill(pid, signal);
      return true;
    } catch {
      return false;
    }
  }
}

function groupAlive(pid) {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** SIGTERM the process group, wait up to `graceMs`, then SIGKILL it. */
export async function stopProcess(proc, graceMs = 3000) {
  if (!proc?.pid) return;
  killGroup(proc.pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (proc.info.done && !groupAlive(proc.pid)) break;
    await sleep(50);
  }
  if (!proc.info.done || groupAlive(proc.pid)) killGroup(proc.pid, 'SIGKILL');
  await Promise.race([proc.exited ?? Promise.resolve(), sleep(2000)]);
  tracked.delete(proc.pid);
}

export async function stopAll() {
  await Promise.all([...tracked.values()].map((p) => stopProcess(p, 2000)));
}

/** Last resort on process exit: synchronous SIGKILL to every tracked group. */
export function killAllSync() {
  for (const pid of tracked.keys()) killGroup(pid, 'SIGKILL');
  tracked.clear();
}

export function trackedPids() {
  return [...tracked.keys()];
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A port that was free a moment ago on 127.0.0.1 (bound to 0 and released). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Resolves once 127.0.0.1:port accepts a TCP connection; rejects if the process dies or time runs out. */
export async function waitForPort(port, proc, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc?.info.done) throw new Error(`${proc.name} exited (${describeExit(proc.info)}) before listening on ${port}${logTail(proc)}`);
    const ok = await new Promise((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
      s.setTimeout(1000, () => {
        s.destroy();
        resolve(false);
      });
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${proc?.name ?? 'server'} did not accept connections on 127.0.0.1:${port} within ${timeoutMs / 1000}s${logTail(proc)}`);
    await sleep(50);
  }
}

function describeExit(info) {
  if (info.error) return info.error.message;
  return info.signal ? `signal ${info.signal}` : `code ${info.code}`;
}

export function logTail(proc, lines = 6) {
  if (!proc?.logFile) return '';
  try {
    const text = readFileSync(proc.logFile, 'utf8').trim();
    if (!text) return '';
    return `: ${text.split('\n').slice(-lines).join(' | ')}`;
  } catch {
    return '';
  }
}

/** All PIDs in process group `pgid` (from /proc/PID/stat field 5). */
function groupMembers(pgid) {
  const out = [];
  for (const entry of readdirSync('/proc')) {
    if (entry.charCodeAt(0) < 48 || entry.charCodeAt(0) > 57) continue;
    const stat = readStat(entry);
    if (stat && stat.pgrp === pgid) out.push({ pid: Number(entry), ...stat });
  }
  return out;
}

function readStat(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
    // rest[0] is field 3 (state); field N is rest[N - 3]
    return { pgrp: Number(rest[2]), utime: Number(rest[11]), stime: Number(rest[12]) };
  } catch {
    return null;
  }
}

/** User+system CPU seconds of every live process in the group of `pid`. */
export function groupCpuSeconds(pid) {
  if (!pid) return 0;
  let ticks = 0;
  for (const m of groupMembers(pid)) ticks += m.utime + m.stime;
  return ticks / CLK_TCK;
}

/** CPU seconds of several groups at once (one /proc scan). */
export function groupsCpuSeconds(pids) {
  const want = new Set(pids.filter(Boolean));
  const out = new Map([...want].map((p) => [p, 0]));
  for (const entry of readdirSync('/proc')) {
    if (entry.charCodeAt(0) < 48 || entry.charCodeAt(0) > 57) continue;
    const stat = readStat(entry);
    if (stat && want.has(stat.pgrp)) out.set(stat.pgrp, out.get(stat.pgrp) + (stat.utime + stat.stime) / CLK_TCK);
  }
  return out;
}

/** Sum of VmHWM (peak resident set) over the group's live processes, in bytes. */
export function groupPeakRss(pid) {
  if (!pid) return 0;
  let kb = 0;
  for (const m of groupMembers(pid)) {
    try {
      const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${m.pid}/status`, 'latin1'));
      if (match) kb += Number(match[1]);
    } catch {
      // gone
    }
  }
  return kb * 1024;
}

/** Busy and total jiffies of the whole machine (/proc/stat "cpu" line). */
export function machineCpu() {
  const line = readFileSync('/proc/stat', 'latin1').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = line;
  const busy = user + nice + system + irq + softirq + steal;
  return { busy: busy / CLK_TCK, total: (busy + idle + iowait) / CLK_TCK };
}

/** CPU seconds of this process (the harness itself). */
export function selfCpuSeconds() {
  const s = readStat(process.pid);
  return s ? (s.utime + s.stime) / CLK_TCK : 0;
}

/** CPU ticks of every process on the machine: Map pid → { pgrp, ticks }. */
export function snapshotAllCpu() {
  const out = new Map();
  for (const entry of readdirSync('/proc')) {
    if (entry.charCodeAt(0) < 48 || entry.charCodeAt(0) > 57) continue;
    const stat = readStat(entry);
    if (stat) out.set(Number(entry), { pgrp: stat.pgrp, ticks: stat.utime + stat.stime });
  }
  return out;
}

/**
 * CPU seconds used between two snapshots by processes that are not ours (not in `ourGroups`, not this
 * process): other engineers' test suites and the like. Processes born and gone between the snapshots
 * are missed, so this is a lower bound.
 */
export function foreignCpuSeconds(before, after, ourGroups) {
  let ticks = 0;
  for (const [pid, s] of after) {
    if (pid === process.pid || ourGroups.has(s.pgrp) || s.pgrp === process.pid) continue;
    const prev = before.get(pid);
    ticks += s.ticks - (prev ? prev.ticks : 0);
  }
  return ticks / CLK_TCK;
}

/** The children line of bash's `times` in a load generator's stderr: "0m1.234s 0m0.567s" → 1.801 seconds. */
export function childCpuFromTimes(stderr) {
  const last = stderr.trim().split('\n').filter((l) => /^\d+m[\d.]+s \d+m[\d.]+s$/.test(l.trim())).at(-1);
  if (!last) return null;
  let total = 0;
  for (const part of last.trim().split(' ')) {
    const m = /^(\d+)m([\d.]+)s$/.exec(part);
    total += Number(m[1]) * 60 + Number(m[2]);
  }
  return total;
}
