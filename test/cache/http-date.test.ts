import { describe, expect, it } from 'vitest';
import { parseHttpDate } from '../../src/cache/http-date.js';

const T = Date.UTC(1994, 10, 6, 8, 49, 37);

describe('parseHttpDate', () => {
  it.each([
    ['Sun, 06 Nov 1994 08:49:37 GMT', T],
    ['Sunday, 06-Nov-94 08:49:37 GMT', T],
    ['Sun Nov  6 08:49:37 1994', T],
    ['SUN, 06 NOV 1994 08:49:37 gmt', T],
    ['Thu, 18 Aug 2050 02:01:18 GMT', Date.UTC(2050, 7, 18, 2, 1, 18)],
  ])('%s', (value, expected) => {
    expect(parseHttpDate(value)).toBe(expected);
  });

  it.each([
    '0',
    '',
    'foo',
    'Thu, 18 Aug 2050 02:01:18 UTC',
    'Thu, 18 Aug 50 02:01:18 GMT',
    'Thu 18 Aug 2050 02:01:18 GMT',
    'Thu, 18  Aug  2050 02:01:18 GMT',
    'Thu, 18-Aug-2050 02:01:18 GMT',
    'Thu, 18 Aug 2050 02.01.18 GMT',
    'Thu, 18 Aug 2050 2:01:18 GMT',
    'Thu, 31 Feb 2050 02:01:18 GMT',
  ])('rejects %j', (value) => {
    expect(parseHttpDate(value)).toBeNull();
  });
});
