/**
 * Headless Chromium for the browser tests: the Debian package (`apt-get install chromium`) driven by
 * playwright-core, never a downloaded browser. Playwright gives each launch a fresh profile of its own.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
export const hasChromium = existsSync(CHROMIUM);

/** What a root, offline, headless Chromium needs, plus no QUIC (every test server is TCP). */
const BASE_ARGS = ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic'];

/** Launches Chromium with the base flags and `args` (a proxy, a PAC URL, a certificate to trust…). */
export function launchChromium(args: readonly string[] = []): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: [...BASE_ARGS, ...args] });
}
