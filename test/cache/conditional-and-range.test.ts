import { describe, expect, it } from 'vitest';
import { evaluateRange } from '../../src/cache/byte-range.js';
import { notModified, parseEntityTagList, validatorsIdentify } from '../../src/cache/conditional-request.js';
import type { FreshnessInfo } from '../../src/cache/shared-cache-policy.js';

const LM = 'Wed, 01 Jan 2020 00:00:00 GMT';
const info = (etag: string | null, lastModified: string | null = LM): FreshnessInfo => ({
  correctedInitialAge: 0,
  responseTime: Date.UTC(2020, 0, 2),
  lifetime: 1000,
  heuristic: false,
  alwaysRevalidate: false,
  noStale: false,
  staleWhileRevalidate: 0,
  staleIfError: 0,
  etag,
  lastModified,
  date: Date.UTC(2020, 0, 2),
});

describe('client conditionals against a stored response', () => {
  it.each([
    [{ 'if-none-match': '"a"' }, '"a"', true],
    [{ 'if-none-match': 'W/"a"' }, '"a"', true],
    [{ 'if-none-match': '"b", "a"' }, 'W/"a"', true],
    [{ 'if-none-match': '*' }, '"a"', true],
    [{ 'if-none-match': '"b"' }, '"a"', false],
    [{ 'if-none-match': '"b"', 'if-modified-since': 'Thu, 02 Jan 2020 00:00:00 GMT' }, '"a"', false],
    [{ 'if-modified-since': 'Thu, 02 Jan 2020 00:00:00 GMT' }, '"a"', true],
    [{ 'if-modified-since': LM }, null, true],
    [{ 'if-modified-since': 'Tue, 31 Dec 2019 00:00:00 GMT' }, null, false],
    [{ 'if-modified-since': 'garbage' }, null, false],
  ] as const)('%j vs ETag %s → %s', (headers, etag, expected) => {
    expect(notModified(headers, info(etag))).toBe(expected);
  });

  it('parses entity-tag lists with commas inside quotes', () => {
    expect(parseEntityTagList('"a,b", W/"c"')).toEqual([
      { weak: false, opaque: 'a,b' },
      { weak: true, opaque: 'c' },
    ]);
  });

  it('identifies the stored response a 304 is about (RFC 9111 §4.3.4)', () => {
    expect(validatorsIdentify({ etag: '"a"' }, info('"a"'))).toBe(true);
    expect(validatorsIdentify({ etag: '"b"' }, info('"a"'))).toBe(false);
    expect(validatorsIdentify({ etag: 'W/"a"' }, info('"a"'))).toBe(true);
    expect(validatorsIdentify({ 'last-modified': LM }, info(null))).toBe(true);
    expect(validatorsIdentify({ 'last-modified': 'Thu, 02 Jan 2020 00:00:00 GMT' }, info(null))).toBe(false);
    expect(validatorsIdentify({}, info('"a"'))).toBe(true);
  });
});

describe('Range from a stored response', () => {
  it.each([
    ['bytes=0-1', { kind: 'partial', start: 0, end: 1 }],
    ['bytes=2-', { kind: 'partial', start: 2, end: 9 }],
    ['bytes=-3', { kind: 'partial', start: 7, end: 9 }],
    ['bytes=-30', { kind: 'partial', start: 0, end: 9 }],
    ['bytes=5-100', { kind: 'partial', start: 5, end: 9 }],
    ['bytes=10-', { kind: 'unsatisfiable' }],
    ['bytes=-0', { kind: 'unsatisfiable' }],
    ['bytes=5-2', { kind: 'full' }],
    ['bytes=0-1,3-4', { kind: 'full' }],
    ['items=0-1', { kind: 'full' }],
  ] as const)('%s', (range, expected) => {
    expect(evaluateRange({ range }, 10, info('"a"'))).toEqual(expected);
  });

  it('honours If-Range', () => {
    expect(evaluateRange({ range: 'bytes=0-1', 'if-range': '"a"' }, 10, info('"a"')).kind).toBe('partial');
    expect(evaluateRange({ range: 'bytes=0-1', 'if-range': 'W/"a"' }, 10, info('W/"a"')).kind).toBe('full');
    expect(evaluateRange({ range: 'bytes=0-1', 'if-range': '"b"' }, 10, info('"a"')).kind).toBe('full');
    expect(evaluateRange({ range: 'bytes=0-1', 'if-range': LM }, 10, info(null)).kind).toBe('partial');
    expect(evaluateRange({ range: 'bytes=0-1', 'if-range': 'Thu, 02 Jan 2020 00:00:00 GMT' }, 10, info(null)).kind).toBe('full');
  });
});
