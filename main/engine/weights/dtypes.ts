/**
 * Element types a weights file may hold, with safetensors' names (torch storages map onto the same
 * set). Anything else (float8, unsigned 16/32/64-bit, complex) is refused by name where it is read.
 */
export const WEIGHT_DTYPES = ['F64', 'F32', 'F16', 'BF16', 'I64', 'I32', 'I16', 'I8', 'U8', 'BOOL'] as const;

export type WeightDtype = (typeof WEIGHT_DTYPES)[number];

export const DTYPE_BYTES: Readonly<Record<WeightDtype, number>> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

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
