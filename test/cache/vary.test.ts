import { describe, expect, it } from 'vitest';
import { parseVary, selectingValue, variantKey } from '../../src/cache/vary.js';

describe('Vary', () => {
  it.each([
    ['Accept-Encoding', ['accept-encoding']],
    ['accept-encoding, Accept-Encoding,  cookie', ['accept-encoding', 'cookie']],
    ['*', '*'],
    ['Foo, *', '*'],
    [['', '*'], '*'],
    [', *', '*'],
    ['', []],
    [undefined, []],
  ] as const)('parseVary(%j)', (value, expected) => {
    expect(parseVary(value as string | string[] | undefined)).toEqual(expected);
  });

  it.each([
    ['foo', { foo: ' 1, 2 ' }, '1,2'],
    ['foo', { foo: '1,2' }, '1,2'],
    ['foo', { foo: 'A  b' }, 'A b'],
    ['foo', {}, null],
    ['accept-language', { 'accept-language': 'eN, De' }, 'de,en'],
    ['accept-language', { 'accept-language': 'de;q=0.5, en' }, 'en,de;q=0.5'],
    ['accept-encoding', { 'accept-encoding': 'br, GZIP' }, 'br,gzip'],
  ] as const)('selectingValue(%s, %j)', (name, headers, expected) => {
    expect(selectingValue(name, headers)).toBe(expected);
  });

  it('keeps absent and empty apart in the variant key', () => {
    expect(variantKey(['a'], [null])).not.toBe(variantKey(['a'], ['']));
    expect(variantKey([], [])).toBe('');
  });
});
