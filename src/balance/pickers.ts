/** The picker for each `balance` name in the config. */
import type { Backend } from './backend.js';
import { HashPicker } from './hash.js';
import { IpHashPicker } from './ip-hash.js';
import { LeastConnectionsPicker } from './least-connections.js';
import { LeastTimePicker } from './least-time.js';
import type { Picker, PickerConstructor, PickerOptions } from './picker.js';
import { RandomTwoChoicesPicker } from './random.js';
import { RoundRobinPicker } from './round-robin.js';
import type { BalanceAlgorithm } from './types.js';
import { WeightedRoundRobinPicker } from './weighted-round-robin.js';

export const PICKERS = {
  'round-robin': RoundRobinPicker,
  'weighted-round-robin': WeightedRoundRobinPicker,
  'least-connections': LeastConnectionsPicker,
  'ip-hash': IpHashPicker,
  hash: HashPicker,
  random: RandomTwoChoicesPicker,
  'least-time': LeastTimePicker,
} as const satisfies Record<BalanceAlgorithm, PickerConstructor>;

export function createPicker(algorithm: BalanceAlgorithm, backends: readonly Backend[], options: PickerOptions = {}): Picker {
  return new PICKERS[algorithm](backends, options);
}
