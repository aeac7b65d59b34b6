/**
 * Swappable samplers with diffusers' interface (`set_timesteps`, `timesteps`, `init_noise_sigma`,
 * `scale_model_input`, `step`), so the denoising loop in the pipeline reads like the reference's:
 *
 *   scheduler.setTimesteps(steps);
 *   latents = latents × scheduler.initNoiseSigma;
 *   for (const t of scheduler.timesteps) {
 *     const input = scheduler.scaleModelInput(latents, t);
 *     latents = scheduler.step(unet(input, t), t, latents).prevSample;
 *   }
 *
 * Each algorithm lives in its own file; `createScheduler` picks one from a table. Samples are flat
 * float32 arrays of any shape (the schedulers work element by element); inputs are never modified.
 */
import { DdimScheduler } from './ddim';
import { DpmSolverMultistepScheduler } from './dpm-solver-multistep';
import { EulerDiscreteScheduler } from './euler-discrete';
import { PndmScheduler } from './pndm';
import type { SchedulerConfigFile } from './scheduler-config';

export { parseSchedulerConfig, type SchedulerConfigFile } from './scheduler-config';
// DDIM inversion (image → noise, ddim-inverse.ts) is not a sampler a user picks, so it is not made here:
// the edit's inversion builds it directly, in LAVIS's edit config.

export interface StepOptions {
  /** DDIM's η (Song et al. 2020, eq. 16): 0 is deterministic DDIM, 1 is DDPM-like. Other schedulers ignore it. */
  eta?: number;
  /** The N(0, I) noise DDIM adds when η > 0 (e.g. from a TorchGenerator, as diffusers draws it). */
  varianceNoise?: Float32Array;
}

export interface SchedulerStepResult {
  /** x_{t−1}, the sample to feed the next step. */
  prevSample: Float32Array;
  /** The model's estimate of x_0 at this step, where the algorithm forms one (PNDM does not). */
  predOriginalSample?: Float32Array;
}

export interface Scheduler {
  /** The training schedule's ᾱ_t (float32, index = training timestep), e.g. for `addNoise` or img2img. */
  readonly alphasCumprod: Float32Array;
  /** The timesteps to run, in order, after `setTimesteps` (PNDM repeats one: the UNet runs once per entry). */
  readonly timesteps: readonly number[];
  /** σ for each step plus the final one, for the schedulers that work in σ (Euler, DPM-Solver). */
  readonly sigmas?: Float32Array;
  /** Multiply the initial N(0, I) latents by this. */
  readonly initNoiseSigma: number;
  setTimesteps(numInferenceSteps: number): void;
  /** The UNet's input at `timestep` (the same array where the algorithm needs no scaling). */
  scaleModelInput(sample: Float32Array, timestep: number): Float32Array;
  /** One reverse step from `sample` at `timestep`, given the model's output there. Call once per timestep, in order. */
  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, options?: StepOptions): SchedulerStepResult;
}

export const SCHEDULER_NAMES = ['pndm', 'ddim', 'euler', 'dpmpp2m', 'dpmpp2m-karras'] as const;
export type SchedulerName = (typeof SCHEDULER_NAMES)[number];

/** DPM-Solver++(2M): the data-prediction solver (Lu et al. 2022b), second order, multistep. */
const DPMPP_2M: SchedulerConfigFile = { algorithmType: 'dpmsolver++', solverOrder: 2 };

/** Name → constructor. The model's own config supplies the noise schedule; the name fixes the algorithm. */
const SCHEDULERS: Readonly<Record<SchedulerName, (config: SchedulerConfigFile) => Scheduler>> = {
  pndm: (config) => new PndmScheduler(config),
  ddim: (config) => new DdimScheduler(config),
  euler: (config) => new EulerDiscreteScheduler(config),
  dpmpp2m: (config) => new DpmSolverMultistepScheduler({ ...config, ...DPMPP_2M, useKarrasSigmas: false }),
  'dpmpp2m-karras': (config) => new DpmSolverMultistepScheduler({ ...config, ...DPMPP_2M, useKarrasSigmas: true }),
};

/** A scheduler built from a model's `scheduler_config.json` (see `parseSchedulerConfig`), like diffusers' `from_config`. */
export function createScheduler(name: SchedulerName, config: SchedulerConfigFile): Scheduler {
  const build = SCHEDULERS[name];
  if (!build) throw new Error(`unknown scheduler '${String(name)}' (choose ${SCHEDULER_NAMES.join(', ')})`);
  return build(config);
}
