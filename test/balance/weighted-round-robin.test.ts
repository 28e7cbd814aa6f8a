import { describe, expect, it } from 'vitest';
import { WeightedRoundRobinPicker } from '../../src/balance/weighted-round-robin.js';
import { longestRun, makeBackends, pickSequence, server, setActive, tally } from './helpers.js';

function weighted(...weights: number[]) {
  return makeBackends(weights.map((weight, i) => server(`http://10.0.0.${i + 1}:3000`, { weight })));
}

describe('WeightedRoundRobinPicker (smooth)', () => {
  it.each([
    { weights: [5, 3, 2], picks: 100, expected: { 1: 50, 2: 30, 3: 20 }, maxRun: 2 },
    { weights: [1, 1, 1], picks: 30, expected: { 1: 10, 2: 10, 3: 10 }, maxRun: 1 },
    { weights: [5, 1, 1], picks: 70, expected: { 1: 50, 2: 10, 3: 10 }, maxRun: 4 },
    { weights: [2, 1], picks: 30, expected: { 1: 20, 2: 10 }, maxRun: 2 },
  ])('weights $weights give $expected of $picks, at most $maxRun in a row', ({ weights, picks, expected, maxRun }) => {
    const picker = new WeightedRoundRobinPicker(weighted(...weights));
    const sequence = pickSequence(picker, picks);
    expect(tally(sequence)).toEqual(expected);
    expect(longestRun(sequence)).toBeLessThanOrEqual(maxRun);
  });

  it('5:3:2 gives exactly 50/30/20 in every window of 100, interleaved', () => {
    const picker = new WeightedRoundRobinPicker(weighted(5, 3, 2));
    for (let window = 0; window < 5; window++) {
      const sequence = pickSequence(picker, 100);
      expect(tally(sequence)).toEqual({ 1: 50, 2: 30, 3: 20 });
      expect(longestRun(sequence)).toBeLessThanOrEqual(2);
    }
    expect(pickSequence(new WeightedRoundRobinPicker(weighted(5, 3, 2)), 10)).toEqual(['1', '2', '3', '1', '1', '2', '1', '3', '2', '1']);
  });

  it('shares the load among the backends that are up', () => {
    const backends = weighted(5, 3, 2);
    setActive(backends[0]!, false);
    expect(tally(pickSequence(new WeightedRoundRobinPicker(backends), 50))).toEqual({ 2: 30, 3: 20 });
  });
});
