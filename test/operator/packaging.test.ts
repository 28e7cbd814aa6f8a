/**
 * The Dockerfile and the systemd unit, checked as far as this machine allows: no Docker engine runs
 * here, so the Dockerfile is linted (dockerfile-utils, the VS Code Dockerfile linter) and held to
 * what the issue asks (small base, non-root, HEALTHCHECK, the files the image needs exist); the unit
 * is verified by `systemd-analyze verify` and reloads with SIGHUP.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { validate } from 'dockerfile-utils';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const SYSTEMD_ANALYZE = ['/usr/bin/systemd-analyze', '/bin/systemd-analyze'].find((p) => existsSync(p));
if (!SYSTEMD_ANALYZE) console.warn('systemd unit check skipped: systemd-analyze is not installed (apt-get install systemd; .ci/run installs it)');

describe('Dockerfile', () => {
  const text = readFileSync('Dockerfile', 'utf8');
  const instructions = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.trimStart().startsWith('#'));

  it('lints clean', () => {
    const problems = validate(text).map((p) => `line ${p.range.start.line + 1}: ${p.message}`);
    expect(problems).toEqual([]);
  });

  it('builds on a slim base in two stages and runs as a user that is not root', () => {
    const froms = instructions.filter((l) => l.startsWith('FROM '));
    expect(froms.length).toBe(2);
    for (const from of froms) expect(from).toMatch(/^FROM node:20[\w.-]*-slim\b/);
    const users = instructions.filter((l) => l.startsWith('USER '));
    expect(users.at(-1)).toBe('USER node');
    expect(text).not.toMatch(/^ADD /m);
  });

  it('has a HEALTHCHECK against the admin listener of the config it ships', () => {
    const health = instructions.find((l) => l.startsWith('HEALTHCHECK '));
    expect(health).toMatch(/--interval=\S+ --timeout=\S+/);
    expect(health).toContain('http://127.0.0.1:9090/');
    expect(readFileSync('packaging/portico.yaml', 'utf8')).toMatch(/admin:\n\s+listen: 127\.0\.0\.1:9090/);
  });

  it('copies only files that exist, and the shipped config passes --check', async () => {
    for (const line of instructions.filter((l) => l.startsWith('COPY ') && !l.includes('--from='))) {
      const sources = line.split(/\s+/).slice(1, -1);
      for (const source of sources) expect(existsSync(source.replace(/\*.*$/, '')), `${line}: ${source}`).toBe(true);
    }
    const { stdout } = await run(process.execPath, ['dist/cli.js', '--config', 'packaging/portico.yaml', '--check']);
    expect(stdout).toMatch(/config OK\n$/);
  });

  it('keeps the build context small (.dockerignore)', () => {
    const ignored = readFileSync('.dockerignore', 'utf8').split('\n');
    for (const entry of ['node_modules', 'dist', '.git']) expect(ignored).toContain(entry);
  });
});

describe.skipIf(!SYSTEMD_ANALYZE)('systemd unit', () => {
  it('passes systemd-analyze verify, reloads with SIGHUP and checks the config before starting', async () => {
    const unit = readFileSync('packaging/portico.service', 'utf8');
    expect(unit).toMatch(/^ExecReload=\/bin\/kill -HUP \$MAINPID$/m);
    expect(unit).toMatch(/^ExecStartPre=\/usr\/bin\/portico --config \S+ --check$/m);
    expect(unit).toMatch(/^User=portico$/m);
    // systemd-analyze checks that the programs exist: point them at this checkout's CLI.
    const dir = mkdtempSync(join(tmpdir(), 'portico-unit-'));
    const file = join(dir, 'portico.service');
    writeFileSync(file, unit.replaceAll('/usr/bin/portico', `${process.execPath} ${join(process.cwd(), 'bin/portico.js')}`));
    const result = await run(SYSTEMD_ANALYZE!, ['verify', file]).then(
      (r) => ({ code: 0, stderr: r.stderr }),
      (err: { code: number; stderr: string }) => err,
    );
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
  });

  it('systemd-analyze verify does catch a mistake (the check is real)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'portico-unit-'));
    const file = join(dir, 'portico.service');
    writeFileSync(file, readFileSync('packaging/portico.service', 'utf8').replace('ExecReload=', 'ExecRelaod=').replaceAll('/usr/bin/portico', process.execPath));
    const result = await run(SYSTEMD_ANALYZE!, ['verify', file]).then(
      (r) => r.stderr,
      (err: { stderr: string }) => err.stderr,
    );
    expect(result).toMatch(/ExecRelaod/);
  });
});
