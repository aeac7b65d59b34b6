import { describe, it, expect } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildClipTextGraph, buildContextClipTextGraph } from '../../main/engine/nets/clip-text-encoder';
import { parseBlipDiffusionIndex, parseBlipQFormerModelConfig, parseClipTextConfig } from '../../main/engine/nets/configs';
import { checkParameters, impliedParameters, WeightMismatchError } from '../../main/engine/nets/implied-parameters';
import { buildQFormerGraph } from '../../main/engine/nets/qformer';
import { buildControlNetGraph } from '../../main/engine/nets/controlnet';
import { buildUnetGraph } from '../../main/engine/nets/unet';
import { parseControlNetConfig, parseUnetConfig } from '../../main/engine/nets/unet-config';
import { buildVaeDecoderGraph, buildVaeEncoderGraph } from '../../main/engine/nets/vae';
import { buildVaeEncoderSampleGraph } from '../../main/engine/nets/vae-encoder';
import { parseAutoencoderKLConfig, vaeScaleFactor } from '../../main/engine/nets/vae-config';
import type { TensorListing, WeightCatalog, WeightDType, WeightEntry } from '../../main/engine/nets/weight-catalog';
import { WEIGHT_DTYPE_BYTES } from '../../main/engine/nets/weight-catalog';
import { realShapesListing } from '../helpers/net-fixtures';

const realShapes = join(dirname(fileURLToPath(import.meta.url)), '../fixtures/parity/real-shapes');
const readJson = (path: string): unknown => JSON.parse(readFileSync(path, 'utf8'));

interface IndexEntry {
  class: string;
  config_file: string;
}
const index = readJson(join(realShapes, 'index.json')) as { components: Record<string, IndexEntry> };

type Build = (config: unknown, catalog: WeightCatalog) => unknown;
/** The prompt shapes don't change which tensors a net reads; these are the pipeline's. */
const QUERY_TOKENS = 16;
const CTX_BEGIN_POS = 2;
const CATEGORY_TOKENS = 3;
const qformerBuilds: Build[] = [(config, catalog) => buildQFormerGraph(config, catalog, { textLength: CATEGORY_TOKENS })];
const textBuilds: Build[] = [
  (config, catalog) => buildClipTextGraph(config, catalog),
  (config, catalog) => buildContextClipTextGraph(config, catalog, { queryTokenCount: QUERY_TOKENS, ctxBeginPos: CTX_BEGIN_POS }),
];
/**
 * The VAE's encoder graphs (posterior, and sampled for the fine-tune) each read the encoder half of its
 * weights and the decoder the other half: each build pairs one encoder with the decoder, so the check
 * sees their union, and the sampling encoder reads exactly what the posterior encoder reads.
 */
const VAE_LATENT_SIZE = 1;
const vaeImageSize = (config: unknown) => VAE_LATENT_SIZE * vaeScaleFactor(parseAutoencoderKLConfig(config));
const vaeDecoderBuild = (config: unknown, catalog: WeightCatalog) => buildVaeDecoderGraph(config, catalog, { latentHeight: VAE_LATENT_SIZE, latentWidth: VAE_LATENT_SIZE });
const vaeBuilds: Build[] = [
  (config, catalog) => [buildVaeEncoderGraph(config, catalog, { height: vaeImageSize(config), width: vaeImageSize(config) }), vaeDecoderBuild(config, catalog)],
  (config, catalog) => [buildVaeEncoderSampleGraph(config, catalog, { height: vaeImageSize(config), width: vaeImageSize(config) }), vaeDecoderBuild(config, catalog)],
];
/** The UNet and ControlNet read the same tensors at any size: the SD latent size of 512² images and CLIP's 77 tokens. */
const UNET_LATENT_SIZE = 64;
const TEXT_TOKENS = 77;
const unetBuilds: Build[] = [(config, catalog) => buildUnetGraph(config, catalog, { height: UNET_LATENT_SIZE, width: UNET_LATENT_SIZE, textLength: TEXT_TOKENS })];
const controlnetBuilds: Build[] = [(config, catalog) => buildControlNetGraph(config, catalog, { height: UNET_LATENT_SIZE, width: UNET_LATENT_SIZE, textLength: TEXT_TOKENS })];
/** Reference class → the builders that read its weights. */
const BUILDERS_BY_CLASS: Readonly<Record<string, Build[]>> = {
  'diffusers.pipelines.blip_diffusion.modeling_blip2.Blip2QFormerModel': qformerBuilds,
  'diffusers.pipelines.blip_diffusion.modeling_ctx_clip.ContextCLIPTextModel': textBuilds,
  'transformers.CLIPTextModel': textBuilds,
  'diffusers.UNet2DConditionModel': unetBuilds,
  'diffusers.ControlNetModel': controlnetBuilds,
  'diffusers.AutoencoderKL': vaeBuilds,
};

function componentListing(component: string): { listing: TensorListing[]; configFull: unknown; configFile: string | null } {
  const json = readJson(join(realShapes, `${component}.json`)) as { config_full: unknown };
  const configPath = join(realShapes, (index.components[component] as IndexEntry).config_file);
  return { listing: realShapesListing(json), configFull: json.config_full, configFile: existsSync(configPath) ? configPath : null };
}

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

describe('real checkpoints (real-shapes/): what each config implies against what the files hold', () => {
  it('every listed component is built here', () => {
    for (const [component, entry] of Object.entries(index.components)) expect(entry.class in BUILDERS_BY_CLASS, `${component} (${entry.class})`).toBe(true);
    expect(Object.keys(index.components)).toHaveLength(6);
  });

  for (const [component, entry] of Object.entries(index.components).filter(([, e]) => e.class in BUILDERS_BY_CLASS)) {
    it(`${component}: 0 missing, 0 unused, 0 mis-shaped (from the hub config and from the full config)`, () => {
      const { listing, configFull, configFile } = componentListing(component);
      const configs = [configFull, ...(configFile ? [readJson(configFile)] : [])];
      for (const config of configs) {
        for (const build of BUILDERS_BY_CLASS[entry.class] ?? []) {
          const implied = impliedParameters((catalog) => build(config, catalog));
          expect(checkParameters(implied, listing)).toEqual({ missing: [], unused: [], misshaped: [] });
        }
      }
    });
  }

  it('the hub configs (keys at their defaults omitted) parse to the same values as the full configs', () => {
    const qformer = componentListing('blipdiffusion-qformer');
    expect(qformer.configFile).not.toBeNull();
    expect(parseBlipQFormerModelConfig(readJson(qformer.configFile as string))).toEqual(parseBlipQFormerModelConfig(qformer.configFull));
    expect(parseBlipQFormerModelConfig(qformer.configFull)).toMatchObject({
      numQueryTokens: 16,
      vision: { hiddenSize: 1024, numHiddenLayers: 23, numAttentionHeads: 16, layerNormEps: 1e-6, hiddenAct: 'quick_gelu', qkvBias: true },
      qformer: { hiddenSize: 768, numHiddenLayers: 12, layerNormEps: 1e-12, hiddenAct: 'gelu', crossAttentionFrequency: 1, encoderHiddenSize: 1024 },
    });
    const text = componentListing('blipdiffusion-text_encoder');
    expect(parseClipTextConfig(readJson(text.configFile as string))).toEqual(parseClipTextConfig(text.configFull));
    expect(parseClipTextConfig(text.configFull)).toMatchObject({ contextModel: true, hiddenSize: 768, numAttentionHeads: 12, finalLayerNormEps: 1e-5 });
    expect(parseClipTextConfig(componentListing('sd15-text_encoder').configFull).contextModel).toBe(false);
    expect(parseBlipDiffusionIndex(readJson(join(realShapes, 'configs/blipdiffusion/model_index.json')))).toEqual({ ctxBeginPos: 2 });
  });

  it('a build against files that disagree fails once, naming every missing, unused and mis-shaped tensor', () => {
    const { listing, configFull } = componentListing('blipdiffusion-qformer');
    const dropped = 'encoder.layer.3.crossattention.attention.key.weight';
    const reshaped = 'visual_encoder.embeddings.position_embedding';
    const retyped = 'proj_layer.dense1.bias';
    const damaged: TensorListing[] = [
      ...listing
        .filter((t) => t.name !== dropped)
        .map((t) => (t.name === reshaped ? { ...t, shape: [1, 50, 1024] } : t.name === retyped ? { ...t, dtype: 'I32' } : t)),
      { name: 'encoder.layer.3.crossattention.attention.extra.weight', dtype: 'F32', shape: [4] },
    ];
    let error: unknown;
    try {
      buildQFormerGraph(configFull, listingCatalog(damaged), { textLength: CATEGORY_TOKENS });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(WeightMismatchError);
    const report = (error as WeightMismatchError).report;
    expect(report.missing).toEqual([dropped]);
    expect(report.unused).toEqual(['encoder.layer.3.crossattention.attention.extra.weight']);
    expect(report.misshaped.map((m) => m.name).sort()).toEqual([retyped, reshaped].sort());
    expect((error as Error).message).toContain('1 missing, 1 unused, 2 mis-shaped');
    expect((error as Error).message).toContain('shape [1, 50, 1024], expected [1, 257, 1024]');
  });

  it('the same real config builds against its own listing (the recording-free path) without complaint', () => {
    const { listing, configFull } = componentListing('blipdiffusion-text_encoder');
    const graph = buildContextClipTextGraph(configFull, listingCatalog(listing), { queryTokenCount: QUERY_TOKENS, ctxBeginPos: CTX_BEGIN_POS });
    expect(graph.outputs.map((o) => [o.name, o.shape])).toEqual([['last_hidden_state', [1, 77, 768]]]);
    expect(graph.inputs.map((o) => [o.name, o.shape])).toEqual([
      ['input_ids', [1, 61]],
      ['ctx_embeddings', [1, 16, 768]],
    ]);
  });

  it('VAE: the hub config parses like the full one, and the real graphs have the pipeline’s shapes (512² image, 64² latents)', () => {
    const vae = componentListing('blipdiffusion-vae');
    expect(vae.configFile).not.toBeNull();
    const config = parseAutoencoderKLConfig(vae.configFull);
    expect(parseAutoencoderKLConfig(readJson(vae.configFile as string))).toEqual(config);
    expect(config).toMatchObject({ blockOutChannels: [128, 256, 512, 512], layersPerBlock: 2, normNumGroups: 32, latentChannels: 4, scalingFactor: 0.18215, shiftFactor: 0 });
    expect(config).toMatchObject({ midBlockAddAttention: true, useQuantConv: true, usePostQuantConv: true, activation: 'silu' });
    const catalog = listingCatalog(vae.listing);
    const decoder = buildVaeDecoderGraph(vae.configFull, catalog, { latentHeight: 64, latentWidth: 64, outputs: ['sample', 'image'] });
    expect(decoder.inputs.map((p) => [p.name, p.shape])).toEqual([['latents', [1, 4, 64, 64]]]);
    expect(decoder.outputs.map((p) => [p.name, p.shape])).toEqual([
      ['sample', [1, 3, 512, 512]],
      ['image', [1, 512, 512, 3]],
    ]);
    const encoder = buildVaeEncoderGraph(vae.configFull, catalog, { height: 512, width: 512 });
    expect(encoder.inputs.map((p) => [p.name, p.shape])).toEqual([['image', [1, 3, 512, 512]]]);
    expect(encoder.outputs.map((p) => [p.name, p.shape])).toEqual([
      ['mean', [1, 4, 64, 64]],
      ['logvar', [1, 4, 64, 64]],
    ]);
    // The fine-tune's encoder at 512², batch 3: ε in, posterior and UNet-space latents out.
    const sampling = buildVaeEncoderSampleGraph(vae.configFull, catalog, { batch: 3, height: 512, width: 512 });
    expect(sampling.inputs.map((p) => [p.name, p.shape])).toEqual([
      ['image', [3, 3, 512, 512]],
      ['eps', [3, 4, 64, 64]],
    ]);
    expect(sampling.outputs.map((p) => [p.name, p.shape])).toEqual([
      ['mean', [3, 4, 64, 64]],
      ['std', [3, 4, 64, 64]],
      ['latents', [3, 4, 64, 64]],
    ]);
    expect(sampling.parameters.map((p) => [p.name, p.shape])).toEqual(encoder.parameters.map((p) => [p.name, p.shape]));
  });

  it('UNet and ControlNet: the hub configs parse like the full ones; attention_head_dim 8 is the head COUNT (SD-1.5 naming quirk)', () => {
    const unet = componentListing('blipdiffusion-unet');
    const controlnet = componentListing('controlnet-canny');
    for (const [parse, listing] of [
      [parseUnetConfig, unet],
      [parseControlNetConfig, controlnet],
    ] as const) {
      expect(listing.configFile).not.toBeNull();
      expect(parse(readJson(listing.configFile as string))).toEqual(parse(listing.configFull));
    }
    const config = parseUnetConfig(unet.configFull);
    expect(config.down.map((d) => [d.type, d.inChannels, d.outChannels, d.layers, d.attention?.heads ?? null, d.addDownsample])).toEqual([
      ['CrossAttnDownBlock2D', 320, 320, 2, 8, true],
      ['CrossAttnDownBlock2D', 320, 640, 2, 8, true],
      ['CrossAttnDownBlock2D', 640, 1280, 2, 8, true],
      ['DownBlock2D', 1280, 1280, 2, null, false],
    ]);
    expect(config.up.map((u) => [u.type, u.prevOutputChannels, u.inChannels, u.outChannels, u.layers, u.addUpsample])).toEqual([
      ['UpBlock2D', 1280, 1280, 1280, 3, true],
      ['CrossAttnUpBlock2D', 1280, 640, 1280, 3, true],
      ['CrossAttnUpBlock2D', 1280, 320, 640, 3, true],
      ['CrossAttnUpBlock2D', 640, 320, 320, 3, false],
    ]);
    expect(config).toMatchObject({ time: { projectionChannels: 320, embedDim: 1280, flipSinToCos: true, freqShift: 0 }, normNumGroups: 32, sampleSize: [64, 64], useLinearProjection: false });
    expect(parseControlNetConfig(controlnet.configFull)).toMatchObject({ conditioningEmbeddingOutChannels: [16, 32, 96, 256], flipConditioningChannels: false, mid: { channels: 1280 } });

    // The real graph at 64² latents: 8 heads everywhere, so head sizes 40/80/160, as diffusers runs SD-1.5.
    const graph = buildUnetGraph(unet.configFull, listingCatalog(unet.listing), { textLength: TEXT_TOKENS, withResiduals: true });
    const attention = graph.model.graph.nodes.filter((n) => n.opType === 'MultiHeadAttention');
    expect(attention).toHaveLength(2 * (3 * 2 + 1 + 3 * 3));
    expect(new Set(attention.map((n) => n.attributes?.find((a) => a.name === 'num_heads')?.value))).toEqual(new Set([8]));
    expect(graph.outputs.map((p) => [p.name, p.shape])).toEqual([['noise_pred', [1, 4, 64, 64]]]);
    expect(graph.inputs.map((p) => [p.name, p.shape])).toEqual([
      ['sample', [1, 4, 64, 64]],
      ['timestep', [1]],
      ['encoder_hidden_states', [1, 77, 768]],
      ...[320, 320, 320, 320, 640, 640, 640, 1280, 1280, 1280, 1280, 1280].map((channels, k) => {
        const size = 64 / 2 ** [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3][k]!;
        return [`down_residual_${String(k).padStart(2, '0')}`, [1, channels, size, size]];
      }),
      ['mid_residual', [1, 1280, 8, 8]],
    ]);
    // The ControlNet's outputs are exactly the UNet's residual inputs, for a 512² control image.
    const control = buildControlNetGraph(controlnet.configFull, listingCatalog(controlnet.listing), { height: UNET_LATENT_SIZE, width: UNET_LATENT_SIZE, textLength: TEXT_TOKENS });
    expect(control.outputs.map((p) => [p.name, p.shape])).toEqual(graph.inputs.slice(3).map((p) => [p.name, p.shape]));
    expect(control.inputs.find((p) => p.name === 'controlnet_cond')?.shape).toEqual([1, 3, 512, 512]);
  });

  it('UNet: a build against files that disagree fails once, naming every missing, unused and mis-shaped tensor', () => {
    const { listing, configFull } = componentListing('blipdiffusion-unet');
    const dropped = 'up_blocks.1.attentions.2.transformer_blocks.0.attn2.to_k.weight';
    const reshaped = 'mid_block.attentions.0.proj_in.weight';
    const damaged: TensorListing[] = [
      ...listing.filter((t) => t.name !== dropped).map((t) => (t.name === reshaped ? { ...t, shape: [1280, 1280] } : t)),
      { name: 'down_blocks.3.attentions.0.norm.weight', dtype: 'F32', shape: [1280] },
    ];
    let error: unknown;
    try {
      buildUnetGraph(configFull, listingCatalog(damaged), { textLength: TEXT_TOKENS });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(WeightMismatchError);
    expect((error as WeightMismatchError).report).toEqual({
      missing: [dropped],
      unused: ['down_blocks.3.attentions.0.norm.weight'],
      misshaped: [{ name: reshaped, problem: 'shape [1280, 1280], expected [1280, 1280, 1, 1]' }],
    });
  });
});
