/**
 * Consistent hashing (ketama-like): each backend owns 160 points per unit of weight on a 32-bit ring,
 * derived from its address only, so adding a backend to n moves only about 1/(n+1) of the keys. A key
 * goes to the owner of the first point at or after its hash; when that backend is not eligible the
 * lookup walks on to the next eligible one. The ring is built once per pool.
 */
import { createHash } from 'node:crypto';
import type { Backend } from './backend.js';
import { isEligible } from './picker.js';

const POINTS_PER_WEIGHT = 160;

/** FNV-1a over the UTF-16 code units of s[start, end), then murmur3's finalizer for avalanche. */
export function hashString(s: string, start = 0, end = s.length): number {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export class HashRing {
  private readonly backends: readonly Backend[];
  /** Sorted ring points, and the index of the backend owning each. */
  private readonly points: Uint32Array;
  private readonly owners: Uint32Array;
  /** visited[i] === epoch when backend i was already looked at during the current lookup. */
  private readonly visited: Uint32Array;
  private epoch = 0;

  constructor(backends: readonly Backend[]) {
    this.backends = backends;
    const entries: { point: number; owner: number; address: string }[] = [];
    backends.forEach((backend, owner) => {
      const count = Math.max(1, Math.round(POINTS_PER_WEIGHT * backend.spec.weight));
      for (let group = 0; group * 4 < count; group++) {
        const digest = createHash('md5').update(`${backend.address}-${group}`).digest();
        for (let k = 0; k < 4 && group * 4 + k < count; k++) {
          entries.push({ point: digest.readUInt32LE(k * 4), owner, address: backend.address });
        }
      }
    });
    entries.sort((a, b) => a.point - b.point || (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
    this.points = Uint32Array.from(entries, (e) => e.point);
    this.owners = Uint32Array.from(entries, (e) => e.owner);
    this.visited = new Uint32Array(backends.length);
  }

  /** The eligible backend for a key hash, or null when no backend is eligible. */
  pick(hash: number, tried: readonly Backend[] | null): Backend | null {
    const points = this.points;
    const n = points.length;
    if (n === 0) return null;
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (points[mid]! < hash) lo = mid + 1;
      else hi = mid;
    }
    let index = lo === n ? 0 : lo;

    const first = this.backends[this.owners[index]!]!;
    if (isEligible(first, tried)) return first;

    // Walk on, looking at each backend once.
    if (++this.epoch === 0xffffffff) {
      this.visited.fill(0);
      this.epoch = 1;
    }
    const epoch = this.epoch;
    const total = this.backends.length;
    this.visited[this.owners[index]!] = epoch;
    let seen = 1;
    for (let k = 1; k < n && seen < total; k++) {
      if (++index === n) index = 0;
      const owner = this.owners[index]!;
      if (this.visited[owner] === epoch) continue;
      this.visited[owner] = epoch;
      seen++;
      const backend = this.backends[owner]!;
      if (isEligible(backend, tried)) return backend;
    }
    return null;
  }
}
