import { describe, expect, it } from 'vitest';
import { LeastTimePicker } from '../../src/balance/least-time.js';
import { label, makeBackends, pickSequence, request, servers } from './helpers.js';

describe('LeastTimePicker', () => {
  it('tries backends without a latency sample first', () => {
    const backends = makeBackends(servers(3));
    backends[0]!.recordLatency(5);
    backends[2]!.recordLatency(1);
    expect(label(new LeastTimePicker(backends).pick(request(), null))).toBe('2');
  });

  it('prefers the fastest backend', () => {
    const backends = makeBackends(servers(3));
    [50, 10, 100].forEach((ms, i) => backends[i]!.recordLatency(ms));
    expect(pickSequence(new LeastTimePicker(backends), 5)).toEqual(['2', '2', '2', '2', '2']);
  });

  it('combines latency with in-flight requests', () => {
    const backends = makeBackends(servers(2));
    backends[0]!.recordLatency(10);
    backends[1]!.recordLatency(30);
    const picker = new LeastTimePicker(backends);
    const picks: string[] = [];
    for (let i = 0; i < 8; i++) {
      const b = picker.pick(request(), null)!;
      b.inflight++;
      picks.push(label(b));
    }
    // 10×(n+1) vs 30×(m+1): the fast one takes about three times as many.
    expect(picks.filter((p) => p === '1').length).toBe(6);
  });

  it('follows the latency as it changes (EWMA)', () => {
    const backends = makeBackends(servers(2));
    backends[0]!.recordLatency(10);
    backends[1]!.recordLatency(20);
    const picker = new LeastTimePicker(backends);
    expect(label(picker.pick(request(), null))).toBe('1');
    for (let i = 0; i < 10; i++) backends[0]!.recordLatency(200);
    expect(backends[0]!.latencyEwmaMs).toBeGreaterThan(150);
    expect(label(picker.pick(request(), null))).toBe('2');
  });
});
