/**
 * Decodes a tensor's little-endian bytes to float32. float16 and bfloat16 widen exactly (every value
 * of both is a float32 value); float64 and 64-bit integers round to the nearest float32.
 */
import { float16ToFloat32 } from '../io/npy';
import { DTYPE_BYTES, type WeightDtype } from './dtypes';

let float16Table: Float32Array | null = null;

export function decodeToFloat32(bytes: Uint8Array, dtype: WeightDtype): Float32Array {
  const count = bytes.length / DTYPE_BYTES[dtype];
  if (!Number.isInteger(count)) throw new RangeError(`${bytes.length} bytes are not a whole number of ${dtype} elements`);
  // A private, aligned copy: the typed-array views below need their element alignment.
  const aligned = bytes.slice().buffer;
  switch (dtype) {
    case 'F32':
      return new Float32Array(aligned);
    case 'F16': {
      float16Table ??= Float32Array.from({ length: 0x10000 }, (_, bits) => float16ToFloat32(bits));
      const table = float16Table;
      return Float32Array.from(new Uint16Array(aligned), (bits) => table[bits]!);
    }
    case 'BF16': {
      // bfloat16 is the top half of a float32: shifting the bits up is exact, NaN payloads included.
      const result = new Float32Array(count);
      const resultBits = new Uint32Array(result.buffer);
      const halves = new Uint16Array(aligned);
      for (let i = 0; i < count; i++) resultBits[i] = halves[i]! << 16;
      return result;
    }
    case 'F64':
      return Float32Array.from(new Float64Array(aligned));
    case 'I64':
      return Float32Array.from(new BigInt64Array(aligned), (value) => Number(value));
    case 'I32':
      return Float32Array.from(new Int32Array(aligned));
    case 'I16':
      return Float32Array.from(new Int16Array(aligned));
    case 'I8':
      return Float32Array.from(new Int8Array(aligned));
    case 'U8':
    case 'BOOL':
      return Float32Array.from(new Uint8Array(aligned));
  }
}
