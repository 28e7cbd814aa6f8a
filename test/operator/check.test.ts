/**
 * `portico --check` does everything a start does short of listening, and says what is wrong the way
 * a person would: every problem at once, each `file: key.path: what was expected, got what`, with
 * what to do; a start of the same config fails with the same lines.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { selfSignedCert } from '../helpers/tls.js';

interface Outcome {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the built CLI; a start that would succeed is not waited for (the tests here expect exit 2). */
function portico(args: readonly string[], timeoutMs = 10_000): Promise<Outcome> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['dist/cli.js', ...args], { timeout: timeoutMs }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'portico-check-'));
}

function write(dir: string, name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

const lines = (text: string) => text.split('\n').filter((l) => l !== '');

describe('--check reads every file and compiles every pattern, like a start', () => {
  it('reports a missing certificate and key, htpasswd, hosts_file and a bad regex at once, naming the file', async () => {
    const dir = tempDir();
    const file = write(
      dir,
      'portico.yaml',
      `reverse:
  listen: 127.0.0.1:0
  tls_listen: 127.0.0.1:0
  tls: { cert: ${dir}/missing-cert.pem, key: ${dir}/missing-key.pem }
  routes: [{ path: /, pool: web }]
  rules:
    - { action: deny, header: { user-agent: "sqlmap(" } }
pools:
  web: { servers: [{ url: "http://127.0.0.1:9" }] }
forward:
  listen: 127.0.0.1:0
  auth: { htpasswd: ${dir}/missing.htpasswd }
  rules:
    - { name: ads, action: deny, hosts_file: ${dir}/missing-blocklist.txt }
    - { name: bots, action: deny, user_agent: "python-requests|(" }
    - { name: casinos, action: deny, host: "/casino[0-9/" }
`,
    );
    const check = await portico(['--config', file, '--check']);
    expect(check.code).toBe(2);
    expect(check.stdout).toBe('');
    const expected = [
      `portico: ${file}: reverse.tls.cert: expected a readable PEM file, cannot read "${dir}/missing-cert.pem" (ENOENT: no such file)`,
      `portico: ${file}: reverse.tls.key: expected a readable PEM file, cannot read "${dir}/missing-key.pem" (ENOENT: no such file)`,
      `portico: ${file}: reverse.rules[0].header.user-agent: expected a valid regular expression, got "sqlmap("`,
      `portico: ${file}: forward.rules[0].hosts_file: expected a readable file of domains, cannot read "${dir}/missing-blocklist.txt" (ENOENT)`,
      `portico: ${file}: forward.rules[1].user_agent: expected a valid regular expression, got "python-requests|("`,
      `portico: ${file}: forward.rules[2].host: expected a valid regular expression between the slashes, got "/casino[0-9/"`,
      `portico: ${file}: forward.auth.htpasswd: expected a readable htpasswd file, cannot read "${dir}/missing.htpasswd" (ENOENT)`,
    ];
    expect(lines(check.stderr).sort()).toEqual(expected.sort());

    // A start of the same file fails the same way, with the same lines: never "config OK" then a failed start.
    const start = await portico(['--config', file]);
    expect(start.code).toBe(2);
    expect(lines(start.stderr).sort()).toEqual(expected.sort());
  });

  it('checks that the key belongs to the certificate, and that both are PEM', async () => {
    const dir = tempDir();
    const a = await selfSignedCert('a.test');
    const b = await selfSignedCert('b.test');
    const notPem = write(dir, 'cert.txt', 'hello\n');
    const config = (cert: string, key: string) =>
      write(dir, `c-${Math.random().toString(36).slice(2)}.yaml`, `reverse:\n  tls_listen: 127.0.0.1:0\n  tls: { cert: ${cert}, key: ${key} }\n  routes: [{ pool: web }]\npools:\n  web: { servers: [{ url: "http://127.0.0.1:9" }] }\n`);
    const mismatch = config(a.certPath, b.keyPath);
    const r1 = await portico(['--config', mismatch, '--check']);
    expect(r1.code).toBe(2);
    expect(r1.stderr).toContain(`portico: ${mismatch}: reverse.tls.key: expected the private key of the certificate in reverse.tls.cert, got another key`);
    const garbage = config(notPem, a.keyPath);
    const r2 = await portico(['--config', garbage, '--check']);
    expect(r2.stderr).toContain(`portico: ${garbage}: reverse.tls.cert: expected a PEM certificate ("-----BEGIN CERTIFICATE-----"), got a file that is not one ("${notPem}")`);
    const good = config(a.certPath, a.keyPath);
    const r3 = await portico(['--config', good, '--check']);
    expect(r3).toMatchObject({ code: 0, stderr: '' });
  });

  it('on success prints a short summary and "config OK"', async () => {
    const dir = tempDir();
    const file = write(dir, 'portico.yaml', 'reverse:\n  listen: 127.0.0.1:8080\n  routes: [{ path: /, pool: web }]\npools:\n  web:\n    servers: [{ url: "http://10.0.0.5:3000" }, { url: "http://10.0.0.6:3000" }]\nadmin: { listen: 127.0.0.1:9090 }\n');
    const r = await portico(['--config', file, '--check']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^portico \d+\.\d+\.\d+ · config .*portico\.yaml\n/);
    expect(r.stdout).toContain('reverse  http://127.0.0.1:8080  / → web');
    expect(r.stdout).toContain('pool web  round-robin: http://10.0.0.5:3000, http://10.0.0.6:3000');
    expect(r.stdout).toContain('admin    http://127.0.0.1:9090/');
    expect(r.stdout.endsWith('config OK\n')).toBe(true);
  });
});

describe('messages read as if a person wrote them for that mistake', () => {
  it.each([
    [
      '--reverse alone',
      ['--reverse', '8080', '--check'],
      'portico: --reverse 8080: the reverse proxy needs a backend to send requests to: add --upstream URL (e.g. --upstream http://127.0.0.1:3000; repeat it for more backends), or give --config FILE with reverse.routes and pools',
    ],
    [
      'admin on 0.0.0.0 without a token',
      ['--forward', '0', '--admin', '0.0.0.0:9090', '--check'],
      'portico: --admin 0.0.0.0:9090: the admin API would be open to other machines without a token: use --admin 9090 (127.0.0.1 only), or set admin.token in a --config file',
    ],
    [
      '--forward with --upstream',
      ['--forward', '3128', '--upstream', 'http://127.0.0.1:3000', '--check'],
      'portico: --upstream: backends are for the reverse proxy, which is not running: add --reverse ADDR (e.g. --reverse 8080) to serve them; to send the forward proxy through another proxy, set forward.upstream_proxy in a config file instead',
    ],
  ])('%s', async (_name, args, expected) => {
    const r = await portico(args);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`${expected}\n`);
  });

  it('a misspelt pool name suggests the right one, without dumping the config', async () => {
    const file = write(tempDir(), 'portico.yaml', 'reverse:\n  listen: 8080\n  routes: [{ path: /, pool: wbe }]\npools:\n  web: { servers: [{ url: "http://127.0.0.1:3000" }] }\n');
    const r = await portico(['--config', file, '--check']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`portico: ${file}: reverse.routes[0].pool: expected the name of a pool (web), got "wbe"; did you mean "web"?\n`);
  });

  it('an empty section says so in words, not in the schema library\'s', async () => {
    const file = write(tempDir(), 'portico.yaml', 'pools:\nreverse: { listen: 8080, routes: [{ pool: web }] }\n');
    const r = await portico(['--config', file, '--check']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`portico: ${file}: pools: expected a mapping of pool names to pools (web: { servers: [...] }), got an empty value (the key has nothing after the colon: fill it in or remove the line)`);
    expect(r.stderr).not.toMatch(/received|record|Invalid input/);
  });

  it('a misspelt section suggests the right one', async () => {
    const file = write(tempDir(), 'portico.yaml', 'forward: { listen: 0 }\nfroward: { listen: 0 }\n');
    const r = await portico(['--config', file, '--check']);
    expect(r.stderr).toBe(`portico: ${file}: froward: unknown key (did you mean forward?)\n`);
  });

  it('no message ever ends in a dump of the config', async () => {
    const cases = [
      ['--reverse', '8080'],
      ['--forward', '0', '--admin', '0.0.0.0:0'],
      ['--forward', '0', '--upstream', 'http://127.0.0.1:1'],
      ['--config', write(tempDir(), 'x.yaml', 'reverse: { listen: 0, routes: [{ pool: nope }] }\nadmin: { listen: 0.0.0.0:0 }\ncache: { store: disk }\n')],
    ];
    for (const args of cases) {
      const r = await portico([...args, '--check']);
      expect(r.code).toBe(2);
      expect(r.stderr).not.toMatch(/\{"/);
      expect(r.stderr).not.toMatch(/got \{/);
    }
  });
});
