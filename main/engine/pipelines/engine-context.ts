/**
 * What the pipelines share: the ORT worker client, the device choice, where converted weights and built
 * graphs are cached, and a helper that builds (or loads) a graph, runs it once and checks its outputs.
 */
import { join } from 'node:path';
import { encodeModel } from '../graph/onnx-writer';
import { buildSmokeCase } from '../graph/smoke-graph';
import type { NetGraph } from '../nets/net-graph';
import { kernelChoices, type KernelChoices } from '../providers/kernel-routing';
import { GraphCache } from '../runtime/graph-cache';
import type { RuntimeClient } from '../runtime/runtime-client';
import type { OptimizationLevel, TensorMap, TensorValue } from '../runtime/runtime-protocol';
import { openComponentWeights } from '../weights/component-weights';
import { catalogOf, type BoundCatalog } from '../weights/catalog';
import type { ModelComponent } from './model-folder';

export interface EngineContext {
  runtime: RuntimeClient;
  /** 'auto' or an execution provider name. */
  device: string;
  /** The app's model cache (converted .bin weights) and graph cache live under here. */
  cacheDir: string;
  /** Told once when a session runs on another device than asked. */
  onDeviceNote?: (note: string) => void;
  signal?: AbortSignal;
}

export async function componentCatalog(context: EngineContext, component: ModelComponent): Promise<BoundCatalog> {
  const weights = await openComponentWeights(component.dir, { cacheDir: join(context.cacheDir, 'weights'), ...(context.signal ? { signal: context.signal } : {}) });
  return catalogOf(weights);
}

/** A stage's outputs contain NaN or ±Inf: named, so a user (or a bug report) knows where it broke. */
export class NonFiniteOutputError extends Error {
  constructor(stage: string, output: string) {
    super(`${stage} produced NaN or infinite values in '${output}': the weights may be corrupt, or the inputs out of range.`);
    this.name = 'NonFiniteOutputError';
  }
}

export function assertFinite(stage: string, outputs: TensorMap): void {
  for (const [name, tensor] of Object.entries(outputs)) {
    if (tensor.type !== 'float32') continue;
    for (const value of tensor.data as Float32Array) if (!Number.isFinite(value)) throw new NonFiniteOutputError(stage, name);
  }
}

/** A net's graph for the kernels of the provider it runs on (providers/kernel-routing.ts), and how to build it. */
export interface GraphSource {
  forKernels: (kernels: KernelChoices) => { cacheKey: string; build: () => NetGraph };
  /**
   * ORT graph optimisation. Conv-heavy graphs (UNet, ControlNet, VAE) use 'extended': at 'all' ORT
   * rewrites 3×3 conv weights into anonymous copies (NCHWc), ~2 GiB for the SD UNet and seconds of
   * session creation, for about 1.5 % speed (bench: `unetStep512Extended`). Default 'all'.
   */
  optimization?: OptimizationLevel;
  /** ORT's memory pattern (default on); see CreateSessionParams. */
  memoryPattern?: boolean;
}

/** A session over a built (or cached) graph; `run` checks every float output for NaN/Inf, naming `stage`. */
export interface StageSession {
  run(feeds: Record<string, TensorValue>): Promise<TensorMap>;
  release(): Promise<void>;
}

/**
 * The provider that `context.device` (possibly 'auto', or one unavailable here) resolves to, found by
 * opening one tiny session; a fallback is told through `onDeviceNote`.
 */
export async function resolveDevice(context: EngineContext): Promise<string> {
  const session = await context.runtime.createSession({ model: encodeModel(buildSmokeCase().model), device: context.device });
  if (session.deviceNote) context.onDeviceNote?.(session.deviceNote);
  await context.runtime.releaseSession(session.id);
  return session.device;
}

/** Opens a session of the stage's graph, built with the kernels of the provider it will run on. */
export async function openStage(context: EngineContext, stage: string, externalDataFolder: string, graph: GraphSource): Promise<StageSession> {
  const device = await resolveDevice(context);
  const { cacheKey, build } = graph.forKernels(kernelChoices(device));
  const cache = new GraphCache(join(context.cacheDir, 'graphs'));
  const model = cache.getOrBuild(cacheKey, () => encodeModel(build().model));
  throwIfAborted(context.signal);
  const session = await context.runtime.createSession({ model, externalDataFolder, device, optimization: graph.optimization ?? 'all', ...(graph.memoryPattern === undefined ? {} : { memoryPattern: graph.memoryPattern }) });
  if (session.deviceNote) context.onDeviceNote?.(session.deviceNote);
  return {
    run: async (feeds) => {
      const outputs = await context.runtime.run(session.id, feeds);
      assertFinite(stage, outputs);
      return outputs;
    },
    release: () => context.runtime.releaseSession(session.id),
  };
}

/** Builds the graph (or takes it from the on-disk cache), runs it once on `feeds` and releases the session. */
export async function runNetOnce(context: EngineContext, stage: string, bound: BoundCatalog, graph: GraphSource, feeds: Record<string, TensorValue>): Promise<TensorMap> {
  const session = await openStage(context, stage, bound.externalDataFolder, graph);
  try {
    return await session.run(feeds);
  } finally {
    await session.release();
  }
}

export class CancelledError extends Error {
  constructor() {
    super('Cancelled');
    this.name = 'CancelledError';
  }
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new CancelledError();
}
