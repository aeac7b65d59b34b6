/**
 * A PyTorch checkpoint (`pytorch_model.bin`, `diffusion_pytorch_model.bin`) opened for reading:
 * each tensor's element type, shape and strides, and where its storage's bytes lie in the file. The
 * two on-disk formats (the zip archive torch has written since 1.6, and the older "legacy" stream)
 * are told apart by their first bytes; both give the same description, and `tensorBytes` streams any
 * tensor as contiguous little-endian bytes, copying strided views into C order.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { resolve } from 'node:path';
import { crc32 } from 'node:zlib';
import { DTYPE_BYTES, safeElementCount, type WeightDtype } from './dtypes';
import { readExactly, readRange } from './file-range';
import { PickleFormatError, PickleRefusedError } from './pickle';
import { readLegacyTorchCheckpoint } from './torch-legacy';
import { readTorchZipCheckpoint } from './torch-zip';
import { WeightsFileError, inFile } from './weights-error';

export interface TorchStorageLocation {
  readonly key: string;
  readonly dtype: WeightDtype;
  readonly numel: number;
  /** Absolute offset of the storage's first byte in the checkpoint file. */
  readonly fileOffset: number;
  /** The zip record's CRC-32 (the legacy format has none). */
  readonly crc32?: number;
}

export interface TorchTensor {
  readonly name: string;
  readonly dtype: WeightDtype;
  readonly shape: readonly number[];
  /** In elements, as torch counts them. */
  readonly stride: readonly number[];
  readonly storageOffset: number;
  readonly storage: TorchStorageLocation;
}

export interface TorchCheckpoint {
  readonly file: string;
  readonly format: 'torch-zip' | 'torch-legacy';
  /** In the order the checkpoint lists them. */
  readonly tensors: ReadonlyMap<string, TorchTensor>;
}

const ZIP_MAGIC = [0x50, 0x4b, 0x03, 0x04];
/** PROTO 2, LONG1 of 10 bytes: torch's legacy magic number 0x1950a86a20f9469cfc6c. */
const LEGACY_MAGIC = [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];
const CHUNK_BYTES = 8 * 1024 * 1024;

export async function openTorchCheckpoint(file: string): Promise<TorchCheckpoint> {
  const absolute = resolve(file);
  let handle: FileHandle;
  try {
    handle = await open(absolute, 'r');
  } catch (error) {
    throw inFile(absolute, error);
  }
  try {
    const { size } = await handle.stat();
    const head = await readRange(handle, 0, Math.min(size, LEGACY_MAGIC.length));
    if (startsWith(head, ZIP_MAGIC)) return await readTorchZipCheckpoint(handle, size, absolute);
    if (startsWith(head, LEGACY_MAGIC)) return await readLegacyTorchCheckpoint(handle, size, absolute);
    throw new WeightsFileError(absolute, 'not a PyTorch checkpoint: it is neither a torch zip archive nor the legacy torch format (the download may have failed; download it again)');
  } catch (error) {
    throw explainCheckpointError(absolute, error);
  } finally {
    await handle.close();
  }
}

function explainCheckpointError(file: string, error: unknown): Error {
  if (error instanceof PickleRefusedError) {
    return new WeightsFileError(
      file,
      `refused to load: ${error.message}. Nothing from the file was run. A weights file should hold only tensors, so this one may be malicious: get the model from its official source`,
      { cause: error },
    );
  }
  if (error instanceof PickleFormatError) return new WeightsFileError(file, `not a valid torch checkpoint: ${error.message}`, { cause: error });
  return inFile(file, error);
}

export function tensorByteLength(tensor: Pick<TorchTensor, 'dtype' | 'shape'>): number {
  return safeElementCount(tensor.shape)! * DTYPE_BYTES[tensor.dtype];
}

/** Whether the view is C-contiguous (dimensions of size 1 may have any stride, as in torch). */
export function isContiguous(shape: readonly number[], stride: readonly number[]): boolean {
  let expected = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i] !== 1 && stride[i] !== expected) return false;
    expected *= shape[i]!;
  }
  return true;
}

/**
 * Streams a tensor's bytes in C order through `handle` (the checkpoint file, open for reading).
 * Contiguous tensors are read in place, chunk by chunk; strided views are gathered from the storage
 * span they cover (views are rare in saved state dicts and bounded by their storage).
 */
export async function* tensorBytes(handle: FileHandle, tensor: TorchTensor): AsyncGenerator<Uint8Array> {
  const elementBytes = DTYPE_BYTES[tensor.dtype];
  const byteLength = tensorByteLength(tensor);
  if (byteLength === 0) return;
  const start = tensor.storage.fileOffset + tensor.storageOffset * elementBytes;
  if (isContiguous(tensor.shape, tensor.stride)) {
    // A tensor that is its whole storage (the usual case) is checked against the record's CRC-32,
    // which catches a damaged download that still parses.
    const expectedCrc = tensor.storageOffset === 0 && byteLength === tensor.storage.numel * elementBytes ? tensor.storage.crc32 : undefined;
    let crc = 0;
    for (let done = 0; done < byteLength; ) {
      const chunk = new Uint8Array(Math.min(CHUNK_BYTES, byteLength - done));
      await readExactly(handle, chunk, start + done);
      if (expectedCrc !== undefined) crc = crc32(chunk, crc);
      done += chunk.length;
      if (done === byteLength && expectedCrc !== undefined && crc !== expectedCrc) {
        throw new Error(`the bytes of tensor '${tensor.name}' (storage '${tensor.storage.key}') fail their CRC-32 check: the file is corrupt; download it again`);
      }
      yield chunk;
    }
    return;
  }
  let lastElement = 0;
  for (let i = 0; i < tensor.shape.length; i++) lastElement += (tensor.shape[i]! - 1) * tensor.stride[i]!;
  const span = await readRange(handle, start, (lastElement + 1) * elementBytes);
  yield gatherStrided(span, tensor.shape, tensor.stride, elementBytes);
}

/** Copies a strided view (strides in elements, from the start of `source`) into a C-ordered array. */
export function gatherStrided(source: Uint8Array, shape: readonly number[], stride: readonly number[], elementBytes: number): Uint8Array {
  const count = safeElementCount(shape)!;
  const target = new Uint8Array(count * elementBytes);
  if (count === 0) return target;
  // Copy whole elements as 1-, 2- or 4-byte words (8-byte elements as two words): integer views keep
  // every bit, NaN payloads included, and are ~20× faster than copying byte ranges.
  const wordBytes = elementBytes % 4 === 0 ? 4 : elementBytes;
  const wordsPerElement = elementBytes / wordBytes;
  const aligned = source.byteOffset % wordBytes === 0 ? source : source.slice();
  const from = wordView(aligned, wordBytes);
  const to = wordView(target, wordBytes);
  const rank = shape.length;
  const index = new Array<number>(rank).fill(0);
  let sourceElement = 0;
  for (let element = 0; element < count; element++) {
    for (let word = 0; word < wordsPerElement; word++) to[element * wordsPerElement + word] = from[sourceElement * wordsPerElement + word]!;
    // Odometer step over the C-order index, keeping the strided source position in step.
    for (let axis = rank - 1; axis >= 0; axis--) {
      if (++index[axis]! < shape[axis]!) {
        sourceElement += stride[axis]!;
        break;
      }
      sourceElement -= (shape[axis]! - 1) * stride[axis]!;
      index[axis] = 0;
    }
  }
  return target;
}

function wordView(bytes: Uint8Array, wordBytes: number): Uint8Array | Uint16Array | Uint32Array {
  if (wordBytes === 4) return new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
  if (wordBytes === 2) return new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.length / 2);
  return bytes;
}

function startsWith(bytes: Uint8Array, prefix: readonly number[]): boolean {
  return bytes.length >= prefix.length && prefix.every((byte, i) => bytes[i] === byte);
}
