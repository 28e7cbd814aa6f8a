/** Least connections: the lowest in-flight count per unit of weight; ties go to the next in rotation. */
import type { Backend } from './backend.js';
import { isEligible, type Picker } from './picker.js';
import type { BalanceRequest } from './types.js';

export class LeastConnectionsPicker implements Picker {
  private readonly backends: readonly Backend[];
  private cursor = 0;

  constructor(backends: readonly Backend[]) {
    this.backends = backends;
  }

  pick(_req: BalanceRequest, tried: readonly Backend[] | null): Backend | null {
    const n = this.backends.length;
    const now = Date.now();
    let best = -1;
    let bestInflight = 0;
    let bestWeight = 1;
    for (let k = 0; k < n; k++) {
      let i = this.cursor + k;
      if (i >= n) i -= n;
      const backend = this.backends[i]!;
      if (!isEligible(backend, tried)) continue;
      const weight = backend.effectiveWeight(now);
      // inflight / weight < bestInflight / bestWeight, without dividing.
      if (best < 0 || backend.inflight * bestWeight < bestInflight * weight) {
        best = i;
        bestInflight = backend.inflight;
        bestWeight = weight;
      }
    }
    if (best < 0) return null;
    this.cursor = best + 1 === n ? 0 : best + 1;
    return this.backends[best]!;
  }
}
