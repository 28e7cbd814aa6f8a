/**
 * Random with two choices: draws two backends at random (in proportion to weight) and takes the one
 * with fewer in-flight requests per unit of weight.
 */
import type { Backend } from './backend.js';
import { isEligible, type Picker } from './picker.js';
import type { BalanceRequest } from './types.js';

export class RandomTwoChoicesPicker implements Picker {
  private readonly backends: readonly Backend[];
  /** cumulative[i] = sum of the weights of backends 0..i. */
  private readonly cumulative: Float64Array;
  private readonly totalWeight: number;

  constructor(backends: readonly Backend[]) {
    this.backends = backends;
    this.cumulative = new Float64Array(backends.length);
    let total = 0;
    for (let i = 0; i < backends.length; i++) {
      total += backends[i]!.spec.weight;
      this.cumulative[i] = total;
    }
    this.totalWeight = total;
  }

  pick(_req: BalanceRequest, tried: readonly Backend[] | null): Backend | null {
    const first = this.draw(tried);
    if (first < 0) return null;
    let second = this.draw(tried);
    if (second === first) second = this.nextEligible(first + 1, first, tried);
    const a = this.backends[first]!;
    if (second < 0) return a;
    const b = this.backends[second]!;
    // b.inflight / b.weight < a.inflight / a.weight, without dividing.
    return b.inflight * a.spec.weight < a.inflight * b.spec.weight ? b : a;
  }

  /** A weighted random index, moved forward to the next eligible backend; -1 when none is. */
  private draw(tried: readonly Backend[] | null): number {
    const n = this.backends.length;
    if (n === 0) return -1;
    const r = Math.random() * this.totalWeight;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.cumulative[mid]! > r) hi = mid;
      else lo = mid + 1;
    }
    return this.nextEligible(lo, -1, tried);
  }

  /** The first eligible index from `start` on (wrapping), skipping `except`; -1 when none. */
  private nextEligible(start: number, except: number, tried: readonly Backend[] | null): number {
    const n = this.backends.length;
    for (let k = 0; k < n; k++) {
      let i = start + k;
      if (i >= n) i -= n;
      if (i !== except && isEligible(this.backends[i]!, tried)) return i;
    }
    return -1;
  }
}
