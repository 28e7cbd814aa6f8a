/** The rule engine, table-driven with an injected clock: host forms, hosts files, UA, client, port, method, user, time and days. */
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/errors.js';
import { RuleSet, type RuleRequest, type RuleSpec } from '../../src/policy/rules.js';

const base: RuleRequest = { host: 'www.example.com', port: 80, method: 'GET', clientAddress: '127.0.0.1', userAgent: 'Mozilla/5.0', user: undefined };
const req = (over: Partial<RuleRequest>): RuleRequest => ({ ...base, ...over });
const at = (y: number, m: number, d: number, h: number, min: number) => () => new Date(y, m - 1, d, h, min);

function firstMatch(rules: RuleSpec[], request: RuleRequest, now = at(2025, 6, 11, 10, 30)): string | null {
  const verdict = new RuleSet(rules, { now, readFile: (p) => FILES[p] ?? (() => { throw Object.assign(new Error('nope'), { code: 'ENOENT' }); })() }).evaluate(request);
  return verdict === null ? null : `${verdict.action}:${verdict.label}`;
}

const FILES: Record<string, string> = {
  'list.txt': ['# comment', '0.0.0.0 localhost', '0.0.0.0 ads.example', ':: v6.example', '||adblock.example^', '*.wild.example', '.dotted.example', 'plain.example # trailing', 'not a valid line', ''].join('\n'),
  'empty.txt': '# nothing here\n',
};

describe('host patterns', () => {
  const rules: RuleSpec[] = [
    { name: 'exact', action: 'deny', host: ['exact.example'] },
    { name: 'wild', action: 'deny', host: ['*.wild.example'] },
    { name: 'dot', action: 'deny', host: ['.dot.example'] },
    { name: 're', action: 'deny', host: ['/^ads?[0-9]*\\./'] },
    { name: 'ip', action: 'deny', host: ['10.1.2.3', '::1'] },
  ];
  it.each([
    ['exact.example', 'deny:"exact" (forward.rules[0])'],
    ['sub.exact.example', null],
    ['wild.example', null],
    ['a.wild.example', 'deny:"wild" (forward.rules[1])'],
    ['a.b.c.wild.example', 'deny:"wild" (forward.rules[1])'],
    ['notwild.example', null],
    ['dot.example', 'deny:"dot" (forward.rules[2])'],
    ['x.y.dot.example', 'deny:"dot" (forward.rules[2])'],
    ['ad7.tracker.net', 'deny:"re" (forward.rules[3])'],
    ['bad7.tracker.net', null],
    ['10.1.2.3', 'deny:"ip" (forward.rules[4])'],
    ['::1', 'deny:"ip" (forward.rules[4])'],
  ])('%s → %s', (host, expected) => {
    expect(firstMatch(rules, req({ host }))).toBe(expected);
  });

  it('a regex is case-insensitive', () => {
    expect(firstMatch([{ action: 'deny', host: ['/EXAMPLE/'] }], req({ host: 'www.example.com' }))).toBe('deny:forward.rules[0]');
  });
});

describe('hosts_file', () => {
  const rules: RuleSpec[] = [{ name: 'list', action: 'deny', hosts_file: 'list.txt' }];
  it.each([
    ['ads.example', true],
    ['deep.sub.ads.example', true],
    ['v6.example', true],
    ['adblock.example', true],
    ['wild.example', false],
    ['x.wild.example', true],
    ['dotted.example', true],
    ['plain.example', true],
    ['localhost', false],
    ['example', false],
    ['notads.example', false],
  ])('%s blocked: %s', (host, blocked) => {
    expect(firstMatch(rules, req({ host })) !== null).toBe(blocked);
  });

  it('reports skipped lines as a warning, not an error', () => {
    const set = new RuleSet(rules, { readFile: (p) => FILES[p]! });
    expect(set.warnings).toHaveLength(1);
    expect(set.warnings[0]!.message).toMatch(/skipped 1 line.*line 9: "not a valid line"/);
  });

  it('matches in constant time per label: 100,000 entries', () => {
    const big = Array.from({ length: 100_000 }, (_, i) => `0.0.0.0 host${i}.blocklist.example`).join('\n');
    const set = new RuleSet([{ action: 'deny', hosts_file: 'big' }], { readFile: () => big });
    expect(set.evaluate(req({ host: 'cdn.host99999.blocklist.example' }))).not.toBeNull();
    expect(set.evaluate(req({ host: 'host100000.blocklist.example' }))).toBeNull();
  });
});

describe('other conditions', () => {
  it.each<[string, RuleSpec, Partial<RuleRequest>, boolean]>([
    ['user_agent regex, case-insensitive', { action: 'deny', user_agent: 'curl|wget' }, { userAgent: 'Wget/1.21' }, true],
    ['user_agent absent', { action: 'deny', user_agent: '.*' }, { userAgent: undefined }, false],
    ['client CIDR in', { action: 'deny', client: ['10.0.0.0/8'] }, { clientAddress: '10.9.8.7' }, true],
    ['client CIDR out', { action: 'deny', client: ['10.0.0.0/8'] }, { clientAddress: '11.0.0.1' }, false],
    ['client v6', { action: 'deny', client: ['fd00::/8'] }, { clientAddress: 'fd12::1' }, true],
    ['port', { action: 'deny', port: [8080, 8443] }, { port: 8443 }, true],
    ['port other', { action: 'deny', port: [8080] }, { port: 80 }, false],
    ['method (any case in config)', { action: 'deny', method: ['post', 'CONNECT'] }, { method: 'POST' }, true],
    ['method other', { action: 'deny', method: ['POST'] }, { method: 'GET' }, false],
    ['user', { action: 'deny', user: ['bob'] }, { user: 'bob' }, true],
    ['user other', { action: 'deny', user: ['bob'] }, { user: 'alice' }, false],
    ['user when nobody authenticated', { action: 'deny', user: ['bob'] }, { user: undefined }, false],
    ['all conditions must match', { action: 'deny', host: ['www.example.com'], port: [443] }, { port: 80 }, false],
    ['no conditions match everything', { action: 'deny' }, {}, true],
  ])('%s', (_name, rule, over, matches) => {
    expect(firstMatch([rule], req(over)) !== null).toBe(matches);
  });

  it('first match wins; default allow', () => {
    const rules: RuleSpec[] = [
      { action: 'allow', host: ['ok.example'] },
      { action: 'deny', host: ['.example'] },
      { action: 'deny', host: ['other.test'] },
    ];
    expect(firstMatch(rules, req({ host: 'ok.example' }))).toBe('allow:forward.rules[0]');
    expect(firstMatch(rules, req({ host: 'bad.example' }))).toBe('deny:forward.rules[1]');
    expect(firstMatch(rules, req({ host: 'unlisted.test' }))).toBeNull();
  });
});

describe('time and days (local time, injected clock)', () => {
  // 2025-06-09 is a Monday.
  it.each<[string, RuleSpec, () => Date, boolean]>([
    ['inside a window', { action: 'deny', time: '09:00-17:00' }, at(2025, 6, 9, 9, 0), true],
    ['end is exclusive', { action: 'deny', time: '09:00-17:00' }, at(2025, 6, 9, 17, 0), false],
    ['before a window', { action: 'deny', time: '09:00-17:00' }, at(2025, 6, 9, 8, 59), false],
    ['wrapping midnight, late', { action: 'deny', time: '22:00-06:00' }, at(2025, 6, 9, 23, 30), true],
    ['wrapping midnight, early', { action: 'deny', time: '22:00-06:00' }, at(2025, 6, 9, 5, 59), true],
    ['wrapping midnight, day', { action: 'deny', time: '22:00-06:00' }, at(2025, 6, 9, 12, 0), false],
    ['up to 24:00', { action: 'deny', time: '18:00-24:00' }, at(2025, 6, 9, 23, 59), true],
    ['mon-fri on Monday', { action: 'deny', days: 'mon-fri' }, at(2025, 6, 9, 12, 0), true],
    ['mon-fri on Sunday', { action: 'deny', days: 'mon-fri' }, at(2025, 6, 15, 12, 0), false],
    ['sat,sun on Saturday', { action: 'deny', days: 'sat,sun' }, at(2025, 6, 14, 12, 0), true],
    ['fri-mon wraps the week (Sunday)', { action: 'deny', days: 'fri-mon' }, at(2025, 6, 15, 12, 0), true],
    ['fri-mon wraps the week (Wednesday)', { action: 'deny', days: 'fri-mon' }, at(2025, 6, 11, 12, 0), false],
    ['days and time together', { action: 'deny', days: 'mon-fri', time: '09:00-17:00' }, at(2025, 6, 14, 10, 0), false],
  ])('%s', (_name, rule, now, matches) => {
    expect(firstMatch([rule], base, now) !== null).toBe(matches);
  });
});

describe('compile errors name the key path', () => {
  function problems(rules: RuleSpec[]): readonly string[] {
    try {
      new RuleSet(rules, { readFile: (p) => FILES[p] ?? (() => { throw Object.assign(new Error('nope'), { code: 'ENOENT' }); })() });
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return (err as ConfigError).problems;
    }
    throw new Error('expected a ConfigError');
  }

  it('reports every bad rule at once', () => {
    expect(
      problems([
        { action: 'deny', host: ['ok.example'] },
        { action: 'deny', host: ['/([/'] },
        { action: 'deny', user_agent: '([' },
        { action: 'deny', hosts_file: 'missing.txt' },
        { action: 'deny', hosts_file: 'empty.txt' },
        { action: 'deny', host: ['ok.example', 'bad host!'] },
        { action: 'deny', time: '09:00-24:30' },
      ]),
    ).toEqual([
      'forward.rules[1].host: expected a valid regular expression between the slashes, got "/([/"',
      'forward.rules[2].user_agent: expected a valid regular expression, got "(["',
      'forward.rules[3].hosts_file: expected a readable file of domains, cannot read "missing.txt" (ENOENT)',
      'forward.rules[4].hosts_file: expected at least one domain in "empty.txt", found none',
      'forward.rules[5].host[1]: expected a host name, "*.suffix", ".domain" or "/regex/", got "bad host!"',
      'forward.rules[6].time: expected a window like "09:00-17:00", got "09:00-24:30"',
    ]);
  });
});
