/**
 * The dashboard's cache section in headless Chromium (playwright-core, the Debian `chromium`): a search
 * by URL prefix lists what is stored with its hits, and Purge — with admin.token on a loopback listener,
 * through the token box — removes the entry from the cache and from the list. It also fits a phone.
 */
import type { Browser } from 'playwright-core';
import { CHROMIUM, hasChromium, launchChromium } from '../helpers/browser.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from '../helpers/http.js';
import { startOrigin, type Origin } from '../helpers/origin.js';
import { startPortico, type RunningPortico } from '../helpers/portico.js';
import { api } from './helpers.js';

if (!hasChromium) console.warn(`cache dashboard test skipped: ${CHROMIUM} is not installed (apt-get install chromium)`);

let browser: Browser;
let origin: Origin;
let p: RunningPortico;

describe.skipIf(!hasChromium)('dashboard: cache entries', () => {
  beforeAll(async () => {
    origin = await startOrigin((req, res) => {
      res.writeHead(200, { 'cache-control': 'max-age=600', 'surrogate-key': req.url?.startsWith('/static/') ? 'assets' : 'pages' });
      res.end(`body of ${req.url}`);
    });
    p = await startPortico({
      reverse: { listen: '127.0.0.1:0', routes: [{ path: '/', pool: 'o' }] },
      pools: { o: { servers: [{ url: origin.url }] } },
      admin: { listen: '127.0.0.1:0', token: 'cache-token' },
    });
    for (const path of ['/static/app.js', '/static/app.js', '/static/app.js', '/static/site.css', '/index.html']) await request(`${p.reverseUrl}${path}`);
    browser = await launchChromium();
  }, 30_000);

  afterAll(async () => {
    await browser?.close();
    await p?.stop();
    await origin?.close();
  });

  it('finds entries by URL prefix, then purges one through the token box', async () => {
    const page = await browser.newPage({ viewport: { width: 1360, height: 1000 } });
    const pageErrors: string[] = [];
    page.on('pageerror', (err) => pageErrors.push(err.message));
    await page.goto(`${p.adminUrl}/`);
    const rows = page.getByTestId('cache-entries').getByTestId('entry');
    // Everything stored is listed at first.
    await expect.poll(() => rows.count(), { timeout: 5_000 }).toBe(3);

    await page.locator('#cache-prefix').fill(`${p.reverseUrl}/static/`);
    await page.locator('#cache-search button').click();
    await expect.poll(() => rows.count(), { timeout: 5_000 }).toBe(2);
    expect(await page.locator('#cache-total').textContent()).toBe('2 entries');
    const app = page.locator(`[data-testid="entry"][data-url="${p.reverseUrl}/static/app.js"]`);
    expect(await app.getByTestId('hits').textContent()).toBe('2');
    expect(await app.textContent()).toContain('assets');
    expect(await app.getAttribute('data-state')).toBe('fresh');

    // Purge needs the token: the box opens, and once given the purge happens.
    await app.getByRole('button', { name: 'Purge' }).click();
    await expect.poll(() => page.locator('#auth').isVisible(), { timeout: 3_000 }).toBe(true);
    expect(await page.locator('#auth-label').textContent()).toContain('Purging needs the admin token');
    await page.locator('#token').fill('cache-token');
    await page.locator('#auth-form button').click();
    await expect.poll(() => rows.count(), { timeout: 5_000 }).toBe(1);
    expect(await rows.first().getAttribute('data-url')).toBe(`${p.reverseUrl}/static/site.css`);
    expect(await page.locator('#notice').textContent()).toBe(`Purged 1 entry for ${p.reverseUrl}/static/app.js`);
    expect(await page.locator('#auth').isVisible()).toBe(false);

    // Gone from the cache itself: the listing says so, and the next request goes to the origin.
    const listed = await api(`${p.adminUrl}/api/cache/entries?prefix=${encodeURIComponent(`${p.reverseUrl}/static/app.js`)}`);
    expect(listed.json.entries).toEqual([]);
    const before = origin.count('/static/app.js');
    await request(`${p.reverseUrl}/static/app.js`);
    expect(origin.count('/static/app.js')).toBe(before + 1);

    // A prefix with nothing under it says so.
    await page.locator('#cache-prefix').fill('http://nowhere.example/');
    await page.locator('#cache-search button').click();
    await expect.poll(async () => (await page.getByTestId('cache-entries').textContent()) ?? '', { timeout: 5_000 }).toContain('Nothing stored under http://nowhere.example/');
    expect(pageErrors).toEqual([]);
    await page.close();
  }, 30_000);

  it('fits a phone screen without sideways scrolling', async () => {
    const page = await browser.newPage({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
    await page.goto(`${p.adminUrl}/`);
    await expect.poll(() => page.getByTestId('cache-entries').getByTestId('entry').count(), { timeout: 5_000 }).toBeGreaterThan(0);
    const overflow = await page.evaluate<number>('document.documentElement.scrollWidth - document.documentElement.clientWidth');
    expect(overflow).toBeLessThanOrEqual(0);
    await page.close();
  }, 30_000);
});
