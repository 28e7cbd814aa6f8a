/** Address classification for forward.deny_private: every range, every spelling. */
import { isIP } from 'node:net';
import { describe, expect, it } from 'vitest';
import { canonicalAddress, isLoopbackOrUnspecified, isPrivateAddress, parseIPv4, parseIPv6 } from '../../src/policy/ip-ranges.js';

/** Eight groups, as URL would canonicalise the address (then expanded). */
function expand(address: string): string {
  const host = new URL(`http://[${address}]/`).hostname.slice(1, -1);
  const [head = '', tail] = host.split('::');
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const zeros = tail === undefined ? [] : new Array<string>(8 - h.length - t.length).fill('0');
  return [...h, ...zeros, ...t].map((g) => parseInt(g, 16).toString(16)).join(':');
}

describe('parsing', () => {
  it('parses dotted-quad IPv4 and rejects everything else', () => {
    expect(parseIPv4('127.0.0.1')).toBe(0x7f000001);
    expect(parseIPv4('255.255.255.255')).toBe(0xffffffff);
    expect(parseIPv4('0.0.0.0')).toBe(0);
    for (const bad of ['127.1', '2130706433', '0x7f.0.0.1', '127.0.0.01', '256.0.0.1', '1.2.3.4.5', '1.2.3.', '.1.2.3', '', 'a.b.c.d', '1..2.3']) {
      expect(parseIPv4(bad), bad).toBe(-1);
    }
  });

  it('parses IPv6 in every spelling Node accepts, and nothing else', () => {
    const g = new Uint16Array(8);
    const good = ['::', '::1', '1::', 'fe80::1', '2001:db8::8:800:200c:417a', '1:2:3:4:5:6:7:8', '::ffff:127.0.0.1', '::ffff:7f00:1', '64:ff9b::10.0.0.1', '1:2:3:4:5:6:1.2.3.4', '1::7:8', 'FC00::ABCD', '0:0:0:0:0:0:0:1', '::1.2.3.4'];
    for (const text of good) {
      expect(isIP(text), text).toBe(6);
      expect(parseIPv6(text, g), text).toBe(true);
      expect([...g].map((x) => x.toString(16)).join(':'), text).toBe(expand(text));
    }
    const bad = ['', ':', ':::', '1:2:3:4:5:6:7:8:9', '1::2::3', '1:2:3:4:5:6:7', '12345::', '1:', ':1', 'g::1', '1:2:3:4:5:6:7:1.2.3.4', '::1.2.3', '1:2:3:4:5:6:7::8', '127.0.0.1'];
    for (const text of bad) expect(parseIPv6(text, g), text).toBe(false);
    expect(parseIPv6('fe80::1%eth0', g)).toBe(true);
    expect(g[0]).toBe(0xfe80);
  });

  it('gives one spelling per address', () => {
    expect(canonicalAddress('::ffff:7f00:1')).toBe('127.0.0.1');
    expect(canonicalAddress('::ffff:127.0.0.1')).toBe('127.0.0.1');
    expect(canonicalAddress('127.0.0.1')).toBe('127.0.0.1');
    expect(canonicalAddress('0:0::1')).toBe(canonicalAddress('::1'));
    expect(canonicalAddress('FE80::A')).toBe(canonicalAddress('fe80:0::a'));
    expect(canonicalAddress('example.com')).toBeNull();
  });
});

describe('isPrivateAddress', () => {
  const privateOnes = [
    '0.0.0.0', '0.1.2.3', '10.0.0.1', '10.255.255.255', '100.64.0.1', '100.127.255.255', '127.0.0.1', '127.255.0.9',
    '169.254.169.254', '172.16.0.1', '172.31.255.255', '192.168.0.1', '192.168.255.255', '192.0.0.8', '198.18.0.1',
    '224.0.0.1', '239.255.255.250', '240.0.0.1', '255.255.255.255',
    '::', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', '::ffff:7f00:1', '::ffff:10.1.2.3', '::ffff:a9fe:a9fe', '::ffff:0.0.0.0',
    '::127.0.0.1', '::8.8.8.8', 'fc00::1', 'fd12:3456::1', 'fe80::1', 'fe80::1%eth0', 'febf::1', 'fec0::1', 'ff02::1',
    '64:ff9b::127.0.0.1', '64:ff9b::a00:1', '64:ff9b:1::1', '2002:7f00:1::', '2002:c0a8:101::1', '100::1',
    'not-an-address',
  ];
  const publicOnes = [
    '1.1.1.1', '8.8.8.8', '9.255.255.255', '11.0.0.1', '100.63.255.255', '100.128.0.0', '126.255.255.255', '128.0.0.1',
    '169.253.0.1', '169.255.0.1', '172.15.255.255', '172.32.0.0', '192.167.255.255', '192.169.0.0', '192.0.1.1',
    '198.17.255.255', '198.20.0.0', '223.255.255.255', '93.184.216.34',
    '::ffff:8.8.8.8', '::ffff:808:808', '2001:4860:4860::8888', '2606:4700::1111', '64:ff9b::8.8.8.8', '2002:808:808::1',
    'fbff::1', 'fe00::1',
  ];
  it.each(privateOnes)('%s is private', (a) => expect(isPrivateAddress(a)).toBe(true));
  it.each(publicOnes)('%s is public', (a) => expect(isPrivateAddress(a)).toBe(false));
});

describe('isLoopbackOrUnspecified', () => {
  it('knows the addresses that always reach this host', () => {
    for (const a of ['127.0.0.1', '127.9.9.9', '0.0.0.0', '::1', '::', '::ffff:127.0.0.1', '::ffff:7f00:2', '::ffff:0.0.0.0']) expect(isLoopbackOrUnspecified(a), a).toBe(true);
    for (const a of ['10.0.0.1', '128.0.0.1', '::2', 'fe80::1', '::ffff:10.0.0.1', 'localhost']) expect(isLoopbackOrUnspecified(a), a).toBe(false);
  });
});
