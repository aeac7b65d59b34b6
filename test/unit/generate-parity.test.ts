import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { generate, type GenerateProgress, type GenerateRequest } from '../../main/engine/pipelines/generate';
import { CancelledError, type EngineContext } from '../../main/engine/pipelines/engine-context';
import { readNpyFile } from '../../main/engine/io/npy-file';
import { loadModelFolder } from '../../main/models/model-folder';
import { REPO_ROOT } from '../helpers/built-app';
import { startTestRuntime } from '../helpers/worker-bundle';
import { makeTempDir } from '../helpers/temp-dir';

const kit = join(REPO_ROOT, 'test/fixtures/parity');
const float = (file: string) => readNpyFile(join(kit, file)).data as Float32Array;

let testRuntime: Awaited<ReturnType<typeof startTestRuntime>>;
let cache: ReturnType<typeof makeTempDir>;
let context: EngineContext;

beforeAll(async () => {
  testRuntime = await startTestRuntime();
  cache = makeTempDir('blip-generate-');
  context = { runtime: testRuntime.runtime, device: 'cpu', cacheDir: cache.path };
});
afterAll(async () => {
  await testRuntime?.stop();
  cache?.remove();
});

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

/** The kit's run (README "The run"), fed the kit's reference pixels and initial latents. */
function kitRequest(modelFolder: string): GenerateRequest {
  const pixels = readNpyFile(join(kit, 'blip/ref_pixel_values.npy'));
  return {
    model: loadModelFolder(join(kit, 'models', modelFolder)),
    subject: { image: { pixels: { dims: pixels.shape as [1, 3, number, number], data: pixels.data as Float32Array } }, category: 'dog' },
    targetSubject: 'puppy',
    prompt: 'swimming underwater',
    negativePrompt: '',
    steps: 4,
    guidanceScale: 7.5,
    height: 48,
    width: 32,
    noise: { latents: float('inputs/initial_latents.npy') },
    scheduler: 'pndm',
  };
}

describe('generate (BlipDiffusionPipeline) end to end from the kit’s inputs', () => {
  it('matches the kit’s latents after every step, the raw VAE output and output_image.npy', async () => {
    const progress: GenerateProgress[] = [];
    const result = await generate(context, kitRequest('tiny-blipdiffusion'), { onProgress: (p) => progress.push(p), keepRawDecode: true, previewEvery: 2 });
    expect([result.width, result.height]).toEqual([32, 48]);
    // PNDM with skip_prk_steps runs the UNet steps + 1 times (the 2nd timestep repeats).
    expect(progress.map((p) => p.modelCalls)).toEqual([1, 2, 3, 4, 5]);
    expect(progress.every((p) => p.totalModelCalls === 5 && p.totalSteps === 4)).toBe(true);
    // The user asked for 4 steps: progress counts those (5 calls scaled onto 4), ending at "4 of 4".
    expect(progress.map((p) => p.step)).toEqual([1, 2, 2, 3, 4]);
    expect(progress.map((p) => p.timestep)).toEqual([...float('blip/timesteps.npy')].map(Number));
    expect(progress.filter((p) => p.preview !== null).map((p) => p.modelCalls)).toEqual([2, 4, 5]);
    expect(progress[1]!.preview).toMatchObject({ width: 16, height: 24 });
    const expectedLatents = float('blip/latents_after_each_step.npy');
    const last = expectedLatents.subarray(expectedLatents.length - result.latents.length);
    expect(maxAbsDiff(result.latents, last)).toBeLessThanOrEqual(1e-4);
    expect(maxAbsDiff(result.rawDecode!, float('blip/vae_decoded.npy'))).toBeLessThanOrEqual(2e-3);
    expect(maxAbsDiff(result.image, float('blip/output_image.npy'))).toBeLessThanOrEqual(2e-3);
  });

  it('ControlNet pipeline: matches controlnet/output_image.npy with the kit’s control pixels', async () => {
    const control = readNpyFile(join(kit, 'controlnet/control_pixel_values.npy'));
    const request = { ...kitRequest('tiny-blipdiffusion-controlnet'), control: { pixels: { dims: control.shape as [1, 3, number, number], data: control.data as Float32Array } } };
    const result = await generate(context, request);
    expect(maxAbsDiff(result.image, float('controlnet/output_image.npy'))).toBeLessThanOrEqual(2e-3);
  });

  it('ControlNet pipeline from the PNG through our own resize gives the same image', async () => {
    const request = { ...kitRequest('tiny-blipdiffusion-controlnet'), control: { path: join(kit, 'inputs/control_image.png') } };
    const result = await generate(context, request);
    expect(maxAbsDiff(result.image, float('controlnet/output_image.npy'))).toBeLessThanOrEqual(2e-3);
  });

  it('is deterministic for a seed and differs between seeds', async () => {
    const base = { ...kitRequest('tiny-blipdiffusion'), steps: 2 };
    const a = await generate(context, { ...base, noise: { seed: 42 } });
    const b = await generate(context, { ...base, noise: { seed: 42 } });
    const c = await generate(context, { ...base, noise: { seed: 43 } });
    expect(b.image).toEqual(a.image);
    expect(maxAbsDiff(a.image, c.image)).toBeGreaterThan(0);
  });

  it('refuses bad sizes, a control image without a ControlNet, and stops when cancelled', async () => {
    await expect(generate(context, { ...kitRequest('tiny-blipdiffusion'), height: 47 })).rejects.toThrow(/height must be a positive multiple of 2/);
    await expect(generate(context, { ...kitRequest('tiny-blipdiffusion'), control: { path: join(kit, 'inputs/control_image.png') } })).rejects.toThrow(
      /control image needs a model with a ControlNet/,
    );
    await expect(generate(context, { ...kitRequest('tiny-blipdiffusion'), negativePrompt: 'word '.repeat(90) })).rejects.toThrow(/Shorten the negative prompt/);
    const controller = new AbortController();
    const cancelled = generate({ ...context, signal: controller.signal }, kitRequest('tiny-blipdiffusion'), {
      onProgress: (p) => {
        if (p.step === 2) controller.abort();
      },
    });
    await expect(cancelled).rejects.toBeInstanceOf(CancelledError);
  });
});
