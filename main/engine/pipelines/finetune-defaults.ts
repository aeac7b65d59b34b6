/**
 * What a fine-tune uses when the user does not say, shared by the CLI's `finetune` and the app's button:
 * - 80 steps, rank 4 (alpha = rank): the paper's quick personalisation is tens to a hundred steps;
 *   rank 4 keeps the file ~3 MB at SD-1.5 size (32 projections) and trains fast.
 * - LoRA lr 1e-4 (diffusers' DreamBooth-LoRA), embedding lr 1e-5 (it starts from the photos' own
 *   embedding and only needs nudging), weight decay 0.01 (torch's AdamW default).
 * - Resolution: the VAE's native sample size on a GPU (512 for SD-1.5), half of it on the CPU (256),
 *   where a 512² step costs several times as much memory and time.
 * - Micro-batch: one photo per training run on the CPU (memory), all photos at once on a GPU.
 */
import { parseAutoencoderKLConfig, vaeScaleFactor } from '../nets/vae-config';
import { requireComponent, type ModelFolder } from './model-folder';

export const FINETUNE_DEFAULTS = Object.freeze({ steps: 80, rank: 4, lrLora: 1e-4, lrEmbedding: 1e-5, weightDecay: 0.01 });

/** The default training resolution for a model on a provider. */
export function defaultFinetuneResolution(model: ModelFolder, device: string): number {
  const config = requireComponent(model, 'vae').config;
  const factor = vaeScaleFactor(parseAutoencoderKLConfig(config));
  const sampleSize = config['sample_size'];
  const native = typeof sampleSize === 'number' && sampleSize > 0 ? sampleSize : 512;
  const size = device === 'cpu' ? native / 2 : native;
  return Math.max(factor, Math.round(size / factor) * factor);
}

/** The default micro-batch (photos per training run) on a provider. */
export function defaultMicroBatch(device: string, photoCount: number): number {
  return device === 'cpu' ? 1 : photoCount;
}

/** What a fine-tune writes (diffusers' LoRA file name) and the trained embedding beside it. */
export const FINETUNE_FILES = { lora: 'pytorch_lora_weights.safetensors', embedding: 'subject_embedding.npy' } as const;
