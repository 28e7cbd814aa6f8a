/** Round robin: each eligible backend in turn, weights ignored. */
import type { Backend } from './backend.js';
import { isEligible, type Picker } from './picker.js';
import type { BalanceRequest } from './types.js';

export class RoundRobinPicker implements Picker {
  private readonly backends: readonly Backend[];
  private cursor = 0;

  constructor(backends: readonly Backend[]) {
    this.backends = backends;
  }

  pick(_req: BalanceRequest, tried: readonly Backend[] | null): Backend | null {
    const n = this.backends.length;
    for (let k = 0; k < n; k++) {
      let i = this.cursor + k;
      if (i >= n) i -= n;
      const backend = this.backends[i]!;
      if (isEligible(backend, tried)) {
        this.cursor = i + 1 === n ? 0 : i + 1;
        return backend;
      }
    }
    return null;
  }
}
