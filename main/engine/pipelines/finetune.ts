/**
 * The quick fine-tune (DESIGN §2, the kit's README): LoRA on the UNet's attention projections plus the
 * subject embedding, trained on a few photos of one subject.
 *
 * Once: the photos' VAE latent distributions (the photos do not change, so the encoder runs once) and
 * the initial subject embedding (the photos' mean, as for generation). Each step, from ONE seeded torch
 * generator in the reference's order: ε for the latent sample, the target noise, the timesteps; then
 * latents = (mean + std·ε)·scaling_factor, the DDPM forward process, and the training graph
 * (nets/finetune-step.ts) over micro-batches whose gradients are averaged; then AdamW with two groups
 * (LoRA, embedding). Only the trained tensors and their gradients cross the worker boundary.
 */
import { requireComponent, type ModelFolder } from './model-folder';
import { CancelledError, componentCatalog, NonFiniteOutputError, openStage, resolveDevice, throwIfAborted, type EngineContext, type StageSession } from './engine-context';
import { kernelChoices, type KernelChoices } from '../providers/kernel-routing';
import { jointCatalogs } from './joint-catalogs';
import { buildFinetuneStepGraph, FINETUNE_INPUTS, FINETUNE_OUTPUTS, finetuneStepGraphKey, loraGradientNames, type LoraTargetShape } from '../nets/finetune-step';
import { loraInputNames } from '../nets/lora-layers';
import { buildVaeEncoderGraph, VAE_ENCODER_INPUTS, VAE_ENCODER_OUTPUTS, vaeEncoderGraphKey } from '../nets/vae';
import { parseAutoencoderKLConfig, vaeScaleFactor } from '../nets/vae-config';
import { TorchGenerator, type TorchSeed } from '../random/torch-randn';
import { ddpmTrainingSchedule, noiseLatents } from '../schedulers/ddpm-training';
import { parseSchedulerConfig } from '../schedulers/scheduler';
import { drawFinetuneStep } from './finetune-draws';
import { adamWSlot, adamWStep, ADAMW_DEFAULTS, type AdamWGroup, type AdamWSlot } from '../training/adamw';
import type { TensorValue } from '../runtime/runtime-protocol';

/** What the fine-tune trains: raw LoRA tensors (`up` without alpha/r folded in) and the embedding. */
export interface TrainedLora {
  rank: number;
  alpha: number;
  /** Module path → down [r, in], up [out, r]. */
  modules: Map<string, { down: Float32Array; up: Float32Array }>;
}

export interface FinetuneRequest {
  model: ModelFolder;
  /** The photos, preprocessed for training: [N, 3, R, R] in [−1, 1] (shortest side to R, centre crop). */
  targetPixels: { dims: [number, 3, number, number]; data: Float32Array };
  /** [1, Q, D]: where the embedding starts (the photos' mean query embedding). */
  initialEmbedding: { dims: [1, number, number]; data: Float32Array };
  /** The caption's token ids, unpadded (`a <category>` as LAVIS trains). */
  captionIds: readonly number[];
  /** Every projection that carries an adapter, in the order a default initialisation draws them. */
  targets: readonly LoraTargetShape[];
  rank: number;
  alpha: number;
  /** Raw tensors to start from (--init-lora); absent: diffusers' default (down ~ N(0, 1/r²)·…, up = 0). */
  initialLora?: TrainedLora;
  steps: number;
  lrLora: number;
  lrEmbedding: number;
  weightDecay: number;
  seed: TorchSeed;
  /** Rows per run of the training graph (gradients are averaged over the runs); default: all photos. */
  microBatch?: number;
  /** model_index.json's ctx_begin_pos (2 for BLIP-Diffusion). */
  ctxBeginPos: number;
}

export interface FinetuneStepReport {
  step: number;
  steps: number;
  loss: number;
  ms: number;
}

export interface FinetuneOptions {
  onStep?: (report: FinetuneStepReport) => void;
}

export interface FinetuneResult {
  lora: TrainedLora;
  embedding: { dims: [1, number, number]; data: Float32Array };
  losses: number[];
}

/** The loss became NaN or infinite: training stops and nothing is written. */
export class FinetuneDivergedError extends Error {
  constructor(readonly step: number) {
    super(`the fine-tune diverged at step ${step}: the loss is not finite. Nothing was written; try a lower learning rate.`);
    this.name = 'FinetuneDivergedError';
  }
}


export async function finetune(context: EngineContext, request: FinetuneRequest, options: FinetuneOptions = {}): Promise<FinetuneResult> {
  checkRequest(request);
  const { model, targetPixels } = request;
  const [photoCount, , resolution] = targetPixels.dims;
  const vaeConfig = parseAutoencoderKLConfig(requireComponent(model, 'vae').config);
  const factor = vaeScaleFactor(vaeConfig);
  const latentSize = resolution / factor;
  const latentShape = [photoCount, vaeConfig.latentChannels, latentSize, latentSize];
  const microBatch = largestDivisorAtMost(photoCount, request.microBatch ?? photoCount);

  const schedule = ddpmTrainingSchedule(parseSchedulerConfig(requireComponent(model, 'scheduler').config));
  const distribution = await encodePhotos(context, model, targetPixels);
  throwIfAborted(context.signal);

  const lora = request.initialLora ? copyLora(request.initialLora) : defaultLora(request, new TorchGenerator(initialisationSeed(request.seed)));
  const embedding = Float32Array.from(request.initialEmbedding.data);
  const loraSlots = request.targets.flatMap((target) => {
    const module = lora.modules.get(target.module);
    if (!module) throw new Error(`the initial LoRA has no adapter for ${target.module}`);
    return [adamWSlot(module.down), adamWSlot(module.up)];
  });
  const groups: AdamWGroup[] = [
    { lr: request.lrLora, slots: loraSlots },
    { lr: request.lrEmbedding, slots: [adamWSlot(embedding)] },
  ];

  const session = await openStepSession(context, request, microBatch);
  const generator = new TorchGenerator(request.seed);
  const losses: number[] = [];
  try {
    for (let step = 1; step <= request.steps; step++) {
      throwIfAborted(context.signal);
      const started = Date.now();
      const { eps, noise, timesteps } = drawFinetuneStep(generator, latentShape, photoCount, schedule.numTrainTimesteps);
      const latents = sampleLatents(distribution, eps, vaeConfig.scalingFactor);
      const noisy = noiseLatents(schedule, latents, noise, timesteps);
      const { loss, gradients } = await runMicroBatches(session, request, { noisy, noise, timesteps, latentShape, microBatch, lora, embedding, groups }).catch((error: unknown) => {
        // The session refuses non-finite outputs: here that means the training diverged.
        throw error instanceof NonFiniteOutputError ? new FinetuneDivergedError(step) : error;
      });
      if (!Number.isFinite(loss)) throw new FinetuneDivergedError(step);
      adamWStep(groups, gradients, step, { ...ADAMW_DEFAULTS, weightDecay: request.weightDecay });
      losses.push(loss);
      options.onStep?.({ step, steps: request.steps, loss, ms: Date.now() - started });
    }
  } finally {
    await session.release();
  }
  return { lora, embedding: { dims: request.initialEmbedding.dims, data: embedding }, losses };
}

function checkRequest(request: FinetuneRequest): void {
  const { dims, data } = request.targetPixels;
  const [count, channels, height, width] = dims;
  if (count < 1) throw new Error('the fine-tune needs at least one photo');
  if (channels !== 3 || height !== width || data.length !== count * 3 * height * width) throw new Error(`training pixels must be [N, 3, R, R], got [${dims.join(', ')}] with ${data.length} values`);
  if (!Number.isSafeInteger(request.steps) || request.steps < 1) throw new Error(`steps must be a positive integer, got ${request.steps}`);
  if (!Number.isSafeInteger(request.rank) || request.rank < 1) throw new Error(`rank must be a positive integer, got ${request.rank}`);
  if (!(request.alpha > 0)) throw new Error(`alpha must be positive, got ${request.alpha}`);
  for (const [name, value] of [['lr-lora', request.lrLora], ['lr-embedding', request.lrEmbedding], ['weight-decay', request.weightDecay]] as const) {
    if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a non-negative number, got ${value}`);
  }
  if (request.captionIds.length < 1) throw new Error('the caption has no tokens');
}

/** The VAE encoder's mean and std for every photo, once (DiagonalGaussianDistribution: std = exp(logvar / 2)). */
async function encodePhotos(context: EngineContext, model: ModelFolder, pixels: FinetuneRequest['targetPixels']): Promise<{ mean: Float32Array; std: Float32Array }> {
  const vae = requireComponent(model, 'vae');
  const weights = await componentCatalog(context, vae);
  const [batch, , height, width] = pixels.dims;
  const graphOptions = { batch, height, width };
  const session = await openStage(context, 'The VAE encoder', weights.externalDataFolder, {
    forKernels: (kernels) => ({
      cacheKey: vaeEncoderGraphKey(vae.config, weights.catalog, { ...graphOptions, ...kernels }),
      build: () => buildVaeEncoderGraph(vae.config, weights.catalog, { ...graphOptions, ...kernels }),
    }),
  });
  try {
    const outputs = await session.run({ [VAE_ENCODER_INPUTS.image]: { type: 'float32', dims: [...pixels.dims], data: pixels.data } });
    const mean = outputs[VAE_ENCODER_OUTPUTS.mean]?.data as Float32Array;
    const logvar = outputs[VAE_ENCODER_OUTPUTS.logvar]?.data as Float32Array;
    return { mean, std: logvar.map((v) => Math.fround(Math.exp(Math.fround(0.5 * v)))) };
  } finally {
    await session.release();
  }
}

/** latent_dist.sample() with the drawn ε, times scaling_factor, in float32 as torch computes it. */
function sampleLatents(distribution: { mean: Float32Array; std: Float32Array }, eps: Float32Array, scalingFactor: number): Float32Array {
  const f = Math.fround;
  const scale = f(scalingFactor);
  return distribution.mean.map((mean, i) => f(f(mean + f((distribution.std[i] as number) * (eps[i] as number))) * scale));
}

/**
 * The training graph of one micro-batch and the folder its frozen weights are mapped from: the step
 * session and the bench (which counts its FLOPs) build the same graph.
 */
export async function finetuneStepGraph(context: EngineContext, request: FinetuneRequest, microBatch: number, kernels: KernelChoices) {
  const textEncoder = requireComponent(request.model, 'text_encoder');
  const unet = requireComponent(request.model, 'unet');
  const [textWeights, unetWeights] = [await componentCatalog(context, textEncoder), await componentCatalog(context, unet)];
  const joint = jointCatalogs([textWeights, unetWeights]);
  const components = {
    textEncoder: { config: textEncoder.config, catalog: joint.catalogs[0]!, folder: '' },
    unet: { config: unet.config, catalog: joint.catalogs[1]!, folder: '' },
  };
  const latentSize = request.targetPixels.dims[2] / vaeScaleFactor(parseAutoencoderKLConfig(requireComponent(request.model, 'vae').config));
  const stepOptions = {
    batch: microBatch,
    latentHeight: latentSize,
    latentWidth: latentSize,
    captionTokens: request.captionIds.length,
    queryTokenCount: request.initialEmbedding.dims[1],
    ctxBeginPos: request.ctxBeginPos,
    targets: request.targets,
    rank: request.rank,
    // Fused norms and attention: their rules recompute what the primitive ops would keep (finetune-step.ts).
    fused: true,
    attention: kernels.attention,
  };
  return {
    externalDataFolder: joint.folder,
    cacheKey: finetuneStepGraphKey(components, stepOptions),
    build: () => buildFinetuneStepGraph(components, stepOptions),
  };
}

async function openStepSession(context: EngineContext, request: FinetuneRequest, microBatch: number): Promise<StageSession> {
  const graph = await finetuneStepGraph(context, request, microBatch, kernelChoices(await resolveDevice(context)));
  return openStage(context, 'The fine-tune step', graph.externalDataFolder, {
    forKernels: () => ({ cacheKey: graph.cacheKey, build: graph.build }),
    // 'extended' keeps the frozen weights memory-mapped (ort-probe §b) and still fuses Transpose + MatMul.
    optimization: 'extended',
    // Measured at 512² on real shapes (2 cores): with the pattern 19 s/step and 11.0 GB peak RSS, without 8.2 s and 7.9 GB.
    memoryPattern: false,
  });
}

interface StepTensors {
  noisy: Float32Array;
  noise: Float32Array;
  timesteps: readonly number[];
  latentShape: number[];
  microBatch: number;
  lora: TrainedLora;
  embedding: Float32Array;
  groups: readonly AdamWGroup[];
}

/** Runs the training graph over the batch in micro-batches; returns the batch's mean loss and gradients. */
async function runMicroBatches(session: StageSession, request: FinetuneRequest, tensors: StepTensors): Promise<{ loss: number; gradients: Float32Array[][] }> {
  const { latentShape, microBatch } = tensors;
  const rows = latentShape[0] as number;
  const rowSize = tensors.noisy.length / rows;
  const runs = rows / microBatch;
  const shared = sharedFeeds(request, tensors);
  const gradients = tensors.groups.map((group) => group.slots.map((slot: AdamWSlot) => new Float32Array(slot.param.length)));
  let loss = 0;
  for (let run = 0; run < runs; run++) {
    const rowsOf = (data: Float32Array) => data.subarray(run * microBatch * rowSize, (run + 1) * microBatch * rowSize);
    const dims = [microBatch, ...latentShape.slice(1)];
    const outputs = await session.run({
      ...shared,
      [FINETUNE_INPUTS.noisyLatents]: { type: 'float32', dims, data: rowsOf(tensors.noisy) },
      [FINETUNE_INPUTS.noise]: { type: 'float32', dims, data: rowsOf(tensors.noise) },
      [FINETUNE_INPUTS.timesteps]: { type: 'float32', dims: [microBatch], data: Float32Array.from(tensors.timesteps.slice(run * microBatch, (run + 1) * microBatch)) },
    });
    loss += ((outputs[FINETUNE_OUTPUTS.loss]?.data as Float32Array)[0] as number) / runs;
    const names = [...request.targets.flatMap((target) => Object.values(loraGradientNames(target.module)))];
    accumulate(gradients[0] as Float32Array[], names.map((name) => outputs[name]?.data as Float32Array), runs);
    accumulate(gradients[1] as Float32Array[], [outputs[FINETUNE_OUTPUTS.subjectEmbeddingGradient]?.data as Float32Array], runs);
  }
  // The average is taken in double; the loss is reported as the float32 it is.
  return { loss: Math.fround(loss), gradients };
}

function accumulate(into: Float32Array[], parts: readonly Float32Array[], runs: number): void {
  into.forEach((total, i) => {
    const part = parts[i];
    if (!part || part.length !== total.length) throw new Error('the fine-tune step returned a gradient of the wrong size');
    if (runs === 1) total.set(part);
    else for (let j = 0; j < total.length; j++) total[j] = Math.fround((total[j] as number) + (part[j] as number) / runs);
  });
}

function sharedFeeds(request: FinetuneRequest, tensors: StepTensors): Record<string, TensorValue> {
  const feeds: Record<string, TensorValue> = {
    [FINETUNE_INPUTS.inputIds]: { type: 'int64', dims: [tensors.microBatch, request.captionIds.length], data: BigInt64Array.from(Array.from({ length: tensors.microBatch }, () => request.captionIds).flat(), BigInt) },
    [FINETUNE_INPUTS.subjectEmbedding]: { type: 'float32', dims: [...request.initialEmbedding.dims], data: tensors.embedding },
    [FINETUNE_INPUTS.loraScale]: { type: 'float32', dims: [], data: Float32Array.of(request.alpha / request.rank) },
  };
  for (const target of request.targets) {
    const module = tensors.lora.modules.get(target.module) as { down: Float32Array; up: Float32Array };
    const names = loraInputNames(target.module);
    feeds[names.down] = { type: 'float32', dims: [request.rank, target.inFeatures], data: module.down };
    feeds[names.up] = { type: 'float32', dims: [target.outFeatures, request.rank], data: module.up };
  }
  return feeds;
}

/**
 * diffusers 0.25.1's LoRALinearLayer initialisation: down ~ N(0, (1/r)²), up = 0, drawn in the targets'
 * order from its own generator (initialisationSeed), so the training draws stay the reference's.
 */
function defaultLora(request: FinetuneRequest, generator: TorchGenerator): TrainedLora {
  const modules = new Map<string, { down: Float32Array; up: Float32Array }>();
  for (const target of request.targets) {
    const down = generator.randn([request.rank, target.inFeatures]).map((v) => Math.fround(v / request.rank));
    modules.set(target.module, { down, up: new Float32Array(target.outFeatures * request.rank) });
  }
  return { rank: request.rank, alpha: request.alpha, modules };
}

/** The kit's convention: the LoRA initialisation draws from seed + 1, the training from seed. */
export function initialisationSeed(seed: TorchSeed): TorchSeed {
  return typeof seed === 'bigint' ? seed + 1n : seed + 1;
}

function copyLora(lora: TrainedLora): TrainedLora {
  return { rank: lora.rank, alpha: lora.alpha, modules: new Map([...lora.modules].map(([name, m]) => [name, { down: Float32Array.from(m.down), up: Float32Array.from(m.up) }])) };
}

function largestDivisorAtMost(count: number, limit: number): number {
  if (!Number.isSafeInteger(limit) || limit < 1) throw new Error(`the micro-batch must be a positive integer, got ${limit}`);
  for (let d = Math.min(count, limit); d > 1; d--) if (count % d === 0) return d;
  return 1;
}

export { CancelledError };
