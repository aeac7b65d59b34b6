/**
 * The depth estimator's speed at the real Depth-Anything-V2-Small shapes (24.8 M parameters, random
 * weights written once from test/fixtures/depth/real-shapes-depth-anything-v2-small.json into the bench
 * cache): the network at 518² (what DPTImageProcessor makes of a square photo) as the pipeline builds it
 * for the device, timed by net-timing.ts (session, first and warm runs, memory); then the whole
 * photo → depth map flow of `estimateDepthMap` on a 512² DreamBench photo, as the app and `control depth`
 * run it (graph from the on-disk cache, a session per map, pre- and post-processing).
 */
import { copyFileSync, existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { decodeRgb } from '../../engine/imaging/decode';
import { buildDepthAnythingGraph, DEPTH_ANYTHING_INPUTS } from '../../engine/nets/depth-anything';
import { depthModelWeights, estimateDepthMap, loadDepthModel } from '../../engine/pipelines/depth-map';
import type { EngineContext } from '../../engine/pipelines/engine-context';
import type { RuntimeClient } from '../../engine/runtime/runtime-client';
import { medianOf, timeNet, type NetTiming } from './net-timing';
import { ensureRandomComponent } from './random-weights';

export const DEPTH_BENCH_FIXTURES = 'test/fixtures/depth';
export const DEPTH_BENCH_PHOTO = 'test/fixtures/dreambench/dog/00.jpg';
/** DPTImageProcessor's size for Depth-Anything-V2-Small (a square photo becomes 518², 37² patches). */
export const DEPTH_BENCH_SIZE = 518;
const LISTING = 'real-shapes-depth-anything-v2-small';
const PROCESSOR = 'real-preprocessor-config-depth-anything-v2-small.json';

export interface DepthBenchResult {
  model: string;
  size: [number, number];
  weightsBytes: number;
  /** The network alone at 518² on the requested device. */
  net: NetTiming;
  /** estimateDepthMap on the photo: decode excluded; preprocessing, session, run, resize and 0..255 included. */
  flow: { photo: string; width: number; height: number; runs: number; msMedian: number; msMin: number };
}

export interface DepthBenchOptions {
  cacheDir: string;
  /** The engine cache of the flow runs (built graphs). */
  engineCacheDir: string;
  device?: string;
  warmRuns?: number;
  flowRuns?: number;
  fixturesDir?: string;
  photo?: string;
  progress?: (message: string) => void;
}

/** Makes (once) the random-weight V2-Small folder: config.json, model.safetensors, preprocessor_config.json. */
export async function ensureDepthBenchModel(cacheDir: string, fixturesDir = resolve(DEPTH_BENCH_FIXTURES)): Promise<string> {
  const dir = await ensureRandomComponent(fixturesDir, cacheDir, { id: LISTING, folder: 'depth', model: 'depth-anything-v2-small' });
  const processor = join(dir, 'preprocessor_config.json');
  if (!existsSync(processor)) copyFileSync(join(fixturesDir, PROCESSOR), processor);
  return dir;
}

export async function benchDepth(runtime: RuntimeClient, options: DepthBenchOptions): Promise<DepthBenchResult> {
  const device = options.device ?? 'cpu';
  const progress = options.progress ?? (() => {});
  const dir = await ensureDepthBenchModel(options.cacheDir, options.fixturesDir === undefined ? undefined : resolve(options.fixturesDir));
  const model = loadDepthModel(dir);
  const context: EngineContext = { runtime, device, cacheDir: options.engineCacheDir };
  const bound = await depthModelWeights(context, model);
  const size = DEPTH_BENCH_SIZE;
  const pixels = new Float32Array(3 * size * size).map((_, i) => Math.sin(i * 0.001) * 2);
  const net = await timeNet(runtime, {
    label: `depth ${size}²`,
    build: (kernels) => buildDepthAnythingGraph(model.rawConfig, bound.catalog, { height: size, width: size, ...kernels }),
    externalDataFolder: bound.externalDataFolder,
    device,
    optimization: 'all',
    feeds: { [DEPTH_ANYTHING_INPUTS.pixelValues]: { type: 'float32', dims: [1, 3, size, size], data: pixels } },
    warmRuns: options.warmRuns ?? 5,
    peaks: null,
    progress,
  });

  const photo = resolve(options.photo ?? DEPTH_BENCH_PHOTO);
  const image = await decodeRgb(photo);
  const flowMs: number[] = [];
  for (let i = 0; i < (options.flowRuns ?? 3); i++) {
    const started = performance.now();
    await estimateDepthMap(context, { dir }, image);
    flowMs.push(performance.now() - started);
    progress(`depth map of ${image.width}×${image.height}: ${flowMs[i]!.toFixed(0)} ms`);
  }
  const listing = JSON.parse(readFileSync(join(options.fixturesDir ?? resolve(DEPTH_BENCH_FIXTURES), `${LISTING}.json`), 'utf8')) as { model: string };
  return {
    model: `${listing.model} at its real shapes, random weights, batch 1`,
    size: [size, size],
    weightsBytes: statSync(join(dir, 'model.safetensors')).size,
    net,
    flow: { photo, width: image.width, height: image.height, runs: flowMs.length, msMedian: medianOf(flowMs), msMin: Math.min(...flowMs) },
  };
}

export function formatDepth(result: DepthBenchResult | { failed: string }): string[] {
  if ('failed' in result) return [`  depth map (Depth Anything) FAILED: ${result.failed}`];
  const { net, flow } = result;
  return [
    `  depth estimator, V2-Small shapes (${(result.weightsBytes / 2 ** 20).toFixed(0)} MiB weights, ${net.graphGflop.toFixed(0)} GFLOP at ${result.size[0]}²)`,
    `    ${result.size[0]}² on ${net.device}            ${net.warmRunMedianMs.toFixed(0)} ms median warm run, ${net.warmRunBestMs.toFixed(0)} ms best (first ${net.firstRunMs.toFixed(0)} ms, session ${net.sessionCreateMs.toFixed(0)} ms), ${net.gflopsPerSecond.toFixed(0)} GFLOP/s`,
    `    photo → map ${flow.width}×${flow.height}     ${flow.msMedian.toFixed(0)} ms median of ${flow.runs} (session per map, graph cached)`,
  ];
}
