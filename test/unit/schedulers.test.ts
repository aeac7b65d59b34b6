import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readNpyFile } from '../../main/engine/io/npy-file';
import type { NpyArray } from '../../main/engine/io/npy';
import { alphasCumprodOf, betaSchedule, sigmasOf } from '../../main/engine/schedulers/betas';
import { addNoise } from '../../main/engine/schedulers/ddpm-noise';
import { createScheduler, parseSchedulerConfig, type Scheduler, type SchedulerName } from '../../main/engine/schedulers/scheduler';
import { BETA_SCHEDULE_DEFAULTS, type SchedulerConfigFile } from '../../main/engine/schedulers/scheduler-config';
import { karrasSigmas } from '../../main/engine/schedulers/karras';
import { numpyArange, numpyLinspace, roundHalfEven } from '../../main/engine/schedulers/numpy-compat';
import { REPO_ROOT } from '../helpers/built-app';

const kit = join(REPO_ROOT, 'test/fixtures/parity');

interface ManifestScheduler {
  class: string;
  config: Record<string, unknown>;
  num_inference_steps: number;
  init_noise_sigma: number;
  timesteps: number[];
  files_prefix: string;
}

const manifest = JSON.parse(readFileSync(join(kit, 'manifest.json'), 'utf8')) as { schedulers: Record<string, ManifestScheduler> };
/** The model's own scheduler_config.json: every kit sequence was made with `<Class>.from_config(this)`. */
const modelConfig = parseSchedulerConfig(JSON.parse(readFileSync(join(kit, 'models/tiny-blipdiffusion/scheduler/scheduler_config.json'), 'utf8')));

/** Kit entry → our scheduler name and what the kit's generator passed on top of the model config. */
const KIT_CASES: readonly { entry: string; name: SchedulerName; overrides: SchedulerConfigFile; hasSigmas: boolean }[] = [
  { entry: 'pndm', name: 'pndm', overrides: {}, hasSigmas: false },
  { entry: 'ddim', name: 'ddim', overrides: {}, hasSigmas: false },
  { entry: 'euler', name: 'euler', overrides: {}, hasSigmas: true },
  { entry: 'euler_linspace', name: 'euler', overrides: { timestepSpacing: 'linspace' }, hasSigmas: true },
  { entry: 'dpmpp2m', name: 'dpmpp2m', overrides: {}, hasSigmas: true },
  { entry: 'dpmpp2m_karras', name: 'dpmpp2m-karras', overrides: {}, hasSigmas: true },
];

/** The manifest's resolved reference config in our field names (null = absent, "-inf" = −∞). */
function camelConfig(config: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(config)) {
    if (value === null) continue;
    out[key.replace(/_([a-z])/g, (_, letter: string) => letter.toUpperCase())] = value === '-inf' ? -Infinity : value;
  }
  return out;
}

function load(file: string): NpyArray {
  return readNpyFile(join(kit, 'schedulers', file));
}

function rows(array: NpyArray): Float32Array[] {
  const data = array.data as Float32Array;
  const size = data.length / array.shape[0]!;
  return Array.from({ length: array.shape[0]! }, (_, i) => data.subarray(i * size, (i + 1) * size));
}

/** max|a − b| / max|b|: the reading of "≤ 1e-5 relative" used throughout (plus 1e-7 absolute slack). */
function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  expect(actual.length).toBe(expected.length);
  let maxDiff = 0;
  let maxRef = 0;
  for (let i = 0; i < expected.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(actual[i]! - expected[i]!));
    maxRef = Math.max(maxRef, Math.abs(expected[i]!));
  }
  return maxDiff / (maxRef + 1e-7 / 1e-5);
}

const TOLERANCE = 1e-5;

function configOf(scheduler: Scheduler): unknown {
  return (scheduler as Scheduler & { config: unknown }).config;
}

describe('schedulers against the parity kit (diffusers v0.25.1)', () => {
  it('covers every scheduler sequence of the kit', () => {
    expect(KIT_CASES.map((c) => c.entry).sort()).toEqual(Object.keys(manifest.schedulers).sort());
  });

  describe.each(KIT_CASES.map((c) => [c.entry, c] as const))('%s', (entry, testCase) => {
    const reference = manifest.schedulers[entry]!;
    const build = (): Scheduler => createScheduler(testCase.name, { ...modelConfig, ...testCase.overrides });

    it("fills the keys the model config lacks with the reference class's defaults", () => {
      expect(configOf(build())).toEqual(camelConfig(reference.config));
    });

    it('sets the same timesteps, sigmas and init_noise_sigma', () => {
      const scheduler = build();
      scheduler.setTimesteps(reference.num_inference_steps);
      const timesteps = load(`${entry}_timesteps.npy`);
      const expected = Array.from(timesteps.data as Float32Array | BigInt64Array, Number);
      expect(scheduler.timesteps).toEqual(expected);
      expect(scheduler.timesteps).toEqual(reference.timesteps);
      expect(scheduler.initNoiseSigma).toBe(reference.init_noise_sigma);
      if (testCase.hasSigmas) {
        // σ comes out bit-identical: same float32 schedule, same float64 interpolation.
        expect(scheduler.sigmas).toEqual(load(`${entry}_sigmas.npy`).data);
      }
    });

    it('runs the whole loop from the initial sample within 1e-5 relative of every scaled input and prev sample', () => {
      const scheduler = build();
      scheduler.setTimesteps(reference.num_inference_steps);
      const modelOutputs = rows(load(`${entry}_model_outputs.npy`));
      const scaledInputs = rows(load(`${entry}_scaled_model_inputs.npy`));
      const prevSamples = rows(load(`${entry}_prev_samples.npy`));
      expect(modelOutputs).toHaveLength(scheduler.timesteps.length);
      const initNoiseSigma = Math.fround(scheduler.initNoiseSigma);
      let latents: Float32Array = (load(`${entry}_initial_sample.npy`).data as Float32Array).map((x) => Math.fround(x * initNoiseSigma));
      let worst = 0;
      scheduler.timesteps.forEach((t, i) => {
        const input = scheduler.scaleModelInput(latents, t);
        worst = Math.max(worst, relativeError(input, scaledInputs[i]!));
        const { prevSample } = scheduler.step(modelOutputs[i]!, t, latents);
        worst = Math.max(worst, relativeError(prevSample, prevSamples[i]!));
        latents = prevSample;
      });
      expect(worst).toBeLessThanOrEqual(TOLERANCE);
    });
  });
});

describe('timesteps for other configs (expected values worked out by hand from the reference formulas)', () => {
  const timestepsOf = (name: SchedulerName, config: SchedulerConfigFile, steps: number): readonly number[] => {
    const scheduler = createScheduler(name, { ...modelConfig, ...config });
    scheduler.setTimesteps(steps);
    return scheduler.timesteps;
  };
  const range = (count: number, at: (i: number) => number): number[] => Array.from({ length: count }, (_, i) => at(i));

  it('PNDM, SD-1.5 style steps_offset=1, 50 steps: stride 20 from 981 down to 1, with 961 repeated', () => {
    // _timesteps = 0, 20, …, 980 (+1); PLMS order = [_ts[:-1], _ts[-2], _ts[-1]] reversed.
    const expected = [981, 961, ...range(49, (i) => 961 - 20 * i)];
    expect(timestepsOf('pndm', { stepsOffset: 1 }, 50)).toEqual(expected);
  });

  it('PNDM with Runge–Kutta warm-up (skip_prk_steps=false), 10 steps', () => {
    // Last 4 of 0…900: 600, 700, 800, 900 with +δ/2 = 50 → 600, 650, …, 950; drop the last, double each,
    // drop both ends, reverse; then PLMS over _ts[:-3] = 0…600 reversed.
    const prk = [900, 850, 850, 800, 800, 750, 750, 700, 700, 650, 650, 600];
    const plms = [600, 500, 400, 300, 200, 100, 0];
    expect(timestepsOf('pndm', { skipPrkSteps: false }, 10)).toEqual([...prk, ...plms]);
  });

  it('DDIM "trailing" and "linspace" match Table 2 of Lin et al. 2023 (0-based), with round-half-to-even', () => {
    expect(timestepsOf('ddim', { timestepSpacing: 'trailing' }, 10)).toEqual(range(10, (i) => 999 - 100 * i));
    expect(timestepsOf('ddim', { timestepSpacing: 'linspace' }, 10)).toEqual(range(10, (i) => 999 - 111 * i));
    // linspace(0, 999, 7) = 0, 166.5, 333, 499.5, 666, 832.5, 999: NumPy rounds 166.5 → 166, 832.5 → 832.
    expect(timestepsOf('ddim', { timestepSpacing: 'linspace' }, 7)).toEqual([999, 832, 666, 500, 333, 166, 0]);
    // arange(1000, 0, −333.3…) = 1000, 666.67, 333.33 → round, −1.
    expect(timestepsOf('ddim', { timestepSpacing: 'trailing' }, 3)).toEqual([999, 666, 332]);
    // SD-1.5's DDIM config (steps_offset=1): 981, 961, …, 1.
    expect(timestepsOf('ddim', { stepsOffset: 1 }, 50)).toEqual(range(50, (i) => 981 - 20 * i));
  });

  it('Euler: "leading" with an offset, "trailing", and fractional "linspace" timesteps', () => {
    expect(timestepsOf('euler', { stepsOffset: 1 }, 4)).toEqual([751, 501, 251, 1]);
    expect(timestepsOf('euler', { timestepSpacing: 'trailing' }, 4)).toEqual([999, 749, 499, 249]);
    // linspace(0, 999, 5) reversed, not rounded: 999, 749.25, 499.5, 249.75, 0 (all exact in float32).
    expect(timestepsOf('euler', { timestepSpacing: 'linspace' }, 5)).toEqual([999, 749.25, 499.5, 249.75, 0]);
  });

  it('DPM-Solver++: n + 1 points with the last dropped, for each spacing', () => {
    // linspace(0, 999, 6) = 0, 199.8, 399.6, 599.4, 799.2, 999 → rounded, reversed, last dropped.
    expect(timestepsOf('dpmpp2m', { timestepSpacing: 'linspace' }, 5)).toEqual([999, 799, 599, 400, 200]);
    // stride 1000 // 6 = 166: 5·166 … 1·166, plus steps_offset.
    expect(timestepsOf('dpmpp2m', { stepsOffset: 1 }, 5)).toEqual([831, 665, 499, 333, 167]);
    expect(timestepsOf('dpmpp2m', { timestepSpacing: 'trailing' }, 4)).toEqual([999, 749, 499, 249]);
  });

  it('Euler σ at a fractional timestep interpolates linearly between the training σ', () => {
    const euler = createScheduler('euler', { ...modelConfig, timestepSpacing: 'linspace' });
    euler.setTimesteps(5);
    const training = sigmasOf(euler.alphasCumprod);
    // t = 749.25: σ_749 + 0.25·(σ_750 − σ_749), rounded to float32.
    expect(euler.sigmas![1]).toBe(Math.fround(training[749]! + 0.25 * (training[750]! - training[749]!)));
    expect(euler.sigmas![5]).toBe(0);
    expect(euler.initNoiseSigma).toBe(training[999]);
  });
});

describe('Karras sigmas', () => {
  it('run from σ_max to σ_min with ρ = 7 (Karras et al. 2022, eq. 5)', () => {
    const sigmas = karrasSigmas(0.1, 10, 3);
    expect(sigmas[0]).toBeCloseTo(10, 12);
    expect(sigmas[2]).toBeCloseTo(0.1, 12);
    expect(sigmas[1]).toBeCloseTo(((10 ** (1 / 7) + 0.1 ** (1 / 7)) / 2) ** 7, 12);
  });

  it('Euler with Karras sigmas maps each σ back to its (fractional) timestep', () => {
    const euler = createScheduler('euler', { ...modelConfig, useKarrasSigmas: true });
    euler.setTimesteps(5);
    // "leading" 5 steps span t = 800 … 0, so σ runs from σ_800 down to σ_0 and t from ≈800 to ≈0.
    const training = sigmasOf(euler.alphasCumprod);
    expect(euler.sigmas![0]).toBe(training[800]);
    expect(euler.sigmas![4]).toBe(training[0]);
    expect(euler.timesteps[0]).toBeCloseTo(800, 3);
    expect(euler.timesteps[4]).toBeCloseTo(0, 3);
    for (let i = 1; i < 5; i++) expect(euler.timesteps[i]!).toBeLessThan(euler.timesteps[i - 1]!);
  });

  it('DPM-Solver++ runs short (1st-order last step) and long (15+ steps, 2nd order to the end) schedules', () => {
    for (const steps of [5, 20]) {
      const dpm = createScheduler('dpmpp2m', modelConfig);
      dpm.setTimesteps(steps);
      let latents: Float32Array = new Float32Array([0.5, -1, 2, 0]);
      for (const t of dpm.timesteps) latents = dpm.step(new Float32Array([0.1, -0.2, 0.3, 0]), t, latents).prevSample;
      expect(latents.every(Number.isFinite)).toBe(true);
    }
  });
});

describe('noise schedules', () => {
  it('starts and ends the linear and scaled-linear schedules at beta_start and beta_end', () => {
    const linear = betaSchedule({ ...BETA_SCHEDULE_DEFAULTS });
    expect(linear[0]).toBe(Math.fround(1e-4));
    expect(linear[999]).toBe(Math.fround(0.02));
    expect(linear[500]).toBeCloseTo(1e-4 + (500 * (0.02 - 1e-4)) / 999, 9);
    const scaled = betaSchedule({ ...BETA_SCHEDULE_DEFAULTS, betaSchedule: 'scaled_linear', betaStart: 0.00085, betaEnd: 0.012 });
    expect(scaled[0]).toBeCloseTo(0.00085, 10);
    expect(scaled[999]).toBeCloseTo(0.012, 8); // (float32 √0.012)² is 0.0119999992
    const alphaBar = alphasCumprodOf(scaled);
    expect(alphaBar[0]).toBe(Math.fround(1 - scaled[0]!));
    expect(alphaBar[1]).toBe(Math.fround(Math.fround(1 - scaled[0]!) * Math.fround(1 - scaled[1]!)));
  });

  it('uses trained_betas when given, and the cosine schedule capped at 0.999', () => {
    expect(Array.from(betaSchedule({ ...BETA_SCHEDULE_DEFAULTS, numTrainTimesteps: 2, trainedBetas: [0.25, 0.5] }))).toEqual([0.25, 0.5]);
    const cosine = betaSchedule({ ...BETA_SCHEDULE_DEFAULTS, numTrainTimesteps: 10, betaSchedule: 'squaredcos_cap_v2' });
    const alphaBar = (t: number): number => Math.cos(((t + 0.008) / 1.008) * (Math.PI / 2)) ** 2;
    expect(cosine[0]).toBe(Math.fround(1 - alphaBar(0.1) / alphaBar(0)));
    expect(cosine[9]).toBe(Math.fround(0.999));
  });
});

describe('addNoise (DDPM forward process)', () => {
  // Hand-picked ᾱ with simple square roots: √0.25 = 0.5, √0.75; √0.64 = 0.8, √0.36 = 0.6.
  const alphasCumprod = new Float32Array([0.25, 0.64]);

  it('computes √ᾱ·x_0 + √(1 − ᾱ)·ε for one timestep', () => {
    const noisy = addNoise(new Float32Array([2, -1]), new Float32Array([1, 4]), 0, alphasCumprod);
    expect(noisy[0]).toBeCloseTo(0.5 * 2 + Math.sqrt(0.75) * 1, 6);
    expect(noisy[1]).toBeCloseTo(0.5 * -1 + Math.sqrt(0.75) * 4, 6);
  });

  it('takes one timestep per batch item', () => {
    const noisy = addNoise(new Float32Array([1, 1, 1, 1]), new Float32Array([1, 1, 1, 1]), [0, 1], alphasCumprod);
    expect(noisy[2]).toBeCloseTo(0.8 + 0.6, 6);
    expect(noisy[3]).toBeCloseTo(0.8 + 0.6, 6);
    expect(noisy[0]).toBeCloseTo(0.5 + Math.sqrt(0.75), 6);
  });

  it('rejects mismatched sizes and timesteps outside the schedule', () => {
    expect(() => addNoise(new Float32Array(3), new Float32Array(3), [0, 1], alphasCumprod)).toThrow(RangeError);
    expect(() => addNoise(new Float32Array(2), new Float32Array(3), 0, alphasCumprod)).toThrow(RangeError);
    expect(() => addNoise(new Float32Array(2), new Float32Array(2), 2, alphasCumprod)).toThrow(/timestep 2/);
  });
});

describe('scheduler config and misuse', () => {
  it('reads scheduler_config.json keys, ignores foreign ones and names the bad key', () => {
    expect(parseSchedulerConfig({ _class_name: 'PNDMScheduler', constructor: 'x', steps_offset: 1, trained_betas: null, lambda_min_clipped: '-inf' })).toEqual({
      stepsOffset: 1,
      lambdaMinClipped: -Infinity,
    });
    expect(() => parseSchedulerConfig({ beta_schedule: 'cubic' })).toThrow(/'beta_schedule'/);
    expect(() => parseSchedulerConfig({ num_train_timesteps: 0 })).toThrow(/'num_train_timesteps'/);
  });

  it('refuses options it does not implement, and steps before setTimesteps', () => {
    expect(() => createScheduler('ddim', { thresholding: true })).toThrow(/thresholding/);
    expect(() => createScheduler('dpmpp2m', { useLuLambdas: true })).toThrow(/use_lu_lambdas/);
    const ddim = createScheduler('ddim', modelConfig);
    expect(() => ddim.step(new Float32Array(4), 999, new Float32Array(4))).toThrow(/setTimesteps/);
    ddim.setTimesteps(10);
    expect(() => ddim.step(new Float32Array(4), 900, new Float32Array(3))).toThrow(RangeError);
    expect(() => ddim.setTimesteps(1001)).toThrow(RangeError);
  });

  it('DDIM with η > 0 adds σ_t·z and needs the noise', () => {
    const ddim = createScheduler('ddim', modelConfig);
    ddim.setTimesteps(10);
    const sample = new Float32Array([0.5, -0.5]);
    const eps = new Float32Array([0.1, 0.2]);
    const plain = ddim.step(eps, 900, sample).prevSample;
    expect(() => ddim.step(eps, 900, sample, { eta: 1 })).toThrow(/varianceNoise/);
    const zeroNoise = ddim.step(eps, 900, sample, { eta: 1, varianceNoise: new Float32Array(2) }).prevSample;
    const withNoise = ddim.step(eps, 900, sample, { eta: 1, varianceNoise: new Float32Array([1, 1]) }).prevSample;
    // η changes the direction term (√(1 − ᾱ_prev − σ²)), and the noise adds exactly σ_t·z.
    expect(zeroNoise[0]).not.toBe(plain[0]);
    const alphaBar = ddim.alphasCumprod;
    const variance = ((1 - alphaBar[800]!) / (1 - alphaBar[900]!)) * (1 - alphaBar[900]! / alphaBar[800]!);
    expect(withNoise[0]! - zeroNoise[0]!).toBeCloseTo(Math.sqrt(variance), 6);
  });
});

describe('NumPy-compatible helpers', () => {
  it('round halves to even, fill arange from its first step and end linspace exactly at stop', () => {
    expect([0.5, 1.5, 2.5, 3.5, 498.5, 2.4, 2.6].map(roundHalfEven)).toEqual([0, 2, 2, 4, 498, 2, 3]);
    expect(numpyArange(1000, 0, -250)).toEqual([1000, 750, 500, 250]);
    expect(numpyLinspace(0, 1, 4).at(-1)).toBe(1);
    expect(numpyLinspace(3, 7, 1)).toEqual([3]);
  });
});
