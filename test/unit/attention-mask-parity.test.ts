/**
 * "Propose mask from word" against test/fixtures/edit-attention (scripts/reference-attention-mask.py:
 * LAVIS's AttentionStore + LocalBlend on diffusers 0.25.1's UNet, tiny kit model, CPU). Stage by stage:
 * token indices, the probe graph's per-layer maps fed the reference's step inputs, LocalBlend's
 * aggregation fed the reference's own per-layer maps, then the whole pipeline from the kit's latents.
 * Tolerances: manifest.tolerance_rule (4 × the float32-vs-float64 gap of that file + 1e-6); binary
 * masks may differ in at most the pixels whose float64 value lies within that tolerance of the threshold.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readNpyFile } from '../../main/engine/io/npy-file';
import { attentionProbeOutputName, crossAttentionLayers, selectAttentionLayers } from '../../main/engine/nets/attention-probe';
import { buildUnetGraph, unetAttentionProbeLayers, unetGraphKey } from '../../main/engine/nets/unet';
import { parseUnetConfig } from '../../main/engine/nets/unet-config';
import { proposeMaskFromWord } from '../../main/engine/pipelines/attention-mask';
import type { EngineContext } from '../../main/engine/pipelines/engine-context';
import { AttentionAccumulator, localBlend, wordAttentionMap, maxPool2d, wordTokenIndices, WordNotInPromptError, type LayerAttention } from '../../main/engine/pipelines/local-blend';
import { readClipTokenizerFiles } from '../../main/engine/pipelines/subject-embedding';
import { ClipTokenizer } from '../../main/engine/tokenizers/clip-bpe';
import { catalogOf } from '../../main/engine/weights/catalog';
import { openComponentWeights } from '../../main/engine/weights/component-weights';
import { loadModelFolder } from '../../main/models/model-folder';
import { REPO_ROOT } from '../helpers/built-app';
import { maxAbsDiff } from '../helpers/net-fixtures';
import { makeTempDir } from '../helpers/temp-dir';
import { float32Of, float32Tensor, npyFeed, runNetGraph, scalarTensor } from '../helpers/unet-fixtures';
import { startTestRuntime } from '../helpers/worker-bundle';

const fixtures = join(REPO_ROOT, 'test/fixtures/edit-attention');
const kit = join(REPO_ROOT, 'test/fixtures/parity');
const modelDir = join(kit, 'models/tiny-blipdiffusion');
interface Manifest {
  run: { source_prompt: string; words: string[]; steps: number; thresholds: number[]; image_size: [number, number]; latent_size: [number, number]; layer_sets: Record<string, string[]> };
  gaps_f32_vs_f64: Record<string, number>;
  masks: Record<string, { token_indices: number[]; near_threshold_pixels_all_steps: number }>;
}
const manifest = JSON.parse(readFileSync(join(fixtures, 'manifest.json'), 'utf8')) as Manifest;
const npy = (name: string) => readNpyFile(join(fixtures, `${name}.npy`));
const floats = (name: string) => npy(name).data as Float32Array;
const tolerance = (name: string) => 4 * (manifest.gaps_f32_vs_f64[`${name}.npy`] as number) + 1e-6;
const expectClose = (actual: ArrayLike<number>, name: string, what = name, reference: ArrayLike<number> = floats(name)) =>
  expect(maxAbsDiff(actual, reference), `${what} (tolerance ${tolerance(name)})`).toBeLessThanOrEqual(tolerance(name));
const countDiffering = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).filter((v, i) => (v !== 0) !== (b[i] !== 0)).length;

const model = loadModelFolder(modelDir);
const unetConfig = JSON.parse(readFileSync(join(modelDir, 'unet/config.json'), 'utf8')) as unknown;
const parsedUnet = parseUnetConfig(unetConfig);
const clip = ClipTokenizer.fromFiles(readClipTokenizerFiles(model));
const [latentHeight, latentWidth] = manifest.run.latent_size;
const prompt = manifest.run.source_prompt;
const textEmbedding = npyFeed(join(fixtures, 'text_embedding.npy'));
const textLength = textEmbedding.dims[1] as number;

describe('LAVIS get_word_inds and the splice offset', () => {
  it('finds the reference token indices ("underwater" is 4 tiny-BPE tokens)', () => {
    for (const word of manifest.run.words) expect(wordTokenIndices(clip, prompt, word, { length: textLength })).toEqual(manifest.masks[`${word}-local-blend@0.3`]?.token_indices);
  });

  it('shifts by the spliced query tokens and drops tokens past the limit', () => {
    expect(wordTokenIndices(clip, prompt, 'dog', { splice: { begin: 2, count: 16 } })).toEqual([18]);
    expect(wordTokenIndices(clip, prompt, 'a', { splice: { begin: 2, count: 16 } })).toEqual([1]);
    expect(wordTokenIndices(clip, prompt, 'underwater', { length: 6 })).toEqual([4, 5]);
    expect(() => wordTokenIndices(clip, prompt, 'underwater', { length: 4 })).toThrow(/past the text encoder's token limit/);
  });

  it('names the word and the prompt’s words when the word is not there', () => {
    expect(() => wordTokenIndices(clip, prompt, 'cat')).toThrow(WordNotInPromptError);
    expect(() => wordTokenIndices(clip, prompt, 'cat')).toThrow('The word "cat" is not in the prompt "a dog swimming underwater": pick one of its words ("a", "dog", "swimming", "underwater").');
    // LAVIS compares whole words exactly.
    expect(() => wordTokenIndices(clip, prompt, 'Dog')).toThrow(/"Dog" is not in the prompt/);
  });
});

describe('LocalBlend helpers', () => {
  it('max-pools 3×3 with padding that never wins, and averages layers by their heads', () => {
    expect(Array.from(maxPool2d([1, 0, 0, 0, 0, 0, 0, 0, 5], 3, 3))).toEqual([1, 1, 0, 1, 5, 5, 0, 5, 5]);
    expect(Array.from(maxPool2d([-3, -2], 1, 2))).toEqual([-2, -2]);
    const layer = (heads: number, value: number): LayerAttention => ({ heads, height: 1, width: 1, keys: 2, probabilities: Float32Array.of(value, 1 - value) });
    // mean over heads × layers: (2·0.5 + 6·0.25) / 8
    expect(wordAttentionMap([layer(2, 0.5), layer(6, 0.25)], [0]).map[0]).toBeCloseTo(0.3125, 12);
    expect(() => wordAttentionMap([layer(2, 0.5)], [2])).toThrow(/token index 2 outside 0..1/);
  });
});

describe('the attention probe on the UNet graph', () => {
  it('selects LAVIS’s layers (generalised): the coarsest down/up cross-attention level, never mid', () => {
    const all = crossAttentionLayers(parsedUnet, latentHeight, latentWidth);
    expect(all.map((l) => [l.name, l.height, l.width, l.heads])).toEqual([
      ['down_blocks.0.attentions.0.transformer_blocks.0.attn2', 24, 16, 2],
      ['mid_block.attentions.0.transformer_blocks.0.attn2', 12, 8, 2],
      ['up_blocks.1.attentions.0.transformer_blocks.0.attn2', 24, 16, 2],
      ['up_blocks.1.attentions.1.transformer_blocks.0.attn2', 24, 16, 2],
    ]);
    expect(selectAttentionLayers(parsedUnet, latentHeight, latentWidth, 'local-blend').map((l) => l.name)).toEqual(manifest.run.layer_sets['local-blend']);
    expect(() => selectAttentionLayers(parsedUnet, latentHeight, latentWidth, ['up_blocks.0.attentions.0.transformer_blocks.0.attn2'])).toThrow(/no cross-attention layer up_blocks\.0.*the UNet has down_blocks\.0/);
  });

  it('gives SD-1.5 at 512×512 exactly LAVIS’s five 16×16 layers (down_cross[2:4] + up_cross[:3])', () => {
    const sd15 = parseUnetConfig({
      ...(unetConfig as object),
      block_out_channels: [320, 640, 1280, 1280],
      down_block_types: ['CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D'],
      up_block_types: ['UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D'],
      layers_per_block: 2,
      attention_head_dim: 8,
      cross_attention_dim: 768,
      norm_num_groups: 32,
      sample_size: 64,
    });
    const chosen = selectAttentionLayers(sd15, 64, 64, 'local-blend');
    expect(chosen.map((l) => `${l.name} ${l.height}x${l.width}`)).toEqual([
      'down_blocks.2.attentions.0.transformer_blocks.0.attn2 16x16',
      'down_blocks.2.attentions.1.transformer_blocks.0.attn2 16x16',
      'up_blocks.1.attentions.0.transformer_blocks.0.attn2 16x16',
      'up_blocks.1.attentions.1.transformer_blocks.0.attn2 16x16',
      'up_blocks.1.attentions.2.transformer_blocks.0.attn2 16x16',
    ]);
    // LAVIS's store keeps cross maps of ≤ 32² queries in call order; its slices pick the same five.
    const stored = crossAttentionLayers(sd15, 64, 64).filter((l) => l.height * l.width <= 32 ** 2);
    const down = stored.filter((l) => l.place === 'down').slice(2, 4);
    const up = stored.filter((l) => l.place === 'up').slice(0, 3);
    expect([...down, ...up].map((l) => l.name)).toEqual(chosen.map((l) => l.name));
  });

  let cache: ReturnType<typeof makeTempDir>;
  let bound: ReturnType<typeof catalogOf>;
  let testRuntime: Awaited<ReturnType<typeof startTestRuntime>>;
  beforeAll(async () => {
    cache = makeTempDir('blip-attention-probe-');
    bound = catalogOf(await openComponentWeights(join(modelDir, 'unet'), { cacheDir: cache.path }));
    testRuntime = await startTestRuntime();
  });
  afterAll(async () => {
    await testRuntime?.stop();
    cache?.remove();
  });

  it('leaves the default graph alone: same outputs and cache key; the probe changes the key', () => {
    const base = { height: latentHeight, width: latentWidth, textLength };
    const plain = buildUnetGraph(unetConfig, bound.catalog, base);
    expect(plain.outputs.map((o) => o.name)).toEqual(['noise_pred']);
    expect(unetGraphKey(unetConfig, bound.catalog, { ...base, attentionProbe: undefined })).toBe(plain.cacheKey);
    const probed = buildUnetGraph(unetConfig, bound.catalog, { ...base, attentionProbe: { layers: 'local-blend' } });
    expect(probed.outputs.map((o) => [o.name, o.shape])).toEqual([
      ['noise_pred', [1, 4, latentHeight, latentWidth]],
      ['attention_probe_00', [1, latentHeight * latentWidth, textLength]],
      ['attention_probe_01', [1, latentHeight * latentWidth, textLength]],
      ['attention_probe_02', [1, latentHeight * latentWidth, textLength]],
    ]);
    expect(probed.cacheKey).not.toBe(plain.cacheKey);
    // The same layers named explicitly are the same graph.
    expect(unetGraphKey(unetConfig, bound.catalog, { ...base, attentionProbe: { layers: manifest.run.layer_sets['local-blend'] as string[] } })).toBe(probed.cacheKey);
  });

  for (const fused of [true, false]) {
    it(`per step and layer, fed the reference's step inputs (${fused ? 'fused' : 'primitive'} ops): head-mean maps, word maps, noise`, async () => {
      const options = { height: latentHeight, width: latentWidth, textLength, fused, attentionProbe: { layers: 'cross' as const } };
      const layers = unetAttentionProbeLayers(unetConfig, options);
      const graph = buildUnetGraph(unetConfig, bound.catalog, options);
      const plain = buildUnetGraph(unetConfig, bound.catalog, { height: latentHeight, width: latentWidth, textLength, fused });
      const latents = floats('step_latents');
      const timesteps = Array.from(npy('timesteps').data as BigInt64Array, Number);
      const size = latents.length / timesteps.length;
      const noise = floats('step_noise_pred');
      for (let step = 0; step < timesteps.length; step++) {
        const feeds = { sample: float32Tensor([1, 4, latentHeight, latentWidth], latents.slice(step * size, (step + 1) * size)), timestep: scalarTensor(timesteps[step]!), encoder_hidden_states: textEmbedding };
        const out = await runNetGraph(testRuntime.runtime, graph, bound.externalDataFolder, feeds);
        const noisePred = float32Of(out, 'noise_pred');
        expectClose(noisePred, 'step_noise_pred', `noise step ${step}`, noise.subarray(step * size, (step + 1) * size));
        if (step === 0) {
          const plainOut = await runNetGraph(testRuntime.runtime, plain, bound.externalDataFolder, feeds);
          expect(maxAbsDiff(float32Of(plainOut, 'noise_pred'), noisePred)).toBeLessThanOrEqual(1e-6);
          layers.forEach((layer, k) => expectClose(float32Of(out, attentionProbeOutputName(k)), `probs_step0_headmean-${layer.name}`));
        }
        for (const word of manifest.run.words) {
          const tokens = manifest.masks[`${word}-local-blend@0.3`]?.token_indices as number[];
          for (const [setName, names] of Object.entries(manifest.run.layer_sets)) {
            const name = `${word}-${setName}-word_maps_per_step_layer`;
            const reference = floats(name);
            const queries = reference.length / (timesteps.length * names.length);
            names.forEach((layerName, j) => {
              const k = layers.findIndex((l) => l.name === layerName);
              const map = wordAttentionMap([{ ...(layers[k] as (typeof layers)[number]), keys: textLength, probabilities: float32Of(out, attentionProbeOutputName(k)) }], tokens).map;
              expectClose(map, name, `${name} step ${step} ${layerName}`, reference.subarray((step * names.length + j) * queries, (step * names.length + j + 1) * queries));
            });
          }
        }
      }
    });
  }
});

describe('LocalBlend fed the reference’s per-layer word maps (aggregation alone)', () => {
  for (const word of manifest.run.words) {
    for (const [setName, names] of Object.entries(manifest.run.layer_sets)) {
      it(`${word}, ${setName} layers: aggregated, pooled, normalised and thresholded after every step`, () => {
        const prefix = `${word}-${setName}`;
        const perLayer = floats(`${prefix}-word_maps_per_step_layer`);
        const grid = selectAttentionLayers(parsedUnet, latentHeight, latentWidth, names);
        const queries = (grid[0]?.height ?? 0) * (grid[0]?.width ?? 0);
        const steps = manifest.run.steps;
        const normalized = floats(`${prefix}-normalized_per_step`);
        const masks = npy(`${prefix}-mask_per_step`).data as Uint8Array;
        const latentSize = latentHeight * latentWidth;
        const thresholds = manifest.run.thresholds;
        const store = new AttentionAccumulator();
        for (let s = 0; s < steps; s++) {
          // The word's tokens already summed: one "token" per layer.
          store.add(grid.map((layer, j) => ({ heads: layer.heads, height: layer.height, width: layer.width, keys: 1, probabilities: perLayer.slice((s * names.length + j) * queries, (s * names.length + j + 1) * queries) })));
          const blend = localBlend(store.layers, [0], latentHeight, latentWidth, { threshold: thresholds[0] as number });
          expectClose(blend.normalized, `${prefix}-normalized_per_step`, `${prefix} normalized step ${s}`, normalized.subarray(s * latentSize, (s + 1) * latentSize));
          thresholds.forEach((threshold, j) => {
            const mask = localBlend(store.layers, [0], latentHeight, latentWidth, { threshold }).mask;
            const reference = masks.subarray((s * thresholds.length + j) * latentSize, (s * thresholds.length + j + 1) * latentSize);
            expect(countDiffering(mask, reference), `${prefix}@${threshold} step ${s}`).toBeLessThanOrEqual(manifest.masks[`${prefix}@${threshold}`]?.near_threshold_pixels_all_steps ?? 0);
          });
          if (s === steps - 1) {
            expectClose(blend.attention, `${prefix}-aggregated`, `${prefix} aggregated`);
            const pooled = maxPool2d(blend.attention, grid[0]?.height ?? 0, grid[0]?.width ?? 0);
            expectClose(pooled, `${prefix}-pooled`);
          }
        }
      });
    }
  }
});

describe('proposeMaskFromWord end to end (tiny kit model, CPU)', () => {
  let testRuntime: Awaited<ReturnType<typeof startTestRuntime>>;
  let cache: ReturnType<typeof makeTempDir>;
  let context: EngineContext;
  beforeAll(async () => {
    testRuntime = await startTestRuntime();
    cache = makeTempDir('blip-attention-mask-');
    context = { runtime: testRuntime.runtime, device: 'cpu', cacheDir: cache.path };
  });
  afterAll(async () => {
    await testRuntime?.stop();
    cache?.remove();
  });
  const [height, width] = manifest.run.image_size;
  const latents = readNpyFile(join(kit, 'inputs/initial_latents.npy')).data as Float32Array;
  const kitEmbedding = { dims: [1, textLength, textEmbedding.dims[2] as number] as [1, number, number], data: textEmbedding.data as Float32Array };

  for (const [setName, names] of Object.entries(manifest.run.layer_sets)) {
    for (const threshold of manifest.run.thresholds) {
      it(`"dog", ${setName} layers, threshold ${threshold}: the map, the per-step and final masks, at latent and image size`, async () => {
        const result = await proposeMaskFromWord(context, { model, prompt, word: 'dog', height, width, latents, textEmbedding: kitEmbedding, steps: manifest.run.steps, threshold, layers: setName === 'local-blend' ? 'local-blend' : names, stepMasks: true });
        expect(result.tokenIndices).toEqual([2]);
        expect([result.latentHeight, result.latentWidth, result.height, result.width]).toEqual([latentHeight, latentWidth, height, width]);
        const latentSize = latentHeight * latentWidth;
        const prefix = `dog-${setName}`;
        const normalized = floats(`${prefix}-normalized_per_step`);
        const last = normalized.subarray((manifest.run.steps - 1) * latentSize);
        expectClose(result.map, `${prefix}-normalized_per_step`, `${prefix} final map`, last);
        const allowed = manifest.masks[`${prefix}@${threshold}`]?.near_threshold_pixels_all_steps ?? 0;
        const masks = npy(`${prefix}-mask_per_step`).data as Uint8Array;
        const j = manifest.run.thresholds.indexOf(threshold);
        const T = manifest.run.thresholds.length;
        result.stepMasks?.forEach((mask, s) => expect(countDiffering(mask, masks.subarray((s * T + j) * latentSize, (s * T + j + 1) * latentSize)), `step ${s}`).toBeLessThanOrEqual(allowed));
        expect(result.stepMasks).toHaveLength(manifest.run.steps);
        const finalMask = masks.subarray(((manifest.run.steps - 1) * T + j) * latentSize, ((manifest.run.steps - 1) * T + j + 1) * latentSize);
        expect(countDiffering(result.latentMask, finalMask)).toBeLessThanOrEqual(allowed);
        // Image size: nearest ×2 of the latent mask, 0/255.
        const factor = height / latentHeight;
        let mismatched = 0;
        for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) if (result.mask[y * width + x] !== (result.latentMask[Math.floor(y / factor) * latentWidth + Math.floor(x / factor)] ? 255 : 0)) mismatched++;
        expect(mismatched).toBe(0);
        expect(result.imageMap).toHaveLength(height * width);
      });
    }
  }

  it('encodes the source prompt itself (plain text encoder) to the same map', async () => {
    const result = await proposeMaskFromWord(context, { model, prompt, word: 'underwater', height, width, latents, steps: manifest.run.steps });
    expect(result.tokenIndices).toEqual([4, 5, 6, 7]);
    const latentSize = latentHeight * latentWidth;
    const name = 'underwater-local-blend-normalized_per_step';
    // The kit's text encoder runs here too, so the tolerance also takes in the text-embedding gap (one more 4× of it).
    expect(maxAbsDiff(result.map, floats(name).subarray((manifest.run.steps - 1) * latentSize))).toBeLessThanOrEqual(tolerance(name) + 4 * (manifest.gaps_f32_vs_f64['text_embedding.npy'] as number));
  });

  it('rejects a word that is not in the prompt, naming the prompt’s words, before any model runs', async () => {
    await expect(proposeMaskFromWord(context, { model, prompt, word: 'cat', height, width, latents, steps: 1, textEmbedding: kitEmbedding })).rejects.toThrow(
      /The word "cat" is not in the prompt "a dog swimming underwater": pick one of its words \("a", "dog", "swimming", "underwater"\)/,
    );
  });
});
