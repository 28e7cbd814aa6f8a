import { describe, expect, it } from 'vitest';
import { cookieEquals, cookieValueEnd, cookieValueStart } from '../../src/balance/cookie.js';

function value(header: string, name: string): string | null {
  const start = cookieValueStart(header, name);
  return start < 0 ? null : header.slice(start, cookieValueEnd(header, start));
}

describe('cookie lookup', () => {
  it.each([
    { header: 'srv=abc', name: 'srv', expected: 'abc' },
    { header: 'a=1; srv=abc; b=2', name: 'srv', expected: 'abc' },
    { header: 'a=1;srv=abc', name: 'srv', expected: 'abc' },
    { header: 'a=1;  srv=abc  ', name: 'srv', expected: 'abc' },
    { header: 'srv="abc"', name: 'srv', expected: 'abc' },
    { header: 'srv=', name: 'srv', expected: '' },
    { header: 'xsrv=abc; srvx=def', name: 'srv', expected: null },
    { header: 'a=srv=abc', name: 'srv', expected: null },
    { header: '', name: 'srv', expected: null },
    { header: 'a=1; srv=first; srv=second', name: 'srv', expected: 'first' },
  ])('$header → $name = $expected', ({ header, name, expected }) => {
    expect(value(header, name)).toBe(expected);
  });

  it('compares a value', () => {
    expect(cookieEquals('a=1; srv=abc', 'srv', 'abc')).toBe(true);
    expect(cookieEquals('a=1; srv=abcd', 'srv', 'abc')).toBe(false);
    expect(cookieEquals('a=1', 'srv', 'abc')).toBe(false);
  });
});
