/**
 * A diffusers `scheduler_config.json`, read into camelCase fields. A key the file lacks (or sets to null)
 * stays undefined here; each scheduler then fills it with ITS OWN default from the reference's
 * `__init__` signature, because the defaults differ between classes, exactly as with diffusers'
 * `from_config`: BLIP-Diffusion's PNDM config has no `clip_sample`, so DDIM built from it clips (DDIM's
 * default), and a config without `timestep_spacing` gives Euler "linspace" but PNDM "leading".
 */

export const BETA_SCHEDULES = ['linear', 'scaled_linear', 'squaredcos_cap_v2'] as const;
export type BetaScheduleName = (typeof BETA_SCHEDULES)[number];

/** What the model predicts; diffusers' Euler also accepts the legacy name 'original_sample' for 'sample'. */
export const PREDICTION_TYPES = ['epsilon', 'v_prediction', 'sample', 'original_sample'] as const;
export type PredictionType = (typeof PREDICTION_TYPES)[number];

/** Timestep spacings of "Common Diffusion Noise Schedules and Sample Steps are Flawed" (Lin et al. 2023), Table 2. */
export const TIMESTEP_SPACINGS = ['linspace', 'leading', 'trailing'] as const;
export type TimestepSpacing = (typeof TIMESTEP_SPACINGS)[number];

export const INTERPOLATION_TYPES = ['linear', 'log_linear'] as const;
export type InterpolationType = (typeof INTERPOLATION_TYPES)[number];

export const TIMESTEP_TYPES = ['discrete', 'continuous'] as const;
export type TimestepType = (typeof TIMESTEP_TYPES)[number];

/** Every key of the four schedulers' configs, camelCased; undefined = not in the file. */
export interface SchedulerConfigFile {
  numTrainTimesteps?: number;
  betaStart?: number;
  betaEnd?: number;
  betaSchedule?: BetaScheduleName;
  trainedBetas?: readonly number[];
  predictionType?: PredictionType;
  timestepSpacing?: TimestepSpacing;
  stepsOffset?: number;
  setAlphaToOne?: boolean;
  skipPrkSteps?: boolean;
  clipSample?: boolean;
  clipSampleRange?: number;
  thresholding?: boolean;
  dynamicThresholdingRatio?: number;
  sampleMaxValue?: number;
  rescaleBetasZeroSnr?: boolean;
  interpolationType?: InterpolationType;
  useKarrasSigmas?: boolean;
  sigmaMin?: number;
  sigmaMax?: number;
  timestepType?: TimestepType;
  algorithmType?: string;
  solverOrder?: number;
  solverType?: string;
  lowerOrderFinal?: boolean;
  eulerAtFinal?: boolean;
  useLuLambdas?: boolean;
  lambdaMinClipped?: number;
  varianceType?: string;
}

type Reader = (value: unknown, key: string) => unknown;

function fail(key: string, expected: string, value: unknown): never {
  throw new Error(`scheduler config: '${key}' must be ${expected} (got ${JSON.stringify(value)})`);
}

const finiteNumber: Reader = (value, key) => (typeof value === 'number' && Number.isFinite(value) ? value : fail(key, 'a finite number', value));
const nonNegativeInteger: Reader = (value, key) => (Number.isSafeInteger(value) && (value as number) >= 0 ? value : fail(key, 'an integer ≥ 0', value));
const positiveInteger: Reader = (value, key) => (Number.isSafeInteger(value) && (value as number) > 0 ? value : fail(key, 'an integer > 0', value));
const boolean: Reader = (value, key) => (typeof value === 'boolean' ? value : fail(key, 'true or false', value));
const string: Reader = (value, key) => (typeof value === 'string' ? value : fail(key, 'a string', value));
const oneOf =
  (choices: readonly string[]): Reader =>
  (value, key) =>
    typeof value === 'string' && choices.includes(value) ? value : fail(key, `one of ${choices.join(', ')}`, value);
const numberList: Reader = (value, key) =>
  Array.isArray(value) && value.length > 0 && value.every((v) => typeof v === 'number' && Number.isFinite(v)) ? value : fail(key, 'a list of numbers', value);
/** Python writes ±inf as the non-JSON token `-Infinity`; a loader may hand it over as a number or a string. */
const numberOrInfinity: Reader = (value, key) => {
  if (typeof value === 'number' && !Number.isNaN(value)) return value;
  if (value === '-inf' || value === '-Infinity') return -Infinity;
  if (value === 'inf' || value === 'Infinity') return Infinity;
  return fail(key, 'a number or ±inf', value);
};

/** File key → [field, reader]. Keys not listed (`_class_name`, `_diffusers_version`, others' keys) are ignored. */
const FIELDS: Readonly<Record<string, readonly [keyof SchedulerConfigFile, Reader]>> = {
  num_train_timesteps: ['numTrainTimesteps', positiveInteger],
  beta_start: ['betaStart', finiteNumber],
  beta_end: ['betaEnd', finiteNumber],
  beta_schedule: ['betaSchedule', oneOf(BETA_SCHEDULES)],
  trained_betas: ['trainedBetas', numberList],
  prediction_type: ['predictionType', oneOf(PREDICTION_TYPES)],
  timestep_spacing: ['timestepSpacing', oneOf(TIMESTEP_SPACINGS)],
  steps_offset: ['stepsOffset', nonNegativeInteger],
  set_alpha_to_one: ['setAlphaToOne', boolean],
  skip_prk_steps: ['skipPrkSteps', boolean],
  clip_sample: ['clipSample', boolean],
  clip_sample_range: ['clipSampleRange', finiteNumber],
  thresholding: ['thresholding', boolean],
  dynamic_thresholding_ratio: ['dynamicThresholdingRatio', finiteNumber],
  sample_max_value: ['sampleMaxValue', finiteNumber],
  rescale_betas_zero_snr: ['rescaleBetasZeroSnr', boolean],
  interpolation_type: ['interpolationType', oneOf(INTERPOLATION_TYPES)],
  use_karras_sigmas: ['useKarrasSigmas', boolean],
  sigma_min: ['sigmaMin', finiteNumber],
  sigma_max: ['sigmaMax', finiteNumber],
  timestep_type: ['timestepType', oneOf(TIMESTEP_TYPES)],
  algorithm_type: ['algorithmType', string],
  solver_order: ['solverOrder', positiveInteger],
  solver_type: ['solverType', string],
  lower_order_final: ['lowerOrderFinal', boolean],
  euler_at_final: ['eulerAtFinal', boolean],
  use_lu_lambdas: ['useLuLambdas', boolean],
  lambda_min_clipped: ['lambdaMinClipped', numberOrInfinity],
  variance_type: ['varianceType', string],
};

/** Reads a parsed `scheduler_config.json`; wrong types are errors that name the key, unknown keys are ignored. */
export function parseSchedulerConfig(json: Readonly<Record<string, unknown>>): SchedulerConfigFile {
  const config: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(json)) {
    const field = Object.hasOwn(FIELDS, key) ? FIELDS[key] : undefined;
    if (!field || value === null || value === undefined) continue;
    const [name, read] = field;
    config[name] = read(value, key);
  }
  return config as SchedulerConfigFile;
}

/** The file's values over a scheduler's defaults; only the defaults' keys are kept (the resolved config). */
export function withDefaults<T extends Partial<Record<keyof SchedulerConfigFile, unknown>>>(file: SchedulerConfigFile, defaults: T): T {
  const resolved: Record<string, unknown> = { ...defaults };
  for (const key of Object.keys(defaults)) {
    const value = file[key as keyof SchedulerConfigFile];
    if (value !== undefined) resolved[key] = value;
  }
  return resolved as T;
}

/** The keys every scheduler shares: the training noise schedule. */
export interface BetaScheduleConfig {
  numTrainTimesteps: number;
  betaStart: number;
  betaEnd: number;
  betaSchedule: BetaScheduleName;
  trainedBetas: readonly number[] | undefined;
}

/** The four reference classes agree on these defaults. */
export const BETA_SCHEDULE_DEFAULTS: BetaScheduleConfig = {
  numTrainTimesteps: 1000,
  betaStart: 0.0001,
  betaEnd: 0.02,
  betaSchedule: 'linear',
  trainedBetas: undefined,
};

/** Throws the one error used for a config value a scheduler does not implement. */
export function unsupported(scheduler: string, key: string, value: unknown): never {
  throw new Error(`${scheduler}: ${key} = ${JSON.stringify(value)} is not supported`);
}
