/**
 * Hash on a configured key (`header:NAME`, `cookie:NAME` or `uri`) on a consistent-hash ring. A request
 * without the key is balanced round robin.
 */
import type { Backend } from './backend.js';
import { cookieValueEnd, cookieValueStart } from './cookie.js';
import { HashRing, hashString } from './hash-ring.js';
import type { Picker, PickerOptions } from './picker.js';
import { RoundRobinPicker } from './round-robin.js';
import type { BalanceRequest } from './types.js';

type HashKeySource = { readonly kind: 'uri' } | { readonly kind: 'header' | 'cookie'; readonly name: string };

/** Parses `header:NAME` | `cookie:NAME` | `uri`; throws on anything else. */
export function parseHashKey(hashKey: string | undefined): HashKeySource {
  if (hashKey === 'uri') return { kind: 'uri' };
  const colon = hashKey?.indexOf(':') ?? -1;
  if (hashKey !== undefined && colon > 0 && colon < hashKey.length - 1) {
    const kind = hashKey.slice(0, colon);
    const name = hashKey.slice(colon + 1);
    if (kind === 'header') return { kind, name: name.toLowerCase() };
    if (kind === 'cookie') return { kind, name };
  }
  throw new Error(`hash_key: expected "uri", "header:NAME" or "cookie:NAME", got ${JSON.stringify(hashKey)}`);
}

export class HashPicker implements Picker {
  private readonly ring: HashRing;
  private readonly fallback: RoundRobinPicker;
  private readonly kind: 'uri' | 'header' | 'cookie';
  private readonly name: string;

  constructor(backends: readonly Backend[], options: PickerOptions) {
    const key = parseHashKey(options.hashKey);
    this.kind = key.kind;
    this.name = key.kind === 'uri' ? '' : key.name;
    this.ring = new HashRing(backends);
    this.fallback = new RoundRobinPicker(backends);
  }

  pick(req: BalanceRequest, tried: readonly Backend[] | null): Backend | null {
    switch (this.kind) {
      case 'uri':
        return this.ring.pick(hashString(req.url), tried);
      case 'header': {
        const raw = req.headers[this.name];
        const value = typeof raw === 'string' ? raw : raw?.[0];
        if (value === undefined || value === '') return this.fallback.pick(req, tried);
        return this.ring.pick(hashString(value), tried);
      }
      case 'cookie': {
        const header = req.headers.cookie;
        const start = header === undefined ? -1 : cookieValueStart(header, this.name);
        if (header === undefined || start < 0) return this.fallback.pick(req, tried);
        return this.ring.pick(hashString(header, start, cookieValueEnd(header, start)), tried);
      }
    }
  }
}
