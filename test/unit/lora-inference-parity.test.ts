/**
 * Generation with a LoRA and a given subject embedding through the engine (no built app): the
 * fine-tune kit's inference (README "Files": the trained LoRA loaded from pytorch_lora_weights.safetensors,
 * the trained embedding in place of get_query_embeddings, "on the beach", 4 PNDM steps, guidance 7.5,
 * 64², the kit's latents) at scales 1.0 and 0.5; scale 0 is no LoRA bit for bit; one built denoising
 * graph serves every strength; a kohya twin of the file gives the same image; misfits are refused.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EngineContext } from '../../main/engine/pipelines/engine-context';
import { generate, type GenerateRequest } from '../../main/engine/pipelines/generate';
import { kohyaName, LoraFileError, loraTargets, readLoraFile, type LoraWeights } from '../../main/engine/weights/lora-weights';
import { serializeSafetensors } from '../../main/engine/weights/safetensors-writer';
import { loadModelFolder } from '../../main/models/model-folder';
import { FINETUNE_KIT, FINETUNE_KIT_MODEL, finetuneKitConfig, kitFloat32 } from '../helpers/finetune-kit';
import { makeTempDir } from '../helpers/temp-dir';
import { startTestRuntime } from '../helpers/worker-bundle';

const config = finetuneKitConfig() as ReturnType<typeof finetuneKitConfig> & {
  inference_prompt: string;
  inference_steps: number;
  guidance_scale: number;
  lora_scales: number[];
  alpha: number;
  rank: number;
};
const model = loadModelFolder(FINETUNE_KIT_MODEL);
const targets = loraTargets(JSON.parse(readFileSync(join(FINETUNE_KIT_MODEL, 'unet/config.json'), 'utf8')));
const kitLoraBytes = new Uint8Array(readFileSync(join(FINETUNE_KIT, 'pytorch_lora_weights.safetensors')));
const kitLora = readLoraFile(kitLoraBytes, targets).lora;
const f32 = (values: Float32Array) => new Uint8Array(Float32Array.from(values).buffer);

let testRuntime: Awaited<ReturnType<typeof startTestRuntime>>;
let cache: ReturnType<typeof makeTempDir>;
let context: EngineContext;

beforeAll(async () => {
  testRuntime = await startTestRuntime();
  cache = makeTempDir('blip-lora-inference-');
  context = { runtime: testRuntime.runtime, device: 'cpu', cacheDir: cache.path };
});
afterAll(async () => {
  await testRuntime?.stop();
  cache?.remove();
});

/** The kit's inference request (README "Files"), with or without a LoRA. */
function kitRequest(lora?: { weights: LoraWeights; scale: number }): GenerateRequest {
  const embedding = kitFloat32('subject_embedding');
  return {
    model,
    subject: { embedding: { dims: [1, 16, embedding.length / 16], data: embedding } },
    targetSubject: config.category,
    prompt: config.inference_prompt,
    negativePrompt: '',
    steps: config.inference_steps,
    guidanceScale: config.guidance_scale,
    height: config.resolution,
    width: config.resolution,
    noise: { latents: kitFloat32('inference_latents') },
    scheduler: 'pndm',
    ...(lora ? { lora } : {}),
  };
}

function maxAbsDifference(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

/** Every file the graph cache holds (built graphs are cached on disk by key). */
function cachedFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? cachedFiles(path) : [path];
  });
}

describe('generate with the kit’s trained LoRA and subject embedding', () => {
  it('matches the reference at LoRA scales 1.0 and 0.5, from one built denoising graph', async () => {
    expect(config.lora_scales).toEqual([1, 0.5]);
    let filesAfterFirst: string[] = [];
    for (const scale of config.lora_scales) {
      const result = await generate(context, kitRequest({ weights: kitLora, scale }));
      const expected = kitFloat32(`inference_scale_${scale.toFixed(1)}`);
      expect(maxAbsDifference(result.image, expected), `scale ${scale}`).toBeLessThan(config.tolerances.image_max_abs);
      // The second strength is only another `lora_scale` feed: nothing new is built or cached.
      if (scale === config.lora_scales[0]) filesAfterFirst = cachedFiles(cache.path);
      else expect(cachedFiles(cache.path)).toEqual(filesAfterFirst);
    }
  });

  it('at scale 0 equals no LoRA exactly; the LoRA does change the image', async () => {
    const none = await generate(context, kitRequest());
    const zero = await generate(context, kitRequest({ weights: kitLora, scale: 0 }));
    expect(maxAbsDifference(zero.image, none.image)).toBe(0);
    // The kit's scale-1.0 image is not the plain one, so the parity above is not vacuous.
    expect(maxAbsDifference(kitFloat32('inference_scale_1.0'), none.image)).toBeGreaterThan(10 * config.tolerances.image_max_abs);
  });

  it('a kohya/A1111 file of the same LoRA (alpha ≠ rank) gives the same image as its diffusers twin', async () => {
    const alpha = 2 * config.rank;
    // kohya's update is alpha/r · up·down, so its up is the diffusers file's up · r / alpha (exact: a power of 2).
    const kohya = serializeSafetensors(
      [...kitLora.modules].flatMap(([module, adapter]) => [
        { name: `lora_unet_${kohyaName(module)}.lora_down.weight`, dtype: 'F32' as const, shape: [kitLora.rank, adapter.down.length / kitLora.rank], data: f32(adapter.down) },
        { name: `lora_unet_${kohyaName(module)}.lora_up.weight`, dtype: 'F32' as const, shape: [adapter.up.length / kitLora.rank, kitLora.rank], data: f32(adapter.up.map((v) => (v * kitLora.rank) / alpha)) },
        { name: `lora_unet_${kohyaName(module)}.alpha`, dtype: 'F32' as const, shape: [], data: f32(Float32Array.of(alpha)) },
      ]),
    );
    const read = readLoraFile(kohya, targets, { file: 'kohya.safetensors' });
    expect(read.format).toBe('kohya');
    const fromKohya = await generate(context, kitRequest({ weights: read.lora, scale: 1 }));
    const fromDiffusers = await generate(context, kitRequest({ weights: kitLora, scale: 1 }));
    expect(maxAbsDifference(fromKohya.image, fromDiffusers.image)).toBe(0);
    expect(maxAbsDifference(fromKohya.image, kitFloat32('inference_scale_1.0'))).toBeLessThan(config.tolerances.image_max_abs);
  });

  it('refuses a LoRA file whose shapes do not fit the model, naming the keys', async () => {
    const [first, second] = targets;
    const misfit = serializeSafetensors([
      { name: `unet.${first!.module}.lora.down.weight`, dtype: 'F32', shape: [4, 320], data: f32(new Float32Array(4 * 320)) },
      { name: `unet.${first!.module}.lora.up.weight`, dtype: 'F32', shape: [first!.outFeatures, 4], data: f32(new Float32Array(4 * first!.outFeatures)) },
      { name: `unet.${second!.module}.lora.down.weight`, dtype: 'F32', shape: [4, second!.inFeatures], data: f32(new Float32Array(4 * second!.inFeatures)) },
      { name: `unet.${second!.module}.lora.up.weight`, dtype: 'F32', shape: [640, 4], data: f32(new Float32Array(640 * 4)) },
    ]);
    let message = '';
    try {
      readLoraFile(misfit, targets, { file: 'sd15.safetensors' });
    } catch (error) {
      expect(error).toBeInstanceOf(LoraFileError);
      message = (error as Error).message;
    }
    expect(message).toMatch(/^sd15\.safetensors is not a LoRA for this model: /);
    expect(message).toContain(`'unet.${first!.module}.lora.down.weight' is [4, 320], but ${first!.module} reads ${first!.inFeatures} features`);
    expect(message).toContain(`'unet.${second!.module}.lora.up.weight' is [640, 4], but must be [${second!.outFeatures}, 4] for ${second!.module}`);
    // Tensors built in memory (not from a file) are checked by the pipeline too, before anything runs.
    const wrong: LoraWeights = { rank: 4, alpha: 4, modules: new Map([[first!.module, { down: new Float32Array(4 * 320), up: new Float32Array(4 * first!.outFeatures) }]]) };
    await expect(generate(context, kitRequest({ weights: wrong, scale: 1 }))).rejects.toThrow(`the LoRA does not fit this model's UNet: ${first!.module}`);
  });
});
