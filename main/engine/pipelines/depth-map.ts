/**
 * The depth map for a depth ControlNet (DESIGN §1 flow 3): a Depth Anything folder as transformers saves
 * it (config.json, model.safetensors, preprocessor_config.json; e.g. depth-anything/Depth-Anything-V2-
 * Small-hf), the photo through DPTImageProcessor, the network, and the ControlNet-depth convention
 * (imaging/depth-preprocess.ts): predicted depth resized bicubically to the photo's size, min-max to
 * 0..255. One channel out; `grayToRgb` makes the 3-channel control image.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { RgbImage } from '../imaging/decode';
import { depthToUint8, parseDptProcessorConfig, preprocessDepthImage, resizeDepthBicubic, type DptProcessorConfig } from '../imaging/depth-preprocess';
import { parseDepthAnythingConfig, type DepthAnythingConfig } from '../nets/depth-anything-config';
import { buildDepthAnythingGraph, depthAnythingGraphKey, DEPTH_ANYTHING_INPUTS, DEPTH_ANYTHING_OUTPUTS, depthOutputSize } from '../nets/depth-anything';
import { catalogOf, type BoundCatalog } from '../weights/catalog';
import { openComponentWeights } from '../weights/component-weights';
import { runNetOnce, throwIfAborted, type EngineContext } from './engine-context';

export const DEPTH_CONFIG_FILE = 'config.json';
export const DEPTH_PROCESSOR_FILE = 'preprocessor_config.json';

export interface DepthModelRef {
  /** The depth estimator's folder. */
  dir: string;
}

/** A one-channel 8-bit depth map (near is bright for relative models), row-major. */
export interface DepthMap {
  width: number;
  height: number;
  data: Uint8Array;
}

/** A depth folder that cannot be used; the message names the folder and each problem (a missing file by name). */
export class DepthModelError extends Error {
  constructor(
    readonly dir: string,
    readonly problems: readonly string[],
  ) {
    super(`${dir} is not a usable depth estimator folder:\n  - ${problems.join('\n  - ')}`);
    this.name = 'DepthModelError';
  }
}

export interface DepthModel {
  dir: string;
  /** config.json as saved (the graph's cache key hashes it). */
  rawConfig: unknown;
  config: DepthAnythingConfig;
  processor: DptProcessorConfig;
}

/** Reads and checks the two configs of a depth folder; the weights are opened when the model runs. */
export function loadDepthModel(dir: string): DepthModel {
  const folder = resolve(dir);
  const problems: string[] = [];
  const readJson = (file: string): unknown => {
    const path = join(folder, file);
    if (!existsSync(path)) {
      problems.push(`${file} is missing`);
      return undefined;
    }
    try {
      return JSON.parse(readFileSync(path, 'utf8')) as unknown;
    } catch (error) {
      problems.push(`${file}: ${error instanceof Error ? error.message : String(error)}`);
      return undefined;
    }
  };
  const rawConfig = readJson(DEPTH_CONFIG_FILE);
  const rawProcessor = readJson(DEPTH_PROCESSOR_FILE);
  let config: DepthAnythingConfig | undefined;
  let processor: DptProcessorConfig | undefined;
  if (rawConfig !== undefined) config = collect(problems, () => parseDepthAnythingConfig(rawConfig));
  if (rawProcessor !== undefined) processor = collect(problems, () => parseDptProcessorConfig(rawProcessor));
  if (!config || !processor || problems.length > 0) throw new DepthModelError(folder, problems);
  return { dir: folder, rawConfig, config, processor };
}

function collect<T>(problems: string[], parse: () => T): T | undefined {
  try {
    return parse();
  } catch (error) {
    problems.push(error instanceof Error ? error.message : String(error));
    return undefined;
  }
}

/** The folder's weights (model.safetensors, shards, or a .bin converted once into the cache), strictly checked. */
export async function depthModelWeights(context: EngineContext, model: DepthModel): Promise<BoundCatalog> {
  const weights = await openComponentWeights(model.dir, { cacheDir: join(context.cacheDir, 'weights'), ...(context.signal ? { signal: context.signal } : {}) });
  return catalogOf(weights);
}

/** The network's output for preprocessed pixels: predicted_depth [h, w] (batch 1). */
export async function predictDepth(context: EngineContext, model: DepthModel, bound: BoundCatalog, pixels: { dims: readonly number[]; data: Float32Array }): Promise<{ height: number; width: number; data: Float32Array }> {
  const [, , height, width] = pixels.dims as [number, number, number, number];
  const options = { height, width };
  const outputs = await runNetOnce(
    context,
    'The depth estimator',
    bound,
    {
      forKernels: (kernels) => ({
        cacheKey: depthAnythingGraphKey(model.rawConfig, bound.catalog, { ...options, ...kernels }),
        build: () => buildDepthAnythingGraph(model.rawConfig, bound.catalog, { ...options, ...kernels }),
      }),
    },
    { [DEPTH_ANYTHING_INPUTS.pixelValues]: { type: 'float32', dims: [...pixels.dims], data: pixels.data } },
  );
  const depth = outputs[DEPTH_ANYTHING_OUTPUTS.predictedDepth];
  if (!depth || !(depth.data instanceof Float32Array)) throw new Error('the depth graph returned no predicted depth');
  const size = depthOutputSize(model.config, height, width);
  return { ...size, data: depth.data };
}

/** The photo's depth map at the photo's size: DPT preprocessing → Depth Anything → bicubic resize → 0..255. */
export async function estimateDepthMap(context: EngineContext, model: DepthModelRef, image: RgbImage): Promise<DepthMap> {
  const loaded = loadDepthModel(model.dir);
  const bound = await depthModelWeights(context, loaded);
  throwIfAborted(context.signal);
  const pixels = preprocessDepthImage(image, loaded.processor);
  const depth = await predictDepth(context, loaded, bound, pixels);
  const resized = resizeDepthBicubic(depth.data, depth.height, depth.width, image.height, image.width);
  return { width: image.width, height: image.height, data: depthToUint8(resized) };
}
