/**
 * Full BLIP-Diffusion model folders at the real checkpoints' shapes with random weights, for the engine
 * benchmark: `<cache>/blipdiffusion-real/` (BlipDiffusionPipeline) and `<cache>/blipdiffusion-controlnet-real/`
 * (BlipDiffusionControlNetPipeline: the same components, hard-linked, plus a canny ControlNet).
 * Written once (~6.2 GB of weights, plus 1.4 GB for the ControlNet) and reused.
 *
 * The tokenizer: the real CLIP vocabulary (49408 tokens) is not available offline, so the folder gets the
 * parity kit's tiny CLIP BPE files. Its ids are all below 49408, so the real-size text encoder runs on
 * them at the real sequence length (77): right for timing, meaningless as text.
 */
import { copyFileSync, existsSync, linkSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureRandomComponent } from './random-weights';

export const REAL_MODEL = 'blipdiffusion-real';
export const REAL_CONTROLNET_MODEL = 'blipdiffusion-controlnet-real';
/** The embedding benchmark's copy of the Q-Former, linked rather than generated twice. */
export const EMBEDDING_QFORMER = { id: 'blipdiffusion-qformer', folder: 'qformer' };

export interface RealModelPaths {
  realShapesDir: string;
  cacheDir: string;
  /** A folder with the CLIP tokenizer files (vocab.json, merges.txt, …) to use for the real text encoder. */
  tokenizerDir: string;
  onProgress?: (message: string) => void;
}

export interface RealModelFolders {
  /** BlipDiffusionPipeline */
  base: string;
  /** BlipDiffusionControlNetPipeline */
  controlnet: string;
  weightsBytes: Record<string, number>;
}

/** The weights components, with the file name each library saves them under. */
const WEIGHTS = [
  { id: 'blipdiffusion-text_encoder', folder: 'text_encoder', weightsFile: 'model.safetensors' },
  { id: 'blipdiffusion-vae', folder: 'vae', weightsFile: 'diffusion_pytorch_model.safetensors' },
  { id: 'blipdiffusion-unet', folder: 'unet', weightsFile: 'diffusion_pytorch_model.safetensors' },
] as const;
const CONTROLNET = { id: 'controlnet-canny', folder: 'controlnet', weightsFile: 'diffusion_pytorch_model.safetensors' } as const;
/** Config-only components: copied from the real configs. */
const CONFIGS = [
  { folder: 'scheduler', file: 'scheduler_config.json' },
  { folder: 'image_processor', file: 'preprocessor_config.json' },
] as const;
const TOKENIZER_FILES = ['vocab.json', 'merges.txt', 'tokenizer_config.json', 'special_tokens_map.json'];

export async function ensureRealModelFolders(paths: RealModelPaths): Promise<RealModelFolders> {
  const configs = join(paths.realShapesDir, 'configs');
  const base = join(paths.cacheDir, REAL_MODEL);
  const controlnet = join(paths.cacheDir, REAL_CONTROLNET_MODEL);
  const say = paths.onProgress ?? (() => undefined);

  // Q-Former: reuse the embedding benchmark's file (a hard link costs no space).
  const qformerSource = await ensureRandomComponent(paths.realShapesDir, paths.cacheDir, EMBEDDING_QFORMER);
  linkComponent(qformerSource, join(base, 'qformer'));
  for (const [index, component] of WEIGHTS.entries()) {
    if (!existsSync(join(base, component.folder, component.weightsFile))) say(`writing random ${component.folder} weights at the real shapes (once)…`);
    // Distinct seeds per component: ORT would share identical initializers and flatter the memory figures.
    await ensureRandomComponent(paths.realShapesDir, paths.cacheDir, { ...component, model: REAL_MODEL, seedOffset: (index + 1) * 1_000_003 });
  }
  for (const { folder, file } of CONFIGS) copyInto(join(configs, 'blipdiffusion', folder, file), join(base, folder));
  writeTokenizer(paths.tokenizerDir, join(base, 'tokenizer'));
  copyInto(join(configs, 'blipdiffusion', 'model_index.json'), base);

  // The ControlNet pipeline: the same components plus controlnet/.
  for (const folder of ['qformer', 'text_encoder', 'vae', 'unet', 'tokenizer', 'scheduler']) linkComponent(join(base, folder), join(controlnet, folder));
  copyInto(join(configs, 'blipdiffusion-controlnet', 'image_processor', 'preprocessor_config.json'), join(controlnet, 'image_processor'));
  if (!existsSync(join(controlnet, CONTROLNET.folder, CONTROLNET.weightsFile))) say('writing random controlnet weights at the real shapes (once)…');
  await ensureRandomComponent(paths.realShapesDir, paths.cacheDir, { ...CONTROLNET, model: REAL_CONTROLNET_MODEL, seedOffset: 7 * 1_000_003 });
  copyInto(join(configs, 'blipdiffusion-controlnet', 'model_index.json'), controlnet);

  const weightsBytes: Record<string, number> = {};
  for (const folder of ['qformer', ...WEIGHTS.map((w) => w.folder)]) weightsBytes[folder] = folderBytes(join(base, folder));
  weightsBytes.controlnet = folderBytes(join(controlnet, 'controlnet'));
  return { base, controlnet, weightsBytes };
}

/** The tokenizer files plus a note saying they are not the real vocabulary. */
export function writeTokenizer(sourceDir: string, target: string): void {
  mkdirSync(target, { recursive: true });
  for (const file of TOKENIZER_FILES) copyInto(join(sourceDir, file), target);
  const note = {
    note: 'Benchmark stand-in: the parity kit’s tiny CLIP BPE vocabulary, not SD-1.5’s (49408 tokens, not available offline). Every id it produces is below the real text encoder’s vocab_size, so the encoder runs at its real size and sequence length; the text itself means nothing.',
    source: sourceDir,
  };
  writeFileSync(join(target, 'BENCH-README.json'), `${JSON.stringify(note, null, 2)}\n`);
}

/** Copies a file into a folder unless it is already there. */
export function copyInto(file: string, folder: string): void {
  mkdirSync(folder, { recursive: true });
  const target = join(folder, file.split(/[\\/]/).pop()!);
  if (!existsSync(target)) copyFileSync(file, target);
}

/**
 * Mirrors a component folder's files with hard links (a copy where links are impossible). Symbolic
 * links would not do: ORT resolves them and refuses external data outside the session's folder.
 */
export function linkComponent(source: string, target: string): void {
  mkdirSync(target, { recursive: true });
  for (const name of readdirSync(source)) {
    const from = join(source, name);
    const to = join(target, name);
    if (name.endsWith('.partial') || existsSync(to) || !statSync(from).isFile()) continue;
    try {
      linkSync(from, to);
    } catch {
      copyFileSync(from, to);
    }
  }
}

function folderBytes(folder: string): number {
  return readdirSync(folder)
    .filter((name) => name.endsWith('.safetensors'))
    .reduce((sum, name) => sum + statSync(join(folder, name)).size, 0);
}

/** The CLIP tokenizer folder the bench uses by default: the parity kit's tiny pipeline's, beside the real-shapes lists. */
export function defaultTokenizerDir(realShapesDir: string): string {
  return join(realShapesDir, '..', 'models', 'tiny-blipdiffusion', 'tokenizer');
}
