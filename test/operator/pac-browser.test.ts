/**
 * The README's PAC advice, in Chromium: with `--proxy-pac-url`, Chromium never sends loopback
 * (127.0.0.1, localhost) through the PAC file, whatever it says, so a PAC test must use a name that
 * is not loopback — such as the machine's own host name, which resolves to this machine.
 */
import { lookup } from 'node:dns/promises';
import { hostname } from 'node:os';
import type { Browser } from 'playwright-core';
import { CHROMIUM, hasChromium, launchChromium } from '../helpers/browser.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordingLogger, type LogLine } from '../balance/logs.js';
import { startOrigin, type Origin } from '../helpers/origin.js';
import { startPortico, type RunningPortico } from '../helpers/portico.js';

const name = hostname();
const resolvesLocally = await lookup(name).then(
  (a) => a.address.startsWith('127.'),
  () => false,
);
if (!hasChromium) console.warn(`PAC browser test skipped: ${CHROMIUM} is not installed (apt-get install chromium)`);
else if (!resolvesLocally) console.warn(`PAC browser test skipped: this machine's host name "${name}" does not resolve to a loopback address`);

let origin: Origin;
let portico: RunningPortico;
let browser: Browser;
let lines: LogLine[];

describe.skipIf(!hasChromium || !resolvesLocally)('Chromium with the PAC file', () => {
  beforeAll(async () => {
    origin = await startOrigin((req, res) => res.end(`hello ${req.url}`));
    const recording = recordingLogger();
    lines = recording.lines;
    portico = await startPortico({ forward: { listen: '127.0.0.1:0', upstream_proxy: 'direct' } }, recording.log);
    browser = await launchChromium([`--proxy-pac-url=${portico.forwardUrl}/proxy.pac`]);
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await portico?.stop();
    await origin?.close();
  });

  const throughProxy = (url: string) => lines.some((l) => l.msg === 'request' && l.door === 'forward' && l.url === url);

  it('sends a non-loopback name through the proxy, and never 127.0.0.1', async () => {
    const page = await browser.newPage();
    try {
      const viaName = `http://${name}:${origin.port}/by-name`;
      const r1 = await page.goto(viaName);
      expect(r1?.status()).toBe(200);
      expect(await page.textContent('body')).toBe('hello /by-name');
      expect(throughProxy(viaName)).toBe(true);

      const viaLoopback = `http://127.0.0.1:${origin.port}/by-address`;
      const r2 = await page.goto(viaLoopback);
      expect(r2?.status()).toBe(200);
      expect(throughProxy(viaLoopback)).toBe(false); // Chromium went straight there, PAC or not
      expect(origin.requests.find((r) => r.url === '/by-address')).toBeDefined();
    } finally {
      await page.close();
    }
  }, 30_000);
});
