/** A set of CIDR ranges (IPv4 and IPv6) with constant-cost membership tests, built once from config. */
import { BlockList, isIP } from 'node:net';

const MEMO_LIMIT = 4096;

export class CidrList {
  private readonly list = new BlockList();
  private readonly memo = new Map<string, boolean>();
  readonly size: number;

  constructor(cidrs: readonly string[]) {
    for (const cidr of cidrs) {
      const [addr = '', bits] = cidr.split('/');
      const family = isIP(addr) === 6 ? 'ipv6' : 'ipv4';
      if (bits === undefined) this.list.addAddress(addr, family);
      else this.list.addSubnet(addr, Number(bits), family);
    }
    this.size = cidrs.length;
  }

  /**
   * Accepts plain and IPv4-mapped IPv6 (`::ffff:1.2.3.4`) addresses. Answers are remembered per address
   * (a client asks on every request, and BlockList.check builds an object per call); the memo is
   * bounded and simply starts over when full.
   */
  has(address: string): boolean {
    if (this.size === 0) return false;
    let known = this.memo.get(address);
    if (known === undefined) {
      if (this.memo.size >= MEMO_LIMIT) this.memo.clear();
      known = this.check(address);
      this.memo.set(address, known);
    }
    return known;
  }

  private check(address: string): boolean {
    const family = isIP(address);
    if (family === 4) return this.list.check(address, 'ipv4');
    if (family === 6) {
      if (address.startsWith('::ffff:') && isIP(address.slice(7)) === 4) {
        return this.list.check(address.slice(7), 'ipv4') || this.list.check(address, 'ipv6');
      }
      return this.list.check(address, 'ipv6');
    }
    return false;
  }
}

/** `::ffff:127.0.0.1` → `127.0.0.1`; other addresses unchanged. */
export function normalizeAddress(address: string | undefined): string {
  if (!address) return '';
  return address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}
