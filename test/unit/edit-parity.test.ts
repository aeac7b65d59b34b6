/**
 * Subject-driven editing against the reference (test/fixtures/edit, scripts/reference-edit.py: diffusers
 * 0.25.1's DDIMInverseScheduler/DDIMScheduler, UNet and VAE on the parity kit's tiny model, configured as
 * LAVIS's editing), stage by stage, on the CPU provider; plus the mask helpers, the paste-back guarantee,
 * strength, LoRA pass-through and a held-out model shape.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { featherMask, latentMask, pasteBack } from '../../main/engine/imaging/paste-back';
import { blendLatents, editImage, editStepsRun } from '../../main/engine/pipelines/edit';
import type { EngineContext } from '../../main/engine/pipelines/engine-context';
import { generationGeometry } from '../../main/engine/pipelines/generate';
import { invertImage, rgbToSignedPixels } from '../../main/engine/pipelines/invert';
import { loadModelFolder } from '../../main/models/model-folder';
import { writeTinyModel } from '../../main/models/tiny-model';
import { loraTargets } from '../../main/engine/weights/lora-weights';
import { embedSubject } from '../../main/engine/pipelines/subject-embedding';
import { REPO_ROOT } from '../helpers/built-app';
import { editBytes, editFloat, editManifest, editMask, expectEditStagesMatch, kitEditRequest, maxAbsDiff, runEditStages, type EditStages } from '../helpers/edit-fixtures';
import { makeTempDir } from '../helpers/temp-dir';
import { startTestRuntime } from '../helpers/worker-bundle';

let testRuntime: Awaited<ReturnType<typeof startTestRuntime>>;
let cache: ReturnType<typeof makeTempDir>;
let context: EngineContext;
let stages: EditStages;

beforeAll(async () => {
  testRuntime = await startTestRuntime();
  cache = makeTempDir('blip-edit-');
  context = { runtime: testRuntime.runtime, device: 'cpu', cacheDir: cache.path };
  stages = await runEditStages(context);
}, 240_000);
afterAll(async () => {
  await testRuntime?.stop();
  cache?.remove();
});

describe('edit masks and paste-back (pure)', () => {
  it('the feathered and latent masks are the reference’s', async () => {
    const mask = await editMask();
    expect(maxAbsDiff(mask, editFloat('mask_feathered'))).toBe(0);
    const { width, height, latent_factor: factor } = editManifest.run;
    expect([...latentMask(mask, width, height, factor)]).toEqual([...editFloat('mask_latent')]);
    // Zero wherever nothing was painted.
    const painted = Float32Array.from({ length: 12 }, (_, i) => (i % 4 >= 2 ? 1 : 0));
    const feathered = featherMask(painted, 4, 3, 1);
    for (let i = 0; i < 12; i++) if (painted[i] === 0) expect(feathered[i]).toBe(0);
  });

  it('pasteBack keeps the original bytes where m = 0 and takes the edit where m = 1', () => {
    const original = { width: 2, height: 1, data: Uint8Array.of(10, 20, 30, 40, 50, 60) };
    const edited = { width: 2, height: 1, data: Uint8Array.of(200, 201, 202, 203, 204, 205) };
    expect([...pasteBack(original, edited, Float32Array.of(0, 1)).data]).toEqual([10, 20, 30, 203, 204, 205]);
    expect([...pasteBack(original, edited, Float32Array.of(0.5, 0)).data]).toEqual([105, 111, 116, 40, 50, 60]);
    expect(() => pasteBack(original, edited, Float32Array.of(0, 2))).toThrow(/\[0, 1\]/);
  });

  it('blendLatents is x_src + m·(x − x_src) with the mask over channels; strength → steps run', () => {
    const x = Float32Array.of(1, 2, 3, 4);
    const src = Float32Array.of(9, 9, 9, 9);
    expect([...blendLatents(x, src, Float32Array.of(1, 0))]).toEqual([1, 9, 3, 9]);
    expect(editStepsRun(10, 1)).toBe(10);
    expect(editStepsRun(10, 0.55)).toBe(5);
    expect(() => editStepsRun(10, 0.05)).toThrow(/runs no step/);
    expect(() => editStepsRun(10, 0)).toThrow(/strength/);
  });

  it('source pixels are the reference’s x/255·2 − 1', async () => {
    const request = await kitEditRequest();
    expect(maxAbsDiff(rgbToSignedPixels(request.source), editFloat('source_pixel_values'))).toBe(0);
  });
});

describe('edit parity with the reference (CPU)', () => {
  it('every stage within the manifest’s tolerances: inversion, reconstruction, masked edit, paste-back', async ({ annotate }) => {
    const checks = expectEditStagesMatch(stages);
    await annotate(Object.entries(checks).map(([k, c]) => `${k}: ${c.gap.toExponential(2)} ≤ ${c.bound.toExponential(2)}`).join('; '));
  });

  it('pixels where the feathered mask is 0 are the source’s bytes exactly', async () => {
    const mask = await editMask();
    const source = editBytes('source_u8');
    let kept = 0;
    for (let p = 0; p < mask.length; p++) {
      if (mask[p] !== 0) continue;
      kept++;
      for (let c = 0; c < 3; c++) expect(stages.edit.pasted.data[3 * p + c]).toBe(source[3 * p + c]);
    }
    expect(kept).toBeGreaterThan(1000);
    // ... and the edit did change the masked region.
    expect(maxAbsDiff(stages.edit.pasted.data, source)).toBeGreaterThan(0);
  });

  it('latents outside the latent mask follow the inverted trajectory at every step', () => {
    const cells = stages.edit.latentMask;
    const n = editManifest.run.steps;
    for (const [i, latents] of stages.editLatents.entries()) {
      const src = stages.edit.inversion.trajectory[n - 1 - i]!;
      for (let k = 0; k < latents.length; k++) if (cells[k % cells.length] === 0) expect(latents[k]).toBe(src[k]);
    }
  });

  it('strength < 1 starts from the trajectory at that level and runs only those steps', async () => {
    const request = await kitEditRequest();
    const steps: number[] = [];
    const result = await editImage(context, { ...request, strength: 0.5 }, { onLatents: (i) => steps.push(i) });
    expect(result.startStep).toBe(5);
    expect(steps).toEqual([5, 6, 7, 8, 9]);
    expect(result.inversion.trajectory.length).toBe(6);
    // The masked-out latents end at the source's latents, as at strength 1.
    const cells = result.latentMask;
    const source = result.inversion.latents0;
    for (let k = 0; k < result.latents.length; k++) if (cells[k % cells.length] === 0) expect(result.latents[k]).toBe(source[k]);
  });

  it('a LoRA at scale 0 is the plain edit; at another scale it changes the edit and the inversion', async () => {
    const request = await kitEditRequest();
    const module = 'down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k';
    const target = loraTargets(request.model.components.get('unet')!.config).find((t) => t.module === module)!;
    const rank = 2;
    const weights = {
      rank,
      alpha: rank,
      modules: new Map([[module, { down: Float32Array.from({ length: rank * target.inFeatures }, (_, i) => Math.sin(i) * 0.5), up: Float32Array.from({ length: target.outFeatures * rank }, (_, i) => Math.cos(i) * 0.5) }]]),
    };
    const off = await editImage(context, { ...request, steps: 3, lora: { weights, scale: 0 } });
    const plain = await editImage(context, { ...request, steps: 3 });
    expect(off.latents).toEqual(plain.latents);
    const on = await editImage(context, { ...request, steps: 3, lora: { weights, scale: 1 } });
    expect(maxAbsDiff(on.inversion.trajectory[3]!, plain.inversion.trajectory[3]!)).toBeGreaterThan(0);
    expect(maxAbsDiff(on.latents, plain.latents)).toBeGreaterThan(0);
  });

  it('a ControlNet map passes through to the denoising (not the inversion); outside the mask the photo stays', async () => {
    const request = await kitEditRequest('tiny-blipdiffusion-controlnet');
    const { width, height } = editManifest.run;
    // A control image at the output size in [0, 1] (a vertical edge).
    const control = Float32Array.from({ length: 3 * width * height }, (_, i) => (i % width < width / 2 ? 0 : 1));
    const plain = await editImage(context, { ...request, steps: 3 });
    const controlled = await editImage(context, { ...request, steps: 3, control: { pixels: { dims: [1, 3, height, width], data: control } } });
    expect(controlled.inversion.trajectory[3]).toEqual(plain.inversion.trajectory[3]);
    expect(maxAbsDiff(controlled.latents, plain.latents)).toBeGreaterThan(0);
    const mask = request.mask;
    for (let p = 0; p < mask.length; p++) if (mask[p] === 0) for (let c = 0; c < 3; c++) expect(controlled.pasted.data[3 * p + c]).toBe(request.source.data[3 * p + c]);
  });

  it('refuses a mask or photo of the wrong size', async () => {
    const request = await kitEditRequest();
    await expect(editImage(context, { ...request, mask: new Float32Array(10) })).rejects.toThrow(/the mask has 10 values/);
    await expect(editImage(context, { ...request, source: { width: 31, height: 48, data: new Uint8Array(31 * 48 * 3) }, mask: new Float32Array(31 * 48) })).rejects.toThrow(/multiple of/);
    // A previous inversion that does not fit (another size, or too few steps) is refused before any net runs.
    const inversion = { device: 'cpu', width: request.source.width, height: request.source.height, latents0: new Float32Array(0), trajectory: [new Float32Array(0)], timesteps: [1, 2] };
    await expect(editImage(context, { ...request, inversion })).rejects.toThrow(/the given inversion .* does not fit/);
  });
});

describe('held-out model shape (make-tiny-model)', () => {
  it('inverts and edits on a differently shaped model: shapes follow the config, masked-out latents end at the photo’s', async () => {
    const dir = makeTempDir('blip-edit-heldout-');
    try {
      writeTinyModel(dir.path, 5);
      const model = loadModelFolder(dir.path);
      const geometry = generationGeometry(model);
      const request = await kitEditRequest();
      // The photo and mask at this model's default size (nearest resampling is enough for a shape check).
      const { width, height } = geometry;
      const src = request.source;
      const data = new Uint8Array(width * height * 3);
      for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) for (let c = 0; c < 3; c++) data[3 * (y * width + x) + c] = src.data[3 * (Math.floor((y * src.height) / height) * src.width + Math.floor((x * src.width) / width)) + c]!;
      const mask = Float32Array.from({ length: width * height }, (_, p) => (p % width < width / 2 ? 1 : 0));
      const inversion = await invertImage(context, { model, image: { width, height, data }, sourceSubject: 'dog', prompt: 'on a beach', steps: 3 });
      expect(inversion.trajectory).toHaveLength(4);
      expect(inversion.latents0.length).toBe(geometry.latentChannels * geometry.latentHeight * geometry.latentWidth);
      const { subject: _subject, model: _model, source: _source, mask: _mask, ...rest } = request;
      const embedding = await embedSubject(context, { model, subject: 'dog', image: { path: join(REPO_ROOT, 'test/fixtures/parity/inputs/reference_image.png') } });
      const result = await editImage(context, { ...rest, model, subject: { embedding }, steps: 3, source: { width, height, data }, mask });
      const cells = result.latentMask;
      for (let k = 0; k < result.latents.length; k++) if (cells[k % cells.length] === 0) expect(result.latents[k]).toBe(result.inversion.latents0[k]);
      for (let p = 0; p < mask.length; p++) if (mask[p] === 0) for (let c = 0; c < 3; c++) expect(result.pasted.data[3 * p + c]).toBe(data[3 * p + c]);
    } finally {
      dir.remove();
    }
  }, 120_000);
});
