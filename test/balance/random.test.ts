import { describe, expect, it } from 'vitest';
import { RandomTwoChoicesPicker } from '../../src/balance/random.js';
import { makeBackends, pickSequence, server, servers, tally } from './helpers.js';

describe('RandomTwoChoicesPicker', () => {
  it('spreads idle load over every backend', () => {
    const counts = tally(pickSequence(new RandomTwoChoicesPicker(makeBackends(servers(3))), 3_000));
    for (const key of ['1', '2', '3']) expect(counts[key]).toBeGreaterThan(700);
  });

  it('of two random choices takes the one with fewer requests in flight', () => {
    const backends = makeBackends(servers(3));
    backends[0]!.inflight = 10;
    const counts = tally(pickSequence(new RandomTwoChoicesPicker(backends), 3_000));
    // Only picked when both draws land on it (1/9 of the time at most).
    expect(counts['1'] ?? 0).toBeLessThan(3_000 * 0.05);
  });

  it('draws in proportion to weight', () => {
    const backends = makeBackends([server('http://10.0.0.1:3000', { weight: 9 }), server('http://10.0.0.2:3000', { weight: 1 })]);
    const counts = tally(pickSequence(new RandomTwoChoicesPicker(backends), 2_000));
    expect(counts['1']).toBeGreaterThan(counts['2']!);
  });
});
