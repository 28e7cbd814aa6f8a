/** Which URLs a Redis tier accepts (for the config schema), and that a refused one never reaches a connection. */
import { describe, expect, it } from 'vitest';
import { RedisTier } from '../../../src/cache/redis/redis-tier.js';
import { redisUrlProblem } from '../../../src/cache/redis/redis-url.js';
import { silentLogger } from '../../../src/core/log.js';

describe('redisUrlProblem', () => {
  it.each(['redis://127.0.0.1:6379', 'redis://cache', 'rediss://user:secret@cache.internal:6380/2', 'redis://[::1]:6379/', 'redis://:pw@h:1/15'])('accepts %s', (url) => {
    expect(redisUrlProblem(url)).toBeNull();
  });

  it.each([
    ['http://cache:6379', /redis:\/\/ or rediss:\/\//],
    ['cache:6379', /redis:\/\/ or rediss:\/\//],
    ['redis://', /host/],
    ['redis://h:99999', /URL like/],
    ['redis://h/db', /database number/],
    ['redis://h/1?x=1', /no query/],
    ['not a url', /URL like/],
  ])('refuses %s', (url, message) => {
    expect(redisUrlProblem(url)).toMatch(message);
  });

  it('is what the constructor checks', () => {
    expect(() => new RedisTier({ url: 'http://cache', maxObjectBytes: 1, log: silentLogger })).toThrow(/redis tier URL: expected redis/);
  });
});
