/**
 * Converts a PyTorch `.bin` checkpoint, once, into a safetensors file in the app's model cache, so
 * graphs can reference its tensors as ONNX external data like any safetensors file.
 *
 * Cache key: the converted file is named by the SHA-256 of the source's content (identical files in
 * two model folders share one conversion, and a changed file can never reuse a stale one). Hashing a
 * 3.4 GB file costs seconds, so a small record keyed by (path, size, mtime, inode) remembers each
 * source's hash: reopening an unchanged model reads no source byte. The converted file carries the
 * source hash in its metadata and is checked against it before reuse.
 *
 * The output is streamed to a temporary file and renamed into place when complete, so a crash or an
 * abort never leaves a half-written cache file under the final name; partial files left by a killed
 * process are removed by the next conversion.
 */
import { createHash } from 'node:crypto';
import { mkdir, open, readFile, readdir, rm, stat, statfs } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { writeFileAtomic } from '../../files/atomic-write';
import { readSafetensorsFile } from './safetensors';
import { writeSafetensorsFileStreaming, type TensorSpec } from './safetensors-writer';
import { openTorchCheckpoint, tensorByteLength, tensorBytes, type TorchCheckpoint } from './torch-checkpoint';
import { WeightsFileError, inFile } from './weights-error';

/** Bump when the output for the same source would differ; old cache files are then ignored. */
export const BIN_CONVERTER_VERSION = 1;

export interface WeightsProgress {
  readonly bytesDone: number;
  readonly bytesTotal: number;
}

export interface ConvertBinOptions {
  /** The app's model cache folder; created if missing. */
  readonly cacheDir: string;
  /** Hashing the source and writing the tensors, together, in bytes. Not called when the cache is reused. */
  readonly onProgress?: (progress: WeightsProgress) => void;
  readonly signal?: AbortSignal;
}

export interface ConvertedBin {
  /** Absolute path of the safetensors file in the cache. */
  readonly file: string;
  readonly sourceSha256: string;
  /** True when an earlier conversion was used as is. */
  readonly reused: boolean;
}

const HASH_CHUNK_BYTES = 8 * 1024 * 1024;
const SOURCES_FOLDER = 'bin-sources';
/** A .partial file not written to for this long belongs to a conversion that died. */
const STALE_PARTIAL_MS = 10 * 60 * 1000;
const SHA256_HEX = /^[0-9a-f]{64}$/;

export async function convertBinToSafetensors(binFile: string, options: ConvertBinOptions): Promise<ConvertedBin> {
  const source = resolve(binFile);
  const cacheDir = resolve(options.cacheDir);
  try {
    options.signal?.throwIfAborted();
    const sourceStat = await stat(source);
    await mkdir(join(cacheDir, SOURCES_FOLDER), { recursive: true });
    const recordPath = join(cacheDir, SOURCES_FOLDER, `${fingerprint(source, sourceStat)}.json`);

    const knownHash = await readSourceRecord(recordPath);
    if (knownHash && (await isUsableConversion(cachedFileFor(cacheDir, knownHash), knownHash))) {
      return { file: cachedFileFor(cacheDir, knownHash), sourceSha256: knownHash, reused: true };
    }

    // Parse first (reads only the directory and the pickle): a refused file fails before any hashing.
    const checkpoint = await openTorchCheckpoint(source);
    const outputBytes = [...checkpoint.tensors.values()].reduce((sum, tensor) => sum + tensorByteLength(tensor), 0);
    const bytesTotal = sourceStat.size + outputBytes;
    const report = (bytesDone: number): void => options.onProgress?.({ bytesDone, bytesTotal });

    const sha256 = await hashFile(source, report, options.signal);
    const target = cachedFileFor(cacheDir, sha256);
    if (!(await isUsableConversion(target, sha256))) {
      await ensureFreeSpace(cacheDir, outputBytes, source);
      await removeStalePartials(cacheDir);
      await writeConversion(checkpoint, target, sha256, options.signal, (written) => report(sourceStat.size + written));
    }
    report(bytesTotal);
    writeFileAtomic(recordPath, new TextEncoder().encode(JSON.stringify({ source, size: sourceStat.size, mtimeMs: sourceStat.mtimeMs, sha256 })));
    return { file: target, sourceSha256: sha256, reused: false };
  } catch (error) {
    // An abort is the caller's own doing: hand back its reason untouched.
    if (options.signal?.aborted && error === options.signal.reason) throw error;
    throw inFile(source, error);
  }
}

/**
 * The SHA-256 of a weights file's content, through the same (path, size, mtime, inode) record that
 * conversions use: an unchanged file is hashed once, whichever asks first (a conversion or the model
 * fingerprint behind the embeddings cache).
 */
export async function weightsFileSha256(file: string, options: { cacheDir: string; signal?: AbortSignal }): Promise<string> {
  const source = resolve(file);
  const cacheDir = resolve(options.cacheDir);
  const sourceStat = await stat(source);
  await mkdir(join(cacheDir, SOURCES_FOLDER), { recursive: true });
  const recordPath = join(cacheDir, SOURCES_FOLDER, `${fingerprint(source, sourceStat)}.json`);
  const known = await readSourceRecord(recordPath);
  if (known) return known;
  const sha256 = await hashFile(source, () => {}, options.signal);
  writeFileAtomic(recordPath, new TextEncoder().encode(JSON.stringify({ source, size: sourceStat.size, mtimeMs: sourceStat.mtimeMs, sha256 })));
  return sha256;
}

/** Where the conversion of a source with this content hash lives. */
export function cachedFileFor(cacheDir: string, sourceSha256: string): string {
  return join(resolve(cacheDir), `bin-v${BIN_CONVERTER_VERSION}-${sourceSha256}.safetensors`);
}

async function writeConversion(checkpoint: TorchCheckpoint, target: string, sha256: string, signal: AbortSignal | undefined, onBytesWritten: (n: number) => void): Promise<void> {
  const specs: TensorSpec[] = [...checkpoint.tensors.values()].map(({ name, dtype, shape }) => ({ name, dtype, shape }));
  const metadata = { format: 'pt', source_file: basename(checkpoint.file), source_sha256: sha256, converter: `blip-studio bin-v${BIN_CONVERTER_VERSION}` };
  const handle = await open(checkpoint.file, 'r');
  try {
    await writeSafetensorsFileStreaming(target, specs, metadata, (placed) => tensorBytes(handle, checkpoint.tensors.get(placed.name)!), { signal, onBytesWritten });
  } finally {
    await handle.close();
  }
}

async function isUsableConversion(file: string, sha256: string): Promise<boolean> {
  if (!(await stat(file).then(() => true, () => false))) return false;
  try {
    const header = await readSafetensorsFile(file);
    if (header.metadata.get('source_sha256') === sha256) return true;
  } catch {
    // A damaged cache file (a disk error, a manual edit) is rebuilt rather than trusted.
  }
  await rm(file, { force: true });
  return false;
}

async function hashFile(file: string, report: (bytesDone: number) => void, signal: AbortSignal | undefined): Promise<string> {
  const hash = createHash('sha256');
  const handle = await open(file, 'r');
  try {
    const buffer = new Uint8Array(HASH_CHUNK_BYTES);
    for (let position = 0; ; ) {
      signal?.throwIfAborted();
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, position);
      if (bytesRead === 0) break;
      hash.update(buffer.subarray(0, bytesRead));
      position += bytesRead;
      report(position);
    }
  } finally {
    await handle.close();
  }
  return hash.digest('hex');
}

function fingerprint(source: string, sourceStat: { size: number; mtimeMs: number; ino: number }): string {
  return createHash('sha256')
    .update(JSON.stringify([BIN_CONVERTER_VERSION, source, sourceStat.size, sourceStat.mtimeMs, sourceStat.ino]))
    .digest('hex');
}

async function readSourceRecord(recordPath: string): Promise<string | null> {
  try {
    const record: unknown = JSON.parse(await readFile(recordPath, 'utf8'));
    const sha256 = typeof record === 'object' && record !== null && 'sha256' in record ? record.sha256 : null;
    return typeof sha256 === 'string' && SHA256_HEX.test(sha256) ? sha256 : null;
  } catch {
    return null; // missing or unreadable: hash again
  }
}

async function ensureFreeSpace(cacheDir: string, bytesNeeded: number, source: string): Promise<void> {
  const info = await statfs(cacheDir).catch(() => null); // some network file systems cannot say
  if (!info) return;
  const free = info.bavail * info.bsize;
  if (free < bytesNeeded) {
    const gigabytes = (bytes: number): string => (bytes / 1e9).toFixed(2);
    throw new WeightsFileError(source, `converting it needs ${gigabytes(bytesNeeded)} GB free in ${cacheDir}, but only ${gigabytes(free)} GB are free: free some space and try again`);
  }
}

async function removeStalePartials(cacheDir: string): Promise<void> {
  for (const name of await readdir(cacheDir)) {
    if (!name.endsWith('.partial')) continue;
    const path = join(cacheDir, name);
    const info = await stat(path).catch(() => null);
    if (info && Date.now() - info.mtimeMs > STALE_PARTIAL_MS) await rm(path, { force: true });
  }
}
