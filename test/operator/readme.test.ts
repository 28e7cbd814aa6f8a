/**
 * The README's quick starts run as written: every command that starts Portico is spelled the way
 * that works in a fresh clone after `npm install` (`npx portico …` or `npm start -- …`, never a bare
 * `portico` that is not on the PATH), its flags are accepted, and every YAML example is a valid
 * config (so the documented keys are the real ones).
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { mergeConfig, validateConfig } from '../../src/config/load.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { request } from '../helpers/http.js';
import { startPortico } from './cli.js';

const run = promisify(execFile);
const cleanup = cleanupAfterEach();
const readme = readFileSync('README.md', 'utf8');

/** Fenced blocks of a language, their common indentation removed (blocks inside list items are indented). */
function blocks(lang: string): string[] {
  const out: string[] = [];
  for (const m of readme.matchAll(new RegExp(`^( *)\`\`\`${lang}\\n([\\s\\S]*?)^\\1\`\`\``, 'gm'))) {
    const indent = m[1]!.length;
    out.push(m[2]!.split('\n').map((l) => l.slice(indent)).join('\n'));
  }
  return out;
}

/** Each command of the shell examples (`a && b` is two), without its trailing comment. */
const shellLines = blocks('sh')
  .flatMap((b) => b.split('\n'))
  .flatMap((l) => l.split('&&'))
  .map((l) => l.replace(/\s+#.*$/, '').trim());
const starts = shellLines.filter((l) => /^(npx portico|npm start --) /.test(l));

/** A README command made runnable here: loopback port 0 for the listeners, `--check` instead of serving. */
function runnable(line: string): string[] {
  const args = line.replace(/^(npx portico|npm start --) /, '').split(/\s+/);
  return args.map((a, i) => (['--reverse', '--forward', '--admin'].includes(args[i - 1] ?? '') ? '127.0.0.1:0' : a));
}

describe('README', () => {
  it('never tells people to run a bare `portico`, which npm install does not put on the PATH', () => {
    expect(shellLines.filter((l) => /^\s*portico\s/.test(l))).toEqual([]);
    expect(starts.length).toBeGreaterThanOrEqual(3);
    expect(readme).toContain('run it as `npx portico …`');
    expect(readme).toContain('`npm link`');
  });

  it('`npx portico` runs bin/portico.js, which npm install builds (prepare)', async () => {
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { bin: Record<string, string>; scripts: Record<string, string> };
    expect(pkg.bin.portico).toBe('bin/portico.js');
    expect(pkg.scripts.prepare).toBe('npm run build');
    const { stdout } = await run(process.execPath, ['bin/portico.js', '--version']);
    expect(stdout).toMatch(/^portico \d+\.\d+\.\d+\n$/);
  });

  it.each(starts.filter((l) => !l.includes('--config')))('this quick start is accepted: %s', async (line) => {
    const { stdout } = await run(process.execPath, ['bin/portico.js', ...runnable(line), '--check']);
    expect(stdout).toMatch(/config OK\n$/);
  });

  it('the gateway quick start serves, with Cache-Status', async () => {
    const line = starts.find((l) => l.includes('--reverse') && l.includes('http://127.0.0.1:3002'))!;
    const a = await cleanup.origin((_req, res) => res.end('from a'));
    const b = await cleanup.origin((_req, res) => res.end('from b'));
    const args = runnable(line).map((arg) => arg.replace('http://127.0.0.1:3001', a.url).replace('http://127.0.0.1:3002', b.url));
    const p = await startPortico(args);
    cleanup.push(p.stop);
    const bodies = new Set<string>();
    for (let i = 0; i < 4; i++) {
      const r = await request(`${p.urls.reverse}/`);
      expect(r.status).toBe(200);
      expect(r.headers['cache-status']).toMatch(/^portico; /);
      bodies.add(r.body);
    }
    expect(bodies).toEqual(new Set(['from a', 'from b']));
  });

  it('every YAML example is a valid config (documented keys are real keys)', () => {
    const pools = { web: { servers: [{ url: 'http://127.0.0.1:3000' }] }, api: { servers: [{ url: 'http://127.0.0.1:4000' }] } };
    const examples = blocks('yaml');
    expect(examples.length).toBeGreaterThanOrEqual(8);
    for (const text of examples) {
      const fragment = parse(text) as Record<string, any>;
      const config = mergeConfig({ pools }, fragment);
      const reverse = config.reverse as Record<string, unknown> | undefined;
      if (reverse) {
        reverse.listen ??= '127.0.0.1:0';
        reverse.routes ??= [{ path: '/', pool: 'web' }];
      }
      expect(() => validateConfig(config, 'README example'), text).not.toThrow();
    }
  });
});
