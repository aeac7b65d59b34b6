/**
 * Reading safetensors files: an 8-byte little-endian header length, a JSON header, then the raw
 * tensor bytes. The header is validated strictly (the file may come from anywhere) and each tensor is
 * exposed with its absolute byte offset in the file, so ONNX graphs can reference it as external data
 * without copying a byte.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { resolve } from 'node:path';
import { readExactly } from './file-range';
import { DTYPE_BYTES, isWeightDtype, safeElementCount, type WeightDtype } from './dtypes';
import { JsonSyntaxError, parseJsonStrict, type JsonValue } from './strict-json';
import { WeightsFileError, inFile } from './weights-error';

/** Same bound as the reference implementation: real headers are well under 1 MB. */
export const SAFETENSORS_MAX_HEADER_BYTES = 100_000_000;

export interface TensorEntry {
  readonly name: string;
  readonly dtype: WeightDtype;
  readonly shape: number[];
  /** Absolute path of the file that holds the bytes. */
  readonly file: string;
  /** Absolute byte offset of the first byte in `file` (8 + header length + data_offsets[0]). */
  readonly offset: number;
  readonly byteLength: number;
}

export interface SafetensorsHeader {
  readonly file: string;
  readonly headerLength: number;
  /** Absolute offset of the data section: 8 + headerLength. */
  readonly dataOffset: number;
  readonly metadata: ReadonlyMap<string, string>;
  /** Sorted by offset. */
  readonly tensors: readonly TensorEntry[];
}

const HEADER_LENGTH_BYTES = 8;
const TENSOR_FIELDS = new Set(['dtype', 'shape', 'data_offsets']);

/** Validates the 8-byte length prefix against the format's bound and the file's size. Pure. */
export function readHeaderLength(first8: Uint8Array, fileSize: number, file: string): number {
  if (fileSize < HEADER_LENGTH_BYTES || first8.length < HEADER_LENGTH_BYTES) {
    throw new WeightsFileError(file, `only ${fileSize} bytes long: too short to be a safetensors file (it is truncated or not safetensors)`);
  }
  const length = new DataView(first8.buffer, first8.byteOffset, HEADER_LENGTH_BYTES).getBigUint64(0, true);
  if (length > BigInt(SAFETENSORS_MAX_HEADER_BYTES)) {
    throw new WeightsFileError(
      file,
      `the safetensors header claims to be ${length} bytes, over the ${SAFETENSORS_MAX_HEADER_BYTES}-byte limit: the file is corrupt or not safetensors`,
    );
  }
  if (length > BigInt(fileSize - HEADER_LENGTH_BYTES)) {
    throw new WeightsFileError(
      file,
      `the safetensors header claims to be ${length} bytes but only ${fileSize - HEADER_LENGTH_BYTES} bytes follow the length field: the file is truncated; download it again`,
    );
  }
  return Number(length);
}

/**
 * Parses and validates a header. `prefix` holds at least the first 8 + header-length bytes of the
 * file; `fileSize` bounds the tensors' ranges; `file` is named in errors and copied into each entry
 * as given (readSafetensorsFile passes an absolute path). Pure: no file access.
 */
export function parseSafetensorsHeader(prefix: Uint8Array, fileSize: number, file: string): SafetensorsHeader {
  const headerLength = readHeaderLength(prefix, fileSize, file);
  const dataOffset = HEADER_LENGTH_BYTES + headerLength;
  if (prefix.length < dataOffset) throw new RangeError(`parseSafetensorsHeader needs the first ${dataOffset} bytes, got ${prefix.length}`);
  const header = decodeHeaderJson(prefix.subarray(HEADER_LENGTH_BYTES, dataOffset), file);
  const dataSize = fileSize - dataOffset;

  let metadata: ReadonlyMap<string, string> = new Map();
  const placed: Array<{ entry: TensorEntry; begin: number; end: number }> = [];
  for (const [name, value] of header) {
    if (name === '__metadata__') {
      metadata = parseMetadata(value, file);
      continue;
    }
    const { dtype, shape, begin, end } = parseTensorInfo(name, value, file);
    if (end > dataSize) {
      throw new WeightsFileError(
        file,
        `tensor '${name}' has data_offsets [${begin}, ${end}] that run past the end of the file (its data section holds ${dataSize} bytes): the file is truncated or corrupt; download it again`,
      );
    }
    const elements = safeElementCount(shape);
    const expected = elements === null ? null : elements * DTYPE_BYTES[dtype];
    if (expected === null || !Number.isSafeInteger(expected) || end - begin !== expected) {
      throw new WeightsFileError(
        file,
        `tensor '${name}' is ${dtype} with shape [${shape.join(', ')}], which needs ${expected ?? 'more than 2^53'} bytes, but data_offsets [${begin}, ${end}] give ${end - begin}: the header is corrupt`,
      );
    }
    placed.push({ entry: Object.freeze({ name, dtype, shape, file, offset: dataOffset + begin, byteLength: end - begin }), begin, end });
  }

  placed.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let previous: (typeof placed)[number] | undefined;
  for (const current of placed) {
    if (current.begin === current.end) continue; // an empty tensor overlaps nothing
    if (previous && current.begin < previous.end) {
      throw new WeightsFileError(
        file,
        `tensors '${previous.entry.name}' [${previous.begin}, ${previous.end}] and '${current.entry.name}' [${current.begin}, ${current.end}] overlap: the header is corrupt or crafted`,
      );
    }
    previous = current;
  }

  return { file, headerLength, dataOffset, metadata, tensors: placed.map((p) => p.entry) };
}

/** Reads and validates the header of a safetensors file; no tensor bytes are read. */
export async function readSafetensorsFile(file: string): Promise<SafetensorsHeader> {
  const absolute = resolve(file);
  let handle: FileHandle;
  try {
    handle = await open(absolute, 'r');
  } catch (error) {
    throw inFile(absolute, error);
  }
  try {
    const { size } = await handle.stat();
    const first8 = new Uint8Array(HEADER_LENGTH_BYTES);
    await readExactly(handle, first8, 0);
    const headerLength = readHeaderLength(first8, size, absolute);
    const prefix = new Uint8Array(HEADER_LENGTH_BYTES + headerLength);
    prefix.set(first8);
    await readExactly(handle, prefix.subarray(HEADER_LENGTH_BYTES), HEADER_LENGTH_BYTES);
    return parseSafetensorsHeader(prefix, size, absolute);
  } catch (error) {
    throw inFile(absolute, error);
  } finally {
    await handle.close();
  }
}

function decodeHeaderJson(bytes: Uint8Array, file: string): ReadonlyMap<string, JsonValue> {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch (error) {
    throw new WeightsFileError(file, 'the safetensors header is not valid UTF-8: the file is corrupt or not safetensors', { cause: error });
  }
  // The format requires the header to start with '{' (padding is trailing spaces only).
  if (!text.startsWith('{')) throw new WeightsFileError(file, 'the safetensors header does not start with "{": the file is corrupt or not safetensors');
  let parsed: JsonValue;
  try {
    parsed = parseJsonStrict(text);
  } catch (error) {
    if (!(error instanceof JsonSyntaxError)) throw error;
    throw new WeightsFileError(file, `the safetensors header is not valid JSON (${error.message}): the file is corrupt`, { cause: error });
  }
  if (!(parsed instanceof Map)) throw new WeightsFileError(file, 'the safetensors header is not a JSON object: the file is corrupt');
  return parsed;
}

function parseMetadata(value: JsonValue, file: string): ReadonlyMap<string, string> {
  if (!(value instanceof Map)) throw new WeightsFileError(file, 'the safetensors __metadata__ is not an object of strings');
  const metadata = new Map<string, string>();
  for (const [key, entry] of value) {
    if (typeof entry !== 'string') throw new WeightsFileError(file, `the safetensors __metadata__ entry '${key}' is not a string`);
    metadata.set(key, entry);
  }
  return metadata;
}

function parseTensorInfo(name: string, value: JsonValue, file: string): { dtype: WeightDtype; shape: number[]; begin: number; end: number } {
  const bad = (problem: string): WeightsFileError => new WeightsFileError(file, `tensor '${name}' ${problem}: the header is corrupt`);
  if (!(value instanceof Map)) throw bad('is not described by a JSON object');
  for (const key of value.keys()) if (!TENSOR_FIELDS.has(key)) throw bad(`has an unknown field '${key}'`);

  const dtype = value.get('dtype');
  if (typeof dtype !== 'string') throw bad('has no dtype');
  if (!isWeightDtype(dtype)) {
    throw new WeightsFileError(file, `tensor '${name}' has dtype '${dtype}', which BLIP Studio does not read (it reads F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL)`);
  }
  const shape = value.get('shape');
  if (!Array.isArray(shape) || !shape.every((d): d is number => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0)) {
    throw bad('has a shape that is not a list of non-negative integers');
  }
  const offsets = value.get('data_offsets');
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o): o is number => typeof o === 'number' && Number.isSafeInteger(o) && o >= 0)) {
    throw bad('has data_offsets that are not two non-negative integers');
  }
  const [begin, end] = offsets as [number, number];
  if (end < begin) throw bad(`has data_offsets [${begin}, ${end}] that end before they begin`);
  return { dtype, shape: Object.freeze([...shape]) as number[], begin, end };
}
