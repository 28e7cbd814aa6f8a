/**
 * nginx's smooth weighted round robin: every pick adds each eligible backend's weight to its current
 * score, takes the highest, and subtracts the total from the winner. Weights 5:3:2 give exactly 5, 3
 * and 2 picks of every 10, interleaved (a b c a a b a c b a), never in bursts.
 */
import type { Backend } from './backend.js';
import { isEligible, type Picker } from './picker.js';
import type { BalanceRequest } from './types.js';

export class WeightedRoundRobinPicker implements Picker {
  private readonly backends: readonly Backend[];
  private readonly current: Float64Array;

  constructor(backends: readonly Backend[]) {
    this.backends = backends;
    this.current = new Float64Array(backends.length);
  }

  pick(_req: BalanceRequest, tried: readonly Backend[] | null): Backend | null {
    const now = Date.now();
    const current = this.current;
    let total = 0;
    let best = -1;
    for (let i = 0; i < this.backends.length; i++) {
      const backend = this.backends[i]!;
      if (!isEligible(backend, tried)) continue;
      const weight = backend.effectiveWeight(now);
      current[i]! += weight;
      total += weight;
      if (best < 0 || current[i]! > current[best]!) best = i;
    }
    if (best < 0) return null;
    current[best]! -= total;
    return this.backends[best]!;
  }
}
