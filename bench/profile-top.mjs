#!/usr/bin/env node
// Top functions by self time in V8 .cpuprofile files (from `npm run bench -- --profile DIR`).
//   node bench/profile-top.mjs DIR_OR_FILE... [--top N]
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

const args = process.argv.slice(2);
let top = 30;
const files = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--top') top = Number(args[++i]);
  else collect(args[i]);
}
if (files.length === 0) {
  process.stderr.write('usage: node bench/profile-top.mjs DIR_OR_FILE... [--top N]\n');
  process.exit(2);
}

function collect(p) {
  if (statSync(p).isDirectory()) for (const e of readdirSync(p)) collect(path.join(p, e));
  else if (p.endsWith('.cpuprofile')) files.push(p);
}

for (const file of files) {
  const profile = JSON.parse(readFileSync(file, 'utf8'));
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map();
  profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const byFn = new Map();
  let total = 0;
  for (const [id, us] of selfUs) {
    const f = nodes.get(id).callFrame;
    const where = f.url ? `${f.url.replace(/^file:\/\//, '').replace(process.cwd() + '/', '')}:${f.lineNumber + 1}` : '';
    const key = `${f.functionName || '(anonymous)'} ${where}`.trim();
    byFn.set(key, (byFn.get(key) ?? 0) + us);
    total += us;
  }
  const idle = byFn.get('(idle)') ?? 0;
  process.stdout.write(`\n${file}: ${(total / 1e6).toFixed(1)} s sampled, ${((idle / total) * 100).toFixed(0)}% idle\n`);
  for (const [key, us] of [...byFn].filter(([k]) => k !== '(idle)').sort((a, b) => b[1] - a[1]).slice(0, top)) {
    process.stdout.write(`${((us / (total - idle)) * 100).toFixed(1).padStart(5)}%  ${key}\n`);
  }
}
