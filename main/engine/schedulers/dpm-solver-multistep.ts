/**
 * DPM-Solver++ (Lu et al. 2022, "DPM-Solver++: Fast Solver for Guided Sampling of Diffusion Probabilistic
 * Models"), multistep, orders 1-2, as diffusers v0.25.1 `DPMSolverMultistepScheduler` runs it with
 * algorithm_type "dpmsolver++". It integrates the data-prediction ODE in λ = ln(α/σ) (half-log-SNR):
 *
 *   x̂_0 = (x_s − σ_s·ε̂)/α_s,   h = λ_t − λ_s
 *   1st order (= DDIM):        x_t = (σ_t/σ_s)·x_s − α_t·(e^{−h} − 1)·x̂_0(s)
 *   2M (Algorithm 2):          x_t = (σ_t/σ_s0)·x_s − α_t(e^{−h} − 1)·D0 − ½·α_t(e^{−h} − 1)·D1,
 *                              D0 = x̂_0(s0), D1 = (x̂_0(s0) − x̂_0(s1))/r0, r0 = h_0/h
 *
 * with α = 1/√(σ² + 1), σ_VP = σ·α for the variance-exploding σ of the schedule. The first step is 1st
 * order (no history yet); with `lower_order_final` and fewer than 15 steps the last step is 1st order
 * too (`euler_at_final` forces that at any length) — for stability at few steps.
 * σ comes from the training schedule at each timestep, or from Karras' eq. 5 (`use_karras_sigmas`).
 * Float32 arithmetic like the reference tensors.
 */
import { alphasCumprodOf, betaSchedule, sigmasOf } from './betas';
import { karrasSigmas, sigmaToTimestep } from './karras';
import { interpOnIndexGrid, numpyArange, numpyLinspace, roundHalfEven } from './numpy-compat';
import type { Scheduler, SchedulerStepResult } from './scheduler';
import { checkInferenceSteps, checkStepInputs, notReady } from './scheduler-checks';
import {
  BETA_SCHEDULE_DEFAULTS,
  type BetaScheduleConfig,
  type PredictionType,
  type SchedulerConfigFile,
  type TimestepSpacing,
  unsupported,
  withDefaults,
} from './scheduler-config';

export interface DpmSolverMultistepConfig extends BetaScheduleConfig {
  solverOrder: number;
  predictionType: PredictionType;
  thresholding: boolean;
  dynamicThresholdingRatio: number;
  sampleMaxValue: number;
  algorithmType: string;
  solverType: string;
  lowerOrderFinal: boolean;
  eulerAtFinal: boolean;
  useKarrasSigmas: boolean;
  useLuLambdas: boolean;
  lambdaMinClipped: number;
  varianceType: string | undefined;
  timestepSpacing: TimestepSpacing;
  stepsOffset: number;
}

/** `DPMSolverMultistepScheduler.__init__` defaults. */
export const DPM_SOLVER_MULTISTEP_DEFAULTS: DpmSolverMultistepConfig = {
  ...BETA_SCHEDULE_DEFAULTS,
  solverOrder: 2,
  predictionType: 'epsilon',
  thresholding: false,
  dynamicThresholdingRatio: 0.995,
  sampleMaxValue: 1.0,
  algorithmType: 'dpmsolver++',
  solverType: 'midpoint',
  lowerOrderFinal: true,
  eulerAtFinal: false,
  useKarrasSigmas: false,
  useLuLambdas: false,
  lambdaMinClipped: -Infinity,
  varianceType: undefined,
  timestepSpacing: 'linspace',
  stepsOffset: 0,
};

const NAME = 'DPM-Solver++';
/** Below this many steps `lower_order_final` drops the last steps to lower order (the reference's constant). */
const LOWER_ORDER_FINAL_MAX_STEPS = 15;
/** Solver names the reference maps to others when it registers the config. */
const ALGORITHM_ALIASES: Readonly<Record<string, string>> = { deis: 'dpmsolver++' };
const SOLVER_TYPE_ALIASES: Readonly<Record<string, string>> = { logrho: 'midpoint', bh1: 'midpoint', bh2: 'midpoint' };

const f32 = Math.fround;

/** α_t and σ_t (variance preserving) for a variance-exploding σ, in float32. */
function alphaSigma(sigma: number): { alpha: number; sigma: number; lambda: number } {
  const alpha = f32(1 / f32(Math.sqrt(f32(f32(sigma * sigma) + 1))));
  const sigmaVp = f32(sigma * alpha);
  return { alpha, sigma: sigmaVp, lambda: f32(f32(Math.log(alpha)) - f32(Math.log(sigmaVp))) };
}

export class DpmSolverMultistepScheduler implements Scheduler {
  readonly config: Readonly<DpmSolverMultistepConfig>;
  readonly alphasCumprod: Float32Array;
  readonly initNoiseSigma = 1;
  /** λ_t of the training schedule (decreasing in t). */
  readonly #lambdas: Float32Array;
  #timesteps: number[];
  #sigmas: Float32Array;
  #numInferenceSteps: number | null = null;
  /** The newest `solver_order` data predictions x̂_0, oldest first. */
  #modelOutputs: Float32Array[] = [];
  #lowerOrderNums = 0;
  #stepIndex: number | null = null;

  constructor(file: SchedulerConfigFile) {
    const resolved = withDefaults(file, DPM_SOLVER_MULTISTEP_DEFAULTS);
    resolved.algorithmType = ALGORITHM_ALIASES[resolved.algorithmType] ?? resolved.algorithmType;
    resolved.solverType = SOLVER_TYPE_ALIASES[resolved.solverType] ?? resolved.solverType;
    this.config = Object.freeze(resolved);
    const { algorithmType, solverOrder, solverType, thresholding, useLuLambdas, varianceType, predictionType, numTrainTimesteps } = this.config;
    if (algorithmType !== 'dpmsolver++') unsupported(NAME, 'algorithm_type', algorithmType);
    if (solverOrder !== 1 && solverOrder !== 2) unsupported(NAME, 'solver_order', solverOrder);
    if (solverType !== 'midpoint' && solverType !== 'heun') unsupported(NAME, 'solver_type', solverType);
    if (thresholding) unsupported(NAME, 'thresholding', thresholding);
    if (useLuLambdas) unsupported(NAME, 'use_lu_lambdas', useLuLambdas);
    if (varianceType === 'learned' || varianceType === 'learned_range') unsupported(NAME, 'variance_type', varianceType);
    if (predictionType === 'original_sample') unsupported(NAME, 'prediction_type', predictionType);

    this.alphasCumprod = alphasCumprodOf(betaSchedule(this.config));
    this.#lambdas = this.alphasCumprod.map((alphaBar) => f32(f32(Math.log(f32(Math.sqrt(alphaBar)))) - f32(Math.log(f32(Math.sqrt(f32(1 - alphaBar)))))));
    this.#sigmas = sigmasOf(this.alphasCumprod);
    this.#timesteps = Array.from({ length: numTrainTimesteps }, (_, i) => f32(numTrainTimesteps - 1 - i));
  }

  get timesteps(): readonly number[] {
    return this.#timesteps;
  }

  get sigmas(): Float32Array {
    return this.#sigmas;
  }

  setTimesteps(numInferenceSteps: number): void {
    const { numTrainTimesteps: trainSteps, stepsOffset } = this.config;
    checkInferenceSteps(NAME, numInferenceSteps, trainSteps);
    // Timesteps whose λ is below `lambda_min_clipped` are never used (cosine schedules).
    const lambdaMin = f32(this.config.lambdaMinClipped);
    const clippedCount = this.#lambdas.reduce((count, lambda) => count + (lambda < lambdaMin ? 1 : 0), 0);
    const lastTimestep = trainSteps - clippedCount;

    let timesteps: number[];
    switch (this.config.timestepSpacing) {
      case 'linspace':
        timesteps = numpyLinspace(0, lastTimestep - 1, numInferenceSteps + 1)
          .map(roundHalfEven)
          .reverse()
          .slice(0, -1);
        break;
      case 'leading': {
        const stride = Math.floor(lastTimestep / (numInferenceSteps + 1));
        timesteps = Array.from({ length: numInferenceSteps }, (_, i) => (numInferenceSteps - i) * stride + stepsOffset);
        break;
      }
      case 'trailing':
        timesteps = numpyArange(lastTimestep, 0, -trainSteps / numInferenceSteps).map((t) => roundHalfEven(t) - 1);
        break;
      default:
        unsupported(NAME, 'timestep_spacing', this.config.timestepSpacing);
    }

    const training = sigmasOf(this.alphasCumprod);
    let sigmas: number[];
    if (this.config.useKarrasSigmas) {
      // From the training schedule's σ_max (t = T−1) down to its σ_min (t = 0); the last σ repeats.
      const logSigmas = training.map((sigma) => f32(Math.log(sigma)));
      const karras = karrasSigmas(training[0]!, training[training.length - 1]!, numInferenceSteps);
      timesteps = karras.map((sigma) => roundHalfEven(sigmaToTimestep(sigma, logSigmas)));
      sigmas = [...karras, karras[karras.length - 1]!];
    } else {
      // σ at each timestep, then σ at t = 0 as the final level.
      const finalAlphaBar = this.alphasCumprod[0]!;
      sigmas = [...timesteps.map((t) => interpOnIndexGrid(t, training)), f32(Math.sqrt(f32(f32(1 - finalAlphaBar) / finalAlphaBar)))];
    }
    this.#sigmas = Float32Array.from(sigmas);
    this.#timesteps = timesteps;
    this.#numInferenceSteps = timesteps.length;
    this.#modelOutputs = [];
    this.#lowerOrderNums = 0;
    this.#stepIndex = null;
  }

  scaleModelInput(sample: Float32Array): Float32Array {
    return sample;
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array): SchedulerStepResult {
    if (this.#numInferenceSteps === null) notReady(NAME);
    checkStepInputs(NAME, modelOutput, sample);
    this.#stepIndex ??= this.#indexOf(timestep);
    const index = this.#stepIndex;
    const { solverOrder, lowerOrderFinal, eulerAtFinal } = this.config;
    const stepCount = this.#timesteps.length;
    const fewSteps = lowerOrderFinal && stepCount < LOWER_ORDER_FINAL_MAX_STEPS;
    const finalFirstOrder = index === stepCount - 1 && (eulerAtFinal || fewSteps);

    const dataPrediction = this.#convertModelOutput(modelOutput, sample, index);
    this.#modelOutputs = [...this.#modelOutputs, dataPrediction].slice(-solverOrder);

    const prevSample =
      solverOrder === 1 || this.#lowerOrderNums < 1 || finalFirstOrder
        ? this.#firstOrderUpdate(dataPrediction, sample, index)
        : this.#secondOrderUpdate(sample, index);
    if (this.#lowerOrderNums < solverOrder) this.#lowerOrderNums++;
    this.#stepIndex = index + 1;
    return { prevSample, predOriginalSample: dataPrediction };
  }

  /** The first step's index: the 2nd match if a timestep repeats, the last step if none matches (the reference's rule). */
  #indexOf(timestep: number): number {
    const matches: number[] = [];
    this.#timesteps.forEach((t, i) => {
      if (t === timestep) matches.push(i);
    });
    if (matches.length === 0) return this.#timesteps.length - 1;
    return matches.length > 1 ? matches[1]! : matches[0]!;
  }

  /** x̂_0 from the model output at σ_index (DPM-Solver++ works with the data prediction). */
  #convertModelOutput(modelOutput: Float32Array, sample: Float32Array, index: number): Float32Array {
    const { alpha, sigma } = alphaSigma(this.#sigmas[index]!);
    switch (this.config.predictionType) {
      case 'epsilon':
        return sample.map((x, i) => f32(f32(x - f32(sigma * modelOutput[i]!)) / alpha));
      case 'v_prediction':
        return sample.map((x, i) => f32(f32(alpha * x) - f32(sigma * modelOutput[i]!)));
      default:
        return modelOutput.slice();
    }
  }

  /** DPM-Solver++(1S), i.e. DDIM in λ: x_t = (σ_t/σ_s)·x_s − α_t(e^{−h} − 1)·x̂_0. */
  #firstOrderUpdate(dataPrediction: Float32Array, sample: Float32Array, index: number): Float32Array {
    const target = alphaSigma(this.#sigmas[index + 1]!);
    const source = alphaSigma(this.#sigmas[index]!);
    const h = f32(target.lambda - source.lambda);
    const sampleCoeff = f32(target.sigma / source.sigma);
    const dataCoeff = f32(target.alpha * f32(f32(Math.exp(-h)) - 1));
    return sample.map((x, i) => f32(f32(sampleCoeff * x) - f32(dataCoeff * dataPrediction[i]!)));
  }

  /** DPM-Solver++(2M) with the previous x̂_0 (midpoint, or Heun's variant of the D1 term). */
  #secondOrderUpdate(sample: Float32Array, index: number): Float32Array {
    const target = alphaSigma(this.#sigmas[index + 1]!);
    const source0 = alphaSigma(this.#sigmas[index]!);
    const source1 = alphaSigma(this.#sigmas[index - 1]!);
    const m0 = this.#modelOutputs[this.#modelOutputs.length - 1]!;
    const m1 = this.#modelOutputs[this.#modelOutputs.length - 2]!;
    const h = f32(target.lambda - source0.lambda);
    const h0 = f32(source0.lambda - source1.lambda);
    const inverseR0 = f32(1 / f32(h0 / h));
    const expMinusHMinusOne = f32(f32(Math.exp(-h)) - 1);
    const sampleCoeff = f32(target.sigma / source0.sigma);
    const d0Coeff = f32(target.alpha * expMinusHMinusOne);
    const out = new Float32Array(sample.length);
    if (this.config.solverType === 'heun') {
      const d1Coeff = f32(target.alpha * f32(f32(expMinusHMinusOne / h) + 1));
      for (let i = 0; i < out.length; i++) {
        const d1 = f32(inverseR0 * f32(m0[i]! - m1[i]!));
        out[i] = f32(f32(f32(sampleCoeff * sample[i]!) - f32(d0Coeff * m0[i]!)) + f32(d1Coeff * d1));
      }
    } else {
      const d1Coeff = f32(0.5 * d0Coeff);
      for (let i = 0; i < out.length; i++) {
        const d1 = f32(inverseR0 * f32(m0[i]! - m1[i]!));
        out[i] = f32(f32(f32(sampleCoeff * sample[i]!) - f32(d0Coeff * m0[i]!)) - f32(d1Coeff * d1));
      }
    }
    return out;
  }
}
