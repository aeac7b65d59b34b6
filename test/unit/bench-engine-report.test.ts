import { describe, expect, it } from 'vitest';
import { startCpuWindow } from '../../main/cli/bench/cpu-share';
import { watchMemory } from '../../main/cli/bench/process-memory';
import { formatEngine } from '../../main/cli/bench/engine-summary';
import type { EngineBenchResult } from '../../main/cli/bench/engine-bench';

describe('bench helpers', () => {
  it('startCpuWindow counts this process’s CPU time against the wall clock', () => {
    const window = startCpuWindow();
    const until = performance.now() + 50;
    while (performance.now() < until); // busy for 50 ms
    const cpu = window.stop();
    expect(cpu.wallSeconds).toBeGreaterThanOrEqual(0.05);
    expect(cpu.ownCpuSeconds).toBeGreaterThan(0.02);
    expect(cpu.ownShare).toBeGreaterThan(0);
    expect(cpu.ownShare).toBeLessThanOrEqual(1.01);
    if (process.platform === 'linux') expect(cpu.otherCpuSeconds).toEqual(expect.any(Number));
  });

  it('watchMemory keeps the maxima of its samples', () => {
    const maxima = watchMemory(1000).stop();
    expect(maxima.samples).toBe(2);
    expect(maxima.rssBytes).toBeGreaterThan(0);
  });
});

describe('formatEngine', () => {
  it('reports failed sections and unmeasured goals instead of throwing', () => {
    const failed = { ok: false as const, seconds: 1, error: 'no weights' };
    const result: EngineBenchResult = {
      device: 'webgpu',
      deviceCheck: { ok: false, message: 'no adapter' },
      notes: [],
      model: failed,
      peaks: failed,
      unetStep256: failed,
      unetStep512: failed,
      unetStep512Extended: null,
      controlnetUnetStep512: failed,
      vaeDecode512: failed,
      generation256: failed,
      generation512Peak: failed,
      goals: {
        convPeakGflopsPerSecond: null,
        unetStepFractionOfConvPeak: null,
        unetStepFractionOfLocalConvPeak: null,
        unetStepFractionOfMatMulPeak: null,
        unetStepGoalMet: null,
        unetStep256FractionOfConvPeak: null,
        unetStep512ExtendedFractionOfConvPeak: null,
        generation512PeakRssBytes: null,
        generation512GoalMet: null,
        unetAnonGrowthBytesAll: null,
        unetAnonGrowthBytesExtended: null,
      },
    };
    const text = formatEngine(result).join('\n');
    expect(text).toMatch(/UNet step 512² \(CFG\)\s+FAILED: no weights/);
    expect(text).toMatch(/goal UNet ≥ 60 % of peak\s+not measured/);
    expect(text).not.toMatch(/UNet step 512² extended/);
    expect(text).toMatch(/device webgpu NOT usable here \(no adapter\)/);
  });
});
