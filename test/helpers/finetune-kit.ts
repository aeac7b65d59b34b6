/**
 * The fine-tune parity kit (`test/fixtures/parity/finetune/`, a verbatim copy of shared/parity/finetune):
 * its config, its .npy files by step, and the relative-L2 metric its tolerances are stated in.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readNpyFile } from '../../main/engine/io/npy-file';
import type { NpyArray } from '../../main/engine/io/npy';
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
