/** Config errors name the key path and what was expected; the CLI reports them without a stack trace. */
import { execFile } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/errors.js';
import { readConfigFile, validateConfig } from '../../src/config/load.js';

const run = promisify(execFile);

function problems(raw: unknown): readonly string[] {
  try {
    validateConfig(raw);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

const pool = { servers: [{ url: 'http://127.0.0.1:3000' }] };
const reverse = { listen: '8080', routes: [{ path: '/', pool: 'web' }] };

describe('config validation', () => {
  it.each([
    [{ reverse, pools: { web: { servers: [{ url: 'http://a:1' }, { url: 'http://b:1', weight: 'five' }] } } }, 'pools.web.servers[1].weight: expected a positive integer, got "five"'],
    [{ reverse, pools: { web: pool }, colour: 'red' }, 'colour: unknown key'],
    [{ reverse, pools: { web: { ...pool, balence: 'random' } } }, 'pools.web.balence: unknown key'],
    [{ reverse: { ...reverse, routes: [{ path: '/', pool: 'nope' }] }, pools: { web: pool } }, 'reverse.routes[0].pool: expected the name of a pool (web), got "nope"'],
    [{ reverse, pools: { web: { servers: [{ url: 'ftp://x' }] } } }, 'pools.web.servers[0].url: expected an http:// or https:// URL'],
    [{ reverse, pools: { web: { ...pool, health: { interval: 'soon' } } } }, 'pools.web.health.interval: expected a duration like "5s", "500ms" or "2m", got "soon"'],
    [{ reverse, pools: { web: pool }, cache: { max_size: 'lots' } }, 'cache.max_size: expected a size like "256mb", "512kb" or a number of bytes, got "lots"'],
    [{ reverse, pools: { web: { ...pool, balance: 'fastest' } } }, 'pools.web.balance: expected one of round-robin'],
    [{ reverse: { ...reverse, listen: 'everywhere' }, pools: { web: pool } }, 'reverse.listen: expected an address like'],
    [{ reverse, pools: { web: { ...pool, balance: 'hash' } } }, 'pools.web.hash_key: expected "uri", "header:NAME" or "cookie:NAME"'],
  ])('rejects %j', (raw, expected) => {
    const found = problems(raw);
    expect(found.some((p) => p.startsWith(expected)), `${found.join('\n')}\n  does not include\n${expected}`).toBe(true);
  });

  it('reports every problem at once', () => {
    expect(problems({ reverse, pools: { web: { servers: [{ url: 'x', weight: 0 }] } }, cache: { max_size: 'x' } })).toHaveLength(3);
  });

  it('fills in defaults and parses units', () => {
    const config = validateConfig({ reverse, pools: { web: { ...pool, health: { interval: '500ms' } } } });
    expect(config.reverse?.listen).toEqual({ host: '0.0.0.0', port: 8080 });
    expect(config.pools.web?.health?.interval).toBe(500);
    expect(config.pools.web?.health?.timeout).toBe(2000);
    expect(config.cache.max_size).toBe(256 * 1024 * 1024);
  });

  it('names the file, line and column of a YAML syntax error', () => {
    const dir = mkdtempSync(join(tmpdir(), 'portico-'));
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'reverse:\n  listen: [8080\n');
    expect(() => readConfigFile(file)).toThrow(new RegExp(`${file}: line \\d+, column \\d+`));
  });
});

describe('the portico command', () => {
  const cli = (...args: string[]) => run(process.execPath, ['dist/cli.js', ...args]).catch((err: { code: number; stdout: string; stderr: string }) => err);

  it('prints help and version', async () => {
    const help = await cli('--help');
    expect(help.stdout).toContain('--upstream URL');
    expect((await cli('--version')).stdout).toMatch(/^portico \d+\.\d+\.\d+/);
  });

  it('exits 2 with one line per problem, never a stack trace', async () => {
    const bad = (await cli('--reverse', 'nowhere', '--upstream', 'ftp://x')) as { code: number; stderr: string };
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('portico: --reverse: expected PORT, HOST:PORT or [IPv6]:PORT, got "nowhere"');
    expect(bad.stderr).toContain('portico: --upstream: expected an http:// or https:// URL');
    expect(bad.stderr).not.toMatch(/\n\s+at /);
  });

  it('validates a config file with --check, naming the file and the key', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'portico-'));
    const file = join(dir, 'portico.yaml');
    writeFileSync(file, 'reverse:\n  listen: 8080\n  routes: [{ path: /, pool: web }]\npools:\n  web:\n    servers: [{ url: "http://127.0.0.1:1", weight: five }]\n');
    const bad = (await cli('--config', file, '--check')) as { code: number; stderr: string };
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain(`portico: ${file}: pools.web.servers[0].weight: expected a positive integer, got "five"`);
  });

  it('says clearly when the port is in use', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as { port: number }).port;
    try {
      const bad = (await cli('--reverse', `127.0.0.1:${port}`, '--upstream', 'http://127.0.0.1:1')) as { code: number; stderr: string };
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain(`reverse.listen: address 127.0.0.1:${port} is already in use`);
    } finally {
      blocker.close();
    }
  });
});
