/**
 * Element types a weights file may hold, with safetensors' names (torch storages map onto the same
 * set). Anything else (float8, unsigned 16/32/64-bit, complex) is refused by name where it is read.
 */
import { WEIGHT_DTYPE_BYTES, type WeightDType } from '../nets/weight-catalog';

// One table for the whole engine: the nets (a pure layer) own it, the weights readers use it.
export type WeightDtype = WeightDType;
export const DTYPE_BYTES: Readonly<Record<WeightDtype, number>> = WEIGHT_DTYPE_BYTES;
export const WEIGHT_DTYPES = Object.keys(WEIGHT_DTYPE_BYTES) as readonly WeightDtype[];

export function isWeightDtype(name: string): name is WeightDtype {
  return (WEIGHT_DTYPES as readonly string[]).includes(name);
}

/** Product of the dimensions, or null when it is not an exact JavaScript integer (a hostile shape). */
export function safeElementCount(shape: readonly number[]): number | null {
  let count = 1;
  for (const dimension of shape) {
    if (!Number.isSafeInteger(dimension) || dimension < 0) return null;
    count *= dimension;
    if (!Number.isSafeInteger(count)) return null;
  }
  return count;
}
