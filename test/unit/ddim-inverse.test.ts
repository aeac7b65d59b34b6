import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readNpyFile } from '../../main/engine/io/npy-file';
import { DdimScheduler } from '../../main/engine/schedulers/ddim';
import { DdimInverseScheduler, EDIT_DDIM_CONFIG, editSchedulerConfig } from '../../main/engine/schedulers/ddim-inverse';
import { parseSchedulerConfig } from '../../main/engine/schedulers/scheduler-config';
import { REPO_ROOT } from '../helpers/built-app';

const fixtures = join(REPO_ROOT, 'test/fixtures/edit');
const npy = (name: string) => readNpyFile(join(fixtures, `${name}.npy`));
const float = (name: string) => npy(name).data as Float32Array;
const ints = (name: string) => [...(npy(name).data as BigInt64Array)].map(Number);
const modelConfig = parseSchedulerConfig(JSON.parse(readFileSync(join(REPO_ROOT, 'test/fixtures/parity/models/tiny-blipdiffusion/scheduler/scheduler_config.json'), 'utf8')));
const manifest = JSON.parse(readFileSync(join(fixtures, 'manifest.json'), 'utf8')) as { run: { steps: number; scheduler_config: Record<string, unknown> } };

describe('DDIMInverseScheduler (diffusers 0.25.1) as LAVIS’s editing configures it', () => {
  const config = editSchedulerConfig(modelConfig);

  it('the edit config is the model’s noise schedule with SD-1.5’s DDIM keys (the reference’s SCHEDULER_CONFIG)', () => {
    const reference = manifest.run.scheduler_config;
    const scheduler = new DdimInverseScheduler(config);
    expect(scheduler.config).toMatchObject({
      numTrainTimesteps: reference.num_train_timesteps,
      betaStart: reference.beta_start,
      betaEnd: reference.beta_end,
      betaSchedule: reference.beta_schedule,
      clipSample: reference.clip_sample,
      setAlphaToOne: reference.set_alpha_to_one,
      stepsOffset: reference.steps_offset,
      timestepSpacing: reference.timestep_spacing,
    });
    expect(EDIT_DDIM_CONFIG).toEqual({ clipSample: false, setAlphaToOne: false, stepsOffset: 1, timestepSpacing: 'leading' });
    // The model's own steps_offset 0 and absent clip_sample are overridden.
    expect(modelConfig.stepsOffset).toBe(0);
  });

  it('timesteps: ascending, as the reference (10 and LAVIS’s 50 steps), the reverse of DDIM’s', () => {
    const scheduler = new DdimInverseScheduler(config);
    scheduler.setTimesteps(manifest.run.steps);
    expect([...scheduler.timesteps]).toEqual(ints('inversion_timesteps'));
    const ddim = new DdimScheduler(config);
    ddim.setTimesteps(manifest.run.steps);
    expect([...ddim.timesteps]).toEqual(ints('denoise_timesteps'));
    expect([...ddim.timesteps].reverse()).toEqual([...scheduler.timesteps]);
    scheduler.setTimesteps(50);
    expect([...scheduler.timesteps]).toEqual(ints('scheduler_inverse_timesteps_50'));
  });

  it('alphas and every step match the reference bit for bit', () => {
    const scheduler = new DdimInverseScheduler(config);
    scheduler.setTimesteps(manifest.run.steps);
    const alphas = float('scheduler_alphas');
    const outputs = float('scheduler_model_outputs');
    const expected = float('scheduler_prev_samples');
    let x = float('scheduler_sample');
    const n = x.length;
    for (const [i, t] of scheduler.timesteps.entries()) {
      expect(scheduler.stepAlphas(t)).toEqual([alphas[2 * i], alphas[2 * i + 1]]);
      x = scheduler.step(outputs.subarray(i * n, (i + 1) * n), t, x).prevSample;
      let max = 0;
      for (let k = 0; k < n; k++) max = Math.max(max, Math.abs(x[k]! - expected[i * n + k]!));
      expect(max, `step ${i}`).toBeLessThanOrEqual(2e-6);
    }
  });

  it('inverts DDIM: one DDIM step undoes one inverse step given the same noise prediction', () => {
    const inverse = new DdimInverseScheduler(config);
    const ddim = new DdimScheduler(config);
    inverse.setTimesteps(10);
    ddim.setTimesteps(10);
    const x0 = Float32Array.from({ length: 16 }, (_, i) => Math.sin(i));
    const eps = Float32Array.from({ length: 16 }, (_, i) => Math.cos(3 * i));
    const t = inverse.timesteps[4]!;
    const up = inverse.step(eps, t, x0).prevSample;
    const down = ddim.step(eps, t, up).prevSample;
    for (let i = 0; i < 16; i++) expect(down[i]).toBeCloseTo(x0[i]!, 5);
  });

  it('refuses step before setTimesteps and a linspace spacing', () => {
    expect(() => new DdimInverseScheduler(config).step(new Float32Array(1), 1, new Float32Array(1))).toThrow(/setTimesteps/);
    expect(() => new DdimInverseScheduler({ ...config, timestepSpacing: 'linspace' })).toThrow(/not supported/);
  });
});
