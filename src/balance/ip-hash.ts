/**
 * IP hash: the client's full address on a consistent-hash ring, so each client stays on one backend and
 * adding a backend moves only about 1/n of the clients. IPv4-mapped IPv6 addresses hash as IPv4.
 */
import type { Backend } from './backend.js';
import { HashRing, hashString } from './hash-ring.js';
import type { Picker } from './picker.js';
import type { BalanceRequest } from './types.js';

const MAPPED_IPV4_PREFIX = '::ffff:';

export class IpHashPicker implements Picker {
  private readonly ring: HashRing;

  constructor(backends: readonly Backend[]) {
    this.ring = new HashRing(backends);
  }

  pick(req: BalanceRequest, tried: readonly Backend[] | null): Backend | null {
    const address = req.clientAddress;
    const start = address.startsWith(MAPPED_IPV4_PREFIX) && address.includes('.') ? MAPPED_IPV4_PREFIX.length : 0;
    return this.ring.pick(hashString(address, start), tried);
  }
}
