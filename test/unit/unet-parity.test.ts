import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GraphBuilder } from '../../main/engine/graph/builder';
import { groupNorm } from '../../main/engine/graph/layers';
import { encodeModel } from '../../main/engine/graph/onnx-writer';
import { readNpyFile } from '../../main/engine/io/npy-file';
import { ConfigError } from '../../main/engine/nets/configs';
import { nearestResize } from '../../main/engine/nets/unet-blocks';
import { buildUnetGraph, downResidualName, unetSkipShapes, type UnetGraphOptions } from '../../main/engine/nets/unet';
import { parseUnetConfig } from '../../main/engine/nets/unet-config';
import { buildUnetGuidedStepGraph } from '../../main/engine/nets/unet-step';
import { WeightBinder } from '../../main/engine/nets/weight-binder';
import { RuntimeClient } from '../../main/engine/runtime/runtime-client';
import type { TensorMap, TensorValue } from '../../main/engine/runtime/runtime-protocol';
import { catalogOf } from '../../main/engine/weights/catalog';
import { openComponentWeights } from '../../main/engine/weights/component-weights';
import { maxAbs, maxAbsDiff, expectWithinParityBound, randomNormalish, readSafetensorsCatalog, seededRandom } from '../helpers/net-fixtures';
import { makeTempDir } from '../helpers/temp-dir';
import { float32Of, float32Tensor, npyFeed, randomTensor, rows, runNetGraph, scalarTensor, stackRows, WEIGHTS_FILE, writeRandomWeights } from '../helpers/unet-fixtures';
import { startTestRuntime } from '../helpers/worker-bundle';

const kit = join(dirname(fileURLToPath(import.meta.url)), '../fixtures/parity');
const unetDir = join(kit, 'models/tiny-blipdiffusion/unet');
const readJson = (path: string): unknown => JSON.parse(readFileSync(path, 'utf8'));

let runtime: RuntimeClient;
let stopRuntime: () => Promise<void> = async () => undefined;
beforeAll(async () => {
  ({ runtime, stop: stopRuntime } = await startTestRuntime());
});
afterAll(() => stopRuntime());

describe('builder ops for the UNet family on ORT CPU (GroupNormalization-21, nearest Resize, Sin/Cos)', () => {
  const [n, c, h, w, groups, eps] = [2, 6, 3, 5, 3, 1e-5];
  const random = seededRandom(3);
  const x = randomNormalish(random, n * c * h * w, 2);
  const scale = randomNormalish(random, c, 1);
  const bias = randomNormalish(random, c, 1);

  async function run(fused: boolean): Promise<TensorMap> {
    const b = new GraphBuilder();
    const input = b.input('x', 'float32', [n, c, h, w]);
    const context = { b, fused, fusedAttention: fused, weights: new WeightBinder(b, { names: () => [], lookup: () => undefined }, 'ops') };
    const outputs = [
      { name: 'norm', value: groupNorm(b, input, b.constant(scale, [c]), b.constant(bias, [c]), groups, eps, fused) },
      { name: 'doubled', value: nearestResize(context, input, [2 * h, 2 * w]) },
      { name: 'uneven', value: nearestResize(context, input, [2 * h - 1, 2 * w + 1]) },
      { name: 'sin', value: b.sin(input) },
      { name: 'cos', value: b.cos(input) },
    ];
    const model = b.toModel({ name: 'ops', outputs });
    const ops = new Set(model.graph.nodes.map((node) => node.opType));
    expect(ops.has('GroupNormalization')).toBe(fused);
    expect(ops.has('Resize')).toBe(fused);
    const session = await runtime.createSession({ model: encodeModel(model), device: 'cpu' });
    try {
      return await runtime.run(session.id, { x: float32Tensor([n, c, h, w], x) });
    } finally {
      await runtime.releaseSession(session.id);
    }
  }

  it('fused and primitive forms match float64 references (GroupNorm per-channel affine; PyTorch nearest, ×2 and uneven)', async () => {
    const expectedNorm = new Float64Array(x.length);
    const perGroup = (c / groups) * h * w;
    for (let g = 0; g < n * groups; g++) {
      const slice = Array.from(x.subarray(g * perGroup, (g + 1) * perGroup));
      const mean = slice.reduce((a, v) => a + v, 0) / perGroup;
      const variance = slice.reduce((a, v) => a + (v - mean) ** 2, 0) / perGroup;
      slice.forEach((v, j) => {
        const channel = Math.floor((g * perGroup + j) / (h * w)) % c;
        expectedNorm[g * perGroup + j] = ((v - mean) / Math.sqrt(variance + eps)) * scale[channel]! + bias[channel]!;
      });
    }
    const nearest = (oh: number, ow: number) => {
      const y = new Float32Array(n * c * oh * ow);
      for (let p = 0; p < n * c; p++) {
        for (let i = 0; i < oh; i++) for (let j = 0; j < ow; j++) y[(p * oh + i) * ow + j] = x[(p * h + Math.floor((i * h) / oh)) * w + Math.floor((j * w) / ow)]!;
      }
      return y;
    };
    for (const fused of [true, false]) {
      const out = await run(fused);
      expect(maxAbsDiff(float32Of(out, 'norm'), expectedNorm), `group norm, fused ${fused}`).toBeLessThan(1e-5 * maxAbs(expectedNorm));
      expect(out.doubled?.dims).toEqual([n, c, 2 * h, 2 * w]);
      expect(float32Of(out, 'doubled')).toEqual(nearest(2 * h, 2 * w));
      expect(float32Of(out, 'uneven')).toEqual(nearest(2 * h - 1, 2 * w + 1));
      expect(maxAbsDiff(float32Of(out, 'sin'), Array.from(x, Math.sin))).toBeLessThan(1e-6);
      expect(maxAbsDiff(float32Of(out, 'cos'), Array.from(x, Math.cos))).toBeLessThan(1e-6);
    }
  });

  it('shape checks name the problem', () => {
    const b = new GraphBuilder();
    const input = b.input('x', 'float32', [1, 6, 4, 4]);
    expect(() => b.groupNormalization(input, b.input('s', 'float32', [6]), b.input('t', 'float32', [6]), { numGroups: 4, epsilon: 1e-5 })).toThrow(/6 channels do not split into 4 groups/);
    expect(() => b.groupNormalization(input, b.input('s2', 'float32', [3]), b.input('t2', 'float32', [3]), { numGroups: 3, epsilon: 1e-5 })).toThrow(/scale\/bias \[3\] must be \[6\]/);
    expect(() => b.resizeNearest(input, [1, 6, 8])).toThrow(/3 output sizes for rank 4/);
  });
});

describe('kit parity: tiny-blipdiffusion UNet, fed the kit’s saved inputs', () => {
  const config = readJson(join(unetDir, 'config.json'));
  const parsed = parseUnetConfig(config);
  const timesteps = Array.from(readNpyFile(join(kit, 'blip/timesteps.npy')).data as BigInt64Array, Number);
  // The CFG batch is [uncond, cond] (README item 4).
  const textEmbeddings = stackRows([npyFeed(join(kit, 'blip/uncond_text_embeddings.npy')), npyFeed(join(kit, 'blip/cond_text_embeddings.npy'))]);
  const [, textLength] = textEmbeddings.dims as [number, number, number];
  const initialLatents = npyFeed(join(kit, 'inputs/initial_latents.npy'));
  const [, , height, width] = initialLatents.dims as [number, number, number, number];
  const latentsAfter = npyFeed(join(kit, 'blip/latents_after_each_step.npy'));
  const allPredictions = npyFeed(join(kit, 'blip/unet_noise_pred_all_steps.npy'));
  const guidedPredictions = npyFeed(join(kit, 'blip/guided_noise_pred_all_steps.npy'));
  const guidanceScale = (readJson(join(kit, 'manifest.json')) as { run: { guidance_scale: number } }).run.guidance_scale;
  const stepRow = (tensor: TensorValue, step: number) => {
    const [, ...inner] = tensor.dims;
    const picked = rows(float32Tensor([tensor.dims[0] as number, inner.reduce((a, b) => a * b, 1)], tensor.data as Float32Array), step, step + 1);
    return float32Tensor(inner, picked.data as Float32Array);
  };
  let externalDataFolder: string;
  let catalog: ReturnType<typeof catalogOf>['catalog'];
  const cache = makeTempDir('blip-unet-cache-');
  beforeAll(async () => {
    const bound = catalogOf(await openComponentWeights(unetDir, { cacheDir: cache.path }));
    ({ catalog, externalDataFolder } = bound);
  });
  afterAll(() => cache.remove());

  it('reads the config as diffusers does (attention_head_dim is the head count)', () => {
    expect(parsed.down.map((d) => d.attention?.heads ?? null)).toEqual([2, null]);
    expect(parsed.mid?.attention.heads).toBe(2);
  });

  for (const fused of [true, false]) {
    describe(fused ? 'fused ops' : 'primitive ops', () => {
      it('step 0, plain UNet graph on the CFG pair: unet_step0_noise_pred_uncond / _text', async () => {
        const sample = npyFeed(join(kit, 'blip/unet_step0_latent_model_input.npy'));
        expect(sample.data).toEqual(stackRows([initialLatents, initialLatents]).data);
        const graph = buildUnetGraph(config, catalog, { batch: 2, height, width, textLength, fused });
        const out = await runNetGraph(runtime, graph, externalDataFolder, { sample, timestep: scalarTensor(timesteps[0]!), encoder_hidden_states: textEmbeddings });
        expect(out.noise_pred?.dims).toEqual([2, parsed.outChannels, height, width]);
        const prediction = float32Of(out, 'noise_pred');
        const uncond = readNpyFile(join(kit, 'blip/unet_step0_noise_pred_uncond.npy')).data as Float32Array;
        expectWithinParityBound(prediction.subarray(0, uncond.length), uncond, 'uncond');
        expectWithinParityBound(prediction.subarray(uncond.length), readNpyFile(join(kit, 'blip/unet_step0_noise_pred_text.npy')).data as Float32Array, 'text');
      });

      it('every step, guided-step graph: raw [uncond, cond] = unet_noise_pred_all_steps[i], guided = guided_noise_pred_all_steps[i]', async () => {
        // The UNet input at call i is the pipeline's current latents: the initial ones, then the output
        // of the previous scheduler step. PNDM's 2nd call restarts its *scheduler* arithmetic from the
        // step-0 sample (README item 6), but the UNet still sees latents_after_each_step[0] there.
        const graph = buildUnetGuidedStepGraph(config, catalog, { height, width, textLength, fused, exposeBatchPrediction: true });
        const session = await runtime.createSession({ model: encodeModel(graph.model), externalDataFolder, device: 'cpu' });
        try {
          for (let step = 0; step < timesteps.length; step++) {
            const latents = step === 0 ? initialLatents : stepRow(latentsAfter, step - 1);
            const out = await runtime.run(session.id, {
              sample: latents,
              timestep: scalarTensor(timesteps[step]!),
              encoder_hidden_states: textEmbeddings,
              guidance_scale: scalarTensor(guidanceScale),
            });
            expectWithinParityBound(float32Of(out, 'noise_pred_batch'), stepRow(allPredictions, step).data as Float32Array, `step ${step} raw`);
            expectWithinParityBound(float32Of(out, 'noise_pred'), stepRow(guidedPredictions, step).data as Float32Array, `step ${step} guided`);
          }
        } finally {
          await runtime.releaseSession(session.id);
        }
      });
    });
  }
});

// ---------------------------------------------------------------------------------------------
// A second configuration, unlike the kit's in every size and switch, with random weights written
// here (the key list taken from what the builder requests). No reference numbers: shapes,
// determinism, fused ≡ primitive, the guided step ≡ the plain graph, the residual inputs.
// ---------------------------------------------------------------------------------------------

const SECOND_UNET_CONFIG = {
  _class_name: 'UNet2DConditionModel',
  sample_size: [10, 6],
  in_channels: 3,
  out_channels: 5,
  center_input_sample: true,
  flip_sin_to_cos: false,
  freq_shift: 1,
  down_block_types: ['CrossAttnDownBlock2D', 'DownBlock2D', 'UNetResCrossAttnDownBlock2D'],
  up_block_types: ['CrossAttnUpBlock2D', 'UpBlock2D', 'CrossAttnUpBlock2D'],
  // 9 channels (odd sinusoid width) with 2 heads: the transformer width is 2 × 4 = 8, not 9.
  block_out_channels: [9, 12, 15],
  layers_per_block: 2,
  attention_head_dim: [2, 3, 5],
  num_attention_heads: null,
  cross_attention_dim: 10,
  norm_num_groups: 3,
  norm_eps: 1e-6,
  use_linear_projection: true,
  transformer_layers_per_block: [2, 1, 1],
  only_cross_attention: [false, false, true],
  downsample_padding: 0,
  mid_block_scale_factor: 1.4142,
  time_embedding_dim: 20,
  conv_in_kernel: 5,
  conv_out_kernel: 1,
  upcast_attention: true,
};
/** Uneven layer counts and per-layer transformer depths (with the reverse list diffusers then requires). */
const ASYMMETRIC_UNET_CONFIG = {
  ...SECOND_UNET_CONFIG,
  layers_per_block: [1, 2, 1],
  transformer_layers_per_block: [[2], [1, 1], [3]],
  reverse_transformer_layers_per_block: [[1, 2], [1, 1, 1], [2, 1]],
  use_linear_projection: false,
};
const SECOND_TEXT_LENGTH = 7;
const BATCH = 2;

describe('a second, generated UNet configuration (other blocks, layers, heads, widths, switches)', () => {
  const temp = makeTempDir('blip-unet-second-');
  const folders = { second: join(temp.path, 'second'), asymmetric: join(temp.path, 'asymmetric') };
  const parsed = parseUnetConfig(SECOND_UNET_CONFIG);
  const [height, width] = parsed.sampleSize as [number, number];
  const sample = randomTensor(21, [BATCH, parsed.inChannels, height, width]);
  const text = randomTensor(22, [BATCH, SECOND_TEXT_LENGTH, SECOND_UNET_CONFIG.cross_attention_dim]);
  const timestep = scalarTensor(417);
  const catalog = (folder: string) => readSafetensorsCatalog(join(folder, WEIGHTS_FILE));
  const graph = (config: unknown, folder: string, options: Omit<UnetGraphOptions, 'textLength'>) => buildUnetGraph(config, catalog(folder), { textLength: SECOND_TEXT_LENGTH, ...options });

  beforeAll(() => {
    const anySize = { height, width, textLength: SECOND_TEXT_LENGTH };
    writeRandomWeights(folders.second, (c) => buildUnetGraph(SECOND_UNET_CONFIG, c, anySize), 31);
    writeRandomWeights(folders.asymmetric, (c) => buildUnetGraph(ASYMMETRIC_UNET_CONFIG, c, anySize), 32);
  });
  afterAll(() => temp.remove());

  it('parses every switch as diffusers does', () => {
    expect(parsed.down.map((d) => [d.inChannels, d.outChannels, d.layers, d.attention?.heads ?? null, d.attention?.onlyCrossAttention ?? null, d.attention?.transformerLayers ?? null])).toEqual([
      [9, 9, 2, 2, false, [2, 2]],
      [9, 12, 2, null, null, null],
      [12, 15, 2, 5, true, [1, 1]],
    ]);
    expect(parsed.up.map((u) => [u.prevOutputChannels, u.inChannels, u.outChannels, u.layers, u.attention?.heads ?? null, u.attention?.transformerLayers ?? null])).toEqual([
      [15, 12, 15, 3, 5, [1, 1, 1]],
      [15, 9, 12, 3, null, null],
      [12, 9, 9, 3, 2, [2, 2, 2]],
    ]);
    expect(parsed.mid).toEqual({ channels: 15, outputScaleFactor: 1.4142, attention: { heads: 5, crossAttentionDim: 10, onlyCrossAttention: false, transformerLayers: [1] } });
    expect(parsed.time).toEqual({ projectionChannels: 9, embedDim: 20, flipSinToCos: false, freqShift: 1 });
    const asymmetric = parseUnetConfig(ASYMMETRIC_UNET_CONFIG);
    expect(asymmetric.down.map((d) => d.attention?.transformerLayers ?? null)).toEqual([[2], null, [3]]);
    expect(asymmetric.up.map((u) => [u.layers, u.attention?.transformerLayers ?? null])).toEqual([
      [2, [1, 2]],
      [3, null],
      [2, [2, 1]],
    ]);
  });

  it('builds with the expected interface; fused and primitive agree; runs are deterministic', async () => {
    for (const [config, folder] of [
      [SECOND_UNET_CONFIG, folders.second],
      [ASYMMETRIC_UNET_CONFIG, folders.asymmetric],
    ] as const) {
      const fused = graph(config, folder, { batch: BATCH, fused: true });
      const primitive = graph(config, folder, { batch: BATCH, fused: false });
      expect(fused.inputs.map((p) => [p.name, p.shape])).toEqual([
        ['sample', [BATCH, 3, height, width]],
        ['timestep', [1]],
        ['encoder_hidden_states', [BATCH, SECOND_TEXT_LENGTH, 10]],
      ]);
      expect(fused.outputs.map((p) => [p.name, p.shape])).toEqual([['noise_pred', [BATCH, 5, height, width]]]);
      expect(fused.cacheKey).toBe(graph(config, folder, { batch: BATCH, fused: true }).cacheKey);
      expect(fused.cacheKey).not.toBe(primitive.cacheKey);
      expect(encodeModel(fused.model)).toEqual(encodeModel(graph(config, folder, { batch: BATCH, fused: true }).model));
      const fusedOps = new Set(fused.model.graph.nodes.map((n) => n.opType));
      const primitiveOps = new Set(primitive.model.graph.nodes.map((n) => n.opType));
      for (const op of ['GroupNormalization', 'LayerNormalization', 'MultiHeadAttention', 'Gelu', 'Resize']) {
        expect(fusedOps.has(op), op).toBe(true);
        expect(primitiveOps.has(op), op).toBe(false);
      }

      const feeds = { sample, timestep, encoder_hidden_states: text };
      const first = float32Of(await runNetGraph(runtime, fused, folder, feeds), 'noise_pred');
      const again = float32Of(await runNetGraph(runtime, fused, folder, feeds), 'noise_pred');
      const viaPrimitive = float32Of(await runNetGraph(runtime, primitive, folder, feeds), 'noise_pred');
      expect(first.every(Number.isFinite)).toBe(true);
      expect(maxAbs(first)).toBeGreaterThan(1e-3);
      expect(again).toEqual(first);
      expect(maxAbsDiff(viaPrimitive, first), 'fused vs primitive').toBeLessThanOrEqual(1e-5 * maxAbs(first) + 1e-6);
    }
  });

  it('per-row timesteps, zero residuals and the guided step agree with the plain graph; residuals and timesteps take effect', async () => {
    const folder = folders.second;
    const plain = float32Of(await runNetGraph(runtime, graph(SECOND_UNET_CONFIG, folder, { batch: BATCH }), folder, { sample, timestep, encoder_hidden_states: text }), 'noise_pred');
    const half = plain.length / BATCH;

    const perRow = graph(SECOND_UNET_CONFIG, folder, { batch: BATCH, perSampleTimesteps: true });
    expect(perRow.inputs.find((p) => p.name === 'timestep')?.shape).toEqual([BATCH]);
    const sameTimes = float32Of(await runNetGraph(runtime, perRow, folder, { sample, timestep: float32Tensor([BATCH], new Float32Array([417, 417])), encoder_hidden_states: text }), 'noise_pred');
    // Same numbers up to the summation order of a [B]-row time embedding.
    expect(maxAbsDiff(sameTimes, plain)).toBeLessThanOrEqual(1e-5 * maxAbs(plain));
    const otherTime = float32Of(await runNetGraph(runtime, perRow, folder, { sample, timestep: float32Tensor([BATCH], new Float32Array([417, 3])), encoder_hidden_states: text }), 'noise_pred');
    expect(maxAbsDiff(otherTime.subarray(0, half), plain.subarray(0, half))).toBeLessThanOrEqual(1e-5 * maxAbs(plain));
    expect(maxAbsDiff(otherTime.subarray(half), plain.subarray(half))).toBeGreaterThan(1e-3);

    const withResiduals = graph(SECOND_UNET_CONFIG, folder, { batch: BATCH, withResiduals: true });
    const skipShapes = unetSkipShapes(parsed, BATCH, height, width);
    // 10×6 latents with downsample_padding 0 (pad right/bottom by 1): 10×6 → 5×3 → 2×1, so the up path
    // resizes 2×1 to the skip's 5×3 (not ×2), then 5×3 to 10×6.
    expect(skipShapes.map((s) => s.slice(2))).toEqual([[10, 6], [10, 6], [10, 6], [5, 3], [5, 3], [5, 3], [2, 1], [2, 1], [2, 1]]);
    expect(withResiduals.inputs.slice(3).map((p) => [p.name, p.shape])).toEqual([
      ...skipShapes.map((shape, k) => [downResidualName(k), shape]),
      ['mid_residual', [BATCH, 15, 2, 1]],
    ]);
    const residualFeeds = (make: (shape: readonly number[], k: number) => TensorValue): TensorMap =>
      Object.fromEntries(withResiduals.inputs.slice(3).map((p, k) => [p.name, make(p.shape, k)]));
    const zeros = await runNetGraph(runtime, withResiduals, folder, { sample, timestep, encoder_hidden_states: text, ...residualFeeds((shape) => float32Tensor(shape, new Float32Array(shape.reduce((a, b) => a * b, 1)))) });
    expect(maxAbsDiff(float32Of(zeros, 'noise_pred'), plain)).toBeLessThanOrEqual(1e-5 * maxAbs(plain));
    const random = await runNetGraph(runtime, withResiduals, folder, { sample, timestep, encoder_hidden_states: text, ...residualFeeds((shape, k) => randomTensor(40 + k, shape, 0.5)) });
    expect(maxAbsDiff(float32Of(random, 'noise_pred'), plain)).toBeGreaterThan(1e-3);

    // The guided step on one latent with [uncond; cond] text = the plain graph on the latent twice.
    const oneLatent = rows(sample, 0, 1);
    const pairGraph = graph(SECOND_UNET_CONFIG, folder, { batch: 2 });
    const pair = float32Of(await runNetGraph(runtime, pairGraph, folder, { sample: stackRows([oneLatent, oneLatent]), timestep, encoder_hidden_states: text }), 'noise_pred');
    const guidance = 3.25;
    const step = await runNetGraph(runtime, buildUnetGuidedStepGraph(SECOND_UNET_CONFIG, catalog(folder), { textLength: SECOND_TEXT_LENGTH, exposeBatchPrediction: true }), folder, {
      sample: oneLatent,
      timestep,
      encoder_hidden_states: text,
      guidance_scale: scalarTensor(guidance),
    });
    expect(step.noise_pred?.dims).toEqual([1, 5, height, width]);
    expect(maxAbsDiff(float32Of(step, 'noise_pred_batch'), pair)).toBeLessThanOrEqual(1e-5 * maxAbs(pair));
    const size = pair.length / 2;
    const expected = Array.from({ length: size }, (_, i) => pair[i]! + guidance * (pair[size + i]! - pair[i]!));
    expect(maxAbsDiff(float32Of(step, 'noise_pred'), expected)).toBeLessThanOrEqual(1e-5 * maxAbs(expected));
  });
});

describe('UNet configs the builder refuses, naming the key', () => {
  const kitConfig = readJson(join(unetDir, 'config.json')) as Record<string, unknown>;
  const refused: [Record<string, unknown>, RegExp][] = [
    [{ num_attention_heads: 8 }, /num_attention_heads must be null for UNet2DConditionModel/],
    [{ time_embedding_type: 'fourier' }, /time_embedding_type must be 'positional'/],
    [{ resnet_time_scale_shift: 'scale_shift' }, /resnet_time_scale_shift must be "default".*got "scale_shift"/],
    [{ class_embed_type: 'timestep' }, /class_embed_type must be null: class embeddings are not supported/],
    [{ addition_embed_type: 'text_time' }, /addition_embed_type must be null/],
    [{ act_fn: 'mish' }, /act_fn must be "silu" or "swish"/],
    [{ down_block_types: ['SimpleCrossAttnDownBlock2D', 'DownBlock2D'] }, /down_block_types\[0\] must be one of CrossAttnDownBlock2D, DownBlock2D/],
    [{ up_block_types: ['UpBlock2D'] }, /up_block_types has 1 entries, down_block_types 2/],
    [{ mid_block_type: 'UNetMidBlock2DSimpleCrossAttn' }, /mid_block_type must be 'UNetMidBlock2DCrossAttn' or null/],
    [{ block_out_channels: [16, 36] }, /block_out_channels entry 36 must be divisible by norm_num_groups \(8\)/],
    [{ transformer_layers_per_block: [[1], [1]] }, /reverse_transformer_layers_per_block is required/],
    [{ conv_in_kernel: 4 }, /conv_in_kernel must be an odd positive integer/],
    [{ cross_attention_dim: [32, 16] }, /cross_attention_dim must be one width for every cross-attention block/],
  ];
  for (const [change, message] of refused) {
    it(`${JSON.stringify(change)}`, () => {
      expect(() => parseUnetConfig({ ...kitConfig, ...change })).toThrow(ConfigError);
      expect(() => parseUnetConfig({ ...kitConfig, ...change })).toThrow(message);
    });
  }

  it('an explicit null mid_block_type means no mid block (a residual-free UNet still builds)', () => {
    const parsed = parseUnetConfig({ ...kitConfig, mid_block_type: null });
    expect(parsed.mid).toBeNull();
    const graph = buildUnetGraph({ ...kitConfig, mid_block_type: null }, nullMidCatalog(), { height: 8, width: 8, textLength: 3 });
    expect(graph.outputs[0]?.shape).toEqual([1, 4, 8, 8]);
  });
});

/** The kit's UNet weights without its mid block. */
function nullMidCatalog() {
  const full = readSafetensorsCatalog(join(unetDir, WEIGHTS_FILE));
  const names = full.names().filter((name) => !name.startsWith('mid_block.'));
  return { names: () => names, lookup: (name: string) => (name.startsWith('mid_block.') ? undefined : full.lookup(name)) };
}
