/** The interface every load-balancing algorithm implements, and the eligibility rule they share. */
import type { Backend } from './backend.js';
import type { BalanceRequest } from './types.js';

export interface Picker {
  /**
   * Chooses a backend that is usable, has capacity and is not in `tried`, or returns null when there
   * is none. Runs on every request: no allocation, no array filtering.
   */
  pick(req: BalanceRequest, tried: readonly Backend[] | null): Backend | null;
}

export interface PickerOptions {
  /** For `hash`: `header:NAME`, `cookie:NAME` or `uri`. */
  readonly hashKey?: string | undefined;
}

export type PickerConstructor = new (backends: readonly Backend[], options: PickerOptions) => Picker;

/** Whether a picker may return `backend` for a request that already tried `tried`. */
export function isEligible(backend: Backend, tried: readonly Backend[] | null): boolean {
  return backend.usable && backend.hasCapacity && (tried === null || !tried.includes(backend));
}
