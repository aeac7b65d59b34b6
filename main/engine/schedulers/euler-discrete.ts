/**
 * Euler's method on the probability-flow ODE in σ (Karras et al. 2022: their Algorithm 2 with churn off
 * and without the 2nd-order correction), as diffusers v0.25.1 `EulerDiscreteScheduler` runs it.
 * With x̂_0 = x − σ·ε̂:
 *
 *   d = (x − x̂_0)/σ_i,   x_{i+1} = x + d·(σ_{i+1} − σ_i)
 *
 * The UNet sees x/√(σ² + 1) (`scale_model_input`), the variance-preserving input it was trained on, and
 * the initial noise is scaled by σ_max (or √(σ_max² + 1) for "leading" spacing). σ_i is interpolated
 * from the training schedule at each (possibly fractional) timestep, or placed by Karras' eq. 5.
 * Stochastic churn (s_churn > 0) is not implemented: its default 0 is the plain Euler sampler.
 */
import { alphasCumprodOf, betaSchedule, rescaleZeroTerminalSnr, sigmasOf, torchLinspaceFloat32 } from './betas';
import { karrasSigmas, sigmaToTimestep } from './karras';
import { interpOnIndexGrid, numpyArange, numpyLinspace, roundHalfEven } from './numpy-compat';
import type { Scheduler, SchedulerStepResult } from './scheduler';
import { checkInferenceSteps, checkStepInputs, notReady } from './scheduler-checks';
import {
  BETA_SCHEDULE_DEFAULTS,
  type BetaScheduleConfig,
  type InterpolationType,
  type PredictionType,
  type SchedulerConfigFile,
  type TimestepSpacing,
  type TimestepType,
  unsupported,
  withDefaults,
} from './scheduler-config';

export interface EulerDiscreteConfig extends BetaScheduleConfig {
  predictionType: PredictionType;
  interpolationType: InterpolationType;
  useKarrasSigmas: boolean;
  sigmaMin: number | undefined;
  sigmaMax: number | undefined;
  timestepSpacing: TimestepSpacing;
  timestepType: TimestepType;
  stepsOffset: number;
  rescaleBetasZeroSnr: boolean;
}

/** `EulerDiscreteScheduler.__init__` defaults (note "linspace", unlike PNDM/DDIM). */
export const EULER_DISCRETE_DEFAULTS: EulerDiscreteConfig = {
  ...BETA_SCHEDULE_DEFAULTS,
  predictionType: 'epsilon',
  interpolationType: 'linear',
  useKarrasSigmas: false,
  sigmaMin: undefined,
  sigmaMax: undefined,
  timestepSpacing: 'linspace',
  timestepType: 'discrete',
  stepsOffset: 0,
  rescaleBetasZeroSnr: false,
};

const NAME = 'Euler';
/** With zero terminal SNR the last ᾱ would be 0 and σ infinite; the reference uses float16's smallest subnormal. */
const ZERO_SNR_LAST_ALPHA_CUMPROD = 2 ** -24;
/** Timesteps for continuous v-prediction models are c_noise = ¼·ln σ (Karras et al. 2022, Table 1). */
const CONTINUOUS_TIMESTEP_SCALE = 0.25;

const f32 = Math.fround;

export class EulerDiscreteScheduler implements Scheduler {
  readonly config: Readonly<EulerDiscreteConfig>;
  readonly alphasCumprod: Float32Array;
  /** σ_t of the training schedule, ascending with t. */
  readonly #trainingSigmas: Float32Array;
  #timesteps: number[];
  #sigmas: Float32Array;
  #stepIndex: number | null = null;
  #ready = false;

  constructor(file: SchedulerConfigFile) {
    this.config = Object.freeze(withDefaults(file, EULER_DISCRETE_DEFAULTS));
    const { numTrainTimesteps: trainSteps, rescaleBetasZeroSnr } = this.config;
    const betas = betaSchedule(this.config);
    this.alphasCumprod = alphasCumprodOf(rescaleBetasZeroSnr ? rescaleZeroTerminalSnr(betas) : betas);
    if (rescaleBetasZeroSnr) this.alphasCumprod[trainSteps - 1] = ZERO_SNR_LAST_ALPHA_CUMPROD;
    this.#trainingSigmas = sigmasOf(this.alphasCumprod);
    // Before setTimesteps: every training step, high noise first.
    const descending = this.#trainingSigmas.slice().reverse();
    this.#timesteps = this.#modelTimesteps(
      Array.from({ length: trainSteps }, (_, i) => trainSteps - 1 - i),
      descending,
    );
    this.#sigmas = withFinalZero(descending);
  }

  get timesteps(): readonly number[] {
    return this.#timesteps;
  }

  get sigmas(): Float32Array {
    return this.#sigmas;
  }

  get initNoiseSigma(): number {
    const maxSigma = this.#sigmas.reduce((max, sigma) => Math.max(max, sigma), 0);
    const spacing = this.config.timestepSpacing;
    return spacing === 'linspace' || spacing === 'trailing' ? maxSigma : f32(Math.sqrt(f32(f32(maxSigma * maxSigma) + 1)));
  }

  setTimesteps(numInferenceSteps: number): void {
    const { numTrainTimesteps: trainSteps, stepsOffset } = this.config;
    checkInferenceSteps(NAME, numInferenceSteps, trainSteps);
    let timesteps: number[];
    switch (this.config.timestepSpacing) {
      case 'linspace':
        timesteps = numpyLinspace(0, trainSteps - 1, numInferenceSteps).map(f32).reverse();
        break;
      case 'leading': {
        const stride = Math.floor(trainSteps / numInferenceSteps);
        timesteps = Array.from({ length: numInferenceSteps }, (_, i) => f32((numInferenceSteps - 1 - i) * stride + stepsOffset));
        break;
      }
      case 'trailing':
        timesteps = numpyArange(trainSteps, 0, -trainSteps / numInferenceSteps).map((t) => f32(roundHalfEven(t) - 1));
        break;
      default:
        unsupported(NAME, 'timestep_spacing', this.config.timestepSpacing);
    }

    const training = this.#trainingSigmas;
    let sigmas: ArrayLike<number>;
    if (this.config.interpolationType === 'linear') {
      sigmas = timesteps.map((t) => interpOnIndexGrid(t, training));
    } else {
      // n + 1 levels evenly spaced in log σ from σ_max to σ_min (a float32 torch.linspace).
      const logMax = f32(Math.log(training[training.length - 1]!));
      const logMin = f32(Math.log(training[0]!));
      sigmas = torchLinspaceFloat32(logMax, logMin, numInferenceSteps + 1).map((logSigma) => f32(Math.exp(logSigma)));
    }
    if (this.config.useKarrasSigmas) {
      const { sigmaMin, sigmaMax } = this.config;
      const karras = karrasSigmas(sigmaMin ?? sigmas[sigmas.length - 1]!, sigmaMax ?? sigmas[0]!, numInferenceSteps);
      const logSigmas = training.map((sigma) => f32(Math.log(sigma)));
      timesteps = karras.map((sigma) => f32(sigmaToTimestep(sigma, logSigmas)));
      sigmas = karras;
    }
    const levels = Float32Array.from(sigmas);
    this.#timesteps = this.#modelTimesteps(timesteps, levels);
    this.#sigmas = withFinalZero(levels);
    this.#stepIndex = null;
    this.#ready = true;
  }

  scaleModelInput(sample: Float32Array, timestep: number): Float32Array {
    this.#stepIndex ??= this.#indexOf(timestep);
    const sigma = this.#sigmas[this.#stepIndex]!;
    const scale = f32(Math.sqrt(f32(f32(sigma * sigma) + 1)));
    return sample.map((x) => f32(x / scale));
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array): SchedulerStepResult {
    if (!this.#ready) notReady(NAME);
    checkStepInputs(NAME, modelOutput, sample);
    this.#stepIndex ??= this.#indexOf(timestep);
    const index = this.#stepIndex;
    const sigma = this.#sigmas[index]!;
    // γ = 0 without churn, so σ̂ = σ·(γ + 1) = σ.
    const sigmaHat = sigma;

    // 1. x̂_0 from the model's prediction.
    let predOriginal: Float32Array;
    const predictionType = this.config.predictionType;
    if (predictionType === 'epsilon') {
      predOriginal = sample.map((x, i) => f32(x - f32(sigmaHat * modelOutput[i]!)));
    } else if (predictionType === 'v_prediction') {
      // x̂_0 = c_out·v + c_skip·x with c_out = −σ/√(σ² + 1), c_skip = 1/(σ² + 1).
      const variance = f32(f32(sigma * sigma) + 1);
      const outCoeff = f32(-sigma / f32(Math.sqrt(variance)));
      predOriginal = modelOutput.map((v, i) => f32(f32(v * outCoeff) + f32(sample[i]! / variance)));
    } else {
      predOriginal = modelOutput.slice();
    }

    // 2. The ODE derivative and the Euler step to σ_{i+1}.
    const dt = f32(this.#sigmas[index + 1]! - sigmaHat);
    const prevSample = sample.map((x, i) => {
      const derivative = f32(f32(x - predOriginal[i]!) / sigmaHat);
      return f32(x + f32(derivative * dt));
    });
    this.#stepIndex = index + 1;
    return { prevSample, predOriginalSample: predOriginal };
  }

  /** The first step's index: the 2nd match if a timestep repeats (so img2img starting mid-schedule skips no σ). */
  #indexOf(timestep: number): number {
    const matches: number[] = [];
    this.#timesteps.forEach((t, i) => {
      if (t === timestep) matches.push(i);
    });
    if (matches.length === 0) throw new RangeError(`${NAME}: timestep ${timestep} is not in the schedule`);
    return matches.length > 1 ? matches[1]! : matches[0]!;
  }

  /** What the UNet is given as t: the timesteps, or ¼·ln σ for continuous v-prediction models. */
  #modelTimesteps(timesteps: readonly number[], sigmas: ArrayLike<number>): number[] {
    if (this.config.timestepType === 'continuous' && this.config.predictionType === 'v_prediction') {
      return Array.from(sigmas, (sigma) => f32(CONTINUOUS_TIMESTEP_SCALE * f32(Math.log(sigma))));
    }
    return timesteps.map(f32);
  }
}

function withFinalZero(sigmas: Float32Array): Float32Array {
  const out = new Float32Array(sigmas.length + 1);
  out.set(sigmas);
  return out;
}
