/**
 * DDIM inversion of a photo, as LAVIS's BLIP-Diffusion editing runs it (docs/edit-reference.md):
 *
 *   x = RGB/255·2 − 1  →  latents0 = vae.encode(x).latent_dist.mean × scaling_factor
 *   for t in DDIMInverseScheduler(EDIT_DDIM_CONFIG).timesteps (ascending):
 *       x = inverse.step(unet(x, t, text("a {sourceSubject} {prompt}")), t, x)      (guidance 1)
 *
 * The prompt is encoded by the plain text encoder (no subject tokens), padded to 77, without repetition.
 * The whole trajectory is kept: the edit replaces the latents outside its mask with trajectory[N − 1 − i]
 * after its denoising step i. The UNet is the edit's own (a LoRA given here applies, as LAVIS inverts with
 * its fine-tuned UNet); no ControlNet (LAVIS's inversion has none).
 */
import { parseAutoencoderKLConfig } from '../nets/vae-config';
import { buildVaeEncoderGraph, VAE_ENCODER_INPUTS, VAE_ENCODER_OUTPUTS, vaeEncoderGraphKey } from '../nets/vae';
import { GUIDED_STEP_INPUTS, GUIDED_STEP_OUTPUTS } from '../nets/unet-step';
import type { RgbImage } from '../imaging/decode';
import type { TensorValue } from '../runtime/runtime-protocol';
import { DdimInverseScheduler, editSchedulerConfig } from '../schedulers/ddim-inverse';
import { parseSchedulerConfig } from '../schedulers/scheduler-config';
import { assertFinite, componentCatalog, openStage, resolveDevice, throwIfAborted, type EngineContext } from './engine-context';
import { generationGeometry, loraFeeds, openDenoiser, type GenerateRequest, type Geometry } from './generate';
import { requireComponent, type ModelFolder } from './model-folder';
import { encodeNegativePrompt } from './text-embeddings';

/** LAVIS's `num_inversion_steps`. */
export const INVERSION_DEFAULT_STEPS = 50;

export interface InvertRequest {
  model: ModelFolder;
  /** The photo, already at the output size (a multiple of the latent factor): RGB bytes. */
  image: RgbImage;
  /** The word for what the photo shows (LAVIS's `src_subject`), e.g. "dog". */
  sourceSubject: string;
  /** The prompt without the subject word (the edit's prompt); the inversion encodes "a {sourceSubject} {prompt}". */
  prompt: string;
  steps?: number;
  /** Run only the first k inverse steps (an edit at a strength < 1 needs trajectory[0..k]); default all. */
  stopAfter?: number;
  /** The edit's LoRA (the subject's fine-tune), applied in the inversion's UNet too. */
  lora?: GenerateRequest['lora'];
}

export interface InversionProgress {
  step: number;
  totalSteps: number;
  timestep: number;
}

export interface InversionResult {
  device: string;
  width: number;
  height: number;
  /** The VAE posterior mean × scaling_factor [1, C, h, w]. */
  latents0: Float32Array;
  /** trajectory[k]: the latents after k inverse steps; trajectory[0] = latents0, trajectory[N] is the start of the denoising. */
  trajectory: Float32Array[];
  /** The inverse scheduler's timesteps, ascending (the UNet's timestep of step k is timesteps[k]). */
  timesteps: number[];
}

/** The inversion's prompt: LAVIS `_build_prompt(prompt, src_subject, prompt_strength=1, prompt_reps=1)`. */
export function inversionPrompt(sourceSubject: string, prompt: string): string {
  return `a ${sourceSubject} ${prompt.trim()}`;
}

/** RGB bytes → [1, 3, H, W] in [−1, 1] as LAVIS's ToTensor()·2 − 1 (x/255 rounded to float32, then ·2 − 1). */
export function rgbToSignedPixels(image: RgbImage): Float32Array {
  const { width, height, data } = image;
  if (data.length !== width * height * 3) throw new Error(`the image has ${data.length} bytes; ${width}×${height} RGB needs ${width * height * 3}`);
  const plane = width * height;
  const out = new Float32Array(3 * plane);
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < 3; c++) out[c * plane + p] = Math.fround(Math.fround(data[3 * p + c]! / 255) * 2 - 1);
  }
  return out;
}

/** latent_dist.mean × scaling_factor for one image of the output size. */
export async function encodeImageLatents(context: EngineContext, model: ModelFolder, image: RgbImage, geometry: Geometry): Promise<Float32Array> {
  if (image.width !== geometry.width || image.height !== geometry.height) {
    throw new Error(`the image is ${image.width}×${image.height}; this edit needs ${geometry.width}×${geometry.height} (resize it first)`);
  }
  const vae = requireComponent(model, 'vae');
  const weights = await componentCatalog(context, vae);
  const graphOptions = { batch: 1, height: geometry.height, width: geometry.width };
  const session = await openStage(context, 'The VAE encoder', weights.externalDataFolder, {
    forKernels: (kernels) => ({
      cacheKey: vaeEncoderGraphKey(vae.config, weights.catalog, { ...graphOptions, ...kernels }),
      build: () => buildVaeEncoderGraph(vae.config, weights.catalog, { ...graphOptions, ...kernels }),
    }),
    optimization: 'extended',
  });
  try {
    const outputs = await session.run({ [VAE_ENCODER_INPUTS.image]: { type: 'float32', dims: [1, 3, geometry.height, geometry.width], data: rgbToSignedPixels(image) } });
    const mean = outputs[VAE_ENCODER_OUTPUTS.mean]?.data as Float32Array | undefined;
    if (!mean) throw new Error('the VAE encoder graph returned no mean');
    const scale = Math.fround(parseAutoencoderKLConfig(vae.config).scalingFactor);
    return mean.map((m) => Math.fround(m * scale));
  } finally {
    await session.release();
  }
}

export async function invertImage(requested: EngineContext, request: InvertRequest, onProgress?: (progress: InversionProgress) => void): Promise<InversionResult> {
  const device = await resolveDevice(requested);
  const context: EngineContext = { ...requested, device };
  const { model } = request;
  const steps = request.steps ?? INVERSION_DEFAULT_STEPS;
  if (!Number.isInteger(steps) || steps < 1 || steps > 1000) throw new Error(`inversion steps must be an integer from 1 to 1000 (got ${steps})`);
  const stopAfter = request.stopAfter ?? steps;
  if (!Number.isInteger(stopAfter) || stopAfter < 1 || stopAfter > steps) throw new Error(`stopAfter must be an integer from 1 to ${steps} (got ${stopAfter})`);
  const geometry = generationGeometry(model, request.image.height, request.image.width);
  const latents0 = await encodeImageLatents(context, model, request.image, geometry);
  throwIfAborted(context.signal);

  const text = await encodeNegativePrompt(context, model, inversionPrompt(request.sourceSubject, request.prompt));
  const [, textLength, width] = text.dims;
  // Guidance 1 in the guided graph: both rows carry the prompt, and u + 1·(c − u) is the prompt's prediction.
  const both = new Float32Array(2 * text.data.length);
  both.set(text.data, 0);
  both.set(text.data, text.data.length);

  const scheduler = new DdimInverseScheduler(editSchedulerConfig(parseSchedulerConfig(requireComponent(model, 'scheduler').config)));
  scheduler.setTimesteps(steps);
  const latentShape = [1, geometry.latentChannels, geometry.latentHeight, geometry.latentWidth];
  const denoiser = await openDenoiser(context, { model, ...(request.lora ? { lora: request.lora } : {}) }, geometry, textLength);
  const constantFeeds: Record<string, TensorValue> = {
    ...loraFeeds(request),
    [GUIDED_STEP_INPUTS.encoderHiddenStates]: { type: 'float32', dims: [2, textLength, width], data: both },
    [GUIDED_STEP_INPUTS.guidanceScale]: { type: 'float32', dims: [1], data: Float32Array.of(1) },
  };
  const trajectory: Float32Array[] = [latents0];
  let latents = latents0;
  try {
    for (const [index, timestep] of scheduler.timesteps.entries()) {
      if (index >= stopAfter) break;
      throwIfAborted(context.signal);
      const outputs = await denoiser.run({
        ...constantFeeds,
        [GUIDED_STEP_INPUTS.sample]: { type: 'float32', dims: latentShape, data: latents },
        [GUIDED_STEP_INPUTS.timestep]: { type: 'float32', dims: [1], data: Float32Array.of(timestep) },
      });
      const noisePred = outputs[GUIDED_STEP_OUTPUTS.noisePred];
      if (!noisePred) throw new Error('the denoising graph returned no noise prediction');
      latents = scheduler.step(noisePred.data as Float32Array, timestep, latents).prevSample;
      assertFinite(`The inversion (step ${index + 1})`, { latents: { type: 'float32', dims: latentShape, data: latents } });
      trajectory.push(latents);
      onProgress?.({ step: index + 1, totalSteps: stopAfter, timestep });
    }
  } finally {
    await denoiser.release();
  }
  return { device, width: geometry.width, height: geometry.height, latents0, trajectory, timesteps: [...scheduler.timesteps] };
}
