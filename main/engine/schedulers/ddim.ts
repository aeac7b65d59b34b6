/**
 * DDIM (Song, Meng & Ermon 2020, "Denoising Diffusion Implicit Models"), as diffusers v0.25.1
 * `DDIMScheduler` runs it. One step is eq. 12:
 *
 *   x_{t−1} = √ᾱ_{t−1}·x̂_0 + √(1 − ᾱ_{t−1} − σ_t²)·ε̂ + σ_t·z,   x̂_0 = (x_t − √(1 − ᾱ_t)·ε̂)/√ᾱ_t
 *
 * with σ_t = η·√((1 − ᾱ_{t−1})/(1 − ᾱ_t))·√(1 − ᾱ_t/ᾱ_{t−1}) (eq. 16); η = 0 (the default) is the
 * deterministic sampler. x̂_0 is clipped to ±clip_sample_range when `clip_sample` (the class default is
 * true, so BLIP-Diffusion's PNDM config, which has no such key, clips). Float32 like the reference.
 */
import { alphasCumprodOf, betaSchedule, rescaleZeroTerminalSnr } from './betas';
import { numpyArange, numpyLinspace, roundHalfEven } from './numpy-compat';
import type { Scheduler, SchedulerStepResult, StepOptions } from './scheduler';
import { checkInferenceSteps, checkStepInputs, checkTrainingTimestep, notReady } from './scheduler-checks';
import {
  BETA_SCHEDULE_DEFAULTS,
  type BetaScheduleConfig,
  type PredictionType,
  type SchedulerConfigFile,
  type TimestepSpacing,
  unsupported,
  withDefaults,
} from './scheduler-config';

export interface DdimConfig extends BetaScheduleConfig {
  clipSample: boolean;
  setAlphaToOne: boolean;
  stepsOffset: number;
  predictionType: PredictionType;
  thresholding: boolean;
  dynamicThresholdingRatio: number;
  clipSampleRange: number;
  sampleMaxValue: number;
  timestepSpacing: TimestepSpacing;
  rescaleBetasZeroSnr: boolean;
}

/** `DDIMScheduler.__init__` defaults. */
export const DDIM_DEFAULTS: DdimConfig = {
  ...BETA_SCHEDULE_DEFAULTS,
  clipSample: true,
  setAlphaToOne: true,
  stepsOffset: 0,
  predictionType: 'epsilon',
  thresholding: false,
  dynamicThresholdingRatio: 0.995,
  clipSampleRange: 1.0,
  sampleMaxValue: 1.0,
  timestepSpacing: 'leading',
  rescaleBetasZeroSnr: false,
};

const NAME = 'DDIM';

const f32 = Math.fround;

export class DdimScheduler implements Scheduler {
  readonly config: Readonly<DdimConfig>;
  readonly alphasCumprod: Float32Array;
  readonly initNoiseSigma = 1;
  readonly #finalAlphaCumprod: number;
  #timesteps: number[];
  #numInferenceSteps: number | null = null;

  constructor(file: SchedulerConfigFile) {
    this.config = Object.freeze(withDefaults(file, DDIM_DEFAULTS));
    const { predictionType, thresholding, numTrainTimesteps } = this.config;
    if (predictionType === 'original_sample') unsupported(NAME, 'prediction_type', predictionType);
    if (thresholding) unsupported(NAME, 'thresholding', thresholding);
    const betas = betaSchedule(this.config);
    this.alphasCumprod = alphasCumprodOf(this.config.rescaleBetasZeroSnr ? rescaleZeroTerminalSnr(betas) : betas);
    this.#finalAlphaCumprod = this.config.setAlphaToOne ? 1 : this.alphasCumprod[0]!;
    this.#timesteps = Array.from({ length: numTrainTimesteps }, (_, i) => numTrainTimesteps - 1 - i);
  }

  get timesteps(): readonly number[] {
    return this.#timesteps;
  }

  setTimesteps(numInferenceSteps: number): void {
    const { numTrainTimesteps: trainSteps, timestepSpacing, stepsOffset } = this.config;
    checkInferenceSteps(NAME, numInferenceSteps, trainSteps);
    this.#numInferenceSteps = numInferenceSteps;
    switch (timestepSpacing) {
      case 'linspace':
        this.#timesteps = numpyLinspace(0, trainSteps - 1, numInferenceSteps).map(roundHalfEven).reverse();
        break;
      case 'leading': {
        const stride = Math.floor(trainSteps / numInferenceSteps);
        this.#timesteps = Array.from({ length: numInferenceSteps }, (_, i) => (numInferenceSteps - 1 - i) * stride + stepsOffset);
        break;
      }
      case 'trailing':
        this.#timesteps = numpyArange(trainSteps, 0, -trainSteps / numInferenceSteps).map((t) => roundHalfEven(t) - 1);
        break;
      default:
        unsupported(NAME, 'timestep_spacing', timestepSpacing);
    }
  }

  scaleModelInput(sample: Float32Array): Float32Array {
    return sample;
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, options: StepOptions = {}): SchedulerStepResult {
    if (this.#numInferenceSteps === null) notReady(NAME);
    checkStepInputs(NAME, modelOutput, sample);
    const eta = options.eta ?? 0;
    const noise = options.varianceNoise;
    if (eta > 0 && noise?.length !== sample.length) throw new RangeError(`${NAME}: eta > 0 needs varianceNoise with ${sample.length} values`);
    const { numTrainTimesteps: trainSteps, predictionType, clipSample } = this.config;

    // 1. t − 1 in the strided schedule.
    const prevTimestep = timestep - Math.floor(trainSteps / this.#numInferenceSteps);
    // 2. ᾱ_t, ᾱ_{t−1} (ᾱ before the first training step is `final_alpha_cumprod`).
    const alphaProd = this.alphasCumprod[checkTrainingTimestep(NAME, timestep, trainSteps)]!;
    const alphaProdPrev = prevTimestep >= 0 ? this.alphasCumprod[checkTrainingTimestep(NAME, prevTimestep, trainSteps)]! : this.#finalAlphaCumprod;
    const betaProd = f32(1 - alphaProd);

    // 3-4. x̂_0 and ε̂ ("predicted x_0" of eq. 12), x̂_0 clipped.
    const { predOriginal, predEpsilon } = ddimPredictions(predictionType, modelOutput, sample, alphaProd, clipSample ? this.config.clipSampleRange : null);

    // 5. σ_t(η) of eq. 16.
    const betaProdPrev = f32(1 - alphaProdPrev);
    const variance = f32(f32(betaProdPrev / betaProd) * f32(1 - f32(alphaProd / alphaProdPrev)));
    const stdDev = f32(f32(eta) * f32(Math.sqrt(variance)));

    // 6-7. Direction pointing to x_t, then x_{t−1} (eq. 12).
    const directionCoeff = f32(Math.sqrt(f32(betaProdPrev - f32(stdDev * stdDev))));
    const sqrtAlphaPrev = f32(Math.sqrt(alphaProdPrev));
    const prevSample = predOriginal.map((x0, i) => f32(f32(sqrtAlphaPrev * x0) + f32(directionCoeff * predEpsilon[i]!)));
    if (eta > 0 && noise) {
      for (let i = 0; i < prevSample.length; i++) prevSample[i] = f32(prevSample[i]! + f32(stdDev * noise[i]!));
    }
    return { prevSample, predOriginalSample: predOriginal };
  }
}

/**
 * x̂_0 and ε̂ from the model's output for each prediction type (diffusers' DDIM step 3, float32 as torch),
 * x̂_0 clipped to ±`clipRange` when one is given. Shared by DDIM and its inverse.
 */
export function ddimPredictions(
  predictionType: PredictionType,
  modelOutput: Float32Array,
  sample: Float32Array,
  alphaProd: number,
  clipRange: number | null,
): { predOriginal: Float32Array; predEpsilon: Float32Array } {
  const sqrtAlpha = f32(Math.sqrt(alphaProd));
  const sqrtBeta = f32(Math.sqrt(f32(1 - alphaProd)));
  let predOriginal: Float32Array;
  let predEpsilon: Float32Array;
  if (predictionType === 'epsilon') {
    predOriginal = sample.map((x, i) => f32(f32(x - f32(sqrtBeta * modelOutput[i]!)) / sqrtAlpha));
    predEpsilon = modelOutput;
  } else if (predictionType === 'sample') {
    predOriginal = modelOutput.slice();
    predEpsilon = sample.map((x, i) => f32(f32(x - f32(sqrtAlpha * predOriginal[i]!)) / sqrtBeta));
  } else {
    predOriginal = sample.map((x, i) => f32(f32(sqrtAlpha * x) - f32(sqrtBeta * modelOutput[i]!)));
    predEpsilon = modelOutput.map((v, i) => f32(f32(sqrtAlpha * v) + f32(sqrtBeta * sample[i]!)));
  }
  if (clipRange !== null) {
    const range = f32(clipRange);
    predOriginal = predOriginal.map((x) => Math.min(Math.max(x, -range), range));
  }
  return { predOriginal, predEpsilon };
}
