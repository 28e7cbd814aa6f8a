import { describe, expect, it } from 'vitest';
import { cacheKeyFromUrl, cacheKeyUrl } from '../../src/cache/cache-key.js';

describe('cacheKeyUrl', () => {
  it.each([
    [['http', 'Example.COM', '/a?b=1'], 'http://example.com/a?b=1'],
    [['HTTP', 'example.com:80', '/'], 'http://example.com/'],
    [['https', 'example.com:443', '/x'], 'https://example.com/x'],
    [['http', 'example.com:8080', '/x'], 'http://example.com:8080/x'],
    [['https', 'example.com:80', '/x'], 'https://example.com:80/x'],
    [['http', '[::1]:80', '/x'], 'http://[::1]/x'],
    [['http', '[::1]:81', '/x'], 'http://[::1]:81/x'],
    [['http', 'h', '/%7euser/%41%2f%2F%3a'], 'http://h/~user/A%2F%2F%3A'],
    [['http', 'h', '/100%'], 'http://h/100%'],
    [['http', 'h', '/%zz'], 'http://h/%zz'],
    [['http', 'h', ''], 'http://h/'],
  ] as const)('%j → %s', ([scheme, host, path], expected) => {
    expect(cacheKeyUrl(scheme, host, path)).toBe(expected);
  });

  it('resolves URLs and relative references', () => {
    expect(cacheKeyFromUrl('HTTP://A.example:80/p')).toBe('http://a.example/p');
    expect(cacheKeyFromUrl('../q?x', 'http://h/a/b')).toBe('http://h/q?x');
    expect(cacheKeyFromUrl('ftp://h/x')).toBeNull();
    expect(cacheKeyFromUrl('not a url')).toBeNull();
  });
});
