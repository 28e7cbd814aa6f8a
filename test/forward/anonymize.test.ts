/** What the origin learns about the client: nothing by default; Squid-like Via/X-Forwarded-For when anonymize is off. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STRICT_ACCEPT_LANGUAGE, STRICT_USER_AGENT } from '../../src/policy/header-policy.js';
import { startOrigin, type Origin } from '../helpers/origin.js';
import { viaProxy } from '../helpers/http.js';
import { startForward, type RunningForward } from './helpers.js';

let origin: Origin;
let anonymous: RunningForward;
let strict: RunningForward;
let open: RunningForward;

const IDENTIFYING = {
  'x-forwarded-for': '203.0.113.7',
  forwarded: 'for=203.0.113.7;proto=http',
  via: '1.1 corporate-proxy',
  'x-real-ip': '203.0.113.7',
  from: 'alice@example.com',
  'client-ip': '203.0.113.7',
  'true-client-ip': '203.0.113.7',
  'x-forwarded-host': 'intranet.example',
  'proxy-authorization': 'Basic YWxpY2U6c2VjcmV0',
};

async function seen(proxy: RunningForward, headers: Record<string, string>, path = '/echo'): Promise<Record<string, string>> {
  const r = await viaProxy(proxy.url, `${origin.url}${path}`, { headers });
  expect(r.status).toBe(200);
  return JSON.parse(r.body) as Record<string, string>;
}

beforeAll(async () => {
  origin = await startOrigin((req, res) => res.end(JSON.stringify(req.headers)));
  [anonymous, strict, open] = await Promise.all([startForward(), startForward({ anonymize: 'strict' }), startForward({ anonymize: false })]);
});

afterAll(async () => {
  await Promise.all([anonymous.close(), strict.close(), open.close()]);
  await origin.close();
});

describe('anonymize: true (default)', () => {
  it('the origin sees none of X-Forwarded-For, Forwarded, Via, X-Real-IP, From or other client-address headers, even when the client sent them', async () => {
    const h = await seen(anonymous, { ...IDENTIFYING, 'user-agent': 'MyBrowser/1.0', 'accept-language': 'de-CH' });
    for (const name of Object.keys(IDENTIFYING)) expect(h[name], name).toBeUndefined();
    expect(JSON.stringify(h)).not.toContain('203.0.113.7');
    expect(h['user-agent']).toBe('MyBrowser/1.0');
    expect(h['accept-language']).toBe('de-CH');
  });

  it('adds nothing of its own', async () => {
    const h = await seen(anonymous, {});
    expect(h.via).toBeUndefined();
    expect(h['x-forwarded-for']).toBeUndefined();
    expect(h.forwarded).toBeUndefined();
  });
});

describe("anonymize: 'strict'", () => {
  it('also normalises User-Agent and Accept-Language', async () => {
    const h = await seen(strict, { ...IDENTIFYING, 'user-agent': 'curl/8.0 (rare build)', 'accept-language': 'rm-CH' });
    for (const name of Object.keys(IDENTIFYING)) expect(h[name], name).toBeUndefined();
    expect(h['user-agent']).toBe(STRICT_USER_AGENT);
    expect(h['accept-language']).toBe(STRICT_ACCEPT_LANGUAGE);
  });

  it('trims a cross-origin Referer to its origin and keeps a same-origin one', async () => {
    const cross = await seen(strict, { referer: 'https://search.example/results?q=private+thing' });
    expect(cross.referer).toBe('https://search.example/');
    const same = await seen(strict, { referer: `${origin.url}/previous?page=2` });
    expect(same.referer).toBe(`${origin.url}/previous?page=2`);
  });
});

describe('anonymize: false', () => {
  it('appends Via and the client address to X-Forwarded-For, like Squid', async () => {
    const h = await seen(open, { 'x-forwarded-for': '198.51.100.1', via: '1.0 upstream' });
    expect(h['x-forwarded-for']).toBe('198.51.100.1, 127.0.0.1');
    expect(h.via).toMatch(/^1\.0 upstream, 1\.1 portico-[0-9a-f]+$/);
    const fresh = await seen(open, {});
    expect(fresh['x-forwarded-for']).toBe('127.0.0.1');
  });

  it('still never forwards the proxy credentials', async () => {
    const h = await seen(open, { 'proxy-authorization': 'Basic YWxpY2U6c2VjcmV0' });
    expect(h['proxy-authorization']).toBeUndefined();
  });
});
