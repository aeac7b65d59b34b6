/**
 * The engine benchmark (`bench`, the "Speed and memory"): BLIP-Diffusion at the real SD-1.5
 * shapes with random weights (bench/cache/, generated once), on one device:
 *   a 512² generation through generate() with 2 steps, first, while the process is still small (its
 *   peak memory is the 5 GB goal's figure and does not depend on the step count) → compute peaks
 *   (MatMul, Conv) → UNet guided step (CFG batch 2) at 256² and 512² → the same at 512² with graph
 *   optimisation 'extended' (weights stay memory-mapped) → ControlNet + UNet step at 512² → VAE decode
 *   at 512² → a 256² × 20-step generation.
 * Every section records its own error and the rest go on; progress lines go to stderr. The machine may
 * be shared, so each figure carries its CPU share and a conv peak timed just before it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { buildControlledUnetGuidedStepGraph, buildUnetGuidedStepGraph, GUIDED_STEP_INPUTS } from '../../engine/nets/unet-step';
import { buildVaeDecoderGraph, VAE_DECODER_INPUTS } from '../../engine/nets/vae';
import { parseControlNetConfig, parseUnetConfig } from '../../engine/nets/unet-config';
import { controlImageScale } from '../../engine/nets/controlnet';
import { generate, type GenerateResult } from '../../engine/pipelines/generate';
import { findResourcesDir } from '../../engine/pipelines/qformer-vocab';
import type { RuntimeClient } from '../../engine/runtime/runtime-client';
import type { OptimizationLevel, TensorValue } from '../../engine/runtime/runtime-protocol';
import { openComponentWeights } from '../../engine/weights/component-weights';
import { catalogOf, type BoundCatalog } from '../../engine/weights/catalog';
import { loadModelFolder, requireComponent, type ModelFolder } from '../../models/model-folder';
import { measureComputePeaks, quickConvPeak, uniform, type ComputePeaks } from './compute-peaks';
import { startCpuWindow, type CpuWindow } from './cpu-share';
import { timeNet, type NetTiming } from './net-timing';
import { resetPeakMemory, sampleMemory, watchMemory, type MemoryMaxima, type MemorySample } from './process-memory';
import { placementNotes } from '../../engine/providers/kernel-routing';
import { defaultTokenizerDir, ensureRealModelFolders, type RealModelFolders } from './real-model-folder';

export interface EngineBenchOptions {
  realShapesDir: string;
  cacheDir: string;
  /** 'cpu' here; 'webgpu', 'cuda'… on a machine with a GPU. */
  device: string;
  /** Also time the 512² UNet step at graph optimisation 'extended'. */
  compareOptimization: boolean;
  progress: (message: string) => void;
}

export type Section<T> = ({ ok: true; seconds: number } & T) | { ok: false; seconds: number; error: string };

export interface GenerationFigure {
  width: number;
  height: number;
  steps: number;
  /** UNet calls (PNDM makes steps + 1). */
  unetCalls: number;
  scheduler: string;
  totalSeconds: number;
  timings: GenerateResult['timings'];
  /** Denoising time per UNet call, the UNet session's creation included. */
  denoiseMsPerCall: number;
  memory: {
    peakReset: boolean;
    before: MemorySample;
    after: MemorySample;
    peakRssBytes: number | null;
    /** Peak RSS minus the RSS before the generation: what the generation itself added. */
    peakRssIncreaseBytes: number | null;
    sampledMax: MemoryMaxima;
  };
  cpu: CpuWindow;
  /** What the runtime said when a session ran elsewhere than asked (e.g. a fallback to the CPU), and each net's deviation there (kernel-routing.ts). */
  deviceNotes: string[];
}

export interface EngineBenchResult {
  device: string;
  /** The requested device's smoke check; sessions fall back to the CPU where it fails (each figure records where it ran). */
  deviceCheck: { ok: boolean; message: string };
  notes: string[];
  model: Section<{ folders: Omit<RealModelFolders, 'weightsBytes'>; weightsBytes: Record<string, number> }>;
  peaks: Section<ComputePeaks>;
  unetStep256: Section<StepFigure>;
  unetStep512: Section<StepFigure>;
  unetStep512Extended: Section<StepFigure> | null;
  controlnetUnetStep512: Section<StepFigure>;
  vaeDecode512: Section<StepFigure>;
  generation256: Section<GenerationFigure>;
  generation512Peak: Section<GenerationFigure>;
  goals: EngineGoals;
}

export type StepFigure = NetTiming & { imageSize: number; latentSize: number };

export interface EngineGoals {
  /** The best conv-chain throughput seen in this run (peaks section and the chains timed before each figure). */
  convPeakGflopsPerSecond: number | null;
  /** UNet step (512², CFG, the app's 'all') throughput over that Conv peak and over the MatMul peak; goal ≥ 0.6. */
  unetStepFractionOfConvPeak: number | null;
  /** The same over the conv chain timed just before it, under the same load. */
  unetStepFractionOfLocalConvPeak: number | null;
  unetStepFractionOfMatMulPeak: number | null;
  unetStepGoalMet: boolean | null;
  /** The 256² step and the 512² step at 'extended' over the same Conv peak. */
  unetStep256FractionOfConvPeak: number | null;
  unetStep512ExtendedFractionOfConvPeak: number | null;
  /** Peak RSS of the 512² generation; goal ≤ 5 GB. */
  generation512PeakRssBytes: number | null;
  generation512GoalMet: boolean | null;
  /** Anonymous-memory growth of the 512² UNet session (create + runs) at 'all' and 'extended': near zero means the weights stayed memory-mapped. */
  unetAnonGrowthBytesAll: number | null;
  unetAnonGrowthBytesExtended: number | null;
}

const PEAK_GOAL = 0.6;
const RSS_GOAL_BYTES = 5e9;
const TEXT_LENGTH = 77;
const SUBJECT_PHOTO = 'dog-00.jpg';

async function section<T>(name: string, progress: (message: string) => void, work: () => Promise<T>): Promise<Section<T>> {
  const started = performance.now();
  progress(`${name}…`);
  try {
    const value = await work();
    const seconds = (performance.now() - started) / 1000;
    progress(`${name}: done in ${seconds.toFixed(1)} s`);
    return { ok: true, seconds, ...value };
  } catch (error) {
    const seconds = (performance.now() - started) / 1000;
    const message = error instanceof Error ? error.message : String(error);
    progress(`${name}: FAILED after ${seconds.toFixed(1)} s: ${message}`);
    return { ok: false, seconds, error: message };
  }
}

export async function benchEngine(runtime: RuntimeClient, options: EngineBenchOptions): Promise<EngineBenchResult> {
  const { device, progress } = options;
  const check = await runtime.checkBackend(device).catch((error: unknown) => ({ ok: false, message: error instanceof Error ? error.message : String(error) }));
  const deviceCheck = { ok: check.ok, message: check.message };
  if (!check.ok) progress(`engine: device ${device} is not usable here (${check.message}); sessions fall back to the CPU`);
  let folders: RealModelFolders | null = null;
  const model = await section('engine: real-shape model folders', progress, async () => {
    folders = await ensureRealModelFolders({ realShapesDir: options.realShapesDir, cacheDir: options.cacheDir, tokenizerDir: defaultTokenizerDir(options.realShapesDir), onProgress: progress });
    return { folders: { base: folders.base, controlnet: folders.controlnet }, weightsBytes: folders.weightsBytes };
  });
  const needFolders = (): RealModelFolders => {
    if (!folders) throw new Error('the model folders could not be prepared (see engine.model)');
    return folders;
  };
  const generation512Peak = await section('engine: generation 512² × 2 steps (peak memory)', progress, () => runGeneration(runtime, device, needFolders().base, { size: 512, steps: 2 }, progress));

  const peaks = await section('engine: MatMul and Conv peaks', progress, () => measureComputePeaks(runtime, device, 2000));
  const peakFigures = peaks.ok ? peaks : null;
  const localPeak = () => quickConvPeak(runtime, device);
  const weightsCache = join(options.cacheDir, 'converted');
  const unetStep = (size: number, optimization: OptimizationLevel, warmRuns: number) => async (): Promise<StepFigure> => {
    const base = loadModelFolder(needFolders().base);
    const unet = requireComponent(base, 'unet');
    const weights = await boundWeights(unet.dir, weightsCache);
    const latent = size / latentFactor(base);
    const timing = await timeNet(runtime, {
      label: `UNet step ${size}² (${optimization})`,
      build: (kernels) => buildUnetGuidedStepGraph(unet.config, weights.catalog, { height: latent, width: latent, textLength: TEXT_LENGTH, ...kernels }),
      externalDataFolder: weights.externalDataFolder,
      device,
      optimization,
      feeds: guidedStepFeeds(latent),
      warmRuns,
      peaks: peakFigures,
      localPeak,
      progress,
    });
    return { ...timing, imageSize: size, latentSize: latent };
  };

  const unetStep256 = await section('engine: UNet guided step 256²', progress, unetStep(256, 'all', 3));
  const unetStep512 = await section('engine: UNet guided step 512²', progress, unetStep(512, 'all', 2));
  const unetStep512Extended = options.compareOptimization ? await section('engine: UNet guided step 512² (extended)', progress, unetStep(512, 'extended', 1)) : null;

  const controlnetUnetStep512 = await section('engine: ControlNet + UNet guided step 512²', progress, async () => {
    const controlled = loadModelFolder(needFolders().controlnet);
    const unet = requireComponent(controlled, 'unet');
    const controlnet = requireComponent(controlled, 'controlnet');
    const [unetWeights, controlWeights] = [await boundWeights(unet.dir, weightsCache), await boundWeights(controlnet.dir, weightsCache)];
    const latent = 512 / latentFactor(controlled);
    const scale = controlImageScale(parseControlNetConfig(controlnet.config));
    const timing = await timeNet(runtime, {
      label: 'ControlNet + UNet step 512²',
      // The default component folders ('unet', 'controlnet') are relative to the model folder.
      build: (kernels) => buildControlledUnetGuidedStepGraph({ unet: { config: unet.config, catalog: unetWeights.catalog }, controlnet: { config: controlnet.config, catalog: controlWeights.catalog } }, { height: latent, width: latent, textLength: TEXT_LENGTH, ...kernels }),
      externalDataFolder: controlled.dir,
      device,
      optimization: 'all',
      feeds: {
        ...guidedStepFeeds(latent),
        [GUIDED_STEP_INPUTS.controlnetCond]: { type: 'float32', dims: [1, 3, latent * scale, latent * scale], data: uniform(3 * (latent * scale) ** 2, 0.5, 11).map((v) => v + 0.5) },
        [GUIDED_STEP_INPUTS.conditioningScale]: { type: 'float32', dims: [1], data: Float32Array.of(1) },
      },
      warmRuns: 1,
      peaks: peakFigures,
      localPeak,
      progress,
    });
    return { ...timing, imageSize: 512, latentSize: latent };
  });

  const vaeDecode512 = await section('engine: VAE decode 512²', progress, async () => {
    const base = loadModelFolder(needFolders().base);
    const vae = requireComponent(base, 'vae');
    const weights = await boundWeights(vae.dir, weightsCache);
    const latent = 512 / latentFactor(base);
    const timing = await timeNet(runtime, {
      label: 'VAE decode 512²',
      build: (kernels) => buildVaeDecoderGraph(vae.config, weights.catalog, { latentHeight: latent, latentWidth: latent, outputs: ['image'], ...kernels }),
      externalDataFolder: weights.externalDataFolder,
      device,
      optimization: 'all',
      feeds: { [VAE_DECODER_INPUTS.latents]: { type: 'float32', dims: [1, 4, latent, latent], data: uniform(4 * latent * latent, 1, 5) } },
      warmRuns: 1,
      peaks: peakFigures,
      localPeak,
      progress,
    });
    return { ...timing, imageSize: 512, latentSize: latent };
  });

  const generation256 = await section('engine: generation 256² × 20 steps', progress, () => runGeneration(runtime, device, needFolders().base, { size: 256, steps: 20 }, progress));

  return {
    device,
    deviceCheck,
    notes: [
      'Random weights at the real checkpoints’ shapes (test/fixtures/parity/real-shapes); timings do not depend on the values.',
      'The CLIP tokenizer is the parity kit’s tiny BPE vocabulary (the real 49408-token one is not available offline); its ids are valid for the real text encoder, which runs at its real size and 77 tokens.',
      'GFLOP/s count multiply-adds of MatMul, Gemm, Conv and attention as 2 FLOPs (NetGraph.flops); elementwise ops are not counted.',
      'Sessions use the runtime’s options: prepacking off, graph optimisation as recorded per section (the app’s default is all).',
    ],
    model,
    peaks,
    unetStep256,
    unetStep512,
    unetStep512Extended,
    controlnetUnetStep512,
    vaeDecode512,
    generation256,
    generation512Peak,
    goals: goalsOf(peaks, { unetStep256, unetStep512, unetStep512Extended, controlnetUnetStep512, vaeDecode512 }, generation512Peak),
  };
}

function goalsOf(
  peaks: Section<ComputePeaks>,
  steps: Pick<EngineBenchResult, 'unetStep256' | 'unetStep512' | 'unetStep512Extended' | 'controlnetUnetStep512' | 'vaeDecode512'>,
  generation: Section<GenerationFigure>,
): EngineGoals {
  const unet = steps.unetStep512;
  const extended = steps.unetStep512Extended;
  const anonGrowth = (step: Section<StepFigure> | null) => {
    if (!step?.ok) return null;
    const { beforeCreate, sampledMax } = step.memory;
    return beforeCreate.anonBytes === null || sampledMax.anonBytes === null ? null : sampledMax.anonBytes - beforeCreate.anonBytes;
  };
  const locals = Object.values(steps).map((s: Section<StepFigure> | null) => (s?.ok ? s.localConvPeakGflopsPerSecond : null));
  const convPeaks = [...(peaks.ok ? [peaks.convGflopsPerSecond] : []), ...locals.filter((v): v is number => v !== null)];
  const convPeak = convPeaks.length > 0 ? Math.max(...convPeaks) : null;
  const ofPeak = (step: Section<StepFigure> | null) => (step?.ok && convPeak !== null ? step.gflopsPerSecond / convPeak : null);
  const fraction = ofPeak(unet);
  const peakRss = generation.ok ? generation.memory.peakRssBytes : null;
  return {
    convPeakGflopsPerSecond: convPeak,
    unetStepFractionOfConvPeak: fraction,
    unetStepFractionOfLocalConvPeak: unet.ok ? unet.fractionOfLocalConvPeak : null,
    unetStepFractionOfMatMulPeak: unet.ok ? unet.fractionOfMatMulPeak : null,
    unetStepGoalMet: fraction === null ? null : fraction >= PEAK_GOAL,
    unetStep256FractionOfConvPeak: ofPeak(steps.unetStep256),
    unetStep512ExtendedFractionOfConvPeak: ofPeak(extended),
    generation512PeakRssBytes: peakRss,
    generation512GoalMet: peakRss === null ? null : peakRss <= RSS_GOAL_BYTES,
    unetAnonGrowthBytesAll: anonGrowth(unet),
    unetAnonGrowthBytesExtended: anonGrowth(extended),
  };
}

async function boundWeights(componentDir: string, cacheDir: string): Promise<BoundCatalog> {
  return catalogOf(await openComponentWeights(componentDir, { cacheDir }));
}

function latentFactor(model: ModelFolder): number {
  return 2 ** (parseUnetConfig(requireComponent(model, 'unet').config).blockOutChannels.length - 1);
}

/** One image's latents, [uncond; cond] text embeddings, a mid-schedule timestep and guidance 7.5. */
function guidedStepFeeds(latent: number): Record<string, TensorValue> {
  return {
    [GUIDED_STEP_INPUTS.sample]: { type: 'float32', dims: [1, 4, latent, latent], data: uniform(4 * latent * latent, 1.5, 3) },
    [GUIDED_STEP_INPUTS.timestep]: { type: 'float32', dims: [1], data: Float32Array.of(501) },
    [GUIDED_STEP_INPUTS.encoderHiddenStates]: { type: 'float32', dims: [2, TEXT_LENGTH, 768], data: uniform(2 * TEXT_LENGTH * 768, 1, 4) },
    [GUIDED_STEP_INPUTS.guidanceScale]: { type: 'float32', dims: [1], data: Float32Array.of(7.5) },
  };
}

/**
 * A whole generation through generate(), from the demo photo, with a fresh graph cache (so the figure
 * includes building every graph, as a first generation does).
 */
async function runGeneration(runtime: RuntimeClient, device: string, modelDir: string, spec: { size: number; steps: number }, progress: (message: string) => void): Promise<GenerationFigure> {
  const model = loadModelFolder(modelDir);
  const cacheDir = mkdtempSync(join(tmpdir(), 'blip-bench-engine-'));
  const peakReset = resetPeakMemory();
  const before = sampleMemory();
  const watcher = watchMemory();
  const cpu = startCpuWindow();
  let unetCalls = 0;
  const deviceNotes: string[] = [];
  const started = performance.now();
  try {
    const result = await generate(
      { runtime, device, cacheDir, onDeviceNote: (note) => deviceNotes.push(note) },
      {
        model,
        subject: { image: { path: join(findResourcesDir(), 'demo-photos', SUBJECT_PHOTO) }, category: 'dog' },
        targetSubject: 'dog',
        prompt: 'swimming underwater',
        steps: spec.steps,
        height: spec.size,
        width: spec.size,
        noise: { seed: 0 },
        scheduler: 'pndm',
      },
      {
        previewEvery: 0,
        onProgress: (p) => {
          unetCalls = p.totalModelCalls;
          if (p.step === 1 || p.step === p.totalSteps || p.step % 5 === 0) progress(`generation ${spec.size}²: step ${p.step}/${p.totalSteps}, ${(p.elapsedMs / 1000).toFixed(1)} s`);
        },
      },
    );
    const after = sampleMemory();
    return {
      width: result.width,
      height: result.height,
      steps: spec.steps,
      unetCalls,
      scheduler: 'pndm',
      totalSeconds: (performance.now() - started) / 1000,
      timings: result.timings,
      denoiseMsPerCall: result.timings.denoiseMs / Math.max(unetCalls, 1),
      memory: {
        peakReset,
        before,
        after,
        peakRssBytes: after.peakRssBytes,
        peakRssIncreaseBytes: after.peakRssBytes === null ? null : after.peakRssBytes - before.rssBytes,
        sampledMax: watcher.stop(),
      },
      cpu: cpu.stop(),
      deviceNotes: [...deviceNotes, ...placementNotes(result.placements)],
    };
  } finally {
    watcher.stop();
    rmSync(cacheDir, { recursive: true, force: true });
  }
}
