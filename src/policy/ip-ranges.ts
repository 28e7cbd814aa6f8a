/**
 * Address classification for SSRF protection: private, loopback, link-local and otherwise
 * non-public ranges, in every spelling an address can take (IPv4, IPv6, IPv4-mapped `::ffff:a.b.c.d`
 * and `::ffff:7f00:1`, IPv4-compatible `::a.b.c.d`, NAT64 `64:ff9b::/96` and 6to4 `2002::/16` with
 * an embedded IPv4 address). Hand-written and allocation-light: these run on every origin connection.
 */

/** [network, prefix length] pairs of IPv4 ranges that are not public destinations. */
const PRIVATE_V4: ReadonlyArray<readonly [number, number]> = [
  [v4('0.0.0.0'), 8], // "this network"; 0.0.0.0 reaches the local host
  [v4('10.0.0.0'), 8], // RFC 1918
  [v4('100.64.0.0'), 10], // carrier-grade NAT (RFC 6598)
  [v4('127.0.0.0'), 8], // loopback
  [v4('169.254.0.0'), 16], // link-local (cloud metadata services live here)
  [v4('172.16.0.0'), 12], // RFC 1918
  [v4('192.0.0.0'), 24], // IETF protocol assignments
  [v4('192.168.0.0'), 16], // RFC 1918
  [v4('198.18.0.0'), 15], // benchmarking
  [v4('224.0.0.0'), 4], // multicast
  [v4('240.0.0.0'), 4], // reserved, and 255.255.255.255
];

/** The IPv4 address as an unsigned 32-bit number, or -1 when `text` is not dotted-quad IPv4. */
export function parseIPv4(text: string, start = 0, end = text.length): number {
  let value = 0;
  let part = -1;
  let digits = 0;
  let dots = 0;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c === 46 /* . */) {
      if (part < 0 || dots === 3) return -1;
      value = value * 256 + part;
      part = -1;
      digits = 0;
      dots++;
    } else if (c >= 48 && c <= 57) {
      if (digits === 3 || (digits > 0 && part === 0)) return -1; // no leading zeros
      part = part < 0 ? c - 48 : part * 10 + (c - 48);
      if (part > 255) return -1;
      digits++;
    } else {
      return -1;
    }
  }
  if (part < 0 || dots !== 3) return -1;
  return value * 256 + part;
}

/**
 * Parses IPv6 text (a `%zone` suffix is ignored; a dotted IPv4 tail is allowed) into 8 16-bit groups
 * written into `out`. Returns false when `text` is not an IPv6 address.
 */
export function parseIPv6(text: string, out: Uint16Array): boolean {
  let end = text.indexOf('%');
  if (end < 0) end = text.length;
  if (end === 0) return false;
  out.fill(0);
  let n = 0;
  let gap = -1;
  let i = 0;
  if (text.charCodeAt(0) === 58 /* : */) {
    if (end < 2 || text.charCodeAt(1) !== 58) return false;
    gap = 0;
    i = 2;
  }
  while (i < end) {
    let j = i;
    let value = 0;
    while (j < end && j - i < 5) {
      const d = hexDigit(text.charCodeAt(j));
      if (d < 0) break;
      value = value * 16 + d;
      j++;
    }
    if (j < end && text.charCodeAt(j) === 46 /* . */) {
      if (n > 6) return false;
      const v4 = parseIPv4(text, i, end);
      if (v4 < 0) return false;
      out[n++] = v4 >>> 16;
      out[n++] = v4 & 0xffff;
      break;
    }
    const digits = j - i;
    if (digits === 0 || digits > 4 || n === 8) return false;
    out[n++] = value;
    if (j === end) break;
    if (text.charCodeAt(j) !== 58) return false;
    j++;
    if (j < end && text.charCodeAt(j) === 58) {
      if (gap >= 0) return false;
      gap = n;
      j++;
    } else if (j === end) {
      return false; // a single trailing colon
    }
    i = j;
  }
  if (gap < 0) return n === 8;
  if (n === 8) return false; // "::" stands for at least one group
  // Move the groups after "::" to the end and zero the gap.
  const tail = n - gap;
  for (let k = 1; k <= tail; k++) out[8 - k] = out[n - k]!;
  for (let k = gap; k < 8 - tail; k++) out[k] = 0;
  return true;
}

function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

const scratch = new Uint16Array(8);

function isPrivateV4(n: number): boolean {
  for (const [net, bits] of PRIVATE_V4) {
    const size = 2 ** (32 - bits);
    if (Math.floor(n / size) === Math.floor(net / size)) return true;
  }
  return false;
}

/**
 * True for an address that is not a public destination: loopback, unspecified, RFC 1918, CGNAT,
 * link-local, unique-local (fc00::/7), site-local (fec0::/10), multicast and reserved ranges, in any
 * spelling. IPv4-mapped, NAT64 (64:ff9b::/96) and 6to4 (2002::/16) addresses are judged by the IPv4
 * address they embed; IPv4-compatible addresses (`::a.b.c.d`, including `::` and `::1`) are always
 * private. Text that is not an address at all is private too (fail closed).
 */
export function isPrivateAddress(address: string): boolean {
  const n = parseIPv4(address);
  if (n >= 0) return isPrivateV4(n);
  const g = scratch;
  if (!parseIPv6(address, g)) return true;
  const first = g[0]!;
  const low = g[6]! * 65536 + g[7]!;
  if (first === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0) {
    if (g[5] === 0xffff) return isPrivateV4(low); // ::ffff:a.b.c.d
    if (g[5] === 0) return true; // ::a.b.c.d, ::, ::1
  }
  if (first === 0x64 && g[1] === 0xff9b) {
    if (g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0) return isPrivateV4(low); // NAT64
    if (g[2] === 1) return true; // 64:ff9b:1::/48 local-use NAT64
  }
  if (first === 0x2002) return isPrivateV4(g[1]! * 65536 + g[2]!); // 6to4
  if ((first & 0xfe00) === 0xfc00) return true; // fc00::/7 unique local
  if ((first & 0xffc0) === 0xfe80) return true; // fe80::/10 link-local
  if ((first & 0xffc0) === 0xfec0) return true; // fec0::/10 site-local (deprecated)
  if ((first & 0xff00) === 0xff00) return true; // multicast
  if (first === 0x100 && g[1] === 0 && g[2] === 0 && g[3] === 0) return true; // 100::/64 discard-only
  return false;
}

/**
 * True for addresses that always reach this host: 127.0.0.0/8, ::1, the unspecified addresses
 * (connecting to 0.0.0.0 or :: reaches the local host) and their IPv4-mapped forms.
 */
export function isLoopbackOrUnspecified(address: string): boolean {
  const n = parseIPv4(address);
  if (n >= 0) return n >>> 24 === 127 || n === 0;
  const g = scratch;
  if (!parseIPv6(address, g)) return false;
  if (g[0] !== 0 || g[1] !== 0 || g[2] !== 0 || g[3] !== 0 || g[4] !== 0) return false;
  if (g[5] === 0 && g[6] === 0) return g[7] === 0 || g[7] === 1; // :: and ::1
  if (g[5] === 0xffff) return g[6]! >>> 8 === 127 || (g[6] === 0 && g[7] === 0);
  return false;
}

/**
 * One spelling per address, for comparing: dotted quad for IPv4 and IPv4-mapped IPv6, eight
 * lower-case hex groups for other IPv6; null for text that is not an address.
 */
export function canonicalAddress(address: string): string | null {
  const n = parseIPv4(address);
  if (n >= 0) return address;
  const g = scratch;
  if (!parseIPv6(address, g)) return null;
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) {
    return `${g[6]! >>> 8}.${g[6]! & 0xff}.${g[7]! >>> 8}.${g[7]! & 0xff}`;
  }
  let out = g[0]!.toString(16);
  for (let k = 1; k < 8; k++) out += `:${g[k]!.toString(16)}`;
  return out;
}

function v4(text: string): number {
  const n = parseIPv4(text);
  if (n < 0) throw new Error(`bad IPv4 literal ${text}`);
  return n;
}
