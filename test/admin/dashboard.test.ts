/**
 * The dashboard in a real browser (headless Chromium through playwright-core, the Debian `chromium`):
 * while traffic flows it shows the pools and backends, a backend's health turning down when its
 * health check fails, and the cache hit ratio; it also fits a phone screen. With PORTICO_SCREENSHOT=1
 * it writes docs/dashboard.png (and docs/dashboard-phone.png) for the README.
 */
import { mkdirSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Browser } from 'playwright-core';
import { CHROMIUM, hasChromium, launchChromium } from '../helpers/browser.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request, viaProxy, waitFor } from '../helpers/http.js';
import { startOrigin, type Origin } from '../helpers/origin.js';
import { startPortico, type RunningPortico } from '../helpers/portico.js';
import { api, exposedAdmin } from './helpers.js';

const screenshots = process.env.PORTICO_SCREENSHOT === '1';
if (!hasChromium) console.warn(`dashboard browser test skipped: ${CHROMIUM} is not installed (apt-get install chromium)`);

let browser: Browser;
let p: RunningPortico;
const origins: Origin[] = [];
const healthy = new Map<string, boolean>();
let traffic: Promise<void> | undefined;
let flowing = true;

function backend(name: string, delayMs: number) {
  return async (req: IncomingMessage, res: ServerResponse) => {
    if (req.url === '/health') {
      res.statusCode = healthy.get(name) === false ? 503 : 200;
      res.end();
      return;
    }
    await new Promise((r) => setTimeout(r, delayMs * (0.5 + Math.random())));
    if (req.url?.startsWith('/static/')) res.setHeader('cache-control', 'max-age=600');
    if (req.url === '/missing') res.statusCode = 404;
    if (req.url === '/flaky' && Math.random() < 0.5) res.statusCode = 500;
    res.end(`${name} ${req.url}`);
  };
}

/** Keeps a mix of requests flowing until the test ends: pages, cacheable assets, a few 404s and 500s, blocked ads. */
async function keepTrafficFlowing(reverse: string, forward: string): Promise<void> {
  let i = 0;
  while (flowing) {
    i++;
    const path = i % 3 === 0 ? `/static/app-${i % 7}.js` : i % 17 === 0 ? '/missing' : i % 23 === 0 ? '/flaky' : `/page/${i % 11}`;
    await Promise.all([
      request(`${reverse}${path}`).catch(() => undefined),
      request(`${reverse}/static/logo.svg`).catch(() => undefined),
      i % 97 === 0 ? viaProxy(forward, `http://ads${i % 3}.doubleclick.net/pixel?i=${i}`).catch(() => undefined) : undefined,
    ]);
    // A slow wave in the request rate, so the chart has a shape.
    await new Promise((r) => setTimeout(r, (5 + (i % 40)) * (1.6 + Math.sin(Date.now() / 9_000))));
  }
}

describe.skipIf(!hasChromium)('dashboard in Chromium', () => {
  beforeAll(async () => {
    for (const [name, delay] of [['alpha', 4], ['beta', 9], ['gamma', 15]] as const) origins.push(await startOrigin(backend(name, delay)));
    p = await startPortico({
      reverse: {
        listen: '127.0.0.1:0',
        routes: [
          { path: '/static/', pool: 'assets' },
          { path: '/', pool: 'app' },
        ],
      },
      pools: {
        app: {
          balance: 'least-connections',
          servers: origins.map((o) => ({ url: o.url })),
          health: { path: '/health', interval: '100ms', timeout: '500ms', rise: 1, fall: 1 },
          sticky: { cookie: 'portico_app' },
        },
        assets: { servers: [{ url: origins[0]!.url, weight: 3 }, { url: origins[1]!.url, weight: 1, backup: true }] },
      },
      forward: { listen: '127.0.0.1:0', rules: [{ name: 'ads', action: 'deny', host: ['*.doubleclick.net'] }] },
      admin: { listen: '127.0.0.1:0' },
    });
    traffic = keepTrafficFlowing(p.reverseUrl, p.forwardUrl!);
    browser = await launchChromium();
  }, 30_000);

  afterAll(async () => {
    flowing = false;
    await traffic;
    await browser?.close();
    await p?.stop();
    for (const o of origins) await o.close();
  });

  it('shows pools and backends, a backend going down, and the cache hit ratio while traffic flows', async () => {
    const page = await browser.newPage({ viewport: { width: 1360, height: 1000 }, deviceScaleFactor: 1 });
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    page.on('console', (msg) => {
      if (msg.type() === 'error') errors.push(msg.text());
    });
    await page.goto(`${p.adminUrl}/`);

    // Pools and their backends, all up.
    const app = page.getByTestId('pool-app');
    await expect.poll(() => app.locator('tbody tr').count(), { timeout: 5_000 }).toBe(3);
    await expect.poll(() => page.getByTestId('pool-assets').locator('tbody tr').count()).toBe(2);
    const pools = (await api(`${p.adminUrl}/api/pools`)).json.pools;
    const beta = pools.find((x: any) => x.name === 'app').servers.find((s: any) => s.url === origins[1]!.url);
    const betaRow = page.getByTestId(`server-${beta.id}`);
    await expect.poll(() => betaRow.getAttribute('data-state')).toBe('up');
    expect(await app.textContent()).toContain(origins[0]!.url);
    expect(await app.textContent()).toContain('least-connections');
    expect(await app.textContent()).toContain('sticky: portico_app');

    // Requests per second and a cache hit ratio show up as traffic flows.
    await expect.poll(async () => Number(await page.locator('#rps').textContent()), { timeout: 8_000 }).toBeGreaterThan(0);
    await expect.poll(async () => (await page.getByTestId('kpi-hit-ratio').locator('.value').textContent()) ?? '', { timeout: 5_000 }).toMatch(/^\d+(\.\d)?%$/);
    const hitRatio = Number.parseFloat((await page.locator('#hit-ratio').textContent())!);
    expect(hitRatio).toBeGreaterThan(0);

    // Beta's health check starts failing: the dashboard shows it down.
    healthy.set('beta', false);
    await expect.poll(() => betaRow.getAttribute('data-state'), { timeout: 5_000 }).toBe('down');
    expect(await betaRow.getByTestId('state').textContent()).toBe('down');

    // Drain gamma from the page itself.
    const gamma = pools.find((x: any) => x.name === 'app').servers.find((s: any) => s.url === origins[2]!.url);
    const gammaRow = page.getByTestId(`server-${gamma.id}`);
    await gammaRow.getByRole('button', { name: 'Drain' }).click();
    await expect.poll(() => gammaRow.getAttribute('data-state'), { timeout: 5_000 }).toBe('drained');
    expect(p.portico.pools.get('app')!.snapshot().find((s) => s.id === gamma.id)!.state).toBe('drained');

    // Recovery shows too.
    healthy.set('beta', true);
    await expect.poll(() => betaRow.getAttribute('data-state'), { timeout: 5_000 }).toBe('up');
    await expect.poll(() => page.locator('#live').getAttribute('data-state')).toBe('live');

    if (screenshots) {
      // A fuller picture for the README: let the chart fill in, with one backend down and one drained.
      healthy.set('beta', false);
      await waitFor(async () => (await api(`${p.adminUrl}/api/stats`)).json.uptimeSeconds >= 100, 120_000, 'some history for the chart');
      await expect.poll(() => betaRow.getAttribute('data-state')).toBe('down');
      mkdirSync('docs', { recursive: true });
      await page.screenshot({ path: 'docs/dashboard.png', fullPage: true });
    }
    expect(errors).toEqual([]);
    await page.close();
  }, screenshots ? 180_000 : 30_000);

  it('fits a phone screen without sideways scrolling', async () => {
    const page = await browser.newPage({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
    await page.goto(`${p.adminUrl}/`);
    await expect.poll(() => page.getByTestId('pool-app').locator('tbody tr').count(), { timeout: 5_000 }).toBe(3);
    // A string expression: the test code is compiled without DOM types.
    const overflow = await page.evaluate<number>('document.documentElement.scrollWidth - document.documentElement.clientWidth');
    expect(overflow).toBeLessThanOrEqual(0);
    if (screenshots) await page.screenshot({ path: 'docs/dashboard-phone.png', fullPage: true });
    await page.close();
  }, 30_000);

  it('asks for the token when the admin listener needs one, and works once given', async () => {
    const guarded = await startPortico({
      reverse: { listen: '127.0.0.1:0', routes: [{ path: '/', pool: 'app' }] },
      pools: { app: { servers: [{ url: origins[0]!.url }] } },
      admin: { listen: '127.0.0.1:0', token: 'browser-token' },
    });
    const exposed = await exposedAdmin(guarded.portico);
    try {
      const page = await browser.newPage();
      await page.goto(`${exposed.url}/`);
      await expect.poll(() => page.locator('#auth').isVisible(), { timeout: 5_000 }).toBe(true);
      await page.locator('#token').fill('browser-token');
      await page.locator('#auth-form button').click();
      await expect.poll(() => page.getByTestId('pool-app').locator('tbody tr').count(), { timeout: 5_000 }).toBe(1);
      expect(await page.locator('#auth').isVisible()).toBe(false);
      await page.close();
    } finally {
      await exposed.close();
      await guarded.stop();
    }
  }, 30_000);
});
