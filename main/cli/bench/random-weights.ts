/**
 * Random-weight models at the real checkpoints' shapes, for benchmarks: the real-shapes key lists
 * (test/fixtures/parity/real-shapes/) give every tensor's name, dtype and shape; values are seeded
 * N(0, 0.02)-like noise (int64 buffers get 0..n−1), written once into a cache folder and reused.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeSafetensorsFileStreaming, type TensorSpec } from '../../engine/weights/safetensors-writer';
import { isWeightDtype } from '../../engine/weights/dtypes';

export interface RealShapesComponent {
  /** e.g. 'blipdiffusion-qformer' */
  id: string;
  /** Folder name inside the generated model, e.g. 'qformer'. */
  folder: string;
  /** The model folder inside the cache (default: `id`). */
  model?: string;
  /** Weights file name (default 'model.safetensors'; diffusers components use diffusion_pytorch_model.safetensors). */
  weightsFile?: string;
  /** Added to every tensor's seed, so two components with tensors of equal shapes never get equal values (ORT deduplicates identical initializers). */
  seedOffset?: number;
}

const CHUNK_ELEMENTS = 1 << 20;

/** A fast seeded generator (xorshift32): benchmark weights need to be distinct, not good random numbers. */
function* noiseChunks(elements: number, seed: number): Generator<Uint8Array> {
  let state = seed >>> 0 || 1;
  for (let done = 0; done < elements; done += CHUNK_ELEMENTS) {
    const chunk = new Float32Array(Math.min(CHUNK_ELEMENTS, elements - done));
    for (let i = 0; i < chunk.length; i++) {
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      // Sum of two uniforms: a cheap bell shape, scaled to about ±0.04.
      const u = (state >>> 0) / 4294967296;
      chunk[i] = (u - 0.5 + ((state * 2654435761) >>> 0) / 4294967296 - 0.5) * 0.04;
    }
    yield new Uint8Array(chunk.buffer);
  }
}

function* rangeChunk(elements: number): Generator<Uint8Array> {
  yield new Uint8Array(BigInt64Array.from({ length: elements }, (_, i) => BigInt(i)).buffer);
}

/** Makes (once) `<cacheDir>/<model>/<folder>/{config.json,<weights file>}`; returns the component folder. */
export async function ensureRandomComponent(realShapesDir: string, cacheDir: string, component: RealShapesComponent): Promise<string> {
  const listing = JSON.parse(readFileSync(join(realShapesDir, `${component.id}.json`), 'utf8')) as {
    config_file: string;
    tensors: { name: string; dtype: string; shape: number[] }[];
  };
  const dir = join(cacheDir, component.model ?? component.id, component.folder);
  const weights = join(dir, component.weightsFile ?? 'model.safetensors');
  if (existsSync(weights)) return dir;
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), readFileSync(join(realShapesDir, listing.config_file)));
  const specs: TensorSpec[] = listing.tensors.map((t) => {
    if (!isWeightDtype(t.dtype)) throw new Error(`${component.id}: unknown dtype ${t.dtype}`);
    return { name: t.name, dtype: t.dtype, shape: t.shape };
  });
  let seed = 1;
  const offset = component.seedOffset ?? 0;
  await writeSafetensorsFileStreaming(weights, specs, { format: 'pt', generator: 'blip-studio bench (random values)' }, (tensor) => {
    const elements = tensor.shape.reduce((a, b) => a * b, 1);
    const chunks = tensor.dtype === 'I64' ? rangeChunk(elements) : noiseChunks(elements, seed++ * 7919 + offset);
    return (async function* () {
      yield* chunks;
    })();
  });
  return dir;
}
