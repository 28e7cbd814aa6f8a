import { describe, expect, it } from 'vitest';
import { RoundRobinPicker } from '../../src/balance/round-robin.js';
import { makeBackends, pickSequence, server, servers, setActive, tally } from './helpers.js';

describe('RoundRobinPicker', () => {
  it.each([
    { count: 3, picks: 30, expected: { 1: 10, 2: 10, 3: 10 } },
    { count: 2, picks: 10, expected: { 1: 5, 2: 5 } },
    { count: 1, picks: 4, expected: { 1: 4 } },
  ])('spreads $picks picks over $count backends evenly', ({ count, picks, expected }) => {
    const picker = new RoundRobinPicker(makeBackends(servers(count)));
    expect(tally(pickSequence(picker, picks))).toEqual(expected);
  });

  it('goes in order and ignores weights', () => {
    const picker = new RoundRobinPicker(makeBackends([server('http://10.0.0.1:3000', { weight: 5 }), server('http://10.0.0.2:3000')]));
    expect(pickSequence(picker, 6)).toEqual(['1', '2', '1', '2', '1', '2']);
  });

  it('keeps the rotation over the backends that are up', () => {
    const backends = makeBackends(servers(3));
    const picker = new RoundRobinPicker(backends);
    setActive(backends[1]!, false);
    expect(pickSequence(picker, 6)).toEqual(['1', '3', '1', '3', '1', '3']);
    setActive(backends[1]!, true);
    expect(tally(pickSequence(picker, 30))).toEqual({ 1: 10, 2: 10, 3: 10 });
  });
});
