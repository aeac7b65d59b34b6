/**
 * PNDM: pseudo numerical methods for diffusion models (Liu et al. 2022, "Pseudo Numerical Methods for
 * Diffusion Models on Manifolds"), as diffusers v0.25.1 `PNDMScheduler` runs it — BLIP-Diffusion's own
 * scheduler. Every step is the paper's "transfer part" φ(x_t, ε, t, t−δ), DDIM's update written with ᾱ:
 *
 *   x_{t−δ} = √(ᾱ_{t−δ}/ᾱ_t)·x_t − (ᾱ_{t−δ} − ᾱ_t)·ε / (ᾱ_t·√(1 − ᾱ_{t−δ}) + √(ᾱ_t(1 − ᾱ_t)ᾱ_{t−δ}))
 *
 * fed with a "gradient part" ε built from several model outputs: the pseudo linear multi-step (PLMS)
 * combination, Adams–Bashforth of order 1-4, once 3 earlier ε exist. Before that, either 3 pseudo
 * Runge–Kutta (PRK) steps of 4 model calls each or, with `skip_prk_steps` (BLIP-Diffusion, Stable
 * Diffusion), diffusers' warm-up: the 2nd timestep is REPEATED, and that 2nd call redoes step 0 from the
 * same x_t with the mean of the first two ε (a Heun-like start), so the UNet runs steps + 1 times.
 *
 * Arithmetic mirrors the reference's float32 tensors operation by operation.
 */
import { alphasCumprodOf, betaSchedule } from './betas';
import { numpyArange, numpyLinspace, roundHalfEven } from './numpy-compat';
import type { Scheduler, SchedulerStepResult } from './scheduler';
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

export interface PndmConfig extends BetaScheduleConfig {
  skipPrkSteps: boolean;
  setAlphaToOne: boolean;
  predictionType: PredictionType;
  timestepSpacing: TimestepSpacing;
  stepsOffset: number;
}

/** `PNDMScheduler.__init__` defaults. */
export const PNDM_DEFAULTS: PndmConfig = {
  ...BETA_SCHEDULE_DEFAULTS,
  skipPrkSteps: false,
  setAlphaToOne: false,
  predictionType: 'epsilon',
  timestepSpacing: 'leading',
  stepsOffset: 0,
};

const NAME = 'PNDM';
/** PRK warm-up covers the last 4 timesteps; PLMS goes up to 4th order. */
const PNDM_ORDER = 4;

const f32 = Math.fround;

/** Adams–Bashforth weights of PLMS, orders 1-4: ε' = Σ w_k ε_{−k} / divisor, newest first. */
const PLMS_WEIGHTS: readonly (readonly [readonly number[], number])[] = [
  [[1], 1],
  [[3, -1], 2],
  [[23, -16, 5], 12],
  [[55, -59, 37, -9], 24],
];
/** PRK's weights for the 4 model evaluations of one (classical, 4th-order) Runge–Kutta step. */
const PRK_WEIGHTS = [1 / 6, 1 / 3, 1 / 3, 1 / 6];

export class PndmScheduler implements Scheduler {
  readonly config: Readonly<PndmConfig>;
  readonly alphasCumprod: Float32Array;
  readonly initNoiseSigma = 1;
  readonly #finalAlphaCumprod: number;
  #timesteps: number[] = [];
  #prkTimesteps: number[] = [];
  #numInferenceSteps: number | null = null;
  #counter = 0;
  /** Earlier ε, oldest first (copies, so callers may reuse their buffers). */
  #ets: Float32Array[] = [];
  #curSample: Float32Array | null = null;
  /** PRK's running weighted sum of ε (null = 0). */
  #curModelOutput: Float32Array | null = null;

  constructor(file: SchedulerConfigFile) {
    this.config = Object.freeze(withDefaults(file, PNDM_DEFAULTS));
    const { predictionType } = this.config;
    if (predictionType !== 'epsilon' && predictionType !== 'v_prediction') unsupported(NAME, 'prediction_type', predictionType);
    this.alphasCumprod = alphasCumprodOf(betaSchedule(this.config));
    this.#finalAlphaCumprod = this.config.setAlphaToOne ? 1 : this.alphasCumprod[0]!;
  }

  get timesteps(): readonly number[] {
    return this.#timesteps;
  }

  setTimesteps(numInferenceSteps: number): void {
    const { numTrainTimesteps: trainSteps, timestepSpacing, stepsOffset } = this.config;
    checkInferenceSteps(NAME, numInferenceSteps, trainSteps);
    this.#numInferenceSteps = numInferenceSteps;
    const ascending = ascendingTimesteps(timestepSpacing, trainSteps, numInferenceSteps, stepsOffset);
    if (this.config.skipPrkSteps) {
      // [t_0, …, t_{n−2}, t_{n−2}, t_{n−1}] reversed: the 2nd timestep of the run repeats.
      this.#prkTimesteps = [];
      this.#timesteps = [...ascending.slice(0, -1), ...ascending.slice(-2, -1), ...ascending.slice(-1)].reverse();
    } else {
      // Each of the last 4 timesteps t gives t and t + δ/2; every one but the last is visited twice.
      const halfStep = Math.floor(Math.floor(trainSteps / numInferenceSteps) / 2);
      const pairs = ascending.slice(-PNDM_ORDER).flatMap((t) => [t, t + halfStep]);
      this.#prkTimesteps = pairs
        .slice(0, -1)
        .flatMap((t) => [t, t])
        .slice(1, -1)
        .reverse();
      this.#timesteps = [...this.#prkTimesteps, ...ascending.slice(0, -3).reverse()];
    }
    this.#ets = [];
    this.#counter = 0;
    this.#curModelOutput = null;
  }

  scaleModelInput(sample: Float32Array): Float32Array {
    return sample;
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array): SchedulerStepResult {
    if (this.#numInferenceSteps === null) notReady(NAME);
    checkStepInputs(NAME, modelOutput, sample);
    const prevSample =
      this.#counter < this.#prkTimesteps.length && !this.config.skipPrkSteps
        ? this.#stepPrk(modelOutput, timestep, sample, this.#numInferenceSteps)
        : this.#stepPlms(modelOutput, timestep, sample, this.#numInferenceSteps);
    this.#counter++;
    return { prevSample };
  }

  /** One of the 4 evaluations of a pseudo Runge–Kutta step: at t, t − δ/2 (twice) and t − δ. */
  #stepPrk(modelOutput: Float32Array, timestep: number, sample: Float32Array, numInferenceSteps: number): Float32Array {
    const phase = this.#counter % PNDM_ORDER;
    const halfStep = Math.floor(Math.floor(this.config.numTrainTimesteps / numInferenceSteps) / 2);
    const prevTimestep = timestep - (this.#counter % 2 ? 0 : halfStep);
    const startTimestep = this.#prkTimesteps[this.#counter - phase]!;
    const weight = f32(PRK_WEIGHTS[phase]!);
    let eps = modelOutput;
    if (phase === 0) {
      this.#ets.push(modelOutput.slice());
      this.#curSample = sample.slice();
    }
    if (phase < PNDM_ORDER - 1) {
      const sum = this.#curModelOutput;
      this.#curModelOutput = modelOutput.map((e, i) => f32((sum ? sum[i]! : 0) + f32(weight * e)));
    } else {
      const sum = this.#curModelOutput!;
      eps = modelOutput.map((e, i) => f32(sum[i]! + f32(weight * e)));
      this.#curModelOutput = null;
    }
    return this.#transfer(this.#curSample ?? sample, startTimestep, prevTimestep, eps);
  }

  /** A pseudo linear multi-step step, with diffusers' 2-call warm-up when PRK is skipped. */
  #stepPlms(modelOutput: Float32Array, timestep: number, sample: Float32Array, numInferenceSteps: number): Float32Array {
    if (!this.config.skipPrkSteps && this.#ets.length < PNDM_ORDER - 1) {
      throw new Error(`${NAME}: PLMS steps need the ${PNDM_ORDER - 1} Runge–Kutta steps first`);
    }
    const stride = Math.floor(this.config.numTrainTimesteps / numInferenceSteps);
    let prevTimestep = timestep - stride;
    let currentTimestep = timestep;
    let x = sample;
    if (this.#counter !== 1) {
      this.#ets = [...this.#ets.slice(-(PNDM_ORDER - 1)), modelOutput.slice()];
    } else {
      // The repeated timestep: redo the first step, from t + δ to t.
      prevTimestep = timestep;
      currentTimestep = timestep + stride;
    }
    let eps: Float32Array;
    if (this.#ets.length === 1 && this.#counter === 0) {
      eps = modelOutput;
      this.#curSample = sample.slice();
    } else if (this.#ets.length === 1 && this.#counter === 1) {
      const first = this.#ets[0]!;
      eps = modelOutput.map((e, i) => f32(f32(e + first[i]!) / 2));
      x = this.#curSample!;
      this.#curSample = null;
    } else {
      eps = adamsBashforth(this.#ets);
    }
    return this.#transfer(x, currentTimestep, prevTimestep, eps);
  }

  /** The transfer part φ: from x_t to x_{t'} with noise estimate ε (ᾱ_{t'} for t' < 0 is `final_alpha_cumprod`). */
  #transfer(sample: Float32Array, timestep: number, prevTimestep: number, modelOutput: Float32Array): Float32Array {
    const trainSteps = this.config.numTrainTimesteps;
    const alphaProd = this.alphasCumprod[checkTrainingTimestep(NAME, timestep, trainSteps)]!;
    const alphaProdPrev = prevTimestep >= 0 ? this.alphasCumprod[checkTrainingTimestep(NAME, prevTimestep, trainSteps)]! : this.#finalAlphaCumprod;
    const betaProd = f32(1 - alphaProd);
    const betaProdPrev = f32(1 - alphaProdPrev);
    let eps = modelOutput;
    if (this.config.predictionType === 'v_prediction') {
      // ε = √ᾱ·v + √(1−ᾱ)·x (Salimans & Ho 2022, v = √ᾱ·ε − √(1−ᾱ)·x_0).
      const sqrtAlpha = f32(Math.sqrt(alphaProd));
      const sqrtBeta = f32(Math.sqrt(betaProd));
      eps = modelOutput.map((v, i) => f32(f32(sqrtAlpha * v) + f32(sqrtBeta * sample[i]!)));
    }
    const sampleCoeff = f32(Math.sqrt(f32(alphaProdPrev / alphaProd)));
    const denominator = f32(f32(alphaProd * f32(Math.sqrt(betaProdPrev))) + f32(Math.sqrt(f32(f32(alphaProd * betaProd) * alphaProdPrev))));
    const alphaDifference = f32(alphaProdPrev - alphaProd);
    return sample.map((x, i) => f32(f32(sampleCoeff * x) - f32(f32(alphaDifference * eps[i]!) / denominator)));
  }
}

/** PLMS's combination of the newest `ets.length` noise estimates, in float32 like the reference tensors. */
function adamsBashforth(ets: readonly Float32Array[]): Float32Array {
  const [weights, divisor] = PLMS_WEIGHTS[ets.length - 1]!;
  const newestFirst = [...ets].reverse();
  const size = newestFirst[0]!.length;
  const out = new Float32Array(size);
  const lastOrder = weights.length === PNDM_ORDER;
  const scale = f32(1 / divisor);
  for (let i = 0; i < size; i++) {
    let sum = f32(weights[0]! * newestFirst[0]![i]!);
    for (let k = 1; k < weights.length; k++) sum = f32(sum + f32(weights[k]! * newestFirst[k]![i]!));
    // The 4th-order line of the reference multiplies by (1/24); the others divide by 2 or 12.
    out[i] = lastOrder ? f32(scale * sum) : f32(sum / divisor);
  }
  return out;
}

/** The reference's `_timesteps` before PNDM reorders them: ascending training timesteps. */
function ascendingTimesteps(spacing: TimestepSpacing, trainSteps: number, count: number, offset: number): number[] {
  switch (spacing) {
    case 'linspace':
      return numpyLinspace(0, trainSteps - 1, count).map(roundHalfEven);
    case 'leading': {
      const stride = Math.floor(trainSteps / count);
      return Array.from({ length: count }, (_, i) => i * stride + offset);
    }
    case 'trailing':
      return numpyArange(trainSteps, 0, -trainSteps / count)
        .map(roundHalfEven)
        .reverse()
        .map((t) => t - 1);
    default:
      return unsupported(NAME, 'timestep_spacing', spacing);
  }
}
