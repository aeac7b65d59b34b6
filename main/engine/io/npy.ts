/**
 * NumPy `.npy` arrays (format versions 1-3, little-endian, C order): parsing and writing in memory.
 * Used for the reference kit's golden data and the CLI's `--pixels`/`--out` arrays. Pure: bytes in,
 * bytes out; file access lives in npy-file.ts.
 */

export type NpyDType = 'float32' | 'float16' | 'float64' | 'int64' | 'int32' | 'uint8' | 'bool';

/** float16 has no typed array in Node 20: its raw bits are kept in a Uint16Array. */
export type NpyData = Float32Array | Uint16Array | Float64Array | BigInt64Array | Int32Array | Uint8Array;

export interface NpyArray {
  dtype: NpyDType;
  shape: number[];
  data: NpyData;
}

const DESCR_TO_DTYPE: Readonly<Record<string, NpyDType>> = {
  '<f4': 'float32',
  '<f2': 'float16',
  '<f8': 'float64',
  '<i8': 'int64',
  '<i4': 'int32',
  '|u1': 'uint8',
  '<u1': 'uint8',
  '|b1': 'bool',
};

const DTYPE_TO_DESCR: Readonly<Record<NpyDType, string>> = {
  float32: '<f4',
  float16: '<f2',
  float64: '<f8',
  int64: '<i8',
  int32: '<i4',
  uint8: '|u1',
  bool: '|b1',
};

const BYTES_PER_ELEMENT: Readonly<Record<NpyDType, number>> = { float32: 4, float16: 2, float64: 8, int64: 8, int32: 4, uint8: 1, bool: 1 };

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"

export class NpyFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NpyFormatError';
  }
}

function asciiDecode(bytes: Uint8Array): string {
  let text = '';
  for (const byte of bytes) text += String.fromCharCode(byte);
  return text;
}

function asciiEncode(text: string): Uint8Array {
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i) & 0x7f;
  return bytes;
}

/** Parses the Python-literal header dict, e.g. `{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3), }`. */
function parseHeader(header: string): { descr: string; fortranOrder: boolean; shape: number[] } {
  const descr = /'descr'\s*:\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) throw new NpyFormatError(`unreadable .npy header: ${header.trim()}`);
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((s) => {
      const n = Number(s.replace(/L$/, ''));
      if (!Number.isSafeInteger(n) || n < 0) throw new NpyFormatError(`bad dimension '${s}' in .npy header`);
      return n;
    });
  return { descr, fortranOrder: fortran === 'True', shape };
}

export function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function parseNpy(bytes: Uint8Array): NpyArray {
  if (bytes.length < 10 || MAGIC.some((m, i) => bytes[i] !== m)) throw new NpyFormatError('not a .npy file (bad magic)');
  const major = bytes[6]!;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerLength: number;
  let headerStart: number;
  if (major === 1) {
    headerLength = view.getUint16(8, true);
    headerStart = 10;
  } else if (major === 2 || major === 3) {
    headerLength = view.getUint32(8, true);
    headerStart = 12;
  } else {
    throw new NpyFormatError(`unsupported .npy format version ${major}`);
  }
  const dataStart = headerStart + headerLength;
  if (dataStart > bytes.length) throw new NpyFormatError('truncated .npy header');
  const { descr, fortranOrder, shape } = parseHeader(asciiDecode(bytes.subarray(headerStart, dataStart)));
  const dtype = DESCR_TO_DTYPE[descr];
  if (dtype === undefined) throw new NpyFormatError(`unsupported .npy dtype '${descr}' (big-endian or exotic)`);
  if (fortranOrder && shape.filter((d) => d > 1).length > 1) throw new NpyFormatError('Fortran-ordered .npy arrays are not supported');
  const count = elementCount(shape);
  const byteLength = count * BYTES_PER_ELEMENT[dtype];
  if (dataStart + byteLength > bytes.length) throw new NpyFormatError(`truncated .npy data: need ${byteLength} bytes, have ${bytes.length - dataStart}`);
  // Copy into a fresh, aligned buffer: the source offset may not be a multiple of the element size.
  // (new Uint8Array(view) copies; Node's Buffer#slice would not.)
  const raw = new Uint8Array(bytes.subarray(dataStart, dataStart + byteLength)).buffer;
  const data: NpyData =
    dtype === 'float32'
      ? new Float32Array(raw)
      : dtype === 'float16'
        ? new Uint16Array(raw)
        : dtype === 'float64'
          ? new Float64Array(raw)
          : dtype === 'int64'
            ? new BigInt64Array(raw)
            : dtype === 'int32'
              ? new Int32Array(raw)
              : new Uint8Array(raw);
  return { dtype, shape, data };
}

export function serializeNpy(array: NpyArray): Uint8Array {
  const count = elementCount(array.shape);
  if (array.data.length !== count) throw new NpyFormatError(`shape [${array.shape.join(', ')}] needs ${count} elements, data has ${array.data.length}`);
  const shapeText = array.shape.length === 1 ? `${array.shape[0]},` : array.shape.join(', ');
  let header = `{'descr': '${DTYPE_TO_DESCR[array.dtype]}', 'fortran_order': False, 'shape': (${shapeText}), }`;
  // Pad with spaces so that magic + version + length + header + '\n' is a multiple of 64 (as NumPy does).
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const headerBytes = asciiEncode(header);
  const body = new Uint8Array(array.data.buffer, array.data.byteOffset, array.data.byteLength);
  const out = new Uint8Array(10 + headerBytes.length + body.length);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, headerBytes.length, true);
  out.set(headerBytes, 10);
  out.set(body, 10 + headerBytes.length);
  return out;
}

/** A float32 view of any floating array (float16 bits converted), for comparisons. */
export function toFloat32(array: NpyArray): Float32Array {
  switch (array.dtype) {
    case 'float32':
      return array.data as Float32Array;
    case 'float64':
      return Float32Array.from(array.data as Float64Array);
    case 'float16':
      return Float32Array.from(array.data as Uint16Array, float16ToFloat32);
    default:
      throw new NpyFormatError(`expected a floating-point array, got ${array.dtype}`);
  }
}

/** IEEE half → single, exact. */
export function float16ToFloat32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 0x1f) return fraction ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}
