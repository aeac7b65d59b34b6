/**
 * The two ceilings the engine figures are compared with, measured in the same run on the same device:
 * - MatMul peak: the worker's 1024² MatMul chain (runtime.benchmark);
 * - Conv peak: chains of 3×3 convolutions at the SD UNet's shapes with CFG batch 2 (320 channels at
 *   64², 640 at 32², 1280 at 16²), the kind of kernel most UNet FLOPs go through. The best of them.
 * Both sessions use the runtime's own options (prepacking off, graph optimisation 'all', so the convs
 * get the same NCHWc rewrite the UNet does).
 */
import { performance } from 'node:perf_hooks';
import { GraphBuilder } from '../../engine/graph/builder';
import { countFlops } from '../../engine/graph/flops';
import { encodeModel } from '../../engine/graph/onnx-writer';
import type { RuntimeClient } from '../../engine/runtime/runtime-client';
import { startCpuWindow, type CpuWindow } from './cpu-share';

export interface ConvChainFigure {
  /** Where the session ran (the runtime falls back to the CPU when a device is unavailable). */
  device: string;
  /** Input shape [N, C, H, W]; every layer is C→C, 3×3, padding 1. */
  shape: [number, number, number, number];
  layers: number;
  gflopPerRun: number;
  runs: number;
  sessionCreateMs: number;
  meanRunMs: number;
  gflopsPerSecond: number;
  cpu: CpuWindow;
}

export interface ComputePeaks {
  matMul: { size: number; layers: number; runs: number; meanRunMs: number; gflopsPerSecond: number; cpu: CpuWindow };
  convChains: ConvChainFigure[];
  /** The best conv chain's GFLOP/s. */
  convGflopsPerSecond: number;
  matMulGflopsPerSecond: number;
}

/** UNet conv levels at 512² with CFG: batch 2; each layer is 15.1 GFLOP at all three. */
const CONV_SHAPES: [number, number, number, number][] = [
  [2, 320, 64, 64],
  [2, 640, 32, 32],
  [2, 1280, 16, 16],
];
const CONV_LAYERS = 4;
const MATMUL = { size: 1024, layers: 32 };

export async function measureComputePeaks(runtime: RuntimeClient, device: string, minMillis: number): Promise<ComputePeaks> {
  const matMulCpu = startCpuWindow();
  const matMulRun = await runtime.benchmark({ backend: device, ...MATMUL, minMillis });
  const cpu = matMulCpu.stop();
  const matMulGflopsPerSecond = (2 * MATMUL.size ** 3 * MATMUL.layers) / (matMulRun.meanRunMillis / 1000) / 1e9;
  const convChains: ConvChainFigure[] = [];
  for (const shape of CONV_SHAPES) convChains.push(await timeConvChain(runtime, device, shape, CONV_LAYERS, minMillis / 2));
  return {
    matMul: { ...MATMUL, runs: matMulRun.runs, meanRunMs: matMulRun.meanRunMillis, gflopsPerSecond: matMulGflopsPerSecond, cpu },
    convChains,
    convGflopsPerSecond: Math.max(...convChains.map((c) => c.gflopsPerSecond)),
    matMulGflopsPerSecond,
  };
}

/**
 * The 320-channel 64² chain alone, briefly (~1 s): taken right before each engine figure, so that figure
 * can also be set against a peak measured under the same load (the shared VM's load changes by the minute).
 */
export async function quickConvPeak(runtime: RuntimeClient, device: string): Promise<ConvChainFigure> {
  return timeConvChain(runtime, device, CONV_SHAPES[0]!, CONV_LAYERS, 600);
}

async function timeConvChain(runtime: RuntimeClient, device: string, shape: [number, number, number, number], layers: number, minMillis: number): Promise<ConvChainFigure> {
  const channels = shape[1];
  const b = new GraphBuilder();
  const input = b.input('x', 'float32', shape);
  let x = input;
  for (let layer = 0; layer < layers; layer++) {
    // Variance-preserving uniform weights (±√(3/fan_in)) keep the values normal: denormals would slow the chain down.
    const weight = b.constant(uniform(channels * channels * 9, Math.sqrt(3 / (channels * 9)), layer + 1), [channels, channels, 3, 3]);
    const bias = b.constant(uniform(channels, 0.01, 100 + layer), [channels]);
    x = b.conv(x, weight, bias, { strides: [1, 1], pads: [1, 1, 1, 1] });
  }
  // One number per image comes back: the output copy would otherwise be part of the timing.
  const y = b.reduceMean(x, [1, 2, 3]);
  const flops = countFlops(b.nodes);
  const model = encodeModel(b.toModel({ name: 'conv-peak', outputs: [{ name: 'y', value: y }] }));
  let started = performance.now();
  const session = await runtime.createSession({ model, device });
  const sessionCreateMs = performance.now() - started;
  try {
    const feeds = { x: { type: 'float32' as const, dims: shape, data: uniform(shape.reduce((p, q) => p * q, 1), 1, 7) } };
    await runtime.run(session.id, feeds);
    let runs = 0;
    const cpu = startCpuWindow();
    started = performance.now();
    do {
      await runtime.run(session.id, feeds);
      runs += 1;
    } while (performance.now() - started < minMillis);
    const meanRunMs = (performance.now() - started) / runs;
    return { device: session.device, shape, layers, gflopPerRun: flops / 1e9, runs, sessionCreateMs, meanRunMs, gflopsPerSecond: flops / (meanRunMs / 1000) / 1e9, cpu: cpu.stop() };
  } finally {
    await runtime.releaseSession(session.id);
  }
}

/** Seeded uniform values in [−scale, scale] (xorshift32). */
export function uniform(count: number, scale: number, seed: number): Float32Array {
  const values = new Float32Array(count);
  let state = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < count; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    values[i] = ((state >>> 0) / 4294967296 - 0.5) * 2 * scale;
  }
  return values;
}
