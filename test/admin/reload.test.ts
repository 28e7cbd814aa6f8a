/**
 * Reload (POST /api/reload, as SIGHUP does): a broken file keeps the old config serving and reports
 * every problem; a good one swaps in without a failed request, keeping health state and the cache.
 */
import { writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { readConfigFile, validateConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/core/log.js';
import { Portico } from '../../src/server.js';
import { request, waitFor } from '../helpers/http.js';
import { startOrigin, type Origin } from '../helpers/origin.js';
import { api, post, writeTempFile } from './helpers.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';

const cleanup = cleanupAfterEach();

async function origin(name: string): Promise<Origin> {
  const o = await startOrigin((req, res) => {
    if (req.url === '/cached') res.setHeader('cache-control', 'max-age=600');
    res.end(name);
  });
  cleanup.push(() => o.close());
  return o;
}

function yaml(servers: readonly string[], extraPool = ''): string {
  return `reverse:
  listen: 127.0.0.1:0
  routes:
    - path: /
      pool: web
pools:
  web:
    servers:
${servers.map((url) => `      - url: ${url}`).join('\n')}
${extraPool}
admin:
  listen: 127.0.0.1:0
log:
  stats_interval: 0
`;
}

async function startFromFile(text: string): Promise<{ portico: Portico; file: string; reverse: string; admin: string }> {
  const file = writeTempFile('portico.yaml', text);
  const load = () => validateConfig(readConfigFile(file), file);
  const portico = await Portico.start(load(), { log: silentLogger, loadConfig: load });
  cleanup.push(() => portico.close(100));
  const a = portico.addresses();
  return { portico, file, reverse: `http://${a.reverse}`, admin: `http://${a.admin}` };
}

describe('POST /api/reload', () => {
  it('a file with a syntax error is rejected with its line; the old config keeps serving', async () => {
    const a = await origin('a');
    const { file, reverse, admin } = await startFromFile(yaml([a.url]));
    writeFileSync(file, 'reverse:\n  listen: [oops\n');
    const reply = await post(`${admin}/api/reload`);
    expect(reply.status).toBe(422);
    expect(reply.json.reloaded).toBe(false);
    expect(reply.json.error).toMatch(/previous config keeps running/);
    expect(reply.json.problems[0]).toContain(file);
    expect(reply.json.problems[0]).toMatch(/line \d+/);
    expect((await request(`${reverse}/x`)).body).toBe('a');
    const stats = (await api(`${admin}/api/stats`)).json;
    expect(stats.reloads).toMatchObject({ succeeded: 0, failed: 1 });
  });

  it('a file that does not validate is rejected with every problem named by key', async () => {
    const a = await origin('a');
    const { file, reverse, admin } = await startFromFile(yaml([a.url]));
    writeFileSync(file, yaml([a.url]).replace(`      - url: ${a.url}`, `      - url: ${a.url}\n        weight: five\n        colour: blue`));
    const reply = await post(`${admin}/api/reload`);
    expect(reply.status).toBe(422);
    expect(reply.json.problems).toEqual(
      expect.arrayContaining([expect.stringMatching(/pools\.web\.servers\[0\]\.weight: expected a positive integer/), expect.stringMatching(/pools\.web\.servers\[0\]\.colour: unknown key/)]),
    );
    expect((await request(`${reverse}/x`)).body).toBe('a');
    expect((await api(`${admin}/api/config`)).json.pools.web.servers).toHaveLength(1);
  });

  it('a reload that adds a backend starts using it with no failed request during the swap', async () => {
    const a = await origin('a');
    const b = await origin('b');
    const { file, reverse, admin } = await startFromFile(yaml([a.url]));
    let running = true;
    const statuses: number[] = [];
    const loop = async () => {
      while (running) {
        const reply = await request(`${reverse}/x`);
        statuses.push(reply.status);
      }
    };
    const loops = [loop(), loop(), loop(), loop()];
    await waitFor(() => statuses.length >= 40, 5_000, 'traffic before the reload');
    writeFileSync(file, yaml([a.url, b.url]));
    const reply = await post(`${admin}/api/reload`);
    expect(reply.status).toBe(200);
    expect(reply.json).toMatchObject({ reloaded: true, changes: ['pools.web.servers: changed'], restartNeeded: [] });
    const afterReload = statuses.length;
    await waitFor(() => b.count() >= 5, 5_000, 'the added backend to get requests');
    running = false;
    await Promise.all(loops);
    expect(statuses.length).toBeGreaterThan(afterReload);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    const pools = (await api(`${admin}/api/pools`)).json.pools;
    expect(pools[0].servers.map((s: any) => s.url)).toEqual([a.url, b.url]);
  });

  it('keeps health state (a drained backend stays drained) and the cache across a reload', async () => {
    const a = await origin('a');
    const b = await origin('b');
    const c = await origin('c');
    const { portico, file, reverse, admin } = await startFromFile(yaml([a.url, b.url]));
    await request(`${reverse}/cached`);
    const cachedFrom = a.count('/cached') + b.count('/cached');
    expect(cachedFrom).toBe(1);
    const idB = (await api(`${admin}/api/pools`)).json.pools[0].servers[1].id;
    expect((await post(`${admin}/api/pools/web/servers/${idB}/drain`)).status).toBe(200);

    writeFileSync(file, yaml([a.url, b.url, c.url]));
    expect((await post(`${admin}/api/reload`)).status).toBe(200);
    const servers = (await api(`${admin}/api/pools`)).json.pools[0].servers;
    expect(servers.find((s: any) => s.url === b.url).state).toBe('drained');
    expect((await request(`${reverse}/cached`)).headers['cache-status']).toMatch(/hit/);
    expect(a.count('/cached') + b.count('/cached') + c.count('/cached')).toBe(1);

    // Servers the config no longer lists are forgotten: re-adding one later starts it fresh (not drained).
    writeFileSync(file, yaml([a.url, c.url]));
    expect((await post(`${admin}/api/reload`)).status).toBe(200);
    expect(portico.registry.has(new URL(b.url).href)).toBe(false);
    writeFileSync(file, yaml([a.url, b.url, c.url]));
    expect((await post(`${admin}/api/reload`)).status).toBe(200);
    expect((await api(`${admin}/api/pools`)).json.pools[0].servers.find((s: any) => s.url === b.url).state).toBe('up');
  });

  it('reports changes that need a restart, and the reload counters', async () => {
    const a = await origin('a');
    const { file, admin } = await startFromFile(yaml([a.url]));
    writeFileSync(file, yaml([a.url]).replace('admin:\n  listen: 127.0.0.1:0', 'admin:\n  listen: 127.0.0.1:0\n  token: later').replace('stats_interval: 0', 'stats_interval: 0\ncache:\n  max_size: 1mb'));
    const reply = await post(`${admin}/api/reload`);
    expect(reply.status).toBe(200);
    expect(reply.json.changes).toEqual(expect.arrayContaining(['admin.token: added', 'cache.max_size: changed']));
    expect(reply.json.restartNeeded).toEqual(['cache']);
    // The new token is in force at once.
    expect((await post(`${admin}/api/reload`)).status).toBe(401);
    const metrics = (await request(`${admin}/metrics`)).body;
    expect(metrics).toMatch(/portico_config_reloads_total\{result="success"\} 1/);
  });

  it('answers 409 when Portico was started without a config file', async () => {
    const a = await origin('a');
    const portico = await Portico.start(validateConfig({ reverse: { listen: '127.0.0.1:0', routes: [{ path: '/', pool: 'web' }] }, pools: { web: { servers: [{ url: a.url }] } }, admin: { listen: '127.0.0.1:0' } }), { log: silentLogger });
    cleanup.push(() => portico.close(100));
    const reply = await post(`http://${portico.addresses().admin}/api/reload`);
    expect(reply.status).toBe(409);
    expect(reply.json.error).toMatch(/without --config/);
  });
});
