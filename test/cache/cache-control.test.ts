import { describe, expect, it } from 'vitest';
import { INVALID, parseCacheControl, parseTargetedCacheControl } from '../../src/cache/cache-control.js';
import { parseSfDictionary } from '../../src/cache/structured-field.js';

describe('parseCacheControl', () => {
  it.each([
    ['max-age=60', 'max-age', 60],
    ['MaX-AgE=60', 'max-age', 60],
    ['max-age="60"', 'max-age', 60],
    ['max-age=003600', 'max-age', 3600],
    ['max-age=99999999999', 'max-age', 2147483648],
    ['foobar, max-age=3600', 'max-age', 3600],
    ['extension="max-age=100", max-age=1', 'max-age', 1],
    ['max-age=1, extension="max-age=100, s-maxage=5"', 's-maxage', undefined],
    ['max-age=-1', 'max-age', Number.NaN],
    ['max-age=a100', 'max-age', Number.NaN],
    ['max-age=100a', 'max-age', Number.NaN],
    ['max-age=3600.0', 'max-age', Number.NaN],
    ["max-age='3600'", 'max-age', Number.NaN],
    ['max-age =100', 'max-age', Number.NaN],
    ['max-age= 100', 'max-age', Number.NaN],
    ['max-age', 'max-age', Number.NaN],
    ['max-age=1800, max-age=1', 'max-age', Number.NaN],
    ['max-age=60, max-age=60', 'max-age', 60],
    ['', 'max-age', undefined],
  ] as const)('%s → %s = %s', (value, name, expected) => {
    expect(parseCacheControl(value).seconds(name)).toEqual(expected);
  });

  it('reads several field lines and flags', () => {
    const cc = parseCacheControl(['no-store', 'Must-Revalidate, ,  public']);
    expect(cc.has('no-store')).toBe(true);
    expect(cc.has('must-revalidate')).toBe(true);
    expect(cc.has('public')).toBe(true);
    expect(cc.has('private')).toBe(false);
  });

  it('a malformed flag still counts (restrictive reading)', () => {
    expect(parseCacheControl('no-store =x').has('no-store')).toBe(true);
    expect(parseCacheControl('no-store="unterminated').argument('no-store')).toBe(INVALID);
  });

  it.each([
    ['no-cache', null],
    ['no-cache="Set-Cookie"', ['set-cookie']],
    ['no-cache="a, b"', ['a', 'b']],
    ['no-cache=a', ['a']],
    ['no-cache=""', null],
    ['no-cache="a", no-cache', null],
    ['private="x", max-age=1', ['x']],
  ] as const)('field names of %s', (value, expected) => {
    const cc = parseCacheControl(value);
    const name = value.startsWith('private') ? 'private' : 'no-cache';
    expect(cc.fieldNames(name)).toEqual(expected);
  });
});

describe('targeted fields (RFC 9213)', () => {
  it.each([
    ['max-age=3600', 'max-age', 3600],
    ['foobar, max-age=3600', 'max-age', 3600],
    ['max-age=99999999999', 'max-age', 2147483648],
    ['max-age="3600"', 'max-age', Number.NaN],
    ['max-age=3600.5', 'max-age', Number.NaN],
  ] as const)('%s → %s', (value, name, expected) => {
    expect(parseTargetedCacheControl(value)?.seconds(name)).toEqual(expected);
  });

  it.each(['max-age=10000, &&&&&', 'MaX-AgE=3600', 'max-age =100', '', '   '])('ignores the invalid field %j', (value) => {
    expect(parseTargetedCacheControl(value)).toBeNull();
  });

  it('reads flags and private lists', () => {
    const cc = parseTargetedCacheControl('no-store, private="set-cookie", must-revalidate=?0')!;
    expect(cc.has('no-store')).toBe(true);
    expect(cc.fieldNames('private')).toEqual(['set-cookie']);
    expect(cc.has('must-revalidate')).toBe(false);
  });
});

describe('parseSfDictionary', () => {
  it.each([
    ['a=1, b=?0, c, d="x\\"y", e=tok/en, f=:AQID:, g=(1 2);p=1, h=1.5', 8],
    ['a;x=1, b', 2],
  ])('parses %s', (value, size) => {
    expect(parseSfDictionary(value)?.size).toBe(size);
  });
  it.each(['A=1', 'a=1,', 'a=1 b=2', 'a="unterminated', 'a=1234567890123456', 'a=1.2345', 'a=?2'])('rejects %s', (value) => {
    expect(parseSfDictionary(value)).toBeNull();
  });
});
