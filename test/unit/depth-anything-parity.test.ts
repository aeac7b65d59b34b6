/**
 * Depth Anything against transformers 4.57.6 (test/fixtures/depth/, made by
 * scripts/reference-depth-anything.py): every stage of two tiny random models (the main one and a
 * held-out config with other sizes everywhere) on DreamBench photos and a non-square crop, on the CPU
 * provider, fused and primitive kernels; the real checkpoint's key/shape list against what its config
 * implies; the config and folder refusals.
 *
 * Tolerances: test/helpers/depth-fixtures.ts (the manifest's "tolerance_rule", derived from the
 * reference's own float32-vs-float64 rerun of each case).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeModel } from '../../main/engine/graph/onnx-writer';
import { depthToUint8, dptResizeSize, grayToRgb, parseDptProcessorConfig, preprocessDepthImage, resizeDepthBicubic } from '../../main/engine/imaging/depth-preprocess';
import { readNpyFile } from '../../main/engine/io/npy-file';
import { ConfigError } from '../../main/engine/nets/configs';
import { buildDepthAnythingGraph, depthAnythingGraphKey, DEPTH_ANYTHING_OUTPUTS } from '../../main/engine/nets/depth-anything';
import { parseDepthAnythingConfig } from '../../main/engine/nets/depth-anything-config';
import { checkParameters, impliedParameters, WeightMismatchError } from '../../main/engine/nets/implied-parameters';
import type { NetGraph } from '../../main/engine/nets/net-graph';
import type { TensorListing, WeightCatalog, WeightDType, WeightEntry } from '../../main/engine/nets/weight-catalog';
import { WEIGHT_DTYPE_BYTES } from '../../main/engine/nets/weight-catalog';
import { DepthModelError, estimateDepthMap, loadDepthModel } from '../../main/engine/pipelines/depth-map';
import type { EngineContext } from '../../main/engine/pipelines/engine-context';
import type { RuntimeClient } from '../../main/engine/runtime/runtime-client';
import type { TensorMap } from '../../main/engine/runtime/runtime-protocol';
import { WeightsFileError } from '../../main/engine/weights/weights-error';
import { REPO_ROOT } from '../helpers/built-app';
import {
  DEPTH_FIXTURES as FIXTURES,
  depthCaseImage as caseImage,
  depthCasePath as casePath,
  depthManifest as manifest,
  depthMapOf,
  depthModelDir as modelDir,
  depthStage as float32Of,
  expectMapWithinBound,
  graphStages,
  readJson,
  stageBound,
} from '../helpers/depth-fixtures';
import { maxAbsDiff, randomNormalish, readSafetensorsCatalog, seededRandom, writeSafetensors } from '../helpers/net-fixtures';
import { makeTempDir } from '../helpers/temp-dir';
import { startTestRuntime } from '../helpers/worker-bundle';

let testRuntime: Awaited<ReturnType<typeof startTestRuntime>>;
let runtime: RuntimeClient;
const temp = makeTempDir('blip-depth-');
beforeAll(async () => {
  testRuntime = await startTestRuntime();
  runtime = testRuntime.runtime;
});
afterAll(async () => {
  await testRuntime?.stop();
  temp.remove();
});

async function runGraph(graph: NetGraph, folder: string, feeds: TensorMap): Promise<TensorMap> {
  const session = await runtime.createSession({ model: encodeModel(graph.model), externalDataFolder: folder, device: 'cpu' });
  try {
    return await runtime.run(session.id, feeds);
  } finally {
    await runtime.releaseSession(session.id);
  }
}

describe('DPT preprocessing (DPTImageProcessor)', () => {
  it('resize sizes at the real settings (518, multiple of 14, keep aspect ratio) match get_resize_output_image_size, half-to-even rounding included', () => {
    const real = parseDptProcessorConfig(readJson(join(FIXTURES, 'real-preprocessor-config-depth-anything-v2-small.json')));
    expect(real).toMatchObject({ height: 518, width: 518, keepAspectRatio: true, ensureMultipleOf: 14, filter: 'bicubic', doRescale: true, doNormalize: true, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] });
    for (const { input, output } of manifest.resize_sizes.cases) {
      expect(dptResizeSize({ height: input[0], width: input[1] }, real), `${input.join('×')}`).toEqual({ height: output[0], width: output[1] });
    }
  });

  for (const [id, entry] of Object.entries(manifest.cases)) {
    it(`${id}: pixel_values exactly (PIL bicubic resize, float64 rescale, float32 normalise)`, async () => {
      const processor = parseDptProcessorConfig(readJson(join(modelDir(entry.model), 'preprocessor_config.json')));
      const pixels = preprocessDepthImage(await caseImage(id), processor);
      expect(pixels.dims).toEqual(entry.files['pixel_values.npy']!.shape);
      expect(maxAbsDiff(pixels.data, float32Of(id, 'pixel_values'))).toBe(0);
    });
  }
});

describe('Depth Anything graph, stage by stage, on the CPU provider', () => {
  for (const [id, entry] of Object.entries(manifest.cases)) {
    for (const fused of [true, false]) {
      it(`${id} (${fused ? 'fused' : 'primitive'} kernels): embeddings, feature maps, reassembled maps, fusion outputs, predicted_depth`, async ({ annotate }) => {
        const dir = modelDir(entry.model);
        const pixels = readNpyFile(casePath(id, 'pixel_values.npy'));
        const [, , height, width] = pixels.shape as [number, number, number, number];
        const graph = buildDepthAnythingGraph(readJson(join(dir, 'config.json')), readSafetensorsCatalog(join(dir, 'model.safetensors')), { height, width, intermediates: true, fused });
        const outputs = await runGraph(graph, dir, { pixel_values: { type: 'float32', dims: pixels.shape, data: pixels.data as Float32Array } });
        const stages = graphStages(entry);
        expect(stages.length).toBeGreaterThan(5);
        const report: string[] = [];
        for (const stage of stages) {
          const file = entry.files[`${stage}.npy`]!;
          const actual = outputs[stage];
          expect(actual?.dims, `${stage} dims`).toEqual(file.shape);
          const error = maxAbsDiff(actual!.data as Float32Array, float32Of(id, stage));
          const bound = stageBound(file.float64_gap!);
          report.push(`${stage} ${error.toExponential(1)} ≤ ${bound.toExponential(1)}`);
          expect(error, `${id} ${stage}: max |ours − ref32| = ${error}, bound ${bound} (ref32 − ref64 gap ${file.float64_gap!.max_abs})`).toBeLessThanOrEqual(bound);
        }
        await annotate(report.join('; '));
      });
    }
  }
});

describe('ControlNet-depth post-processing (bicubic to the image size, min-max to uint8)', () => {
  for (const [id, entry] of Object.entries(manifest.cases).filter(([, e]) => 'depth_resized.npy' in e.files)) {
    it(`${id}: the reference's predicted_depth resized like F.interpolate(bicubic, align_corners=False), then the map`, async ({ annotate }) => {
      const predicted = readNpyFile(casePath(id, 'predicted_depth.npy'));
      const [, h, w] = predicted.shape as [number, number, number];
      const [height, width] = entry.image_size;
      const resized = resizeDepthBicubic(predicted.data as Float32Array, h, w, height, width);
      const file = entry.files['depth_resized.npy']!;
      const error = maxAbsDiff(resized, float32Of(id, 'depth_resized'));
      expect(error, `depth_resized: ${error}`).toBeLessThanOrEqual(stageBound(file.float64_gap!));
      const map = depthToUint8(resized);
      const expected = depthMapOf(id);
      await annotate(`depth_resized ${error.toExponential(1)}; ${expectMapWithinBound(map, expected, entry.files['depth_map.npy']!, 'map from the reference depth')}`);
    });
  }

  it('min-max: the extremes map to 0 and 255, levels truncate, a flat depth gives zeros; grayToRgb replicates', () => {
    expect(Array.from(depthToUint8(Float32Array.from([2, 3, 4, 2.5, 3.999])))).toEqual([0, 127, 255, 63, 254]);
    expect(Array.from(depthToUint8(Float32Array.from([1.5, 1.5])))).toEqual([0, 0]);
    expect(Array.from(grayToRgb({ width: 2, height: 1, data: Uint8Array.from([7, 200]) }).data)).toEqual([7, 7, 7, 200, 200, 200]);
  });
});

describe('estimateDepthMap: the whole flow through the engine', () => {
  for (const [id, entry] of Object.entries(manifest.cases)) {
    it(`${id}: photo → depth map within the map bound`, async ({ annotate }) => {
      const context: EngineContext = { runtime, device: 'cpu', cacheDir: join(temp.path, 'engine') };
      const map = await estimateDepthMap(context, { dir: modelDir(entry.model) }, await caseImage(id));
      expect([map.height, map.width]).toEqual(entry.image_size);
      const expected = depthMapOf(id);
      await annotate(expectMapWithinBound(map.data, expected, entry.files['depth_map.npy']!, id));
    });
  }
});

// -------------------------------------------------------------------------------------------------
// Weights and configs

/** A catalog over a listing, as if the tensors were laid out one after another in one file. */
function listingCatalog(listing: readonly TensorListing[]): WeightCatalog {
  const entries = new Map<string, WeightEntry>();
  let offset = 0;
  for (const t of listing) {
    const byteLength = t.shape.reduce((a, b) => a * b, 1) * WEIGHT_DTYPE_BYTES[t.dtype as WeightDType];
    entries.set(t.name, { dtype: t.dtype as WeightDType, shape: t.shape, file: 'model.safetensors', offset, byteLength });
    offset += byteLength;
  }
  return { names: () => [...entries.keys()], lookup: (name) => entries.get(name) };
}

describe('the real checkpoint (depth-anything/Depth-Anything-V2-Small-hf): its key/shape list', () => {
  const real = readJson(join(FIXTURES, 'real-shapes-depth-anything-v2-small.json')) as { config: unknown; tensors: TensorListing[]; parameters: number };

  it('0 missing, 0 unused, 0 mis-shaped at 518² and at a non-square size', () => {
    expect(real.tensors).toHaveLength(287);
    for (const [height, width] of [
      [518, 518],
      [518, 686],
    ] as const) {
      const implied = impliedParameters((catalog) => buildDepthAnythingGraph(real.config, catalog, { height, width }));
      expect(checkParameters(implied, real.tensors)).toEqual({ missing: [], unused: [], misshaped: [] });
    }
  });

  it('laid out as safetensors writes it (names sorted, compact header padded to 8 bytes), the listing is exactly the size of the hub’s model.safetensors (99,173,660 bytes)', () => {
    const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
    let offset = 0;
    for (const t of [...real.tensors].sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const bytes = t.shape.reduce((a, d) => a * d, 1) * WEIGHT_DTYPE_BYTES[t.dtype as WeightDType];
      header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
      offset += bytes;
    }
    const text = JSON.stringify(header);
    expect(8 + Math.ceil(text.length / 8) * 8 + offset).toBe(99_173_660);
  });

  it('the hub config (defaults omitted) parses to the V2-Small architecture; the graph has the real shapes', () => {
    const config = parseDepthAnythingConfig(real.config);
    expect(config.backbone).toMatchObject({ hiddenSize: 384, numHiddenLayers: 12, numAttentionHeads: 6, intermediateSize: 1536, layerNormEps: 1e-6, imageSize: 518, patchSize: 14, outIndices: [3, 6, 9, 12], applyLayernorm: true, useSwigluFfn: false, hiddenAct: 'gelu' });
    expect(config).toMatchObject({ neckHiddenSizes: [48, 96, 192, 384], reassembleFactors: [4, 2, 1, 0.5], fusionHiddenSize: 64, headHiddenSize: 32, headInIndex: 3, depthEstimationType: 'relative', maxDepth: 1 });
    expect(real.parameters).toBe(24_785_089);
    const graph = buildDepthAnythingGraph(real.config, listingCatalog(real.tensors), { height: 518, width: 686 });
    expect(graph.inputs.map((p) => [p.name, p.shape])).toEqual([['pixel_values', [1, 3, 518, 686]]]);
    expect(graph.outputs.map((p) => [p.name, p.shape])).toEqual([[DEPTH_ANYTHING_OUTPUTS.predictedDepth, [1, 518, 686]]]);
    expect(graph.model.graph.nodes.filter((n) => n.opType === 'MultiHeadAttention')).toHaveLength(12);
  });

  it('a build against files that disagree fails once, naming every missing, unused and mis-shaped tensor', () => {
    const dropped = 'backbone.encoder.layer.7.attention.attention.key.bias';
    const reshaped = 'neck.reassemble_stage.layers.0.resize.weight';
    const damaged: TensorListing[] = [
      ...real.tensors.filter((t) => t.name !== dropped).map((t) => (t.name === reshaped ? { ...t, shape: [48, 48, 2, 2] } : t)),
      { name: 'backbone.encoder.layer.12.norm1.weight', dtype: 'F32', shape: [384] },
    ];
    let error: unknown;
    try {
      buildDepthAnythingGraph(real.config, listingCatalog(damaged), { height: 518, width: 518 });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(WeightMismatchError);
    expect((error as WeightMismatchError).report).toEqual({
      missing: [dropped],
      unused: ['backbone.encoder.layer.12.norm1.weight'],
      misshaped: [{ name: reshaped, problem: 'shape [48, 48, 2, 2], expected [48, 48, 4, 4]' }],
    });
  });
});

describe('config generality and refusals', () => {
  const tiny = readJson(join(modelDir('tiny-depth-anything'), 'config.json')) as Record<string, unknown>;
  const withBackbone = (changes: Record<string, unknown>) => ({ ...tiny, backbone_config: { ...(tiny['backbone_config'] as object), ...changes } });

  it('the tiny fixtures’ own weights: 0 missing / unused / mis-shaped for both configs (the held-out one: SwiGLU, no qkv bias, no final LayerNorm, the stem as a feature map, 3 stages, metric head)', () => {
    for (const name of ['tiny-depth-anything', 'held-out-depth-anything']) {
      const dir = modelDir(name);
      const catalog = readSafetensorsCatalog(join(dir, 'model.safetensors'));
      const implied = impliedParameters((c) => buildDepthAnythingGraph(readJson(join(dir, 'config.json')), c, { height: 48, width: 64 }));
      const listing = catalog.names().map((n) => ({ name: n, ...catalog.lookup(n)! }));
      expect(checkParameters(implied, listing), name).toEqual({ missing: [], unused: [], misshaped: [] });
    }
    expect(parseDepthAnythingConfig(readJson(join(modelDir('held-out-depth-anything'), 'config.json')))).toMatchObject({
      backbone: { useSwigluFfn: true, swigluHiddenSize: 64, qkvBias: false, applyLayernorm: false, outIndices: [0, 2, 3], patchSize: 8 },
      headInIndex: 1,
      depthEstimationType: 'metric',
      maxDepth: 20,
    });
  });

  it('batch 2 gives each image’s batch-1 depth; other valid variants (ReLU/SiLU MLPs, no mask token, a stride-1 "downsample", non-multiple sizes) build and run', async () => {
    const dir = modelDir('tiny-depth-anything');
    const catalog = readSafetensorsCatalog(join(dir, 'model.safetensors'));
    const pixels = readNpyFile(casePath('tiny-depth-anything/cat-01-crop', 'pixel_values.npy'));
    const [, , height, width] = pixels.shape as [number, number, number, number];
    const one = pixels.data as Float32Array;
    const flipped = one.map((v) => -v);
    const pair = new Float32Array(2 * one.length);
    pair.set(one);
    pair.set(flipped, one.length);
    const batched = await runGraph(buildDepthAnythingGraph(tiny, catalog, { batch: 2, height, width }), dir, { pixel_values: { type: 'float32', dims: [2, 3, height, width], data: pair } });
    const single = buildDepthAnythingGraph(tiny, catalog, { height, width });
    const first = await runGraph(single, dir, { pixel_values: { type: 'float32', dims: pixels.shape, data: one } });
    const second = await runGraph(single, dir, { pixel_values: { type: 'float32', dims: pixels.shape, data: flipped } });
    const both = batched[DEPTH_ANYTHING_OUTPUTS.predictedDepth]!.data as Float32Array;
    const size = height * width;
    expect(maxAbsDiff(both.subarray(0, size), first[DEPTH_ANYTHING_OUTPUTS.predictedDepth]!.data as Float32Array)).toBeLessThanOrEqual(1e-6);
    expect(maxAbsDiff(both.subarray(size), second[DEPTH_ANYTHING_OUTPUTS.predictedDepth]!.data as Float32Array)).toBeLessThanOrEqual(1e-6);

    // Variants the reference accepts, with random weights of the shapes their configs imply, run on noise.
    const random = seededRandom(13);
    const variants = [withBackbone({ hidden_act: 'relu' }), withBackbone({ hidden_act: 'silu', use_mask_token: false }), { ...tiny, reassemble_factors: [4, 2, 1, 0.7] }];
    for (const [k, variant] of variants.entries()) {
      const implied = impliedParameters((c) => buildDepthAnythingGraph(variant, c, { height: 50, width: 30 }));
      expect(implied.some((r) => r.name === 'backbone.embeddings.mask_token'), `variant ${k}: mask token`).toBe(k !== 1);
      const folder = join(temp.path, `variant-${k}`);
      mkdirSync(folder, { recursive: true });
      writeSafetensors(
        join(folder, 'model.safetensors'),
        implied.map((r) => ({ name: r.name, dtype: 'F32' as const, shape: r.shape, values: randomNormalish(random, r.shape.reduce((a, d) => a * d, 1), 0.2) })),
      );
      const graph = buildDepthAnythingGraph(variant, readSafetensorsCatalog(join(folder, 'model.safetensors')), { height: 50, width: 30 });
      const noise = randomNormalish(random, 3 * 50 * 30, 1);
      const depth = (await runGraph(graph, folder, { pixel_values: { type: 'float32', dims: [1, 3, 50, 30], data: noise } }))[DEPTH_ANYTHING_OUTPUTS.predictedDepth]!;
      expect(depth.dims, `variant ${k}: the patch grid 3×2 times 14`).toEqual([1, 42, 28]);
      expect((depth.data as Float32Array).every((v) => Number.isFinite(v) && v >= 0)).toBe(true);
    }
  });

  it('the cache key follows config, size and kernels', () => {
    const dir = modelDir('tiny-depth-anything');
    const catalog = readSafetensorsCatalog(join(dir, 'model.safetensors'));
    const key = depthAnythingGraphKey(tiny, catalog, { height: 84, width: 84 });
    expect(buildDepthAnythingGraph(tiny, catalog, { height: 84, width: 84 }).cacheKey).toBe(key);
    expect(depthAnythingGraphKey(tiny, catalog, { height: 84, width: 98 })).not.toBe(key);
    expect(depthAnythingGraphKey(tiny, catalog, { height: 84, width: 84, attention: 'primitive' })).not.toBe(key);
    expect(depthAnythingGraphKey({ ...tiny, head_hidden_size: 4 }, catalog, { height: 84, width: 84 })).not.toBe(key);
  });

  it.each([
    ['backbone_config.model_type', withBackbone({ model_type: 'vit' }), /backbone_config\.model_type must be "dinov2"/],
    ['backbone_config.reshape_hidden_states', withBackbone({ reshape_hidden_states: true }), /backbone_config\.reshape_hidden_states must be false/],
    ['backbone_config.out_indices (count)', withBackbone({ out_indices: [1, 2, 3], out_features: null }), /out_indices .* must name 4 feature maps/],
    ['backbone_config.out_indices (order)', withBackbone({ out_indices: [2, 1, 3, 4], out_features: null }), /backbone_config\.out_indices must be distinct stages in ascending order/],
    ['backbone_config.out_indices (range)', withBackbone({ out_indices: [1, 2, 3, 9], out_features: null }), /backbone_config\.out_indices must be a non-empty list of stage indices/],
    ['backbone_config.out_features', withBackbone({ out_features: ['stage1', 'stage2', 'stage3', 'stem'] }), /backbone_config\.out_features must be the stages out_indices names/],
    ['backbone_config.hidden_size', withBackbone({ hidden_size: 33 }), /backbone_config\.hidden_size \(33\) must be divisible by backbone_config\.num_attention_heads/],
    ['backbone_config.hidden_act', withBackbone({ hidden_act: 'tanh' }), /backbone_config\.hidden_act must be one of/],
    ['backbone_config.num_channels', withBackbone({ num_channels: 4 }), /backbone_config\.num_channels must be 3/],
    ['backbone', { ...tiny, backbone: 'facebook/dinov2-small' }, /depth config: backbone must be null/],
    ['reassemble_hidden_size', { ...tiny, reassemble_hidden_size: 64 }, /reassemble_hidden_size \(64\) must equal backbone_config\.hidden_size \(32\)/],
    ['patch_size', { ...tiny, patch_size: 16 }, /patch_size \(16\) must equal backbone_config\.patch_size \(14\)/],
    ['reassemble_factors (count)', { ...tiny, reassemble_factors: [4, 2, 1] }, /reassemble_factors must be a list of 4 factors/],
    ['reassemble_factors (value)', { ...tiny, reassemble_factors: [4, 1.5, 1, 0.5] }, /reassemble_factors must be a non-empty list of factors/],
    ['neck_hidden_sizes', { ...tiny, neck_hidden_sizes: [8, 0, 16, 24] }, /neck_hidden_sizes must be a non-empty list of positive integers/],
    ['head_in_index', { ...tiny, head_in_index: 4 }, /head_in_index must be an index into the 4 fusion outputs/],
    ['depth_estimation_type', { ...tiny, depth_estimation_type: 'absolute' }, /depth_estimation_type must be "relative" or "metric"/],
    ['fusion_hidden_size', { ...tiny, fusion_hidden_size: 1 }, /fusion_hidden_size must be at least 2/],
  ])('refuses a bad %s, naming it', (_field, config, message) => {
    expect(() => parseDepthAnythingConfig(config)).toThrow(ConfigError);
    expect(() => parseDepthAnythingConfig(config)).toThrow(message);
  });

  it('processor config refusals name the key', () => {
    const processor = readJson(join(modelDir('tiny-depth-anything'), 'preprocessor_config.json')) as Record<string, unknown>;
    expect(() => parseDptProcessorConfig({ ...processor, do_pad: true })).toThrow(/preprocessor_config\.json: do_pad must be false/);
    expect(() => parseDptProcessorConfig({ ...processor, resample: 9 })).toThrow(/resample must be a PIL filter/);
    expect(() => parseDptProcessorConfig({ ...processor, size: { height: 84 } })).toThrow(/size must be an object with "height" and "width"/);
    expect(() => parseDptProcessorConfig({ ...processor, ensure_multiple_of: 0 })).toThrow(/ensure_multiple_of must be a positive integer/);
    expect(() => parseDptProcessorConfig({ ...processor, image_processor_type: 'ViTImageProcessor' })).toThrow(/image_processor_type must be "DPTImageProcessor"/);
    expect(parseDptProcessorConfig({ ...processor, size: 70 })).toMatchObject({ height: 70, width: 70 });
  });
});

describe('depth folder refusals', () => {
  const copy = (name: string) => {
    const dir = join(temp.path, name);
    rmSync(dir, { recursive: true, force: true });
    cpSync(modelDir('tiny-depth-anything'), dir, { recursive: true });
    return dir;
  };
  const context = (): EngineContext => ({ runtime, device: 'cpu', cacheDir: join(temp.path, 'refusals') });
  const image = { width: 20, height: 20, data: new Uint8Array(20 * 20 * 3).fill(90) };

  it('missing config.json / preprocessor_config.json are named', () => {
    const dir = copy('no-configs');
    rmSync(join(dir, 'config.json'));
    rmSync(join(dir, 'preprocessor_config.json'));
    expect(() => loadDepthModel(dir)).toThrow(DepthModelError);
    expect(() => loadDepthModel(dir)).toThrow(/config\.json is missing[\s\S]*preprocessor_config\.json is missing/);
  });

  it('a bad config field is named with the folder', () => {
    const dir = copy('bad-field');
    const config = readJson(join(dir, 'config.json')) as Record<string, unknown>;
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, neck_hidden_sizes: [8, 12] }));
    expect(() => loadDepthModel(dir)).toThrow(/bad-field is not a usable depth estimator folder[\s\S]*reassemble_factors must be a list of 2 factors/);
  });

  it('a missing model.safetensors is named', async () => {
    const dir = copy('no-weights');
    rmSync(join(dir, 'model.safetensors'));
    await expect(estimateDepthMap(context(), { dir }, image)).rejects.toThrow(/holds no weights file: expected one of model\.safetensors/);
  });

  it.each(['offsets-past-end.safetensors', 'huge-header.safetensors'])('truncated or damaged weights (%s, from the kit’s bad-weights/) are refused naming the file', async (bad) => {
    const dir = copy(`bad-${bad}`);
    copyFileSync(join(REPO_ROOT, 'test/fixtures/parity/bad-weights', bad), join(dir, 'model.safetensors'));
    const failure = estimateDepthMap(context(), { dir }, image);
    await expect(failure).rejects.toBeInstanceOf(WeightsFileError);
    await expect(failure).rejects.toThrow(/model\.safetensors/);
  });

  it('weights cut short in the middle of a tensor are refused naming the file', async () => {
    const dir = copy('cut-short');
    const bytes = readFileSync(join(dir, 'model.safetensors'));
    writeFileSync(join(dir, 'model.safetensors'), bytes.subarray(0, bytes.length - 100));
    const failure = estimateDepthMap(context(), { dir }, image);
    await expect(failure).rejects.toBeInstanceOf(WeightsFileError);
    await expect(failure).rejects.toThrow(/model\.safetensors/);
  });

  it('weights of another config are refused with the mismatch list', async () => {
    const dir = copy('other-weights');
    copyFileSync(join(modelDir('held-out-depth-anything'), 'model.safetensors'), join(dir, 'model.safetensors'));
    await expect(estimateDepthMap(context(), { dir }, image)).rejects.toThrow(/missing.*unused.*mis-shaped/s);
  });
});
