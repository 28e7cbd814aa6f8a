import { describe, expect, it } from 'vitest';
import { HealthRegistry } from '../../src/balance/health-registry.js';
import { recordingLogger } from './logs.js';

const passive = { maxFails: 2, failTimeoutMs: 1_000 };

function setup() {
  const { log, lines } = recordingLogger();
  const registry = new HealthRegistry();
  const health = registry.get('http://10.0.0.1:3000/');
  const reporter = { log, pool: 'web', backend: 'http://10.0.0.1:3000/' };
  return { registry, health, reporter, lines };
}

describe('HealthRegistry', () => {
  it('starts backends up and keeps one state per address', () => {
    const registry = new HealthRegistry();
    const a = registry.get('http://a/');
    expect(a.activeUp).toBe(true);
    expect(registry.get('http://a/')).toBe(a);
    expect(registry.get('http://b/')).not.toBe(a);
    registry.retainOnly(['http://b/']);
    expect(registry.has('http://a/')).toBe(false);
    expect(registry.size).toBe(1);
  });

  it('goes down after `fall` failed checks and up after `rise` passed checks, logging each change once', () => {
    const { health, reporter, lines } = setup();
    const check = (ok: boolean) => health.recordCheck(ok, ok ? 'status 200' : 'status 500', 2, 3, 1, reporter);
    expect([check(false), check(false)]).toEqual([null, null]);
    expect(health.activeUp).toBe(true);
    expect(check(false)).toBe('down');
    expect([check(false), check(false)]).toEqual([null, null]);
    expect(check(true)).toBeNull();
    expect(check(false)).toBeNull(); // a failure resets the run of successes
    expect([check(true), check(true)]).toEqual([null, 'up']);
    expect(check(true)).toBeNull();
    expect(lines.map((l) => [l.msg, l.level])).toEqual([
      ['backend down', 40],
      ['backend up', 30],
    ]);
    expect(lines[0]).toMatchObject({ pool: 'web', backend: 'http://10.0.0.1:3000/', reason: expect.stringContaining('status 500') });
  });

  it('logs a passive failure once, and the recovery once', () => {
    const { health, reporter, lines } = setup();
    health.recordFailure(0, passive, 'reset', reporter);
    health.recordFailure(10, passive, 'reset', reporter);
    expect(health.isPassivelyOut(10)).toBe(true);
    health.recordFailure(20, passive, 'reset', reporter); // in flight when it went out
    health.recordFailure(1_100, passive, 'reset', reporter); // probation failure: out again, not a new change
    expect(health.isPassivelyOut(1_500)).toBe(true);
    health.recordSuccess(2_200, reporter);
    expect(health.isPassivelyOut(2_200)).toBe(false);
    health.recordSuccess(2_300, reporter);
    expect(lines.map((l) => l.msg)).toEqual(['backend down', 'backend up']);
    expect(lines[0]!.reason).toMatch(/2 failed requests within 1s/);
  });

  it('logs drain and enable once each', () => {
    const { health, reporter, lines } = setup();
    expect(health.setDrained(true, reporter)).toBe(true);
    expect(health.setDrained(true, reporter)).toBe(false);
    expect(health.setDrained(false, reporter)).toBe(true);
    expect(lines.map((l) => l.msg)).toEqual(['backend drained', 'backend enabled']);
  });
});
