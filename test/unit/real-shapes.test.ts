import { describe, it, expect } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildClipTextGraph, buildContextClipTextGraph } from '../../main/engine/nets/clip-text-encoder';
import { parseBlipDiffusionIndex, parseBlipQFormerModelConfig, parseClipTextConfig } from '../../main/engine/nets/configs';
import { checkParameters, impliedParameters, WeightMismatchError } from '../../main/engine/nets/implied-parameters';
import { buildQFormerGraph } from '../../main/engine/nets/qformer';
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
/** Reference class → the builders that read its weights. */
const BUILDERS_BY_CLASS: Readonly<Record<string, Build[]>> = {
  'diffusers.pipelines.blip_diffusion.modeling_blip2.Blip2QFormerModel': qformerBuilds,
  'diffusers.pipelines.blip_diffusion.modeling_ctx_clip.ContextCLIPTextModel': textBuilds,
  'transformers.CLIPTextModel': textBuilds,
};
/** Components whose nets come in a later issue. */
const LATER_CLASSES = ['diffusers.UNet2DConditionModel', 'diffusers.AutoencoderKL', 'diffusers.ControlNetModel'];

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
  it('every listed component is either built here or belongs to the later UNet/VAE/ControlNet issue', () => {
    for (const [component, entry] of Object.entries(index.components)) {
      expect(entry.class in BUILDERS_BY_CLASS || LATER_CLASSES.includes(entry.class), `${component} (${entry.class})`).toBe(true);
    }
    expect(Object.values(index.components).filter((e) => e.class in BUILDERS_BY_CLASS)).toHaveLength(3);
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
});
