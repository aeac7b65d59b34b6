/**
 * The fine-tune parity kit (`test/fixtures/parity/finetune/`, a verbatim copy of shared/parity/finetune):
 * its config, its .npy files by step, and the relative-L2 metric its tolerances are stated in.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readNpyFile } from '../../main/engine/io/npy-file';
import type { NpyArray } from '../../main/engine/io/npy';
import type { LoraTargetShape } from '../../main/engine/nets/finetune-step';
import type { FinetuneRequest, TrainedLora } from '../../main/engine/pipelines/finetune';
import { readSafetensorsFile } from '../../main/engine/weights/safetensors';
import { loadModelFolder } from '../../main/models/model-folder';
import { REPO_ROOT } from './built-app';

export const FINETUNE_KIT = join(REPO_ROOT, 'test/fixtures/parity/finetune');
/** The model the kit fine-tunes (its config.json names it relative to the kit). */
export const FINETUNE_KIT_MODEL = join(REPO_ROOT, 'test/fixtures/parity/models/tiny-blipdiffusion');

export interface FinetuneKitConfig {
  category: string;
  caption: string;
  caption_input_ids: number[];
  resolution: number;
  batch: number;
  steps: number;
  seed: number;
  ctx_begin_pos: number;
  scaling_factor: number;
  photos: string[];
  tolerances: { lora_rel_l2: number; embedding_rel_l2: number; loss_rel: number; image_max_abs: number; grads_rel_l2: number };
}

export const finetuneKitConfig = (): FinetuneKitConfig => JSON.parse(readFileSync(join(FINETUNE_KIT, 'config.json'), 'utf8')) as FinetuneKitConfig;

/** A kit file, e.g. `kitNpy('target_pixels')`, or a step's: `kitNpy('noise', 2)` reads step_2/noise.npy. */
export function kitNpy(name: string, step?: number): NpyArray {
  return readNpyFile(join(FINETUNE_KIT, step === undefined ? `${name}.npy` : `step_${step}/${name}.npy`));
}

export function kitFloat32(name: string, step?: number): Float32Array {
  const array = kitNpy(name, step);
  if (!(array.data instanceof Float32Array)) throw new Error(`${name}: expected float32, got ${array.dtype}`);
  return array.data;
}

/** ‖a − b‖ / ‖b‖, in float64: the kit's metric (README, Tolerances). */
export function relativeL2(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) throw new Error(`relativeL2: ${actual.length} values against ${expected.length}`);
  let difference = 0;
  let norm = 0;
  for (let i = 0; i < expected.length; i++) {
    const e = expected[i] as number;
    difference += ((actual[i] as number) - e) ** 2;
    norm += e * e;
  }
  return Math.sqrt(difference) / Math.sqrt(norm);
}

/** The kit's floor for any tensor it has no own figure for: 1e-4 relative L2 (README, Tolerances). */
export const KIT_REL_L2_FLOOR = 1e-4;

/** Every tensor of a kit safetensors file (F32), by name. */
export async function kitSafetensors(file: string): Promise<Map<string, { shape: number[]; data: Float32Array }>> {
  const path = join(FINETUNE_KIT, file);
  const header = await readSafetensorsFile(path);
  const bytes = readFileSync(path);
  return new Map(header.tensors.map((t) => [t.name, { shape: t.shape, data: new Float32Array(bytes.buffer.slice(bytes.byteOffset + t.offset, bytes.byteOffset + t.offset + t.byteLength)) }]));
}

export interface KitTrainingSetup {
  config: FinetuneKitConfig & { rank: number; alpha: number; lr_lora: number; lr_embedding: number; weight_decay: number; losses: number[] };
  targets: LoraTargetShape[];
  /** lora_init.safetensors as a trainer continuing from it reads it: raw up = file up · r / alpha. */
  initialLora: TrainedLora;
  request: (overrides?: Partial<FinetuneRequest>) => FinetuneRequest;
}

/** The kit's fine-tune as a FinetuneRequest (its photos' pixels, initial embedding, caption, initial LoRA, hyperparameters). */
export async function kitTrainingSetup(): Promise<KitTrainingSetup> {
  const config = finetuneKitConfig() as KitTrainingSetup['config'];
  const init = await kitSafetensors('lora_init.safetensors');
  const moduleOf = (key: string) => key.replace(/^unet\./, '').replace(/\.lora\.(down|up)\.weight$/, '');
  const modules = [...new Set([...init.keys()].map(moduleOf))];
  const tensor = (module: string, part: 'down' | 'up') => init.get(`unet.${module}.lora.${part}.weight`)!;
  const targets = modules.map((module) => ({ module, inFeatures: tensor(module, 'down').shape[1]!, outFeatures: tensor(module, 'up').shape[0]! }));
  const initialLora: TrainedLora = {
    rank: config.rank,
    alpha: config.alpha,
    modules: new Map(modules.map((m) => [m, { down: tensor(m, 'down').data, up: tensor(m, 'up').data.map((v) => Math.fround((v * config.rank) / config.alpha)) }])),
  };
  const pixels = kitNpy('target_pixels');
  const embedding = kitNpy('initial_embedding');
  const request = (overrides: Partial<FinetuneRequest> = {}): FinetuneRequest => ({
    model: loadModelFolder(FINETUNE_KIT_MODEL),
    targetPixels: { dims: pixels.shape as [number, 3, number, number], data: pixels.data as Float32Array },
    initialEmbedding: { dims: embedding.shape as [1, number, number], data: embedding.data as Float32Array },
    captionIds: config.caption_input_ids,
    targets,
    rank: config.rank,
    alpha: config.alpha,
    initialLora,
    steps: config.steps,
    lrLora: config.lr_lora,
    lrEmbedding: config.lr_embedding,
    weightDecay: config.weight_decay,
    seed: config.seed,
    ctxBeginPos: config.ctx_begin_pos,
    ...overrides,
  });
  return { config, targets, initialLora, request };
}
