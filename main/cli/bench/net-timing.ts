/**
 * Times one network the way the engine runs it: the graph built in JS (weights as external data into
 * the model folder's safetensors), an ORT session over it, a first run (page faults, arena growth) and
 * warm runs; with the memory split (anonymous vs file-backed) and the peak RSS of the whole window.
 */
import { performance } from 'node:perf_hooks';
import { encodeModel } from '../../engine/graph/onnx-writer';
import type { NetGraph } from '../../engine/nets/net-graph';
import { assertFinite } from '../../engine/pipelines/engine-context';
import { kernelChoices, type KernelChoices } from '../../engine/providers/kernel-routing';
import type { RuntimeClient } from '../../engine/runtime/runtime-client';
import type { OptimizationLevel, TensorValue } from '../../engine/runtime/runtime-protocol';
import type { ComputePeaks, ConvChainFigure } from './compute-peaks';
import { startCpuWindow, type CpuWindow } from './cpu-share';
import { resetPeakMemory, sampleMemory, watchMemory, type MemoryMaxima, type MemorySample } from './process-memory';

export interface MemoryWindow {
  /** False where the peak could not be reset: peakRssBytes then covers the whole process life. */
  peakReset: boolean;
  beforeCreate: MemorySample;
  afterCreate: MemorySample;
  afterRuns: MemorySample;
  /** Highest RSS (VmHWM) from session creation to the last run. */
  peakRssBytes: number | null;
  /** Maxima of 100 ms samples over the same window (the anonymous peak has no /proc counter). */
  sampledMax: MemoryMaxima;
}

export interface NetTiming {
  device: string;
  /** The lowering the graph was built with for the requested device (providers/kernel-routing.ts). */
  attention: KernelChoices['attention'];
  optimization: OptimizationLevel;
  graphGflop: number;
  /** Building the graph in JS and encoding the ModelProto (what the app's graph cache saves). */
  graphBuildMs: number;
  /** ORT InferenceSession.create as seen from the main thread. */
  sessionCreateMs: number;
  firstRunMs: number;
  warmRunMs: number[];
  warmRunMedianMs: number;
  /** The fastest warm run: on a shared machine, the one least slowed by other work. */
  warmRunBestMs: number;
  /** From the median warm run. */
  gflopsPerSecond: number;
  /** Null when the peaks could not be measured. */
  fractionOfConvPeak: number | null;
  fractionOfMatMulPeak: number | null;
  /** The 320-channel conv chain timed just before this net, under the same machine load; null if it failed. */
  localConvPeakGflopsPerSecond: number | null;
  fractionOfLocalConvPeak: number | null;
  /** CPU share over the warm runs: how much of the machine this figure had. */
  cpuDuringWarmRuns: CpuWindow;
  memory: MemoryWindow;
}

export interface NetTimingRequest {
  label: string;
  /** The net, built with the kernels of the requested device (as the pipelines build it). */
  build: (kernels: KernelChoices) => NetGraph;
  externalDataFolder: string;
  device: string;
  optimization: OptimizationLevel;
  feeds: Record<string, TensorValue>;
  warmRuns: number;
  peaks: ComputePeaks | null;
  /** Times a conv chain under the current load (before the memory window opens). */
  localPeak?: () => Promise<ConvChainFigure>;
  progress: (message: string) => void;
}

export const medianOf = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length === 0 ? NaN : sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

export async function timeNet(runtime: RuntimeClient, request: NetTimingRequest): Promise<NetTiming> {
  let started = performance.now();
  const kernels = kernelChoices(request.device);
  const graph = request.build(kernels);
  const model = encodeModel(graph.model);
  const graphBuildMs = performance.now() - started;
  const localConvPeakGflopsPerSecond = request.localPeak ? await request.localPeak().then((f) => f.gflopsPerSecond, () => null) : null;

  const peakReset = resetPeakMemory();
  const beforeCreate = sampleMemory();
  const watcher = watchMemory();
  let sessionId: string | null = null;
  try {
    started = performance.now();
    const session = await runtime.createSession({ model, externalDataFolder: request.externalDataFolder, device: request.device, optimization: request.optimization });
    sessionId = session.id;
    const sessionCreateMs = performance.now() - started;
    const afterCreate = sampleMemory();
    request.progress(`${request.label}: session ${(sessionCreateMs / 1000).toFixed(1)} s (graph ${(graphBuildMs / 1000).toFixed(1)} s), ${(graph.flops / 1e9).toFixed(0)} GFLOP per run`);

    started = performance.now();
    assertFinite(request.label, await runtime.run(session.id, request.feeds));
    const firstRunMs = performance.now() - started;
    request.progress(`${request.label}: first run ${(firstRunMs / 1000).toFixed(2)} s`);
    const warmRunMs: number[] = [];
    const cpu = startCpuWindow();
    for (let i = 0; i < request.warmRuns; i++) {
      started = performance.now();
      await runtime.run(session.id, request.feeds);
      warmRunMs.push(performance.now() - started);
      request.progress(`${request.label}: warm run ${(warmRunMs[i]! / 1000).toFixed(2)} s`);
    }
    const cpuDuringWarmRuns = cpu.stop();
    const afterRuns = sampleMemory();
    const sampledMax = watcher.stop();
    const warmRunMedianMs = medianOf(warmRunMs.length > 0 ? warmRunMs : [firstRunMs]);
    const gflopsPerSecond = graph.flops / (warmRunMedianMs / 1000) / 1e9;
    return {
      device: session.device,
      attention: kernels.attention,
      optimization: request.optimization,
      graphGflop: graph.flops / 1e9,
      graphBuildMs,
      sessionCreateMs,
      firstRunMs,
      warmRunMs,
      warmRunMedianMs,
      warmRunBestMs: Math.min(...(warmRunMs.length > 0 ? warmRunMs : [firstRunMs])),
      gflopsPerSecond,
      fractionOfConvPeak: request.peaks ? gflopsPerSecond / request.peaks.convGflopsPerSecond : null,
      fractionOfMatMulPeak: request.peaks ? gflopsPerSecond / request.peaks.matMulGflopsPerSecond : null,
      localConvPeakGflopsPerSecond,
      fractionOfLocalConvPeak: localConvPeakGflopsPerSecond === null ? null : gflopsPerSecond / localConvPeakGflopsPerSecond,
      cpuDuringWarmRuns,
      memory: { peakReset, beforeCreate, afterCreate, afterRuns, peakRssBytes: afterRuns.peakRssBytes, sampledMax },
    };
  } finally {
    watcher.stop();
    if (sessionId !== null) await runtime.releaseSession(sessionId);
  }
}
