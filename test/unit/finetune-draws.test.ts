import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { drawFinetuneStep } from '../../main/engine/pipelines/finetune-draws';
import { TorchGenerator } from '../../main/engine/random/torch-randn';
import { ddpmTrainingSchedule, noiseLatents } from '../../main/engine/schedulers/ddpm-training';
import { parseSchedulerConfig } from '../../main/engine/schedulers/scheduler-config';
import { FINETUNE_KIT_MODEL, finetuneKitConfig, kitFloat32, kitNpy, relativeL2 } from '../helpers/finetune-kit';
import { maxAbsDiff } from '../helpers/net-fixtures';

const STEPS = [1, 2, 3];
const config = finetuneKitConfig();
const schedulerFile = () => parseSchedulerConfig(JSON.parse(readFileSync(join(FINETUNE_KIT_MODEL, 'scheduler/scheduler_config.json'), 'utf8')) as Record<string, unknown>);

const bits = (values: Float32Array) => Array.from(new Uint32Array(values.buffer, values.byteOffset, values.length));

describe('fine-tune random draws (kit step 3: ONE generator, per step eps = randn, noise = randn, t = randint(0, T, (B,)))', () => {
  it('reproduces vae_eps, noise and timesteps of steps 1-3 bit for bit from seed 1234', () => {
    const generator = new TorchGenerator(config.seed);
    const latentShape = kitNpy('vae_eps', 1).shape;
    const { numTrainTimesteps } = ddpmTrainingSchedule(schedulerFile());
    for (const step of STEPS) {
      const draws = drawFinetuneStep(generator, latentShape, config.batch, numTrainTimesteps);
      expect(bits(draws.eps), `step ${step} vae_eps`).toEqual(bits(kitFloat32('vae_eps', step)));
      expect(bits(draws.noise), `step ${step} noise`).toEqual(bits(kitFloat32('noise', step)));
      const timesteps = kitNpy('timesteps', step);
      expect(timesteps.dtype).toBe('int64');
      expect(draws.timesteps, `step ${step} timesteps`).toEqual(Array.from(timesteps.data as BigInt64Array, Number));
    }
  });

  it('the order matters: drawing the timesteps first gives other numbers', () => {
    const generator = new TorchGenerator(config.seed);
    const timesteps = Array.from(generator.randint(0, 1000, [config.batch]), Number);
    expect(timesteps).not.toEqual(Array.from(kitNpy('timesteps', 1).data as BigInt64Array, Number));
  });

  it('works for another shape, batch and timestep count, and checks its arguments', () => {
    const draws = drawFinetuneStep(new TorchGenerator(7), [2, 3, 5, 4], 2, 50);
    expect([draws.eps.length, draws.noise.length, draws.timesteps.length]).toEqual([120, 120, 2]);
    expect(draws.timesteps.every((t) => Number.isInteger(t) && t >= 0 && t < 50)).toBe(true);
    // Same stream as the three calls made by hand.
    const generator = new TorchGenerator(7);
    expect(bits(draws.eps)).toEqual(bits(generator.randn([2, 3, 5, 4])));
    expect(bits(draws.noise)).toEqual(bits(generator.randn([2, 3, 5, 4])));
    expect(draws.timesteps).toEqual(Array.from(generator.randint(0, 50, [2]), Number));
    expect(() => drawFinetuneStep(new TorchGenerator(7), [3, 4, 2, 2], 2, 1000)).toThrow(/does not start with the batch size 2/);
    expect(() => drawFinetuneStep(new TorchGenerator(7), [2, 4, 2, 2], 2, 0)).toThrow(/numTrainTimesteps/);
  });
});

describe('DDPM add_noise from the model’s scheduler config (kit step 4)', () => {
  it('reads DDPMScheduler’s schedule from the PNDM config the model ships: scaled_linear 0.00085..0.012 over 1000', () => {
    const schedule = ddpmTrainingSchedule(schedulerFile());
    expect(schedule.config).toMatchObject({ numTrainTimesteps: 1000, betaStart: 0.00085, betaEnd: 0.012, betaSchedule: 'scaled_linear', rescaleBetasZeroSnr: false });
    expect(schedule.alphasCumprod).toHaveLength(1000);
    // A config without the keys gets DDPMScheduler's own defaults (linear 1e-4..0.02), not PNDM's.
    expect(ddpmTrainingSchedule({}).config).toMatchObject({ numTrainTimesteps: 1000, betaStart: 0.0001, betaEnd: 0.02, betaSchedule: 'linear' });
  });

  it('noisy_latents of steps 1-3 from the kit’s latents, noise and timesteps, bit for bit', async ({ annotate }) => {
    const schedule = ddpmTrainingSchedule(schedulerFile());
    const report: string[] = [];
    for (const step of STEPS) {
      const timesteps = Array.from(kitNpy('timesteps', step).data as BigInt64Array, Number);
      const noisy = noiseLatents(schedule, kitFloat32('latents', step), kitFloat32('noise', step), timesteps);
      const expected = kitFloat32('noisy_latents', step);
      const error = relativeL2(noisy, expected);
      report.push(`step ${step}: rel L2 ${error.toExponential(2)}, max |a − b| ${maxAbsDiff(noisy, expected).toExponential(2)}`);
      // Measured bit-exact: √ᾱ and √(1 − ᾱ) are correctly rounded float32, then one multiply and one add each, as torch does.
      expect(bits(noisy), `step ${step}`).toEqual(bits(expected));
    }
    await annotate(report.join('; '));
  });

  it('another schedule and batch: each item gets its own ᾱ_t', () => {
    const schedule = ddpmTrainingSchedule({ numTrainTimesteps: 10, betaSchedule: 'linear', betaStart: 0.1, betaEnd: 0.5 });
    expect(schedule.numTrainTimesteps).toBe(10);
    const latents = Float32Array.from([1, 2, 3, 4]);
    const noise = Float32Array.from([0.5, -0.5, 1, -1]);
    const noisy = noiseLatents(schedule, latents, noise, [0, 9]);
    // ᾱ_0 = 1 − 0.1 = 0.9; ᾱ_9 = ∏ (1 − β_i) over β = 0.1, 0.1444…, …, 0.5 (float32 betas, float64 product).
    const betas = Array.from({ length: 10 }, (_, i) => Math.fround(0.1 + (i * 0.4) / 9));
    const alphaBar9 = betas.reduce((p, b) => p * (1 - b), 1);
    const expected = [1 * Math.sqrt(0.9) + 0.5 * Math.sqrt(0.1), 2 * Math.sqrt(0.9) - 0.5 * Math.sqrt(0.1), 3 * Math.sqrt(alphaBar9) + Math.sqrt(1 - alphaBar9), 4 * Math.sqrt(alphaBar9) - Math.sqrt(1 - alphaBar9)];
    expect(maxAbsDiff(noisy, expected)).toBeLessThanOrEqual(1e-6);
    expect(() => noiseLatents(schedule, latents, noise, [10, 0])).toThrow(/timestep 10 is not an integer in \[0, 10\)/);
  });
});
