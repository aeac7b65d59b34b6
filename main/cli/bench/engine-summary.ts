/** The engine benchmark's lines in `bench`'s text summary. */
import type { EngineBenchResult, GenerationFigure, Section, StepFigure } from './engine-bench';

const gib = (bytes: number | null | undefined) => (bytes === null || bytes === undefined ? 'n/a' : `${(bytes / 2 ** 30).toFixed(2)} GiB`);
const percent = (fraction: number | null) => (fraction === null ? 'n/a' : `${(100 * fraction).toFixed(0)} %`);
const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
/** Below this share of the machine, other processes were taking a visible part of it. */
const CONTENDED_SHARE = 0.85;
const contended = (share: number) => (share < CONTENDED_SHARE ? ' (CONTENDED: other processes were running)' : '');

function failed(name: string, s: { ok: false; error: string }): string[] {
  return [`    ${name.padEnd(26)}FAILED: ${s.error}`];
}

function step(name: string, s: Section<StepFigure> | null): string[] {
  if (s === null) return [];
  if (!s.ok) return failed(name, s);
  const m = s.memory;
  return [
    `    ${name.padEnd(26)}${seconds(s.warmRunMedianMs)} warm (first ${seconds(s.firstRunMs)}), ${s.graphGflop.toFixed(0)} GFLOP, ${s.gflopsPerSecond.toFixed(0)} GFLOP/s = ${percent(s.fractionOfConvPeak)} of Conv peak (${percent(s.fractionOfLocalConvPeak)} of the chain just before), ${percent(s.fractionOfMatMulPeak)} of MatMul; CPU share ${percent(s.cpuDuringWarmRuns.ownShare)}${contended(s.cpuDuringWarmRuns.ownShare)}`,
    `    ${''.padEnd(26)}best warm ${seconds(s.warmRunBestMs)}, session ${seconds(s.sessionCreateMs)} (+ graph build ${seconds(s.graphBuildMs)}), peak RSS ${gib(m.peakRssBytes)}, max anon ${gib(m.sampledMax.anonBytes)} (before ${gib(m.beforeCreate.anonBytes)}), max file-backed ${gib(m.sampledMax.fileBytes)}`,
  ];
}

function generation(name: string, s: Section<GenerationFigure>): string[] {
  if (!s.ok) return failed(name, s);
  const t = s.timings;
  return [
    `    ${name.padEnd(26)}${s.totalSeconds.toFixed(1)} s total: embedding ${seconds(t.embeddingMs)}, text ${seconds(t.textMs)}, denoise ${seconds(t.denoiseMs)} (${s.unetCalls} UNet calls, ${seconds(s.denoiseMsPerCall)} each), decode ${seconds(t.decodeMs)}; CPU share ${percent(s.cpu.ownShare)}${contended(s.cpu.ownShare)}`,
    `    ${''.padEnd(26)}peak RSS ${gib(s.memory.peakRssBytes)} (+${gib(s.memory.peakRssIncreaseBytes)}), max anon ${gib(s.memory.sampledMax.anonBytes)}, max file-backed ${gib(s.memory.sampledMax.fileBytes)}`,
  ];
}

export function formatEngine(e: EngineBenchResult): string[] {
  const peaks = e.peaks.ok
    ? [`    peaks                     MatMul ${e.peaks.matMulGflopsPerSecond.toFixed(0)} GFLOP/s, Conv ${e.peaks.convGflopsPerSecond.toFixed(0)} GFLOP/s (${e.peaks.convChains.map((c) => `${c.shape[1]}ch ${c.shape[2]}²: ${c.gflopsPerSecond.toFixed(0)}`).join(', ')})`]
    : failed('peaks', e.peaks);
  const g = e.goals;
  const verdict = (met: boolean | null) => (met === null ? 'not measured' : met ? 'met' : 'NOT met');
  return [
    `  engine at real SD-1.5 shapes (random weights), device ${e.device}${e.deviceCheck.ok ? '' : ` NOT usable here (${e.deviceCheck.message}): sessions fell back to the CPU`}`,
    ...(e.model.ok ? [] : failed('model folders', e.model)),
    ...peaks,
    ...step('UNet step 256² (CFG)', e.unetStep256),
    ...step('UNet step 512² (CFG)', e.unetStep512),
    ...step('UNet step 512² extended', e.unetStep512Extended),
    ...step('ControlNet+UNet 512²', e.controlnetUnetStep512),
    ...step('VAE decode 512²', e.vaeDecode512),
    ...generation('generation 256² × 20', e.generation256),
    ...generation('generation 512² × 2', e.generation512Peak),
    `    goal UNet ≥ 60 % of peak  ${verdict(g.unetStepGoalMet)} (512²: ${percent(g.unetStepFractionOfConvPeak)} of the best Conv chain, ${g.convPeakGflopsPerSecond?.toFixed(0) ?? 'n/a'} GFLOP/s; ${percent(g.unetStepFractionOfLocalConvPeak)} of the chain just before; ${percent(g.unetStepFractionOfMatMulPeak)} of MatMul; 256²: ${percent(g.unetStep256FractionOfConvPeak)}; 512² extended: ${percent(g.unetStep512ExtendedFractionOfConvPeak)})`,
    `    goal 512² peak ≤ 5 GB     ${verdict(g.generation512GoalMet)} (${g.generation512PeakRssBytes === null ? 'n/a' : `${(g.generation512PeakRssBytes / 1e9).toFixed(2)} GB`}); UNet anon growth: all ${gib(g.unetAnonGrowthBytesAll)}, extended ${gib(g.unetAnonGrowthBytesExtended)}`,
  ];
}
