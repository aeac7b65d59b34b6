/**
 * The weights of one diffusers component folder (`unet/`, `vae/`, `text_encoder/`, `qformer/`,
 * `controlnet/`), whatever their format: a safetensors file, safetensors shards with an index, or a
 * PyTorch `.bin` converted once through the model cache. Every tensor comes out as a TensorEntry (a
 * byte range of a safetensors file), ready to be referenced as ONNX external data or read.
 */
import { open, readFile, readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { convertBinToSafetensors, type WeightsProgress } from './convert-bin';
import { readRange } from './file-range';
import { decodeToFloat32 } from './float-decode';
import { readSafetensorsFile, type TensorEntry } from './safetensors';
import { parseJsonStrict } from './strict-json';
import { WeightsFileError, inFile } from './weights-error';

export type { TensorEntry } from './safetensors';
export type { WeightsProgress } from './convert-bin';

export interface ComponentWeights {
  /** Absolute paths of the safetensors files holding the tensors (the cache file for a converted .bin). */
  readonly files: string[];
  readonly tensors: ReadonlyMap<string, TensorEntry>;
  readonly source: 'safetensors' | 'converted-bin';
}

export interface OpenComponentWeightsOptions {
  /** The app's model cache, where converted .bin files go. */
  readonly cacheDir: string;
  readonly onProgress?: (progress: WeightsProgress) => void;
  readonly signal?: AbortSignal;
}

/** Weights file names as transformers (model.*) and diffusers (diffusion_pytorch_model.*) save them. */
const SAFETENSORS_FILES = ['model.safetensors', 'diffusion_pytorch_model.safetensors'];
const SAFETENSORS_INDEXES = ['model.safetensors.index.json', 'diffusion_pytorch_model.safetensors.index.json'];
const BIN_FILES = ['pytorch_model.bin', 'diffusion_pytorch_model.bin'];
const BIN_INDEXES = ['pytorch_model.bin.index.json', 'diffusion_pytorch_model.bin.index.json'];

export async function openComponentWeights(componentDir: string, options: OpenComponentWeightsOptions): Promise<ComponentWeights> {
  const folder = resolve(componentDir);
  let names: Set<string>;
  try {
    names = new Set(await readdir(folder));
  } catch (error) {
    throw inFile(folder, error);
  }
  const present = (candidates: readonly string[]): string[] => candidates.filter((name) => names.has(name));

  const singles = present(SAFETENSORS_FILES);
  const indexes = present(SAFETENSORS_INDEXES);
  if (singles.length + indexes.length > 1) {
    throw new WeightsFileError(folder, `holds several weights files (${[...singles, ...indexes].join(', ')}), so which one to load is ambiguous: keep one`);
  }
  if (singles.length === 1) {
    const file = join(folder, singles[0]!);
    return { files: [file], tensors: await tensorsOf([file]), source: 'safetensors' };
  }
  if (indexes.length === 1) return openShardedSafetensors(join(folder, indexes[0]!));

  const bins = present(BIN_FILES);
  if (bins.length > 1) throw new WeightsFileError(folder, `holds several weights files (${bins.join(', ')}), so which one to load is ambiguous: keep one`);
  if (bins.length === 1) {
    const converted = await convertBinToSafetensors(join(folder, bins[0]!), options);
    return { files: [converted.file], tensors: await tensorsOf([converted.file]), source: 'converted-bin' };
  }
  const binIndexes = present(BIN_INDEXES);
  if (binIndexes.length > 0) {
    throw new WeightsFileError(folder, `holds a sharded PyTorch checkpoint (${binIndexes[0]}), which BLIP Studio does not read yet: save the model with safe_serialization=True, or as one .bin file`);
  }
  throw new WeightsFileError(folder, `holds no weights file: expected one of ${[...SAFETENSORS_FILES, ...SAFETENSORS_INDEXES, ...BIN_FILES].join(', ')}`);
}

/** Reads one tensor's bytes (little-endian, C order) from its file. */
export async function readTensor(entry: TensorEntry): Promise<Uint8Array> {
  try {
    const handle = await open(entry.file, 'r');
    try {
      return await readRange(handle, entry.offset, entry.byteLength);
    } finally {
      await handle.close();
    }
  } catch (error) {
    throw inFile(entry.file, error);
  }
}

/** Reads one tensor as float32: F16 and BF16 exactly, F64 and integers rounded to nearest. */
export async function readTensorAsFloat32(entry: TensorEntry): Promise<Float32Array> {
  return decodeToFloat32(await readTensor(entry), entry.dtype);
}

async function tensorsOf(files: readonly string[]): Promise<Map<string, TensorEntry>> {
  const tensors = new Map<string, TensorEntry>();
  for (const file of files) {
    for (const entry of (await readSafetensorsFile(file)).tensors) {
      const earlier = tensors.get(entry.name);
      if (earlier) throw new WeightsFileError(file, `tensor '${entry.name}' is also in ${earlier.file}: the shards overlap`);
      tensors.set(entry.name, entry);
    }
  }
  return tensors;
}

/** Shards listed by a `*.safetensors.index.json` ({"weight_map": {tensor: shard file}}) in the same folder. */
async function openShardedSafetensors(indexFile: string): Promise<ComponentWeights> {
  const folder = resolve(indexFile, '..');
  let weightMap: Map<string, string>;
  try {
    weightMap = parseWeightMap(await readFile(indexFile, 'utf8'));
  } catch (error) {
    throw inFile(indexFile, error);
  }
  const shards = [...new Set(weightMap.values())].sort().map((shard) => join(folder, shard));
  const tensors = await tensorsOf(shards);
  for (const [name, shard] of weightMap) {
    const entry = tensors.get(name);
    if (!entry) throw new WeightsFileError(indexFile, `lists tensor '${name}' in ${shard}, which does not hold it: the download is incomplete or mixed`);
    if (entry.file !== join(folder, shard)) throw new WeightsFileError(indexFile, `lists tensor '${name}' in ${shard}, but it is in ${entry.file}`);
  }
  for (const [name, entry] of tensors) {
    if (!weightMap.has(name)) throw new WeightsFileError(entry.file, `holds tensor '${name}', which ${indexFile} does not list`);
  }
  return { files: shards, tensors, source: 'safetensors' };
}

function parseWeightMap(text: string): Map<string, string> {
  const index = parseJsonStrict(text);
  const weightMap = index instanceof Map ? index.get('weight_map') : undefined;
  if (!(weightMap instanceof Map) || weightMap.size === 0) throw new Error('not a shard index: it has no "weight_map" object');
  const result = new Map<string, string>();
  for (const [name, shard] of weightMap) {
    // Shards must sit beside the index: a path could point anywhere on disk.
    if (typeof shard !== 'string' || !/^[^/\\]+\.safetensors$/.test(shard) || shard.startsWith('.')) {
      throw new Error(`the shard of tensor '${name}' is ${JSON.stringify(shard)}, not a .safetensors file name in the same folder`);
    }
    result.set(name, shard);
  }
  return result;
}
