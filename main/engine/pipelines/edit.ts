/**
 * Subject-driven editing of a photo with a painted mask (docs/edit-reference.md):
 *
 *   1. DDIM inversion of the photo (invert.ts): trajectory[0..N], trajectory[0] = the VAE latents.
 *   2. The generate loop (generate.ts, the one denoising loop) from trajectory[N − s] with DDIM in
 *      LAVIS's edit config, the request's subject, prompt, guidance, LoRA and ControlNet, and a per-step
 *      hook: after step i the latents outside the latent mask are the inversion's at the same noise level,
 *      x = x_src + m·(x − x_src) with x_src = trajectory[N − 1 − i] (LAVIS's LocalBlend formula, the
 *      painted mask in place of the attention mask, the inverted trajectory in place of LAVIS's
 *      reconstruction branch).
 *   3. VAE decode, then the feathered paste-back in pixel space (imaging/paste-back.ts): pixels where the
 *      feathered mask is 0 are the source's bytes exactly.
 * s = min(⌊N·strength⌋, N) steps run (strength 1: all N, as LAVIS; below 1 the start is the trajectory's
 * latent at that level, diffusers' img2img rule).
 */
import type { RgbImage } from '../imaging/decode';
import { floatImageToRgb } from '../imaging/encode';
import { latentMask, pasteBack } from '../imaging/paste-back';
import { EDIT_DDIM_CONFIG } from '../schedulers/ddim-inverse';
import type { EngineContext } from './engine-context';
import { generate, generationGeometry, GENERATE_DEFAULTS, type GenerateOptions, type GenerateRequest, type GenerateResult } from './generate';
import { invertImage, type InversionProgress, type InversionResult } from './invert';

export interface EditRequest extends Omit<GenerateRequest, 'noise' | 'scheduler' | 'height' | 'width'> {
  /** The photo to edit, at the output size (a multiple of the model's latent factor): RGB bytes. */
  source: RgbImage;
  /** What the photo shows (LAVIS's `src_subject`, the inversion prompt's word); default `targetSubject`. */
  sourceSubject?: string;
  /** The feathered mask, H×W row-major in [0, 1] (imaging/paste-back.ts `featherMask`): 1 = edit, 0 = keep. */
  mask: Float32Array;
  /** The fraction of the steps that run, in (0, 1] (default 1: the whole inverted trajectory). */
  strength?: number;
  /**
   * The photo's inversion from before (same photo, steps and LoRA), so editing it again with another
   * prompt or mask skips the inversion; it must reach at least as many steps as the edit runs.
   */
  inversion?: InversionResult;
}

export interface EditOptions extends Omit<GenerateOptions, 'afterStep' | 'startStep' | 'schedulerOverrides'> {
  onInversionProgress?: (progress: InversionProgress) => void;
  /** Sees the latents after each denoising step's blend (index into the N steps); for checks and previews. */
  onLatents?: (index: number, latents: Float32Array) => void;
}

export interface EditResult extends GenerateResult {
  /** The decoded edit as bytes (numpy_to_pil's rounding), before the paste-back. */
  edited: RgbImage;
  /** The result: the source outside the mask, the edit inside, blended by the feathered mask. */
  pasted: RgbImage;
  /** The latent-size mask the loop used [h, w] (1 = the edit's latents, 0 = the inversion's). */
  latentMask: Float32Array;
  inversion: InversionResult;
  /** Index of the first denoising step run (0 at strength 1). */
  startStep: number;
}

/** How many of `steps` an edit at `strength` runs (diffusers' img2img `init_timestep`), ≥ 1. */
export function editStepsRun(steps: number, strength: number): number {
  if (!(Number.isFinite(strength) && strength > 0 && strength <= 1)) throw new Error(`the strength must be in (0, 1] (got ${strength})`);
  const run = Math.min(Math.floor(steps * strength), steps);
  if (run < 1) throw new Error(`strength ${strength} with ${steps} steps runs no step; raise one of them`);
  return run;
}

/** x = x_src + m·(x − x_src) per latent value, the mask broadcast over channels (float32 as torch). */
export function blendLatents(latents: Float32Array, source: Float32Array, mask: Float32Array): Float32Array {
  if (latents.length !== source.length || latents.length % mask.length !== 0) throw new Error(`latents (${latents.length}), source (${source.length}) and mask (${mask.length}) do not fit`);
  const plane = mask.length;
  const f = Math.fround;
  return latents.map((x, i) => f(source[i]! + f(mask[i % plane]! * f(x - source[i]!))));
}

export async function editImage(context: EngineContext, request: EditRequest, options: EditOptions = {}): Promise<EditResult> {
  const { model, source, mask } = request;
  const geometry = generationGeometry(model, source.height, source.width);
  if (mask.length !== source.width * source.height) throw new Error(`the mask has ${mask.length} values; the ${source.width}×${source.height} photo needs ${source.width * source.height}`);
  const steps = request.steps ?? GENERATE_DEFAULTS.steps;
  const run = editStepsRun(steps, request.strength ?? 1);
  const startStep = steps - run;
  const factor = source.width / geometry.latentWidth;
  const cells = latentMask(mask, source.width, source.height, factor);

  const inversion =
    request.inversion ??
    (await invertImage(
      context,
      { model, image: source, sourceSubject: request.sourceSubject ?? request.targetSubject, prompt: request.prompt, steps, stopAfter: run, ...(request.lora ? { lora: request.lora } : {}) },
      options.onInversionProgress,
    ));
  if (inversion.trajectory.length < run + 1 || inversion.width !== source.width || inversion.height !== source.height || inversion.timesteps.length !== steps) {
    throw new Error(`the given inversion (${inversion.width}×${inversion.height}, ${inversion.timesteps.length} steps, ${inversion.trajectory.length - 1} run) does not fit this ${source.width}×${source.height} edit of ${steps} steps (${run} run)`);
  }
  const { trajectory } = inversion;
  const { source: _source, sourceSubject: _word, mask: _mask, strength: _strength, inversion: _inversion, ...generateFields } = request;
  const { onInversionProgress: _inversionProgress, onLatents, ...generateOptions } = options;
  const result = await generate(
    context,
    { ...generateFields, height: source.height, width: source.width, scheduler: 'ddim', noise: { latents: trajectory[run]! } },
    {
      ...generateOptions,
      schedulerOverrides: EDIT_DDIM_CONFIG,
      startStep,
      afterStep: (index, _timestep, latents) => {
        const blended = blendLatents(latents, trajectory[steps - 1 - index]!, cells);
        onLatents?.(index, blended);
        return blended;
      },
    },
  );
  const edited = floatImageToRgb(result.image, result.width, result.height);
  return { ...result, edited, pasted: pasteBack(source, edited, mask), latentMask: cells, inversion, startStep };
}
