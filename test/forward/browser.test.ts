/**
 * A real browser using Portico as its proxy: headless Chromium (Debian package `chromium`) loads an
 * HTTP page and an HTTPS page (CONNECT, self-signed certificate accepted) through the forward proxy,
 * sees the block page for a blocked site, and the origins see the requests come through the proxy.
 */
import type { Browser } from 'playwright-core';
import { CHROMIUM, hasChromium, launchChromium } from '../helpers/browser.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/http.js';
import { startOrigin, type Origin } from '../helpers/origin.js';
import { startPortico, type RunningPortico } from '../helpers/portico.js';
import { startHttpsOrigin, type HttpsOrigin } from './helpers.js';
import { recordingLogger, type LogLine } from '../balance/logs.js';

if (!hasChromium) console.warn(`browser test skipped: ${CHROMIUM} is not installed (apt-get install chromium)`);

let origin: Origin;
let secure: HttpsOrigin;
let portico: RunningPortico;
let browser: Browser;
let logLines: LogLine[] = [];

describe.skipIf(!hasChromium)('headless Chromium through the forward proxy', () => {
  beforeAll(async () => {
    origin = await startOrigin((req, res) => {
      res.setHeader('content-type', 'text/html; charset=utf-8');
      res.end(`<!doctype html><title>plain</title><h1 id="msg">hello over http ${req.url}</h1>`);
    });
    secure = await startHttpsOrigin('hello over https');
    const { log, lines } = recordingLogger();
    logLines = lines;
    portico = await startPortico(
      {
        forward: {
          listen: '127.0.0.1:0',
          upstream_proxy: 'direct',
          connect_ports: [443, secure.port],
          rules: [{ name: 'no-blocked-example', action: 'deny', host: ['blocked.example', '*.blocked.example'] }],
        },
      },
      log,
    );
    const port = new URL(portico.forwardUrl!).port;
    browser = await launchChromium([`--proxy-server=http://127.0.0.1:${port}`, '--proxy-bypass-list=<-loopback>', '--ignore-certificate-errors']);
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await portico?.stop();
    await Promise.all([origin?.close(), secure?.close()]);
  });

  it('loads an HTTP page through the proxy', async () => {
    const page = await browser.newPage();
    try {
      const response = await page.goto(`${origin.url}/plain-page`);
      expect(response?.status()).toBe(200);
      expect(await page.textContent('#msg')).toBe('hello over http /plain-page');
      const seen = origin.requests.find((r) => r.url === '/plain-page');
      expect(seen).toBeDefined();
      // It came through the proxy: the proxy logged it, and removed the browser's Proxy-Connection.
      expect(seen!.headers['proxy-connection']).toBeUndefined();
      expect(logLines.some((l) => l.msg === 'request' && l.door === 'forward' && l.url === `${origin.url}/plain-page` && l.status === 200)).toBe(true);
    } finally {
      await page.close();
    }
  }, 30_000);

  it('loads an HTTPS page through a CONNECT tunnel (self-signed certificate accepted)', async () => {
    const page = await browser.newPage();
    try {
      const response = await page.goto(`${secure.url}/secure-page`);
      expect(response?.status()).toBe(200);
      expect(await page.textContent('#msg')).toBe('hello over https');
      expect(secure.paths).toContain('/secure-page');
    } finally {
      await page.close();
    }
  }, 30_000);

  it('shows the block page for a blocked site', async () => {
    const page = await browser.newPage();
    try {
      const response = await page.goto('http://www.blocked.example/some/page');
      expect(response?.status()).toBe(403);
      expect(await page.textContent('h1')).toBe('Blocked by policy');
      expect(await page.textContent('body')).toContain('"no-blocked-example" (forward.rules[0])');
    } finally {
      await page.close();
    }
  }, 30_000);

  it('the proxy saw the CONNECT tunnel', async () => {
    // Chromium keeps tunnels open; closing the browser ends them and the proxy logs each one.
    await browser.close();
    await waitFor(() => logLines.some((l) => l.method === 'CONNECT' && l.url === `127.0.0.1:${secure.port}`), 5_000, 'the tunnel log line');
    expect(logLines.some((l) => l.method === 'CONNECT' && l.url === `127.0.0.1:${secure.port}` && l.status === 200)).toBe(true);
  }, 30_000);
});
