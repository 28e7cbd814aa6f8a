import { describe, expect, it } from 'vitest';
import { LeastConnectionsPicker } from '../../src/balance/least-connections.js';
import { label, makeBackends, pickSequence, request, server, servers, tally } from './helpers.js';

describe('LeastConnectionsPicker', () => {
  it.each([
    { inflight: [5, 0, 0], picks: 10, never: '1' },
    { inflight: [0, 7, 0], picks: 10, never: '2' },
    { inflight: [3, 3, 1], picks: 1, never: '1' },
  ])('with inflight $inflight avoids the busy backend', ({ inflight, picks, never }) => {
    const backends = makeBackends(servers(3));
    backends.forEach((b, i) => (b.inflight = inflight[i]!));
    const picker = new LeastConnectionsPicker(backends);
    expect(pickSequence(picker, picks)).not.toContain(never);
  });

  it('sends each request to the least loaded backend as load builds up', () => {
    const backends = makeBackends(servers(3));
    const picker = new LeastConnectionsPicker(backends);
    backends[0]!.inflight = 1; // holds a slow request
    const first = picker.pick(request(), null)!;
    expect(first).not.toBe(backends[0]);
    first.inflight++;
    for (let i = 0; i < 4; i++) picker.pick(request(), null)!.inflight++;
    expect(backends.map((b) => b.inflight)).toEqual([2, 2, 2]);
  });

  it('breaks ties in rotation', () => {
    const picker = new LeastConnectionsPicker(makeBackends(servers(3)));
    expect(pickSequence(picker, 6)).toEqual(['1', '2', '3', '1', '2', '3']);
  });

  it('weighs in-flight requests by weight', () => {
    const backends = makeBackends([server('http://10.0.0.1:3000', { weight: 4 }), server('http://10.0.0.2:3000', { weight: 1 })]);
    const picker = new LeastConnectionsPicker(backends);
    const picks: string[] = [];
    for (let i = 0; i < 10; i++) {
      const b = picker.pick(request(), null)!;
      b.inflight++;
      picks.push(label(b));
    }
    expect(tally(picks)).toEqual({ 1: 8, 2: 2 });
  });
});
