/**
 * What the network builders need to know about a component's weight files: for each tensor name, its
 * dtype, shape and where its bytes are. The weights reader adapts its entries to this interface; the
 * recording catalog (implied-parameters.ts) implements it without any file, to list what a config implies.
 */
import { elementCount, formatShape, type Shape } from '../graph/shapes';

/** safetensors dtype names. */
export type WeightDType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

export const WEIGHT_DTYPE_BYTES: Readonly<Record<WeightDType, number>> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };

/** Float dtypes a parameter may be stored in; the graph casts non-float32 ones to float32 (CPU kernels). */
export const FLOAT_WEIGHT_DTYPES: readonly WeightDType[] = ['F32', 'F16', 'BF16', 'F64'];

export interface WeightEntry {
  dtype: WeightDType;
  shape: readonly number[];
  /** Relative to the graph's external-data folder, '/'-separated, never absolute or with '..' (ORT refuses both). */
  file: string;
  /** Byte offset of the tensor's data in `file`. */
  offset: number;
  byteLength: number;
}

/** What a network asks of the catalog: a tensor by name with the shape its config implies. */
export interface TensorRequest {
  name: string;
  shape: Shape;
  /**
   * 'parameter': a float tensor the graph reads. 'buffer': a persistent int64 buffer (e.g. position_ids)
   * that the files may carry and the graph does not need: declared so that it counts as consumed.
   */
  kind: 'parameter' | 'buffer';
  /** An optional tensor may be absent; when present it must have the expected dtype and shape. */
  optional: boolean;
}

export interface WeightCatalog {
  /** Every tensor name in the component's weight files. */
  names(): readonly string[];
  /**
   * The entry for `name`, or undefined when the files lack it. `request` says what the network expects;
   * a real catalog ignores it, the recording catalog records it and answers with a matching entry.
   */
  lookup(name: string, request?: TensorRequest): WeightEntry | undefined;
}

/** A tensor as listed by a weights file or by real-shapes/*.json (which has no byte length). */
export interface TensorListing {
  name: string;
  dtype: string;
  shape: readonly number[];
  byteLength?: number;
}

/** Why `actual` does not satisfy `request` (dtype, shape or byte length), or null when it does. */
export function tensorMismatch(request: TensorRequest, actual: TensorListing): string | null {
  const dtypeOk = request.kind === 'parameter' ? FLOAT_WEIGHT_DTYPES.includes(actual.dtype as WeightDType) : actual.dtype === 'I64';
  const problems: string[] = [];
  if (!dtypeOk) problems.push(`dtype ${actual.dtype}, expected ${request.kind === 'parameter' ? 'a float dtype' : 'I64'}`);
  if (actual.shape.length !== request.shape.length || actual.shape.some((d, i) => d !== request.shape[i])) {
    problems.push(`shape ${formatShape(actual.shape)}, expected ${formatShape(request.shape)}`);
  }
  const bytesPerElement = WEIGHT_DTYPE_BYTES[actual.dtype as WeightDType];
  if (problems.length === 0 && actual.byteLength !== undefined && bytesPerElement !== undefined) {
    const expected = elementCount(actual.shape) * bytesPerElement;
    if (actual.byteLength !== expected) problems.push(`${actual.byteLength} bytes, expected ${expected}`);
  }
  return problems.length > 0 ? problems.join('; ') : null;
}

/** Every entry of the catalog as a listing. */
export function catalogListing(catalog: WeightCatalog): TensorListing[] {
  return catalog.names().map((name) => {
    const entry = catalog.lookup(name);
    if (!entry) throw new Error(`weight catalog lists '${name}' but has no entry for it`);
    return { name, dtype: entry.dtype, shape: entry.shape, byteLength: entry.byteLength };
  });
}

/**
 * The part of the weights that a built graph bakes in (file, offset, dtype, shape per tensor), sorted
 * by name: one input of the graph's cache key, so a re-converted file never reuses a stale graph.
 */
export function weightsLayout(catalog: WeightCatalog): [string, string, string, number, readonly number[]][] {
  return [...catalog.names()].sort().map((name) => {
    const entry = catalog.lookup(name);
    if (!entry) throw new Error(`weight catalog lists '${name}' but has no entry for it`);
    return [name, entry.file, entry.dtype, entry.offset, entry.shape];
  });
}

/** Whether `file` is a location ORT accepts: relative, '/'-separated, no '..' or empty segment. */
export function isSafeRelativeLocation(file: string): boolean {
  if (file === '' || file.startsWith('/') || file.includes('\\') || /^[A-Za-z]:/.test(file)) return false;
  return file.split('/').every((segment) => segment !== '' && segment !== '.' && segment !== '..');
}
