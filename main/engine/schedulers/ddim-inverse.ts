/**
 * DDIM inversion, as diffusers v0.25.1 `DDIMInverseScheduler` runs it: the deterministic DDIM step
 * (Song et al. 2020, eq. 12 with η = 0) taken towards MORE noise, image → noise:
 *
 *   x_{t} = √ᾱ_{t}·x̂_0 + √(1 − ᾱ_{t})·ε̂,   x̂_0 = (x_{t−Δ} − √(1 − ᾱ_{t−Δ})·ε̂)/√ᾱ_{t−Δ},   ε̂ = ε_θ(x_{t−Δ}, t)
 *
 * with Δ = T // N and ascending timesteps ("leading": k·Δ + steps_offset; "trailing": as diffusers). The UNet
 * is evaluated at the timestep stepped TO (t), on the sample at the level stepped FROM (t − Δ); before the
 * first training step ᾱ is `initial_alpha_cumprod` (1 with set_alpha_to_one, else ᾱ_0). LAVIS's
 * BLIP-Diffusion editing (`_noise_latent_step`'s `backward_ddim` over `reversed(ddim.timesteps)` with SD-1.5's
 * DDIM config) is the same map, written differently (docs/edit-reference.md): `EDIT_DDIM_CONFIG` is that
 * config. Float32 like the reference. Not a sampler: `createScheduler` does not list it; the inversion
 * pipeline builds it directly.
 */
import { alphasCumprodOf, betaSchedule, rescaleZeroTerminalSnr } from './betas';
import { ddimPredictions } from './ddim';
import { numpyArange, roundHalfEven } from './numpy-compat';
import type { Scheduler, SchedulerStepResult } from './scheduler';
import { checkInferenceSteps, checkStepInputs, checkTrainingTimestep, notReady } from './scheduler-checks';
import { BETA_SCHEDULE_DEFAULTS, type BetaScheduleConfig, type PredictionType, type SchedulerConfigFile, type TimestepSpacing, unsupported, withDefaults } from './scheduler-config';

export interface DdimInverseConfig extends BetaScheduleConfig {
  clipSample: boolean;
  clipSampleRange: number;
  setAlphaToOne: boolean;
  stepsOffset: number;
  predictionType: PredictionType;
  timestepSpacing: TimestepSpacing;
  rescaleBetasZeroSnr: boolean;
}

/** `DDIMInverseScheduler.__init__` defaults (v0.25.1). */
export const DDIM_INVERSE_DEFAULTS: DdimInverseConfig = {
  ...BETA_SCHEDULE_DEFAULTS,
  clipSample: true,
  clipSampleRange: 1.0,
  setAlphaToOne: true,
  stepsOffset: 0,
  predictionType: 'epsilon',
  timestepSpacing: 'leading',
  rescaleBetasZeroSnr: false,
};

/**
 * What LAVIS's editing overrides: it loads `DDIMScheduler.from_config("runwayml/stable-diffusion-v1-5")`,
 * i.e. SD-1.5's scheduler file (scaled-linear 0.00085 → 0.012, clip_sample false, set_alpha_to_one false,
 * steps_offset 1). The edit takes the noise schedule (betas, T, prediction type) from the model's own
 * scheduler config (BLIP-Diffusion's equals SD-1.5's) and these keys on top, for the inversion
 * (DDIMInverseScheduler) and for the denoising (DDIMScheduler) alike.
 */
export const EDIT_DDIM_CONFIG: Readonly<SchedulerConfigFile> = Object.freeze({ clipSample: false, setAlphaToOne: false, stepsOffset: 1, timestepSpacing: 'leading' });

/** The model's noise schedule with LAVIS's edit DDIM keys on top. */
export function editSchedulerConfig(model: SchedulerConfigFile): SchedulerConfigFile {
  const { numTrainTimesteps, betaStart, betaEnd, betaSchedule: schedule, trainedBetas, predictionType, rescaleBetasZeroSnr } = model;
  const noise: SchedulerConfigFile = { numTrainTimesteps, betaStart, betaEnd, betaSchedule: schedule, trainedBetas, predictionType, rescaleBetasZeroSnr };
  for (const key of Object.keys(noise) as (keyof SchedulerConfigFile)[]) if (noise[key] === undefined) delete noise[key];
  return { ...noise, ...EDIT_DDIM_CONFIG };
}

const NAME = 'DDIMInverse';
const f32 = Math.fround;

export class DdimInverseScheduler implements Scheduler {
  readonly config: Readonly<DdimInverseConfig>;
  readonly alphasCumprod: Float32Array;
  readonly initNoiseSigma = 1;
  /** ᾱ "before" the first training step (`initial_alpha_cumprod`). */
  readonly initialAlphaCumprod: number;
  #timesteps: number[];
  #numInferenceSteps: number | null = null;

  constructor(file: SchedulerConfigFile) {
    this.config = Object.freeze(withDefaults(file, DDIM_INVERSE_DEFAULTS));
    if (this.config.predictionType === 'original_sample') unsupported(NAME, 'prediction_type', this.config.predictionType);
    if (this.config.timestepSpacing === 'linspace') unsupported(NAME, 'timestep_spacing', 'linspace');
    const betas = betaSchedule(this.config);
    this.alphasCumprod = alphasCumprodOf(this.config.rescaleBetasZeroSnr ? rescaleZeroTerminalSnr(betas) : betas);
    this.initialAlphaCumprod = this.config.setAlphaToOne ? 1 : this.alphasCumprod[0]!;
    this.#timesteps = Array.from({ length: this.config.numTrainTimesteps }, (_, i) => i);
  }

  /** Ascending: the order the inversion runs in. */
  get timesteps(): readonly number[] {
    return this.#timesteps;
  }

  setTimesteps(numInferenceSteps: number): void {
    const { numTrainTimesteps: trainSteps, timestepSpacing, stepsOffset } = this.config;
    checkInferenceSteps(NAME, numInferenceSteps, trainSteps);
    this.#numInferenceSteps = numInferenceSteps;
    if (timestepSpacing === 'leading') {
      const stride = Math.floor(trainSteps / numInferenceSteps);
      this.#timesteps = Array.from({ length: numInferenceSteps }, (_, i) => i * stride + stepsOffset);
    } else if (timestepSpacing === 'trailing') {
      this.#timesteps = numpyArange(trainSteps, 0, -trainSteps / numInferenceSteps)
        .reverse()
        .map((t) => roundHalfEven(t) - 1);
    } else {
      unsupported(NAME, 'timestep_spacing', timestepSpacing);
    }
  }

  scaleModelInput(sample: Float32Array): Float32Array {
    return sample;
  }

  /** [ᾱ of the level stepped from, ᾱ of the level stepped to] for a step at `timestep` (diffusers' alpha_prod_t, alpha_prod_t_prev). */
  stepAlphas(timestep: number): [number, number] {
    if (this.#numInferenceSteps === null) notReady(NAME);
    const trainSteps = this.config.numTrainTimesteps;
    const from = Math.min(timestep - Math.floor(trainSteps / this.#numInferenceSteps), trainSteps - 1);
    const alphaFrom = from >= 0 ? this.alphasCumprod[checkTrainingTimestep(NAME, from, trainSteps)]! : this.initialAlphaCumprod;
    return [alphaFrom, this.alphasCumprod[checkTrainingTimestep(NAME, timestep, trainSteps)]!];
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array): SchedulerStepResult {
    checkStepInputs(NAME, modelOutput, sample);
    const [alphaProd, alphaProdNext] = this.stepAlphas(timestep);
    const { predOriginal, predEpsilon } = ddimPredictions(this.config.predictionType, modelOutput, sample, alphaProd, this.config.clipSample ? this.config.clipSampleRange : null);
    const directionCoeff = f32(Math.sqrt(f32(1 - alphaProdNext)));
    const sqrtAlphaNext = f32(Math.sqrt(alphaProdNext));
    const prevSample = predOriginal.map((x0, i) => f32(f32(sqrtAlphaNext * x0) + f32(directionCoeff * predEpsilon[i]!)));
    return { prevSample, predOriginalSample: predOriginal };
  }
}
