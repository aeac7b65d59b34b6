/**
 * The noise schedule a fine-tune trains against: diffusers v0.25.1 `DDPMScheduler` built from the
 * model's scheduler config (`DDPMScheduler.from_config`, as diffusers' training scripts do), so the
 * keys the file lacks take DDPM's own defaults. Only the training side is needed: ᾱ_t for
 * `add_noise` (ddpm-noise.ts) and the number of training timesteps that `randint` draws from.
 */
import { alphasCumprodOf, betaSchedule, rescaleZeroTerminalSnr } from './betas';
import { addNoise } from './ddpm-noise';
import { BETA_SCHEDULE_DEFAULTS, type BetaScheduleConfig, type SchedulerConfigFile, withDefaults } from './scheduler-config';

export interface DdpmTrainingConfig extends BetaScheduleConfig {
  rescaleBetasZeroSnr: boolean;
}

/** `DDPMScheduler.__init__` defaults of the keys that shape the training schedule. */
export const DDPM_TRAINING_DEFAULTS: DdpmTrainingConfig = { ...BETA_SCHEDULE_DEFAULTS, rescaleBetasZeroSnr: false };

export interface DdpmTrainingSchedule {
  readonly config: Readonly<DdpmTrainingConfig>;
  /** ᾱ_t, float32, index = training timestep (torch's float32 linspace and cumprod, betas.ts). */
  readonly alphasCumprod: Float32Array;
  /** `num_train_timesteps`: training timesteps are drawn from [0, this). */
  readonly numTrainTimesteps: number;
}

/** The schedule from a parsed scheduler config (`parseSchedulerConfig`), whatever scheduler class it was written for. */
export function ddpmTrainingSchedule(file: SchedulerConfigFile): DdpmTrainingSchedule {
  const config = Object.freeze(withDefaults(file, DDPM_TRAINING_DEFAULTS));
  const betas = betaSchedule(config);
  return { config, alphasCumprod: alphasCumprodOf(config.rescaleBetasZeroSnr ? rescaleZeroTerminalSnr(betas) : betas), numTrainTimesteps: config.numTrainTimesteps };
}

/** `DDPMScheduler.add_noise(latents, noise, timesteps)`: one timestep per batch item, float32. */
export function noiseLatents(schedule: DdpmTrainingSchedule, latents: Float32Array, noise: Float32Array, timesteps: readonly number[]): Float32Array {
  return addNoise(latents, noise, timesteps, schedule.alphasCumprod);
}
