/**
 * The one-word cache result the access log, /metrics and the dashboard show, read from the
 * Cache-Status member Portico put on the response (the table in src/observe/cache-result.ts).
 */
import { describe, expect, it } from 'vitest';
import { cacheStatus } from '../../src/cache/cache-status.js';
import { cacheResultOf } from '../../src/observe/cache-result.js';

const withStatus = (value: string) => ['Content-Type', 'text/plain', 'Cache-Status', value];

describe('cacheResultOf', () => {
  it.each([
    ['portico; hit; ttl=3589', 'hit'],
    ['portico; hit; ttl=-12', 'stale'],
    ['portico; hit; ttl=0', 'hit'],
    ['portico; hit; ttl=5; detail=redis', 'hit'],
    ['portico; hit; ttl=-3; detail=stale-while-revalidate', 'stale'],
    ['portico; fwd=uri-miss; fwd-status=200; stored', 'miss'],
    ['portico; fwd=miss; fwd-status=500; detail=stale-if-error', 'stale'],
    ['portico; fwd=stale; fwd-status=304; ttl=60', 'revalidated'],
    ['portico; fwd=request; fwd-status=304', 'revalidated'],
    ['portico; fwd=stale; fwd-status=200; stored', 'miss'],
    ['portico; fwd=request; fwd-status=200', 'bypass'],
    ['portico; fwd=method; fwd-status=201', 'bypass'],
    ['portico; fwd=bypass; detail=rule:no-api', 'bypass'],
    ['portico; fwd=uri-miss; collapsed; ttl=10', 'hit'],
    ['portico;hit;ttl=1', 'hit'],
    ['portico; fwd="stale"; fwd-status="304"', 'revalidated'],
    // Another cache's member before ours: ours is the one read.
    ['OriginCache; hit; ttl=100, portico; fwd=uri-miss; fwd-status=200', 'miss'],
  ])('%s → %s', (value, word) => {
    expect(cacheResultOf(withStatus(value), 'fallback')).toBe(word);
  });

  it('agrees with what cacheStatus() writes, for every combination the cache makes', () => {
    expect(cacheResultOf(withStatus(cacheStatus({ hit: true, ttl: 42 })), undefined)).toBe('hit');
    expect(cacheResultOf(withStatus(cacheStatus({ hit: true, ttl: -42 })), undefined)).toBe('stale');
    expect(cacheResultOf(withStatus(cacheStatus({ fwd: 'stale', fwdStatus: 304, ttl: 9 })), undefined)).toBe('revalidated');
    expect(cacheResultOf(withStatus(cacheStatus({ fwd: 'vary-miss', fwdStatus: 200, stored: true })), undefined)).toBe('miss');
    expect(cacheResultOf(withStatus(cacheStatus({ fwd: 'method', fwdStatus: 200 })), undefined)).toBe('bypass');
  });

  it('falls back when there is no member of ours', () => {
    expect(cacheResultOf(['Content-Type', 'text/plain'], 'local')).toBe('local');
    expect(cacheResultOf(withStatus('OriginCache; hit'), undefined)).toBeUndefined();
    expect(cacheResultOf(withStatus('notportico; hit'), 'none')).toBe('none');
  });
});
