/**
 * The dashboard as an operator meets it (headless Chromium through playwright-core): Drain with
 * admin.token on a loopback listener asks for the token and keeps asking until it gets it; a backend
 * taken out says why; the idle chart's axis counts whole requests; the blocked-requests table fits a
 * phone; /api/config shows sizes and durations as written; a blocked HTTPS site can be looked up.
 */
import type { Browser } from 'playwright-core';
import { CHROMIUM, hasChromium, launchChromium } from '../helpers/browser.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordingLogger } from '../balance/logs.js';
import { connectThrough } from '../forward/helpers.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { request, viaProxy } from '../helpers/http.js';
import { deadAddress } from '../helpers/origin.js';
import { startPortico } from '../helpers/portico.js';
import { api } from '../admin/helpers.js';

if (!hasChromium) console.warn(`operator dashboard tests skipped: ${CHROMIUM} is not installed (apt-get install chromium)`);

const cleanup = cleanupAfterEach();
let browser: Browser;

describe.skipIf(!hasChromium)('dashboard', () => {
  beforeAll(async () => {
    browser = await launchChromium();
  }, 30_000);
  afterAll(async () => {
    await browser?.close();
  });

  it('Drain with admin.token on loopback: the token box stays until a token is given, then the drain happens', async () => {
    const origin = await cleanup.origin();
    const p = await startPortico({
      reverse: { listen: '127.0.0.1:0', routes: [{ path: '/', pool: 'app' }] },
      pools: { app: { servers: [{ url: origin.url }] } },
      admin: { listen: '127.0.0.1:0', token: 'op-token' },
    });
    cleanup.push(p.stop);
    const page = await browser.newPage();
    cleanup.push(() => page.close());
    await page.goto(`${p.adminUrl}/`);
    const row = page.locator('[data-testid="pool-app"] tbody tr');
    await expect.poll(() => row.count(), { timeout: 5_000 }).toBe(1);
    expect(await page.locator('#auth').isVisible()).toBe(false); // reads need no token on loopback

    await row.getByRole('button', { name: 'Drain' }).click();
    await expect.poll(() => page.locator('#auth').isVisible(), { timeout: 3_000 }).toBe(true);
    expect(await page.locator('#auth-label').textContent()).toContain('Drain and Enable need the admin token');
    // Several polls later (one a second) it is still there.
    for (let i = 0; i < 2; i++) await page.waitForResponse((r) => r.url().endsWith('/api/stats'), { timeout: 5_000 });
    expect(await page.locator('#auth').isVisible()).toBe(true);

    await page.locator('#token').fill('op-token');
    await page.locator('#auth-form button').click();
    await expect.poll(() => row.getAttribute('data-state'), { timeout: 5_000 }).toBe('drained');
    expect(await page.locator('#auth').isVisible()).toBe(false);
    expect(await page.locator('#notice').textContent()).toMatch(/^Drained app \/ [0-9a-f]{16}$/);
    expect(p.portico.pools.get('app')!.snapshot()[0]!.state).toBe('drained');
    // A wrong token says so and keeps the box open.
    await page.evaluate('sessionStorage.clear()');
    await page.reload();
    await expect.poll(() => row.count(), { timeout: 5_000 }).toBe(1);
    await row.getByRole('button', { name: 'Enable' }).click();
    await expect.poll(() => page.locator('#auth').isVisible(), { timeout: 3_000 }).toBe(true);
    await page.locator('#token').fill('wrong');
    await page.locator('#auth-form button').click();
    await expect.poll(async () => (await page.locator('#auth-message').textContent()) ?? '', { timeout: 3_000 }).toMatch(/try again$/);
    expect(p.portico.pools.get('app')!.snapshot()[0]!.state).toBe('drained');
  }, 30_000);

  it('a backend taken out says why, in the dashboard, /api/pools and the log (the cause, not "request failed")', async () => {
    const dead = await deadAddress();
    const live = await cleanup.origin();
    const { log, lines } = recordingLogger();
    const p = await startPortico(
      {
        reverse: { listen: '127.0.0.1:0', routes: [{ path: '/', pool: 'app' }] },
        pools: { app: { balance: 'round-robin', servers: [{ url: dead }, { url: live.url }], passive: { max_fails: 1, fail_timeout: '60s' } } },
        admin: { listen: '127.0.0.1:0' },
      },
      log,
    );
    cleanup.push(p.stop);
    for (let i = 0; i < 2; i++) expect((await request(`${p.reverseUrl}/`)).status).toBe(200);
    const down = lines.find((l) => l.msg === 'backend down');
    expect(down?.reason).toBe(`1 failed request within 1m (last: ${dead} refused the connection); out for 1m`);
    const server = (await api(`${p.adminUrl}/api/pools`)).json.pools[0].servers.find((s: { url: string }) => s.url === dead);
    expect(server).toMatchObject({ state: 'down', reason: down!.reason });

    const page = await browser.newPage();
    cleanup.push(() => page.close());
    await page.goto(`${p.adminUrl}/`);
    const reason = page.locator(`[data-testid="server-${server.id}"] [data-testid="reason"]`);
    await expect.poll(() => reason.textContent(), { timeout: 5_000 }).toContain('refused the connection');
    expect(await reason.isVisible()).toBe(true);
  }, 30_000);

  it('the idle chart counts whole requests on its axis (0 1 2 3 4), and with traffic too', async () => {
    const origin = await cleanup.origin();
    const p = await startPortico({
      reverse: { listen: '127.0.0.1:0', routes: [{ path: '/', pool: 'app' }] },
      pools: { app: { servers: [{ url: origin.url }] } },
      admin: { listen: '127.0.0.1:0' },
    });
    cleanup.push(p.stop);
    const page = await browser.newPage();
    cleanup.push(() => page.close());
    await page.goto(`${p.adminUrl}/`);
    await expect.poll(() => page.locator('#chart').getAttribute('data-ticks'), { timeout: 5_000 }).toBe('0,1,2,3,4');
    for (let i = 0; i < 7; i++) await request(`${p.reverseUrl}/x${i}`);
    await expect.poll(() => page.locator('#chart').getAttribute('data-ticks'), { timeout: 5_000 }).toMatch(/^0,(2,4,6,8|5,10,15,20)$/);
  }, 30_000);

  it('on a phone, the blocked-requests table is cards that fit, long targets wrapped', async () => {
    const p = await startPortico({
      forward: { listen: '127.0.0.1:0', rules: [{ name: 'ads-and-trackers', action: 'deny', host: ['.doubleclick.net'] }] },
      admin: { listen: '127.0.0.1:0' },
    });
    cleanup.push(p.stop);
    await viaProxy(p.forwardUrl!, `http://a-very-long-subdomain-name-for-tracking.ads.doubleclick.net/pixel?campaign=${'x'.repeat(80)}`);
    await connectThrough(Number(new URL(p.forwardUrl!).port), 'stats.g.doubleclick.net:443');
    const page = await browser.newPage({ viewport: { width: 375, height: 740 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
    cleanup.push(() => page.close());
    await page.goto(`${p.adminUrl}/`);
    await expect.poll(() => page.locator('#blocked-rows tr').count(), { timeout: 5_000 }).toBe(2);
    const wrap = `document.querySelector('[data-testid="blocked"]').parentElement`;
    expect(await page.evaluate<number>(`${wrap}.scrollWidth - ${wrap}.clientWidth`)).toBeLessThanOrEqual(0);
    // Every cell is inside the screen.
    const outside = await page.evaluate<number>(`[...document.querySelectorAll('#blocked-rows td')].filter((td) => { const r = td.getBoundingClientRect(); return r.right > window.innerWidth + 0.5 || r.left < -0.5; }).length`);
    expect(outside).toBe(0);
    expect(await page.locator('#blocked-rows').textContent()).toContain('"ads-and-trackers" (forward.rules[0])');
  }, 30_000);
});

describe('/api/config', () => {
  it('shows sizes and durations as written (and defaults in the same units), never bytes and ms', async () => {
    const origin = await cleanup.origin();
    const { validateConfig } = await import('../../src/config/load.js');
    const { Portico } = await import('../../src/server.js');
    const { silentLogger } = await import('../../src/core/log.js');
    const config = validateConfig({
      reverse: { listen: '127.0.0.1:0', routes: [{ path: '/', pool: 'app' }], timeouts: { connect: '1500ms' } },
      pools: { app: { servers: [{ url: origin.url }], health: { interval: '10s', timeout: 2 } } },
      cache: { max_size: '512mb', max_object_size: 1048576 },
      admin: { listen: '127.0.0.1:0' },
    });
    const portico = await Portico.start(config, { log: silentLogger });
    cleanup.push(() => portico.close(100));
    const { json } = await api(`http://${portico.addresses().admin}/api/config`);
    expect(json.cache.max_size).toBe('512mb');
    expect(json.cache.max_object_size).toBe(1048576); // written as a number of bytes
    expect(json.cache.heuristic_max).toBe('1d'); // the default, in units
    expect(json.pools.app.health.interval).toBe('10s');
    expect(json.pools.app.health.timeout).toBe(2);
    expect(json.pools.app.passive.fail_timeout).toBe('30s');
    expect(json.reverse.timeouts.connect).toBe('1500ms');
    expect(json.reverse.timeouts.idle).toBe('1m');
    expect(json.limits.max_body_size).toBe('100mb');
    expect(json.limits.max_header_count).toBe(100); // a count, not a size
  });
});

describe('a blocked HTTPS site', () => {
  it('gets 403 to its CONNECT (which browsers never show), and http://PROXY/blocked tells the user which rule', async () => {
    const p = await startPortico({ forward: { listen: '127.0.0.1:0', rules: [{ name: 'social', action: 'deny', host: ['.facebook.com'] }] } });
    cleanup.push(p.stop);
    const port = Number(new URL(p.forwardUrl!).port);
    const refused = await connectThrough(port, 'www.facebook.com:443', {}, { localAddress: '127.0.0.9' });
    expect(refused.status).toBe(403);
    const text = await request(`${p.forwardUrl}/blocked`, { localAddress: '127.0.0.9' });
    expect(text.status).toBe(200);
    expect(text.body).toMatch(/^Recently blocked for 127\.0\.0\.9:\n\d\d:\d\d:\d\d {2}CONNECT www\.facebook\.com:443 {2}blocked by rule "social" \(forward\.rules\[0\]\)\n$/);
    const page = await request(`${p.forwardUrl}/blocked`, { localAddress: '127.0.0.9', headers: { accept: 'text/html' } });
    expect(page.headers['content-type']).toContain('text/html');
    expect(page.body).toContain('ERR_TUNNEL_CONNECTION_FAILED');
    expect(page.body).toContain('<code>www.facebook.com:443</code>');
    // Another client sees only its own.
    expect((await request(`${p.forwardUrl}/blocked`, { localAddress: '127.0.0.10' })).body).toBe('Nothing was blocked for 127.0.0.10 recently.\n');
  });
});
