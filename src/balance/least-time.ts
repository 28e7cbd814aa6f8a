/**
 * Least time: the lowest latency EWMA × (in-flight + 1), per unit of weight. Backends without a latency
 * sample yet are tried first; ties go to the next in rotation.
 */
import type { Backend } from './backend.js';
import { isEligible, type Picker } from './picker.js';
import type { BalanceRequest } from './types.js';

export class LeastTimePicker implements Picker {
  private readonly backends: readonly Backend[];
  private cursor = 0;

  constructor(backends: readonly Backend[]) {
    this.backends = backends;
  }

  pick(_req: BalanceRequest, tried: readonly Backend[] | null): Backend | null {
    const n = this.backends.length;
    const now = Date.now();
    let best = -1;
    let bestScore = Infinity;
    for (let k = 0; k < n; k++) {
      let i = this.cursor + k;
      if (i >= n) i -= n;
      const backend = this.backends[i]!;
      if (!isEligible(backend, tried)) continue;
      if (backend.latencySamples === 0) {
        best = i;
        break;
      }
      const score = (backend.latencyEwmaMs * (backend.inflight + 1)) / backend.effectiveWeight(now);
      if (best < 0 || score < bestScore) {
        best = i;
        bestScore = score;
      }
    }
    if (best < 0) return null;
    this.cursor = best + 1 === n ? 0 : best + 1;
    return this.backends[best]!;
  }
}
