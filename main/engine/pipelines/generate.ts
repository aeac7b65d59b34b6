/**
 * Zero-shot subject-driven generation, written out as diffusers' BlipDiffusionPipeline and
 * BlipDiffusionControlNetPipeline do it (parity kit README items 1-12):
 *   subject embedding → conditional + unconditional text embeddings → latents (seed or given)
 *   → for each timestep: scale input, one whole-step graph (ControlNet + UNet + guidance) → scheduler
 *   step → VAE decode (÷ scaling_factor inside the graph) → image in [0, 1].
 * The denoising loop is here, in plain sight; everything heavy runs in ORT, and per step only the
 * latents (tiny) cross into JS.
 */
import { performance } from 'node:perf_hooks';
import { parseBlipQFormerModelConfig, parseClipTextConfig } from '../nets/configs';
import { parseUnetConfig, parseControlNetConfig } from '../nets/unet-config';
import {
  buildControlledUnetGuidedStepGraph,
  buildUnetGuidedStepGraph,
  controlledUnetGuidedStepGraphKey,
  GUIDED_STEP_INPUTS,
  GUIDED_STEP_OUTPUTS,
  unetGuidedStepGraphKey,
} from '../nets/unet-step';
import { buildVaeDecoderGraph, VAE_DECODER_INPUTS, VAE_DECODER_OUTPUTS, vaeDecoderGraphKey } from '../nets/vae';
import { createScheduler, type SchedulerName } from '../schedulers/scheduler';
import { parseSchedulerConfig, type SchedulerConfigFile } from '../schedulers/scheduler-config';
import { torchRandn, type TorchSeed } from '../random/torch-randn';
import { parseImageProcessorConfig, preprocessControlImage, type PixelTensor } from '../imaging/preprocess';
import { ModelFolderError, requireComponent, type ModelComponent, type ModelFolder } from './model-folder';
import type { TensorValue } from '../runtime/runtime-protocol';
import { jointCatalogs } from './joint-catalogs';
import { LORA_SCALE_INPUT, loraInputNames, type LoraGraphOption } from '../nets/lora-layers';
import { loraTargets, type LoraWeights } from '../weights/lora-weights';
import { assertFinite, componentCatalog, openStage, resolveDevice, throwIfAborted, type EngineContext, type StageSession } from './engine-context';
import { netPlacements } from '../providers/kernel-routing';
import type { NetName, NetPlacement } from '../providers/provider-types';
import { latentPreview, type PreviewImage } from './latent-preview';
import { embedSubject, type SubjectEmbedding } from './subject-embedding';
import { encodeNegativePrompt, encodePrompt, tokenizePrompts } from './text-embeddings';

/** Keeps conv weights memory-mapped (see GraphSource.optimization). */
const CONV_GRAPH_OPTIMIZATION = 'extended';

/** The reference pipeline's defaults. */
export const GENERATE_DEFAULTS = Object.freeze({ steps: 50, guidanceScale: 7.5, scheduler: 'pndm' as SchedulerName, negativePrompt: '', controlScale: 1 });

export type ImageInput = { path: string } | { pixels: PixelTensor };

export interface GenerateRequest {
  model: ModelFolder;
  /** A reference photo with its category word, or an embedding computed before (cached subjects). */
  subject: { image: ImageInput; category: string } | { embedding: SubjectEmbedding };
  targetSubject: string;
  prompt: string;
  negativePrompt?: string;
  steps?: number;
  guidanceScale?: number;
  /** Output size in pixels; default: the UNet's sample_size × its latent factor. */
  height?: number;
  width?: number;
  /** Initial noise: torch-compatible randn from a seed, or given latents [1, C, h, w]. */
  noise: { seed: TorchSeed } | { latents: Float32Array };
  scheduler?: SchedulerName;
  /** A ControlNet conditioning image (the model must have a controlnet component). */
  control?: ImageInput;
  controlScale?: number;
  /**
   * The fraction of the steps where control starts and ends (default 0 and 1), as diffusers'
   * `control_guidance_start/end`: step i of n is controlled when i/n ≥ start and (i+1)/n ≤ end; outside,
   * the residuals are scaled by 0 (adding zero leaves the UNet's sums exactly as without control).
   */
  controlStart?: number;
  controlEnd?: number;
  /** A ControlNet from another folder (e.g. a depth ControlNet) instead of the model's own `controlnet`. */
  controlnet?: ModelComponent;
  promptStrength?: number;
  promptReps?: number;
  /**
   * LoRA adapters on the UNet's attention projections at a strength, as diffusers'
   * `cross_attention_kwargs={"scale": s}`: each projection adds s · (alpha / r) · up·down. Scale 0 runs
   * the plain graph, so it equals no LoRA exactly.
   */
  lora?: { weights: LoraWeights; scale: number };
}

export interface GenerateProgress {
  /**
   * Denoising steps done, of `totalSteps` = the steps asked for. Some schedulers call the UNet more
   * often than that (PNDM: steps + 1); the count is scaled so the user sees "Step 50/50" at the end.
   */
  step: number;
  totalSteps: number;
  /** UNet calls done, of `totalModelCalls`. */
  modelCalls: number;
  totalModelCalls: number;
  timestep: number;
  elapsedMs: number;
  etaMs: number | null;
  /** A cheap preview of the latents, every `previewEvery` steps (null otherwise). */
  preview: PreviewImage | null;
}

export interface GenerateOptions {
  onProgress?: (progress: GenerateProgress) => void;
  /** Preview period in steps (default 5; 0 turns previews off). */
  previewEvery?: number;
  /** Also return the raw VAE output [1, 3, H, W] before clamping (parity checks). */
  keepRawDecode?: boolean;
  /**
   * Scheduler config keys put over the model's `scheduler_config.json` before the scheduler is built (the
   * edit: SD-1.5's DDIM keys, schedulers/ddim-inverse.ts `EDIT_DDIM_CONFIG`). Default: none.
   */
  schedulerOverrides?: SchedulerConfigFile;
  /**
   * The first model call to run, 0-based (default 0): the given `noise.latents` are the sample at
   * `timesteps[startStep]`'s noise level (an edit at a strength < 1). Calls before it are skipped, not run.
   */
  startStep?: number;
  /**
   * Called after every scheduler step with the call's index (into the full timestep list), its timestep and
   * the new latents [1, C, h, w]; what it returns replaces them (it may return the same array, changed in
   * place). The edit replaces the latents outside its mask with the inversion's here. Default: none.
   */
  afterStep?: (index: number, timestep: number, latents: Float32Array) => Float32Array;
}

export interface GenerateResult {
  /** The provider every stage ran on. */
  device: string;
  /** Where each net that ran was placed, with what deviated from its plain fused graph there and why. */
  placements: NetPlacement[];
  width: number;
  height: number;
  /** [1, H, W, 3] in [0, 1]: the reference's output_type="np". */
  image: Float32Array;
  /** The final latents [1, C, h, w]. */
  latents: Float32Array;
  rawDecode: Float32Array | null;
  timings: { embeddingMs: number; textMs: number; denoiseMs: number; decodeMs: number; totalMs: number };
}

export interface Geometry {
  latentChannels: number;
  latentHeight: number;
  latentWidth: number;
  height: number;
  width: number;
}

/** Latent size from the UNet (as the reference: 2^(len(block_out_channels) − 1)), sizes checked. */
export function generationGeometry(model: ModelFolder, height?: number, width?: number): Geometry {
  const unet = parseUnetConfig(requireComponent(model, 'unet').config);
  const factor = 2 ** (unet.blockOutChannels.length - 1);
  const [defaultH, defaultW] = unet.sampleSize ?? [64, 64];
  const h = height ?? defaultH * factor;
  const w = width ?? defaultW * factor;
  for (const [name, value] of [
    ['height', h],
    ['width', w],
  ] as const) {
    if (!Number.isInteger(value) || value <= 0 || value % factor !== 0) {
      throw new Error(`${name} must be a positive multiple of ${factor} for this model (got ${value})`);
    }
  }
  return { latentChannels: unet.inChannels, latentHeight: h / factor, latentWidth: w / factor, height: h, width: w };
}

function checkRequest(request: GenerateRequest): void {
  const steps = request.steps ?? GENERATE_DEFAULTS.steps;
  if (!Number.isInteger(steps) || steps < 1 || steps > 1000) throw new Error(`steps must be an integer from 1 to 1000 (got ${steps})`);
  const guidance = request.guidanceScale ?? GENERATE_DEFAULTS.guidanceScale;
  if (!Number.isFinite(guidance) || guidance < 0) throw new Error(`guidance must be a non-negative number (got ${guidance})`);
  if (request.control && !request.controlnet && !request.model.components.has('controlnet')) {
    throw new Error(`a control image needs a model with a ControlNet (${request.model.dir} is a ${request.model.pipelineClass}) or a ControlNet chosen beside it`);
  }
  const start = request.controlStart ?? 0;
  const end = request.controlEnd ?? 1;
  if (!(Number.isFinite(start) && Number.isFinite(end) && start >= 0 && end <= 1 && start < end)) {
    throw new Error(`control start and end must satisfy 0 ≤ start < end ≤ 1 (got ${start} and ${end})`);
  }
  if (request.lora) {
    if (!Number.isFinite(request.lora.scale)) throw new Error(`the LoRA scale must be a number (got ${request.lora.scale})`);
    const targets = new Map(loraTargets(requireComponent(request.model, 'unet').config).map((t) => [t.module, t]));
    const { rank, modules } = request.lora.weights;
    const misfits = [...modules].filter(([module, a]) => {
      const target = targets.get(module);
      return !target || a.down.length !== rank * target.inFeatures || a.up.length !== target.outFeatures * rank;
    });
    if (misfits.length > 0) throw new Error(`the LoRA does not fit this model's UNet: ${misfits.map(([module]) => module).slice(0, 8).join(', ')}${misfits.length > 8 ? ', …' : ''}`);
  }
}

export async function generate(requested: EngineContext, request: GenerateRequest, options: GenerateOptions = {}): Promise<GenerateResult> {
  checkRequest(request);
  const started = performance.now();
  // One provider for every stage ('auto' or an unavailable one resolved once): the result names it.
  const device = await resolveDevice(requested);
  const context: EngineContext = { ...requested, device };
  const { model } = request;
  const geometry = generationGeometry(model, request.height, request.width);
  const steps = request.steps ?? GENERATE_DEFAULTS.steps;
  const guidanceScale = request.guidanceScale ?? GENERATE_DEFAULTS.guidanceScale;
  const negativePrompt = request.negativePrompt ?? GENERATE_DEFAULTS.negativePrompt;
  // Tokenise first: a too-long negative prompt fails before any model runs.
  tokenizePrompts(model, { prompt: request.prompt, targetSubject: request.targetSubject, negativePrompt });

  // 1. Subject embedding.
  const subjectEmbedding = 'embedding' in request.subject ? request.subject.embedding : await embedSubject(context, { model, subject: request.subject.category, image: request.subject.image });
  const embeddingMs = performance.now() - started;
  throwIfAborted(context.signal);

  // 2. Text embeddings, batched [uncond, cond] for classifier-free guidance.
  const textStarted = performance.now();
  const promptOptions = {
    ...(request.promptStrength !== undefined ? { promptStrength: request.promptStrength } : {}),
    ...(request.promptReps !== undefined ? { promptReps: request.promptReps } : {}),
  };
  const cond = await encodePrompt(context, { model, prompt: request.prompt, targetSubject: request.targetSubject, subjectEmbedding, ...promptOptions });
  const uncond = await encodeNegativePrompt(context, model, negativePrompt);
  const textLength = cond.dims[1];
  const textEmbeddings = new Float32Array(uncond.data.length + cond.data.length);
  textEmbeddings.set(uncond.data, 0);
  textEmbeddings.set(cond.data, uncond.data.length);
  const textMs = performance.now() - textStarted;
  throwIfAborted(context.signal);

  // 3. Initial latents × the scheduler's init_noise_sigma.
  const schedulerConfig = { ...parseSchedulerConfig(requireComponent(model, 'scheduler').config), ...options.schedulerOverrides };
  const scheduler = createScheduler(request.scheduler ?? GENERATE_DEFAULTS.scheduler, schedulerConfig);
  scheduler.setTimesteps(steps);
  const startStep = options.startStep ?? 0;
  if (!Number.isInteger(startStep) || startStep < 0 || startStep >= scheduler.timesteps.length) {
    throw new Error(`the start step must be an integer from 0 to ${scheduler.timesteps.length - 1} (got ${startStep})`);
  }
  const latentShape = [1, geometry.latentChannels, geometry.latentHeight, geometry.latentWidth];
  let latents = initialLatents(request.noise, latentShape, scheduler.initNoiseSigma);

  // 4. The denoising loop: one whole-step graph per step.
  const denoiseStarted = performance.now();
  const denoiser = await openDenoiser(context, request, geometry, textLength);
  const constantFeeds: Record<string, TensorValue> = {
    ...loraFeeds(request),
    [GUIDED_STEP_INPUTS.encoderHiddenStates]: { type: 'float32', dims: [2, textLength, cond.dims[2]], data: textEmbeddings },
    [GUIDED_STEP_INPUTS.guidanceScale]: { type: 'float32', dims: [1], data: Float32Array.of(guidanceScale) },
    ...(await controlFeeds(request, geometry)),
  };
  const controlScale = request.controlScale ?? GENERATE_DEFAULTS.controlScale;
  const previewEvery = options.previewEvery ?? 5;
  try {
    const timesteps = scheduler.timesteps;
    for (const [index, timestep] of timesteps.entries()) {
      if (index < startStep) continue;
      throwIfAborted(context.signal);
      const modelInput = scheduler.scaleModelInput(latents, timestep);
      const outputs = await denoiser.run({
        ...constantFeeds,
        ...(request.control ? { [GUIDED_STEP_INPUTS.conditioningScale]: { type: 'float32' as const, dims: [1], data: Float32Array.of(controlScale * controlKeep(request, index, timesteps.length)) } } : {}),
        [GUIDED_STEP_INPUTS.sample]: { type: 'float32', dims: latentShape, data: modelInput },
        [GUIDED_STEP_INPUTS.timestep]: { type: 'float32', dims: [1], data: Float32Array.of(timestep) },
      });
      const noisePred = outputs[GUIDED_STEP_OUTPUTS.noisePred];
      if (!noisePred) throw new Error('the denoising graph returned no noise prediction');
      latents = scheduler.step(noisePred.data as Float32Array, timestep, latents).prevSample;
      if (options.afterStep) latents = options.afterStep(index, timestep, latents);
      assertFinite(`The scheduler (step ${index + 1})`, { latents: { type: 'float32', dims: latentShape, data: latents } });
      const done = index + 1;
      const elapsedMs = performance.now() - denoiseStarted;
      const ran = done - startStep;
      options.onProgress?.({
        step: Math.max(1, Math.round((done * steps) / timesteps.length)),
        totalSteps: steps,
        modelCalls: done,
        totalModelCalls: timesteps.length,
        timestep,
        elapsedMs,
        etaMs: (elapsedMs / ran) * (timesteps.length - done),
        preview: previewEvery > 0 && (done % previewEvery === 0 || done === timesteps.length) ? latentPreview(latents, geometry.latentChannels, geometry.latentHeight, geometry.latentWidth) : null,
      });
    }
  } finally {
    await denoiser.release();
  }
  const denoiseMs = performance.now() - denoiseStarted;
  throwIfAborted(context.signal);

  // 5. VAE decode to the image.
  const decodeStarted = performance.now();
  const decoded = await decodeLatents(context, model, latents, geometry, options.keepRawDecode ?? false);
  const decodeMs = performance.now() - decodeStarted;
  const usedNets = new Set<NetName>(['text_encoder', 'unet', 'vae', ...('image' in request.subject ? (['qformer'] as const) : []), ...(request.control ? (['controlnet'] as const) : [])]);
  return {
    device,
    placements: netPlacements(requested.device, device).filter((placement) => usedNets.has(placement.net)),
    width: geometry.width,
    height: geometry.height,
    image: decoded.image,
    latents,
    rawDecode: decoded.raw,
    timings: { embeddingMs, textMs, denoiseMs, decodeMs, totalMs: performance.now() - started },
  };
}

function initialLatents(noise: GenerateRequest['noise'], shape: number[], initNoiseSigma: number): Float32Array {
  const count = shape.reduce((a, b) => a * b, 1);
  let latents: Float32Array;
  if ('latents' in noise) {
    if (noise.latents.length !== count) throw new Error(`given latents have ${noise.latents.length} values; this size needs [${shape.join(', ')}] = ${count}`);
    latents = Float32Array.from(noise.latents);
  } else {
    latents = torchRandn(noise.seed, shape);
  }
  if (initNoiseSigma !== 1) for (let i = 0; i < latents.length; i++) latents[i] = Math.fround(latents[i]! * initNoiseSigma);
  return latents;
}

/** What the denoising graph depends on: the model, its LoRA and its ControlNet. */
export type DenoiserRequest = Pick<GenerateRequest, 'model' | 'control' | 'controlnet' | 'lora'>;

/** The whole-step graph: UNet + guidance, with the ControlNet inside when a control image is given (a session to release). */
export async function openDenoiser(context: EngineContext, request: DenoiserRequest, geometry: Geometry, textLength: number): Promise<StageSession> {
  const { model } = request;
  const unet = requireComponent(model, 'unet');
  const unetWeights = await componentCatalog(context, unet);
  const size = { height: geometry.latentHeight, width: geometry.latentWidth, textLength, ...loraOption(request) };
  if (!request.control) {
    return openStage(context, 'The UNet', unetWeights.externalDataFolder, {
      forKernels: (kernels) => ({
        cacheKey: unetGuidedStepGraphKey(unet.config, unetWeights.catalog, { ...size, ...kernels }),
        build: () => buildUnetGuidedStepGraph(unet.config, unetWeights.catalog, { ...size, ...kernels }),
      }),
      optimization: CONV_GRAPH_OPTIMIZATION,
    });
  }
  const controlnet = request.controlnet ? withConfig(request.controlnet) : requireComponent(model, 'controlnet');
  checkControlNetFitsUnet(unet.config, controlnet.config);
  const controlWeights = await componentCatalog(context, controlnet);
  const joint = jointCatalogs([unetWeights, controlWeights]);
  const components = {
    unet: { config: unet.config, catalog: joint.catalogs[0]!, folder: '' },
    controlnet: { config: controlnet.config, catalog: joint.catalogs[1]!, folder: '' },
  };
  return openStage(context, 'The ControlNet + UNet', joint.folder, {
    forKernels: (kernels) => ({
      cacheKey: controlledUnetGuidedStepGraphKey(components, { ...size, ...kernels }),
      build: () => buildControlledUnetGuidedStepGraph(components, { ...size, ...kernels }),
    }),
    optimization: CONV_GRAPH_OPTIMIZATION,
  });
}

/** The adapters a LoRA request builds into the UNet graph (none at scale 0: the plain graph). */
function loraOption(request: Pick<GenerateRequest, 'model' | 'lora'>): { lora?: LoraGraphOption } {
  const lora = activeLora(request);
  if (!lora) return {};
  const targets = loraTargets(requireComponent(request.model, 'unet').config).filter((target) => lora.weights.modules.has(target.module));
  return { lora: { targets, rank: lora.weights.rank } };
}

function activeLora(request: Pick<GenerateRequest, 'lora'>): GenerateRequest['lora'] | undefined {
  return request.lora && request.lora.scale !== 0 ? request.lora : undefined;
}

/** The LoRA tensors and scale the denoising graph takes as inputs (none without an active LoRA). */
export function loraFeeds(request: Pick<GenerateRequest, 'lora'>): Record<string, TensorValue> {
  const lora = activeLora(request);
  if (!lora) return {};
  const { weights, scale } = lora;
  const feeds: Record<string, TensorValue> = { [LORA_SCALE_INPUT]: { type: 'float32', dims: [], data: Float32Array.of(Math.fround((scale * weights.alpha) / weights.rank)) } };
  for (const [module, adapter] of weights.modules) {
    const names = loraInputNames(module);
    feeds[names.down] = { type: 'float32', dims: [weights.rank, adapter.down.length / weights.rank], data: adapter.down };
    feeds[names.up] = { type: 'float32', dims: [adapter.up.length / weights.rank, weights.rank], data: adapter.up };
  }
  return feeds;
}

function checkControlNetFitsUnet(unetConfig: unknown, controlnetConfig: unknown): void {
  const unet = parseUnetConfig(unetConfig);
  const controlnet = parseControlNetConfig(controlnetConfig);
  const problems: string[] = [];
  if (controlnet.inChannels !== unet.inChannels) problems.push(`in_channels ${controlnet.inChannels} ≠ the UNet's ${unet.inChannels}`);
  if (controlnet.blockOutChannels.join() !== unet.blockOutChannels.join()) {
    problems.push(`block_out_channels [${controlnet.blockOutChannels.join(', ')}] ≠ the UNet's [${unet.blockOutChannels.join(', ')}]`);
  }
  if (problems.length > 0) throw new Error(`the ControlNet does not fit this UNet: ${problems.join('; ')}`);
}

async function controlFeeds(request: GenerateRequest, geometry: Geometry): Promise<Record<string, TensorValue>> {
  if (!request.control) return {};
  let pixels: PixelTensor;
  if ('pixels' in request.control) {
    pixels = request.control.pixels;
    if (pixels.dims[2] !== geometry.height || pixels.dims[3] !== geometry.width) {
      throw new Error(`control pixel values must be [1, 3, ${geometry.height}, ${geometry.width}] for this output size, got [${pixels.dims.join(', ')}]`);
    }
  } else {
    const processor = parseImageProcessorConfig(requireComponent(request.model, 'image_processor').config);
    pixels = await preprocessControlImage(request.control.path, { height: geometry.height, width: geometry.width }, processor);
  }
  return { [GUIDED_STEP_INPUTS.controlnetCond]: { type: 'float32', dims: [...pixels.dims], data: pixels.data } };
}

function withConfig(component: ModelComponent): ModelComponent & { config: Record<string, unknown> } {
  if (!component.config) throw new ModelFolderError(component.dir, ['the ControlNet has no config.json']);
  return component as ModelComponent & { config: Record<string, unknown> };
}

/** 1 where control applies at model call `index` of `calls`, else 0 (diffusers' `controlnet_keep`). */
export function controlKeep(request: Pick<GenerateRequest, 'controlStart' | 'controlEnd'>, index: number, calls: number): number {
  const start = request.controlStart ?? 0;
  const end = request.controlEnd ?? 1;
  return index / calls < start || (index + 1) / calls > end ? 0 : 1;
}

export async function decodeLatents(context: EngineContext, model: ModelFolder, latents: Float32Array, geometry: Geometry, keepRaw: boolean): Promise<{ image: Float32Array; raw: Float32Array | null }> {
  const vae = requireComponent(model, 'vae');
  const weights = await componentCatalog(context, vae);
  const options = {
    latentHeight: geometry.latentHeight,
    latentWidth: geometry.latentWidth,
    outputs: keepRaw ? ([VAE_DECODER_OUTPUTS.image, VAE_DECODER_OUTPUTS.sample] as const) : ([VAE_DECODER_OUTPUTS.image] as const),
  };
  const session = await openStage(context, 'The VAE decoder', weights.externalDataFolder, {
    forKernels: (kernels) => ({
      cacheKey: vaeDecoderGraphKey(vae.config, weights.catalog, { ...options, ...kernels }),
      build: () => buildVaeDecoderGraph(vae.config, weights.catalog, { ...options, ...kernels }),
    }),
    optimization: CONV_GRAPH_OPTIMIZATION,
  });
  try {
    const outputs = await session.run({
      [VAE_DECODER_INPUTS.latents]: { type: 'float32', dims: [1, geometry.latentChannels, geometry.latentHeight, geometry.latentWidth], data: latents },
    });
    const image = outputs[VAE_DECODER_OUTPUTS.image];
    if (!image) throw new Error('the VAE decoder graph returned no image');
    return { image: image.data as Float32Array, raw: keepRaw ? ((outputs[VAE_DECODER_OUTPUTS.sample]?.data as Float32Array | undefined) ?? null) : null };
  } finally {
    await session.release();
  }
}

/** Sizes the UI offers, from the model: multiples of the latent factor (checked in generationGeometry). */
export function queryTokenCount(model: ModelFolder): number {
  return parseBlipQFormerModelConfig(requireComponent(model, 'qformer').config).numQueryTokens;
}

export function textLengthOf(model: ModelFolder): number {
  return parseClipTextConfig(requireComponent(model, 'text_encoder').config).maxPositionEmbeddings;
}
