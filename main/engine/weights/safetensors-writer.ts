/**
 * Writing safetensors files, laid out like the reference implementation: the JSON header padded with
 * spaces to a multiple of 8, tensors ordered by element size (largest first) then name, so that every
 * tensor starts at an offset aligned to its element size and the same tensors always give the same
 * bytes. Small files are written from memory; big ones (a converted 3.4 GB UNet) are streamed to a
 * temporary file that is renamed into place only when complete.
 */
import { randomBytes } from 'node:crypto';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { writeFileAtomic } from '../../files/atomic-write';
import { DTYPE_BYTES, safeElementCount, type WeightDtype } from './dtypes';

export interface TensorSpec {
  readonly name: string;
  readonly dtype: WeightDtype;
  readonly shape: readonly number[];
}

export interface TensorData extends TensorSpec {
  /** Little-endian element bytes, C order. */
  readonly data: Uint8Array;
}

export interface PlacedTensor extends TensorSpec {
  /** Offset within the data section (what the header's data_offsets[0] says). */
  readonly begin: number;
  readonly byteLength: number;
}

export interface SafetensorsLayout {
  /** The 8-byte length followed by the padded JSON header. */
  readonly header: Uint8Array;
  /** In file order. */
  readonly tensors: readonly PlacedTensor[];
  readonly fileSize: number;
}

export type SafetensorsMetadata = Readonly<Record<string, string>>;

/** Orders the tensors, computes their offsets and encodes the header. Pure. */
export function planSafetensorsLayout(specs: readonly TensorSpec[], metadata: SafetensorsMetadata = {}): SafetensorsLayout {
  const names = new Set<string>();
  for (const spec of specs) {
    if (spec.name === '__metadata__') throw new Error("a tensor cannot be named '__metadata__' in a safetensors file");
    if (names.has(spec.name)) throw new Error(`two tensors are named '${spec.name}'`);
    names.add(spec.name);
  }
  const ordered = [...specs].sort((a, b) => DTYPE_BYTES[b.dtype] - DTYPE_BYTES[a.dtype] || compareCodePoints(a.name, b.name));

  let begin = 0;
  const tensors: PlacedTensor[] = [];
  const fields: string[] = [];
  if (Object.keys(metadata).length > 0) fields.push(`"__metadata__":${JSON.stringify(metadata)}`);
  for (const spec of ordered) {
    const elements = safeElementCount(spec.shape);
    if (elements === null) throw new Error(`tensor '${spec.name}' has an invalid shape [${spec.shape.join(', ')}]`);
    const byteLength = elements * DTYPE_BYTES[spec.dtype];
    tensors.push({ name: spec.name, dtype: spec.dtype, shape: [...spec.shape], begin, byteLength });
    // Written by hand rather than JSON.stringify(object) so a tensor named "0" keeps its place.
    fields.push(`${JSON.stringify(spec.name)}:{"dtype":"${spec.dtype}","shape":[${spec.shape.join(',')}],"data_offsets":[${begin},${begin + byteLength}]}`);
    begin += byteLength;
  }
  const json = new TextEncoder().encode(`{${fields.join(',')}}`);
  const padded = json.length + ((8 - (json.length % 8)) % 8);
  const header = new Uint8Array(8 + padded).fill(0x20, 8 + json.length);
  new DataView(header.buffer).setBigUint64(0, BigInt(padded), true);
  header.set(json, 8);
  return { header, tensors, fileSize: header.length + begin };
}

/** The whole file in memory. Pure. */
export function serializeSafetensors(tensors: readonly TensorData[], metadata: SafetensorsMetadata = {}): Uint8Array {
  const layout = planSafetensorsLayout(tensors, metadata);
  const byName = new Map(tensors.map((t) => [t.name, t.data]));
  const bytes = new Uint8Array(layout.fileSize);
  bytes.set(layout.header);
  for (const placed of layout.tensors) {
    const data = byName.get(placed.name)!;
    if (data.length !== placed.byteLength) {
      throw new Error(`tensor '${placed.name}' (${placed.dtype} [${placed.shape.join(', ')}]) needs ${placed.byteLength} bytes, got ${data.length}`);
    }
    bytes.set(data, layout.header.length + placed.begin);
  }
  return bytes;
}

/** Writes a small file atomically (readers see the old file or the complete new one). */
export function writeSafetensorsFile(path: string, tensors: readonly TensorData[], metadata: SafetensorsMetadata = {}): void {
  writeFileAtomic(path, serializeSafetensors(tensors, metadata));
}

/** Yields one tensor's bytes (little-endian, C order) in as many chunks as convenient. */
export type TensorBytesSource = (tensor: PlacedTensor) => AsyncIterable<Uint8Array>;

export interface StreamingWriteOptions {
  readonly signal?: AbortSignal;
  /** Called after each chunk with the number of tensor bytes written so far. */
  readonly onBytesWritten?: (bytesWritten: number) => void;
}

/**
 * Streams a file to `<path>.<random>.partial`, flushes it and renames it to `path`. On any failure or
 * abort the temporary file is removed, so `path` is either absent, the old file or the complete file.
 */
export async function writeSafetensorsFileStreaming(
  path: string,
  specs: readonly TensorSpec[],
  metadata: SafetensorsMetadata,
  source: TensorBytesSource,
  options: StreamingWriteOptions = {},
): Promise<void> {
  const layout = planSafetensorsLayout(specs, metadata);
  const temporary = `${path}.${randomBytes(6).toString('hex')}.partial`;
  const handle = await open(temporary, 'wx');
  let closed = false;
  try {
    await writeAll(handle, layout.header, 0);
    let position = layout.header.length;
    let written = 0;
    for (const tensor of layout.tensors) {
      options.signal?.throwIfAborted();
      let tensorBytes = 0;
      for await (const chunk of source(tensor)) {
        options.signal?.throwIfAborted();
        tensorBytes += chunk.length;
        if (tensorBytes > tensor.byteLength) break;
        await writeAll(handle, chunk, position);
        position += chunk.length;
        written += chunk.length;
        options.onBytesWritten?.(written);
      }
      if (tensorBytes !== tensor.byteLength) {
        throw new Error(`tensor '${tensor.name}' (${tensor.dtype} [${tensor.shape.join(', ')}]) needs ${tensor.byteLength} bytes, its source gave ${tensorBytes}`);
      }
    }
    await handle.sync();
    await handle.close();
    closed = true;
    await rename(temporary, path);
  } catch (error) {
    if (!closed) await handle.close().catch(() => undefined);
    await rm(temporary, { force: true });
    throw error;
  }
}

async function writeAll(handle: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.length - done, position + done);
    done += bytesWritten;
  }
}

/** Orders by Unicode code point like Rust's string comparison (JS `<` compares UTF-16 units). */
function compareCodePoints(a: string, b: string): number {
  const left = [...a];
  const right = [...b];
  for (let i = 0; i < Math.min(left.length, right.length); i++) {
    const difference = left[i]!.codePointAt(0)! - right[i]!.codePointAt(0)!;
    if (difference !== 0) return difference;
  }
  return left.length - right.length;
}
