/** A set of CIDR ranges (IPv4 and IPv6) with constant-cost membership tests, built once from config. */
import { BlockList, isIP } from 'node:net';

export class CidrList {
  private readonly list = new BlockList();
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

  /** Accepts plain and IPv4-mapped IPv6 (`::ffff:1.2.3.4`) addresses. */
  has(address: string): boolean {
    if (this.size === 0) return false;
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
