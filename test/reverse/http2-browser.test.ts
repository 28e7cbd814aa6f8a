/**
 * Headless Chromium (Debian package `chromium`) loads a page and its subresources from the reverse
 * TLS listener over HTTP/2: the test certificate is trusted by its public key
 * (`--ignore-certificate-errors-spki-list`), the page and every subresource report `h2` as their
 * protocol, the subresources are cache hits on a second visit, the access log says HTTP/2.0, and the
 * dashboard shows the split of requests by protocol.
 */
import { createHash, X509Certificate } from 'node:crypto';
import type { Browser } from 'playwright-core';
import { CHROMIUM, hasChromium, launchChromium } from '../helpers/browser.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrigin, type Origin } from '../helpers/origin.js';
import { startPortico, type RunningPortico } from '../helpers/portico.js';
import { selfSignedCert } from '../helpers/tls.js';
import { recordingLogger, type LogLine } from '../balance/logs.js';

if (!hasChromium) console.warn(`browser test skipped: ${CHROMIUM} is not installed (apt-get install chromium)`);

let origin: Origin;
let portico: RunningPortico;
let browser: Browser;
let logLines: LogLine[] = [];

const PAGE = `<!doctype html><title>h2</title><link rel="stylesheet" href="/style.css">
<h1 id="msg">hello over h2</h1>${Array.from({ length: 12 }, (_, i) => `<img src="/img/${i}.svg" alt="">`).join('')}
<script src="/app.js"></script>`;

/** The page ran its script and every image is in. */
const LOADED = "document.body.dataset.ready === 'yes' && [...document.images].every((i) => i.complete)";

describe.skipIf(!hasChromium)('headless Chromium over HTTP/2 at the reverse TLS listener', () => {
  beforeAll(async () => {
    origin = await startOrigin((req, res) => {
      const url = req.url!;
      res.setHeader('cache-control', url === '/' ? 'no-store' : 'max-age=300');
      if (url === '/') res.setHeader('content-type', 'text/html; charset=utf-8').end(PAGE);
      else if (url === '/style.css') res.setHeader('content-type', 'text/css').end('h1 { color: rgb(1, 2, 3); }');
      else if (url === '/app.js') res.setHeader('content-type', 'text/javascript').end('document.body.dataset.ready = "yes";');
      else res.setHeader('content-type', 'image/svg+xml').end('<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>');
    });
    const tls = await selfSignedCert();
    const { log, lines } = recordingLogger();
    logLines = lines;
    portico = await startPortico(
      {
        reverse: {
          tls_listen: '127.0.0.1:0',
          tls: { cert: tls.certPath, key: tls.keyPath },
          routes: [{ path: '/', pool: 'app' }],
        },
        pools: { app: { servers: [{ url: origin.url }] } },
        admin: { listen: '127.0.0.1:0' },
      },
      log,
    );
    const spki = createHash('sha256')
      .update(new X509Certificate(tls.cert).publicKey.export({ type: 'spki', format: 'der' }))
      .digest('base64');
    browser = await launchChromium([`--ignore-certificate-errors-spki-list=${spki}`]);
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await portico?.stop();
    await origin?.close();
  });

  it('loads a page and its subresources over h2, the second visit from the cache', async () => {
    const page = await browser.newPage();
    try {
      const response = await page.goto(`${portico.reverseTlsUrl}/`);
      expect(response?.status()).toBe(200);
      expect(await page.textContent('#msg')).toBe('hello over h2');
      // Page-side code as strings: the tests are type-checked without the DOM library.
      await page.waitForFunction(LOADED);
      expect(await page.evaluate("getComputedStyle(document.querySelector('h1')).color")).toBe('rgb(1, 2, 3)');
      const protocols = (await page.evaluate(
        "[performance.getEntriesByType('navigation')[0].nextHopProtocol, ...performance.getEntriesByType('resource').map((e) => e.nextHopProtocol)]",
      )) as string[];
      expect(protocols.length).toBeGreaterThanOrEqual(1 + 14);
      expect(new Set(protocols)).toEqual(new Set(['h2']));
      // A second browser context (no browser cache of its own): the subresources are Portico's hits.
      const context = await browser.newContext();
      const again = await context.newPage();
      await again.goto(`${portico.reverseTlsUrl}/`);
      await again.waitForFunction(LOADED);
      await context.close();
      expect(origin.count('/style.css')).toBe(1);
      expect(origin.count('/img/3.svg')).toBe(1);
      expect(origin.count('/')).toBe(2);
      const logged = logLines.filter((l) => l.msg === 'request' && l.url === '/style.css');
      expect(logged.map((l) => l.protocol)).toEqual(['HTTP/2.0', 'HTTP/2.0']);
      expect(logged.map((l) => l.cache)).toEqual(['miss', 'hit']);
    } finally {
      await page.close();
    }
  }, 30_000);

  it("shows the protocols' split on the dashboard", async () => {
    const page = await browser.newPage();
    try {
      await page.goto(`${portico.adminUrl}/`);
      const mix = page.locator('[data-testid="protocol-mix"]');
      await mix.locator('li[data-key="HTTP/2"] .v').filter({ hasText: /%/ }).waitFor();
      const text = (await mix.textContent()) ?? '';
      expect(text).toMatch(/HTTP\/1\.x/);
      expect(text).toMatch(/HTTP\/2\s*\d+ · 100%/);
    } finally {
      await page.close();
    }
  }, 30_000);
});
