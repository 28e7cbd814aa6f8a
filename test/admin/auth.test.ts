/** Who may use the admin listener: the bearer token, loopback-only defaults, cross-site and rebinding guards. */
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/errors.js';
import { validateConfig } from '../../src/config/load.js';
import { request } from '../helpers/http.js';
import { startOrigin, type Origin } from '../helpers/origin.js';
import { startPortico, type RunningPortico } from '../helpers/portico.js';
import { api, exposedAdmin, post } from './helpers.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';

const cleanup = cleanupAfterEach();

async function start(admin: Record<string, unknown>): Promise<{ p: RunningPortico; origin: Origin }> {
  const origin = await startOrigin((_req, res) => res.end('ok'));
  cleanup.push(() => origin.close());
  const p = await startPortico({
    reverse: { listen: '127.0.0.1:0', routes: [{ path: '/', pool: 'web' }] },
    pools: { web: { servers: [{ url: origin.url }] } },
    admin,
  });
  cleanup.push(() => p.stop());
  return { p, origin };
}

describe('admin.token on a loopback listener', () => {
  it('reads are open; state-changing calls need the token', async () => {
    const { p } = await start({ listen: '127.0.0.1:0', token: 'tok-123' });
    const admin = p.adminUrl!;
    expect((await api(`${admin}/api/stats`)).status).toBe(200);
    expect((await request(`${admin}/metrics`)).status).toBe(200);

    const missing = await post(`${admin}/api/reload`);
    expect(missing.status).toBe(401);
    expect(missing.headers['www-authenticate']).toMatch(/^Bearer/);
    expect(missing.json.error).toMatch(/Authorization: Bearer/);
    const wrong = await post(`${admin}/api/cache/purge`, { tag: 'x' }, { authorization: 'Bearer nope' });
    expect(wrong.status).toBe(401);
    expect(wrong.json.error).toMatch(/not valid/);
    const id = (await api(`${admin}/api/pools`)).json.pools[0].servers[0].id;
    expect((await post(`${admin}/api/pools/web/servers/${id}/drain`)).status).toBe(401);
    const ok = await post(`${admin}/api/pools/web/servers/${id}/drain`, undefined, { authorization: 'Bearer tok-123' });
    expect(ok.status).toBe(200);
    // A read with a wrong token is refused rather than silently treated as anonymous.
    expect((await api(`${admin}/api/stats`, { headers: { authorization: 'Bearer nope' } })).status).toBe(401);
  });
});

describe('an admin listener beyond loopback', () => {
  it('is refused without a token, naming admin.token', () => {
    const config = { reverse: { listen: '127.0.0.1:0', routes: [{ path: '/', pool: 'web' }] }, pools: { web: { servers: [{ url: 'http://127.0.0.1:1' }] } } };
    let error: unknown;
    try {
      validateConfig({ ...config, admin: { listen: '0.0.0.0:9090' } });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems).toEqual([expect.stringMatching(/^admin\.token: expected a bearer token: admin\.listen 0\.0\.0\.0:9090 is reachable from other machines/)]);
    expect(() => validateConfig({ ...config, admin: { listen: '127.0.0.1:9090' } })).not.toThrow();
    expect(() => validateConfig({ ...config, admin: { listen: '[::1]:9090' } })).not.toThrow();
    expect(() => validateConfig({ ...config, admin: { listen: '0.0.0.0:9090', token: 't' } })).not.toThrow();
  });

  it('needs the token for every API call and for /metrics, but serves the page shell', async () => {
    const { p } = await start({ listen: '127.0.0.1:0', token: 'wide-open-no-more' });
    const exposed = await exposedAdmin(p.portico);
    cleanup.push(exposed.close);
    const admin = exposed.url;
    expect((await api(`${admin}/api/stats`)).status).toBe(401);
    expect((await api(`${admin}/api/config`)).status).toBe(401);
    expect((await request(`${admin}/metrics`)).status).toBe(401);
    const bearer = { authorization: 'Bearer wide-open-no-more' };
    expect((await api(`${admin}/api/stats`, { headers: bearer })).status).toBe(200);
    expect((await request(`${admin}/metrics`, { headers: bearer })).status).toBe(200);
    // The dashboard page holds no data: it asks for the token itself.
    expect((await request(`${admin}/`)).status).toBe(200);
  });

  it('is treated as exposed when admin.listen is not a loopback address', async () => {
    const { isLoopbackHost } = await import('../../src/config/fields.js');
    expect(['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', '::ffff:127.0.0.1'].every(isLoopbackHost)).toBe(true);
    expect(['0.0.0.0', '::', '10.0.0.1', '192.168.1.5', 'example.com'].some(isLoopbackHost)).toBe(false);
  });
});

describe('without a token (loopback only)', () => {
  it('state-changing calls work from curl, but not from another site in a browser', async () => {
    const { p } = await start({ listen: '127.0.0.1:0' });
    const admin = p.adminUrl!;
    const host = new URL(admin).host;
    expect((await post(`${admin}/api/cache/purge`, { tag: 'x' })).status).toBe(200);
    expect((await post(`${admin}/api/cache/purge`, { tag: 'x' }, { origin: `http://${host}` })).status).toBe(200);
    const crossSite = await post(`${admin}/api/cache/purge`, { tag: 'x' }, { origin: 'http://evil.example' });
    expect(crossSite.status).toBe(403);
    expect(crossSite.json.error).toMatch(/cross-site/);
    expect((await post(`${admin}/api/reload`, undefined, { 'sec-fetch-site': 'cross-site' })).status).toBe(403);
  });

  it('refuses API calls under a DNS name other than localhost (DNS rebinding)', async () => {
    const { p } = await start({ listen: '127.0.0.1:0' });
    const port = new URL(p.adminUrl!).port;
    const rebound = await api(`${p.adminUrl}/api/stats`, { headers: { host: `attacker.example:${port}` } });
    expect(rebound.status).toBe(403);
    expect(rebound.json.error).toMatch(/not a loopback address or localhost/);
    expect((await api(`${p.adminUrl}/api/stats`, { headers: { host: `localhost:${port}` } })).status).toBe(200);
  });
});
