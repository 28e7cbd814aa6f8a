import type { IncomingHttpHeaders } from 'node:http';
import { describe, expect, it } from 'vitest';
import { headersFromRaw as headerMap } from '../../src/core/hop-by-hop.js';
import {
  ageValue,
  decideStorage,
  type FreshnessInfo,
  mayServeStaleOnError,
  type PolicyOptions,
  requestDirectives,
  reuseVerdict,
} from '../../src/cache/shared-cache-policy.js';

const NOW = Date.UTC(2026, 0, 1, 12);
const options: PolicyOptions = { targetedFields: ['cdn-cache-control'], heuristicMaxMs: 86_400_000, maxObjectSize: 1000 };
const date = (deltaSeconds: number) => new Date(NOW + deltaSeconds * 1000).toUTCString();

function decide(raw: string[], status = 200, requestHeaders: IncomingHttpHeaders = {}, method = 'GET') {
  return decideStorage(
      { method, status, requestHeaders, request: requestDirectives(requestHeaders), headers: headerMap(raw), rawHeaders: raw, requestTime: NOW, responseTime: NOW },
      options,
    );
}

function info(raw: string[], status = 200): FreshnessInfo {
  const d = decide(raw, status);
  if (!d.store) throw new Error(`not storable: ${d.detail}`);
  return d.info;
}

describe('storing (RFC 9111 §3)', () => {
  it.each([
    [['Cache-Control', 'no-store'], 200, {}, 'no-store'],
    [['Cache-Control', 'private, max-age=60'], 200, {}, 'private'],
    [['Cache-Control', 'max-age=60'], 200, { authorization: 'x' }, 'auth'],
    [['Cache-Control', 'max-age=60', 'Set-Cookie', 'a=b'], 200, {}, 'set-cookie'],
    [['Cache-Control', 'max-age=60', 'Vary', '*'], 200, {}, 'vary-star'],
    [[], 200, {}, 'no-freshness'],
    [['Last-Modified', date(-100)], 302, {}, 'no-freshness'],
    [['Cache-Control', 'max-age=60'], 206, {}, 'partial'],
    [['Cache-Control', 'max-age=60'], 304, {}, 'not-modified'],
    [['Cache-Control', 'max-age=60, no-store, must-understand'], 599, {}, 'must-understand'],
    [['Cache-Control', 'max-age=60, no-cache'], 200, {}, 'no-cache'],
    [['Cache-Control', 'max-age=60', 'Content-Length', '5000'], 200, {}, 'too-big'],
    [['Cache-Control', 'max-age=60'], 200, { 'cache-control': 'no-store' }, 'request-no-store'],
    [['CDN-Cache-Control', 'no-store', 'Cache-Control', 'max-age=60'], 200, {}, 'no-store'],
  ] as const)('%j (%i) is not stored: %s', (raw, status, req, detail) => {
    expect(decide([...raw], status, req)).toEqual({ store: false, detail });
  });

  it.each([
    [['Cache-Control', 'max-age=60'], 200, {}],
    [['Cache-Control', 'max-age=60'], 599, {}],
    [['Expires', date(60), 'Date', date(0)], 500, {}],
    [['ETag', '"a"'], 200, {}],
    [['Cache-Control', 'no-cache', 'ETag', '"a"'], 200, {}],
    [['Cache-Control', 'public, max-age=60'], 200, { authorization: 'x' }],
    [['Cache-Control', 'must-revalidate, max-age=60'], 200, { authorization: 'x' }],
    [['Cache-Control', 's-maxage=60'], 200, { authorization: 'x' }],
    [['Cache-Control', 'public, max-age=60', 'Set-Cookie', 'a=b'], 200, {}],
    [['Cache-Control', 'max-age=60, no-cache="set-cookie"', 'Set-Cookie', 'a=b'], 200, {}],
    [['Cache-Control', 'max-age=60, no-store, must-understand'], 200, {}],
    [['CDN-Cache-Control', 'max-age=60', 'Cache-Control', 'no-store'], 200, {}],
    [['Cache-Control', 'max-age=0, stale-if-error=60'], 200, {}],
  ] as const)('%j (%i) is stored', (raw, status, req) => {
    expect(decide([...raw], status, req).store).toBe(true);
  });

  it('leaves out fields named by private="…" and no-cache="…", and Set-Cookie', () => {
    const d = decide(['Cache-Control', 'max-age=60, private="x-user", no-cache="x-a, X-B"', 'Set-Cookie', 'a=b', 'Cache-Control', 'public']);
    expect(d.store && [...d.omit].filter((f) => f.startsWith('x-') || f === 'set-cookie').sort()).toEqual(['set-cookie', 'x-a', 'x-b', 'x-user']);
  });
});

describe('freshness (RFC 9111 §4.2)', () => {
  it.each([
    [['Cache-Control', 'max-age=60'], 60_000, false],
    [['Cache-Control', 'max-age=60, s-maxage=10'], 10_000, false],
    [['Cache-Control', 's-maxage=10, max-age=0', 'Expires', date(-10)], 10_000, false],
    [['Expires', date(100), 'Date', date(0)], 100_000, false],
    [['Expires', date(100), 'Date', date(50)], 50_000, false],
    [['Expires', '0', 'Date', date(0), 'ETag', '"a"'], 0, false],
    [['Cache-Control', 'max-age=60', 'Expires', '0'], 60_000, false],
    [['Cache-Control', 'max-age=abc', 'ETag', '"a"'], 0, false],
    [['Last-Modified', date(-1000), 'Date', date(0)], 100_000, true],
    [['Last-Modified', date(-100 * 86_400), 'Date', date(0)], 86_400_000, true],
    [['CDN-Cache-Control', 'max-age=5', 'Cache-Control', 'max-age=100'], 5_000, false],
  ] as const)('%j → lifetime %i ms', (raw, lifetime, heuristic) => {
    const i = info([...raw]);
    expect(i.lifetime).toBe(lifetime);
    expect(i.heuristic).toBe(heuristic);
  });

  it('computes the initial age from Age and Date (§4.2.3)', () => {
    expect(info(['Cache-Control', 'max-age=60', 'Age', '30']).correctedInitialAge).toBe(30_000);
    expect(info(['Cache-Control', 'max-age=6000', 'Date', date(-120)]).correctedInitialAge).toBe(120_000);
    expect(info(['Cache-Control', 'max-age=60', 'Date', 'garbage']).date).toBe(NOW);
  });

  it.each([
    [['Age', '30'], 30],
    [['Age', '0, 7200'], 0],
    [['Age', '7200, 0'], 7200],
    [['Age', '0', 'Age', '7200'], 0],
    [['Age', '7200;foo=bar'], 7200],
    [['Age', 'abc'], 0],
    [['Age', '-5'], 0],
    [['Age', '1.5'], 0],
    [['Age', '99999999999'], 2147483648],
    [[], 0],
  ] as const)('Age %j → %i s', (raw, expected) => {
    expect(ageValue(raw)).toBe(expected);
  });
});

describe('reuse (RFC 9111 §4.2.4, §5.2.1, RFC 5861)', () => {
  const at = (seconds: number) => NOW + seconds * 1000;
  const req = (cc?: string) => requestDirectives(cc === undefined ? {} : { 'cache-control': cc });

  it.each([
    ['max-age=60', undefined, 10, 'fresh'],
    ['max-age=60', undefined, 61, 'revalidate'],
    ['max-age=60, must-revalidate', undefined, 10, 'fresh'],
    ['max-age=60', 'no-cache', 10, 'revalidate-request'],
    ['max-age=60', 'max-age=0', 10, 'revalidate-request'],
    ['max-age=60', 'max-age=5', 10, 'revalidate-request'],
    ['max-age=60', 'max-age=30', 10, 'fresh'],
    ['max-age=60', 'min-fresh=55', 10, 'revalidate-request'],
    ['max-age=60', 'max-stale=100', 100, 'stale-allowed'],
    ['max-age=60', 'max-stale', 10_000, 'stale-allowed'],
    ['max-age=60, must-revalidate', 'max-stale=100', 100, 'revalidate'],
    ['max-age=60, proxy-revalidate', 'max-stale=100', 100, 'revalidate'],
    ['s-maxage=60', 'max-stale=100', 100, 'revalidate'],
    ['max-age=60, stale-while-revalidate=30', undefined, 80, 'stale-while-revalidate'],
    ['max-age=60, stale-while-revalidate=30', undefined, 100, 'revalidate'],
    ['max-age=60, stale-while-revalidate=30, must-revalidate', undefined, 80, 'revalidate'],
    ['max-age=60, stale-while-revalidate=30', 'max-age=0', 80, 'revalidate'],
  ] as const)('%s, request %s, at %is → %s', (cc, reqCc, seconds, verdict) => {
    expect(reuseVerdict(info(['Cache-Control', cc, 'ETag', '"a"']), req(reqCc), at(seconds))).toBe(verdict);
  });

  it('always revalidates a no-cache response', () => {
    expect(reuseVerdict(info(['Cache-Control', 'no-cache, max-age=60', 'ETag', '"a"']), req(), at(1))).toBe('revalidate');
  });

  it('honours Pragma: no-cache only without Cache-Control', () => {
    expect(requestDirectives({ pragma: 'no-cache' }).noCache).toBe(true);
    expect(requestDirectives({ pragma: 'no-cache', 'cache-control': 'max-stale' }).noCache).toBe(false);
    expect(requestDirectives({ pragma: 'foo' }).noCache).toBe(false);
  });

  it.each([
    ['max-age=60, stale-if-error=30', undefined, 80, true],
    ['max-age=60, stale-if-error=30', undefined, 100, false],
    ['max-age=60', 'stale-if-error=30', 80, true],
    ['max-age=60', 'stale-if-error=10', 80, false],
    ['max-age=60, stale-if-error=30, must-revalidate', undefined, 80, false],
    ['max-age=60, stale-if-error=30, no-cache', undefined, 80, false],
    ['max-age=60', undefined, 80, false],
    ['max-age=60', undefined, 10, true],
    ['max-age=60', 'no-cache', 10, false],
  ] as const)('stale-if-error: %s, request %s, at %is → %s', (cc, reqCc, seconds, allowed) => {
    expect(mayServeStaleOnError(info(['Cache-Control', cc, 'ETag', '"a"']), req(reqCc), at(seconds))).toBe(allowed);
  });
});
