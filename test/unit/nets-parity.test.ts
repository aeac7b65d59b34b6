import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeModel } from '../../main/engine/graph/onnx-writer';
import { readNpyFile } from '../../main/engine/io/npy-file';
import { buildClipTextGraph, buildContextClipTextGraph, CLIP_TEXT_OUTPUTS } from '../../main/engine/nets/clip-text-encoder';
import { parseBlipDiffusionIndex } from '../../main/engine/nets/configs';
import { checkParameters, impliedParameters } from '../../main/engine/nets/implied-parameters';
import type { NetGraph } from '../../main/engine/nets/net-graph';
import { buildQFormerGraph, QFORMER_OUTPUTS } from '../../main/engine/nets/qformer';
import { catalogListing } from '../../main/engine/nets/weight-catalog';
import { RuntimeClient } from '../../main/engine/runtime/runtime-client';
import type { TensorMap } from '../../main/engine/runtime/runtime-protocol';
import {
  maxAbs,
  maxAbsDiff,
  parityBound,
  randomNormalish,
  readSafetensorsCatalog,
  seededRandom,
  writeSafetensors,
  type FixtureTensor,
} from '../helpers/net-fixtures';
import { makeTempDir } from '../helpers/temp-dir';

const kit = join(dirname(fileURLToPath(import.meta.url)), '../fixtures/parity');
const model = join(kit, 'models/tiny-blipdiffusion');
const readJson = (path: string): unknown => JSON.parse(readFileSync(path, 'utf8'));
const npy = (name: string) => readNpyFile(join(kit, 'blip', name));

let runtime: RuntimeClient;
beforeAll(() => {
  runtime = RuntimeClient.start();
});
afterAll(async () => {
  await runtime.close();
});

/** One session: create, run, release. */
async function runGraph(graph: NetGraph, externalDataFolder: string, feeds: TensorMap): Promise<TensorMap> {
  const session = await runtime.createSession({ model: encodeModel(graph.model), externalDataFolder, device: 'cpu' });
  try {
    return await runtime.run(session.id, feeds);
  } finally {
    await runtime.releaseSession(session.id);
  }
}

function float32Output(outputs: TensorMap, name: string): Float32Array {
  const tensor = outputs[name];
  if (!tensor || !(tensor.data instanceof Float32Array)) throw new Error(`output '${name}' is missing or not float32`);
  return tensor.data;
}

function expectParity(outputs: TensorMap, output: string, referenceFile: string): void {
  const reference = npy(referenceFile);
  const actual = outputs[output];
  expect(actual?.dims, `${output} dims`).toEqual(reference.shape);
  const error = maxAbsDiff(float32Output(outputs, output), reference.data as Float32Array);
  expect(error, `${output} vs blip/${referenceFile}: max |a − b| = ${error}`).toBeLessThanOrEqual(parityBound(reference.data as Float32Array));
}

const int64 = (array: ReturnType<typeof npy>) => ({ type: 'int64' as const, dims: array.shape, data: array.data as BigInt64Array });
const float32 = (array: ReturnType<typeof npy>) => ({ type: 'float32' as const, dims: array.shape, data: array.data as Float32Array });

describe('kit parity: each stage fed the kit’s saved inputs (tiny-blipdiffusion)', () => {
  const qformerConfig = readJson(join(model, 'qformer/config.json'));
  const textConfig = readJson(join(model, 'text_encoder/config.json'));
  const { ctxBeginPos } = parseBlipDiffusionIndex(readJson(join(model, 'model_index.json')));
  const numQueryTokens = (qformerConfig as { num_query_tokens: number }).num_query_tokens;

  for (const fused of [true, false]) {
    describe(fused ? 'fused ops' : 'primitive ops', () => {
      it('vision tower → Q-Former → projection: vision_last_hidden_state, qformer_query_output_before_proj, query_embeds', async () => {
        const inputIds = npy('qformer_input_ids.npy');
        const catalog = readSafetensorsCatalog(join(model, 'qformer/model.safetensors'));
        const graph = buildQFormerGraph(qformerConfig, catalog, { textLength: inputIds.shape[1] as number, fused, intermediates: true });
        const outputs = await runGraph(graph, join(model, 'qformer'), {
          pixel_values: float32(npy('ref_pixel_values.npy')),
          input_ids: int64(inputIds),
          attention_mask: int64(npy('qformer_attention_mask.npy')),
        });
        expectParity(outputs, QFORMER_OUTPUTS.visionLastHiddenState, 'vision_last_hidden_state.npy');
        expectParity(outputs, QFORMER_OUTPUTS.queryOutputBeforeProjection, 'qformer_query_output_before_proj.npy');
        expectParity(outputs, QFORMER_OUTPUTS.queryEmbeds, 'query_embeds.npy');
      });

      it('context CLIP text encoder (subject embeddings spliced at ctx_begin_pos): text_encoder_cond_input_embeds, cond_text_embeddings', async () => {
        const catalog = readSafetensorsCatalog(join(model, 'text_encoder/model.safetensors'));
        const graph = buildContextClipTextGraph(textConfig, catalog, { queryTokenCount: numQueryTokens, ctxBeginPos, fused, exposeInputEmbeds: true });
        const outputs = await runGraph(graph, join(model, 'text_encoder'), { input_ids: int64(npy('cond_input_ids.npy')), ctx_embeddings: float32(npy('query_embeds.npy')) });
        expectParity(outputs, CLIP_TEXT_OUTPUTS.inputsEmbeds, 'text_encoder_cond_input_embeds.npy');
        expectParity(outputs, CLIP_TEXT_OUTPUTS.lastHiddenState, 'cond_text_embeddings.npy');
      });

      it('plain CLIP text encoder (negative prompt): uncond_text_embeddings', async () => {
        const catalog = readSafetensorsCatalog(join(model, 'text_encoder/model.safetensors'));
        const graph = buildClipTextGraph(textConfig, catalog, { fused });
        const outputs = await runGraph(graph, join(model, 'text_encoder'), { input_ids: int64(npy('uncond_input_ids.npy')) });
        expectParity(outputs, CLIP_TEXT_OUTPUTS.lastHiddenState, 'uncond_text_embeddings.npy');
      });
    });
  }
});

// ---------------------------------------------------------------------------------------------
// A second configuration, unlike the kit's in every size, with its weights generated here. The key
// list below is written out independently of the net builders (from the PyTorch module structure), so
// "0 missing / 0 unused / 0 mis-shaped" is a real check of what the builders request.
// ---------------------------------------------------------------------------------------------

const SECOND_QFORMER_CONFIG = {
  architectures: ['Blip2QFormerModel'],
  model_type: 'blip-2',
  num_query_tokens: 5,
  vision_config: { hidden_size: 24, intermediate_size: 40, num_hidden_layers: 3, num_attention_heads: 3, image_size: 40, patch_size: 8, hidden_act: 'gelu', layer_norm_eps: 1e-5, qkv_bias: false },
  qformer_config: {
    hidden_size: 16,
    intermediate_size: 24,
    num_hidden_layers: 3,
    num_attention_heads: 2,
    vocab_size: 50,
    max_position_embeddings: 20,
    cross_attention_frequency: 2,
    encoder_hidden_size: 24,
    hidden_act: 'gelu_new',
  },
};
const SECOND_TEXT_CONFIG = {
  architectures: ['ContextCLIPTextModel'],
  hidden_size: 20,
  intermediate_size: 36,
  num_hidden_layers: 2,
  num_attention_heads: 5,
  vocab_size: 60,
  max_position_embeddings: 12,
  hidden_act: 'gelu',
  layer_norm_eps: 1e-5,
};
const SECOND_QUERY_TOKENS = SECOND_QFORMER_CONFIG.num_query_tokens;
const SECOND_TEXT_LENGTH = 4;
const SECOND_CTX_BEGIN = 1;

type KeyShape = [name: string, shape: number[]];

function linearKeys(prefix: string, outFeatures: number, inFeatures: number, bias = true): KeyShape[] {
  return [[`${prefix}.weight`, [outFeatures, inFeatures]], ...(bias ? [[`${prefix}.bias`, [outFeatures]] as KeyShape] : [])];
}
const normKeys = (prefix: string, size: number): KeyShape[] => [
  [`${prefix}.weight`, [size]],
  [`${prefix}.bias`, [size]],
];

function secondQFormerKeys(): KeyShape[] {
  const { vision_config: v, qformer_config: q, num_query_tokens: queries } = SECOND_QFORMER_CONFIG;
  const tokens = (v.image_size / v.patch_size) ** 2 + 1;
  const keys: KeyShape[] = [
    ['query_tokens', [1, queries, q.hidden_size]],
    ['embeddings.position_ids', [1, q.max_position_embeddings]],
    ['embeddings.word_embeddings.weight', [q.vocab_size, q.hidden_size]],
    ['embeddings.position_embeddings.weight', [q.max_position_embeddings, q.hidden_size]],
    ...normKeys('embeddings.LayerNorm', q.hidden_size),
    ['visual_encoder.embeddings.class_embedding', [1, 1, v.hidden_size]],
    ['visual_encoder.embeddings.position_embedding', [1, tokens, v.hidden_size]],
    ['visual_encoder.embeddings.patch_embedding.weight', [v.hidden_size, 3, v.patch_size, v.patch_size]],
    ...normKeys('visual_encoder.pre_layernorm', v.hidden_size),
    ...normKeys('visual_encoder.post_layernorm', v.hidden_size),
    ...linearKeys('proj_layer.dense1', 4 * q.hidden_size, q.hidden_size),
    ...linearKeys('proj_layer.dense2', q.hidden_size, 4 * q.hidden_size),
    ...normKeys('proj_layer.LayerNorm', q.hidden_size),
  ];
  for (let i = 0; i < v.num_hidden_layers; i++) {
    const p = `visual_encoder.encoder.layers.${i}`;
    keys.push(
      ...linearKeys(`${p}.self_attn.qkv`, 3 * v.hidden_size, v.hidden_size, v.qkv_bias),
      ...linearKeys(`${p}.self_attn.projection`, v.hidden_size, v.hidden_size),
      ...normKeys(`${p}.layer_norm1`, v.hidden_size),
      ...linearKeys(`${p}.mlp.fc1`, v.intermediate_size, v.hidden_size),
      ...linearKeys(`${p}.mlp.fc2`, v.hidden_size, v.intermediate_size),
      ...normKeys(`${p}.layer_norm2`, v.hidden_size),
    );
  }
  for (let i = 0; i < q.num_hidden_layers; i++) {
    const p = `encoder.layer.${i}`;
    const attention = (name: string, kvSize: number): KeyShape[] => [
      ...linearKeys(`${p}.${name}.attention.query`, q.hidden_size, q.hidden_size),
      ...linearKeys(`${p}.${name}.attention.key`, q.hidden_size, kvSize),
      ...linearKeys(`${p}.${name}.attention.value`, q.hidden_size, kvSize),
      ...linearKeys(`${p}.${name}.output.dense`, q.hidden_size, q.hidden_size),
      ...normKeys(`${p}.${name}.output.LayerNorm`, q.hidden_size),
    ];
    keys.push(...attention('attention', q.hidden_size));
    if (i % q.cross_attention_frequency === 0) keys.push(...attention('crossattention', q.encoder_hidden_size));
    for (const [intermediate, output] of [
      ['intermediate', 'output'],
      ['intermediate_query', 'output_query'],
    ] as const) {
      keys.push(
        ...linearKeys(`${p}.${intermediate}.dense`, q.intermediate_size, q.hidden_size),
        ...linearKeys(`${p}.${output}.dense`, q.hidden_size, q.intermediate_size),
        ...normKeys(`${p}.${output}.LayerNorm`, q.hidden_size),
      );
    }
  }
  return keys;
}

function secondTextKeys(): KeyShape[] {
  const c = SECOND_TEXT_CONFIG;
  const p = 'text_model';
  const keys: KeyShape[] = [
    [`${p}.embeddings.position_ids`, [1, c.max_position_embeddings]],
    [`${p}.embeddings.token_embedding.weight`, [c.vocab_size, c.hidden_size]],
    [`${p}.embeddings.position_embedding.weight`, [c.max_position_embeddings, c.hidden_size]],
    ...normKeys(`${p}.final_layer_norm`, c.hidden_size),
  ];
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const l = `${p}.encoder.layers.${i}`;
    for (const proj of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) keys.push(...linearKeys(`${l}.self_attn.${proj}`, c.hidden_size, c.hidden_size));
    keys.push(
      ...normKeys(`${l}.layer_norm1`, c.hidden_size),
      ...linearKeys(`${l}.mlp.fc1`, c.intermediate_size, c.hidden_size),
      ...linearKeys(`${l}.mlp.fc2`, c.hidden_size, c.intermediate_size),
      ...normKeys(`${l}.layer_norm2`, c.hidden_size),
    );
  }
  return keys;
}

/** Random weights for a key list; values are multiples of 2⁻¹⁰ so that F16 holds them exactly. */
function fixtureTensors(keys: KeyShape[], seed: number, dtype: 'F32' | 'F16'): FixtureTensor[] {
  const random = seededRandom(seed);
  const halfExact = (v: number) => Math.round(v * 1024) / 1024;
  return keys.map(([name, shape]) => {
    const count = shape.reduce((a, b) => a * b, 1);
    if (name.endsWith('position_ids')) return { name, dtype: 'I64', shape, values: Array.from({ length: count }, (_, i) => i) };
    const isNormWeight = /(LayerNorm|layer_norm\d?|layernorm)\.weight$/.test(name);
    const fanIn = shape.length > 1 ? shape.slice(1).reduce((a, b) => a * b, 1) : 1;
    const scale = isNormWeight ? 0.1 : name.endsWith('.bias') ? 0.05 : shape.length > 1 && !name.includes('embedding') ? 1 / Math.sqrt(fanIn) : 0.5;
    const values = Array.from(randomNormalish(random, count, scale), (v) => halfExact(isNormWeight ? 1 + v : v));
    return { name, dtype, shape, values };
  });
}

describe('a second, generated configuration (different sizes, heads, patch, image, queries, activations)', () => {
  const temp = makeTempDir('blip-nets-');
  const qformerDir = join(temp.path, 'qformer');
  const textDir = join(temp.path, 'text_encoder');
  const textHalfDir = join(temp.path, 'text_encoder_f16');
  const batch = 2;
  const random = seededRandom(7);
  const { vision_config: vision, qformer_config: qformer } = SECOND_QFORMER_CONFIG;
  const pixels = randomNormalish(random, batch * 3 * vision.image_size ** 2, 1);
  const qformerIds = BigInt64Array.from({ length: batch * SECOND_TEXT_LENGTH }, (_, i) => BigInt((i * 7 + 3) % qformer.vocab_size));
  // The second prompt's last token is padding, so the mask takes part.
  const qformerMask = BigInt64Array.from({ length: batch * SECOND_TEXT_LENGTH }, (_, i) => (i === batch * SECOND_TEXT_LENGTH - 1 ? 0n : 1n));
  const textLength = SECOND_TEXT_CONFIG.max_position_embeddings - SECOND_QUERY_TOKENS;
  const textIds = BigInt64Array.from({ length: batch * textLength }, (_, i) => BigInt((i * 11 + 5) % SECOND_TEXT_CONFIG.vocab_size));
  const ctxEmbeddings = randomNormalish(random, batch * SECOND_QUERY_TOKENS * SECOND_TEXT_CONFIG.hidden_size, 1);

  beforeAll(() => {
    for (const dir of [qformerDir, textDir, textHalfDir]) mkdirSync(dir);
    writeSafetensors(join(qformerDir, 'model.safetensors'), fixtureTensors(secondQFormerKeys(), 11, 'F32'));
    writeSafetensors(join(textDir, 'model.safetensors'), fixtureTensors(secondTextKeys(), 12, 'F32'));
    writeSafetensors(join(textHalfDir, 'model.safetensors'), fixtureTensors(secondTextKeys(), 12, 'F16'));
  });
  afterAll(() => temp.remove());

  const qformerGraph = (fused: boolean, batchSize = batch) =>
    buildQFormerGraph(SECOND_QFORMER_CONFIG, readSafetensorsCatalog(join(qformerDir, 'model.safetensors')), { batch: batchSize, textLength: SECOND_TEXT_LENGTH, fused, intermediates: true });
  const qformerFeeds = (rows: number[]): TensorMap => {
    const pixelSize = 3 * vision.image_size ** 2;
    const pick = <T extends Float32Array | BigInt64Array>(data: T, size: number): T => {
      const out = new (data.constructor as new (n: number) => T)(rows.length * size);
      rows.forEach((row, i) => out.set(data.subarray(row * size, (row + 1) * size) as never, i * size));
      return out;
    };
    return {
      pixel_values: { type: 'float32', dims: [rows.length, 3, vision.image_size, vision.image_size], data: pick(pixels, pixelSize) },
      input_ids: { type: 'int64', dims: [rows.length, SECOND_TEXT_LENGTH], data: pick(qformerIds, SECOND_TEXT_LENGTH) },
      attention_mask: { type: 'int64', dims: [rows.length, SECOND_TEXT_LENGTH], data: pick(qformerMask, SECOND_TEXT_LENGTH) },
    };
  };
  const contextFeeds: TensorMap = {
    input_ids: { type: 'int64', dims: [batch, textLength], data: textIds },
    ctx_embeddings: { type: 'float32', dims: [batch, SECOND_QUERY_TOKENS, SECOND_TEXT_CONFIG.hidden_size], data: ctxEmbeddings },
  };

  it('the builders request exactly the tensors of the independently written key lists (0 missing, 0 unused, 0 mis-shaped)', () => {
    const qformerCatalog = readSafetensorsCatalog(join(qformerDir, 'model.safetensors'));
    const implied = impliedParameters((c) => buildQFormerGraph(SECOND_QFORMER_CONFIG, c, { textLength: SECOND_TEXT_LENGTH }));
    expect(checkParameters(implied, catalogListing(qformerCatalog))).toEqual({ missing: [], unused: [], misshaped: [] });
    const textCatalog = readSafetensorsCatalog(join(textDir, 'model.safetensors'));
    for (const build of [
      (c: Parameters<typeof buildClipTextGraph>[1]) => buildClipTextGraph(SECOND_TEXT_CONFIG, c),
      (c: Parameters<typeof buildClipTextGraph>[1]) => buildContextClipTextGraph(SECOND_TEXT_CONFIG, c, { queryTokenCount: SECOND_QUERY_TOKENS, ctxBeginPos: SECOND_CTX_BEGIN }),
    ]) {
      expect(checkParameters(impliedParameters(build), catalogListing(textCatalog))).toEqual({ missing: [], unused: [], misshaped: [] });
    }
  });

  it('declares the shapes the config implies', () => {
    const graph = qformerGraph(true);
    const tokens = (vision.image_size / vision.patch_size) ** 2 + 1;
    expect(graph.inputs).toEqual([
      { name: 'pixel_values', type: 'float32', shape: [batch, 3, vision.image_size, vision.image_size] },
      { name: 'input_ids', type: 'int64', shape: [batch, SECOND_TEXT_LENGTH] },
      { name: 'attention_mask', type: 'int64', shape: [batch, SECOND_TEXT_LENGTH] },
    ]);
    expect(graph.outputs).toEqual([
      { name: 'query_embeds', type: 'float32', shape: [batch, SECOND_QUERY_TOKENS, qformer.hidden_size] },
      { name: 'vision_last_hidden_state', type: 'float32', shape: [batch, tokens, vision.hidden_size] },
      { name: 'qformer_query_output_before_proj', type: 'float32', shape: [batch, SECOND_QUERY_TOKENS, qformer.hidden_size] },
    ]);
    const text = buildContextClipTextGraph(SECOND_TEXT_CONFIG, readSafetensorsCatalog(join(textDir, 'model.safetensors')), { batch, queryTokenCount: SECOND_QUERY_TOKENS, ctxBeginPos: SECOND_CTX_BEGIN });
    expect(text.inputs.map((p) => [p.name, p.shape])).toEqual([
      ['input_ids', [batch, textLength]],
      ['ctx_embeddings', [batch, SECOND_QUERY_TOKENS, SECOND_TEXT_CONFIG.hidden_size]],
    ]);
    expect(text.outputs.map((p) => [p.name, p.shape])).toEqual([['last_hidden_state', [batch, SECOND_TEXT_CONFIG.max_position_embeddings, SECOND_TEXT_CONFIG.hidden_size]]]);
  });

  it('builds byte-identical models with identical cache keys, and the key follows config and options', () => {
    const first = qformerGraph(true);
    const second = qformerGraph(true);
    expect(encodeModel(second.model)).toEqual(encodeModel(first.model));
    expect(second.cacheKey).toBe(first.cacheKey);
    expect(first.cacheKey).toMatch(/^[0-9a-f]{64}$/);
    expect(qformerGraph(false).cacheKey).not.toBe(first.cacheKey);
    expect(qformerGraph(true, 1).cacheKey).not.toBe(first.cacheKey);
  });

  it('runs deterministically, fused and primitive agree, and each batch row equals its own batch-of-one run', async () => {
    const fused = await runGraph(qformerGraph(true), qformerDir, qformerFeeds([0, 1]));
    const again = await runGraph(qformerGraph(true), qformerDir, qformerFeeds([0, 1]));
    const primitive = await runGraph(qformerGraph(false), qformerDir, qformerFeeds([0, 1]));
    for (const name of Object.values(QFORMER_OUTPUTS)) {
      const values = float32Output(fused, name);
      expect(values.every(Number.isFinite), name).toBe(true);
      expect(float32Output(again, name)).toEqual(values);
      expect(maxAbsDiff(float32Output(primitive, name), values), name).toBeLessThanOrEqual(1e-5 * maxAbs(values) + 1e-6);
    }
    for (const row of [0, 1]) {
      const single = await runGraph(qformerGraph(true, 1), qformerDir, qformerFeeds([row]));
      const size = SECOND_QUERY_TOKENS * qformer.hidden_size;
      const fromBatch = float32Output(fused, QFORMER_OUTPUTS.queryEmbeds).subarray(row * size, (row + 1) * size);
      expect(maxAbsDiff(float32Output(single, QFORMER_OUTPUTS.queryEmbeds), fromBatch), `row ${row}`).toBeLessThanOrEqual(1e-5 * maxAbs(fromBatch) + 1e-6);
    }
  });

  it('the padding mask changes the padded prompt’s output (and only through the masked key)', async () => {
    const masked = await runGraph(qformerGraph(true), qformerDir, qformerFeeds([0, 1]));
    const unmaskedFeeds = qformerFeeds([0, 1]);
    unmaskedFeeds.attention_mask = { type: 'int64', dims: [batch, SECOND_TEXT_LENGTH], data: new BigInt64Array(batch * SECOND_TEXT_LENGTH).fill(1n) };
    const unmasked = await runGraph(qformerGraph(true), qformerDir, unmaskedFeeds);
    const size = SECOND_QUERY_TOKENS * qformer.hidden_size;
    const a = float32Output(masked, QFORMER_OUTPUTS.queryEmbeds);
    const b = float32Output(unmasked, QFORMER_OUTPUTS.queryEmbeds);
    expect(a.subarray(0, size)).toEqual(b.subarray(0, size));
    expect(maxAbsDiff(a.subarray(size), b.subarray(size))).toBeGreaterThan(1e-4);
  });

  it('context and plain CLIP: fused and primitive agree; F16 weights (cast in the graph) give the F32 result', async () => {
    const catalog = readSafetensorsCatalog(join(textDir, 'model.safetensors'));
    const halfCatalog = readSafetensorsCatalog(join(textHalfDir, 'model.safetensors'));
    const options = { batch, queryTokenCount: SECOND_QUERY_TOKENS, ctxBeginPos: SECOND_CTX_BEGIN, exposeInputEmbeds: true };
    const fused = await runGraph(buildContextClipTextGraph(SECOND_TEXT_CONFIG, catalog, { ...options, fused: true }), textDir, contextFeeds);
    const primitive = await runGraph(buildContextClipTextGraph(SECOND_TEXT_CONFIG, catalog, { ...options, fused: false }), textDir, contextFeeds);
    const half = await runGraph(buildContextClipTextGraph(SECOND_TEXT_CONFIG, halfCatalog, { ...options, fused: true }), textHalfDir, contextFeeds);
    const last = float32Output(fused, CLIP_TEXT_OUTPUTS.lastHiddenState);
    expect(last.every(Number.isFinite)).toBe(true);
    expect(maxAbsDiff(float32Output(primitive, CLIP_TEXT_OUTPUTS.lastHiddenState), last)).toBeLessThanOrEqual(1e-5 * maxAbs(last) + 1e-6);
    expect(maxAbsDiff(float32Output(half, CLIP_TEXT_OUTPUTS.lastHiddenState), last)).toBeLessThanOrEqual(1e-6);

    // The splice: positions [c, c + Q) of the encoder input hold ctx_embeddings + position embeddings,
    // so subtracting two runs that differ only in ctx_embeddings leaves exactly the difference there.
    const shifted = contextFeeds.ctx_embeddings?.data as Float32Array;
    const moved = await runGraph(buildContextClipTextGraph(SECOND_TEXT_CONFIG, catalog, { ...options, fused: true }), textDir, {
      ...contextFeeds,
      ctx_embeddings: { type: 'float32', dims: [batch, SECOND_QUERY_TOKENS, SECOND_TEXT_CONFIG.hidden_size], data: shifted.map((v) => v + 1) },
    });
    const d = SECOND_TEXT_CONFIG.hidden_size;
    const sequence = SECOND_TEXT_CONFIG.max_position_embeddings;
    const before = float32Output(fused, CLIP_TEXT_OUTPUTS.inputsEmbeds);
    const after = float32Output(moved, CLIP_TEXT_OUTPUTS.inputsEmbeds);
    for (let position = 0; position < sequence; position++) {
      const inside = position >= SECOND_CTX_BEGIN && position < SECOND_CTX_BEGIN + SECOND_QUERY_TOKENS;
      const delta = after[position * d]! - before[position * d]!;
      expect(delta, `position ${position}`).toBeCloseTo(inside ? 1 : 0, 5);
    }
    // Causality: the token before the splice does not see the subject embeddings.
    const lastMoved = float32Output(moved, CLIP_TEXT_OUTPUTS.lastHiddenState);
    expect(lastMoved.subarray(0, SECOND_CTX_BEGIN * d)).toEqual(last.subarray(0, SECOND_CTX_BEGIN * d));

    const plainIds = BigInt64Array.from({ length: sequence }, (_, i) => BigInt((i * 5 + 1) % SECOND_TEXT_CONFIG.vocab_size));
    const plainFeeds: TensorMap = { input_ids: { type: 'int64', dims: [1, sequence], data: plainIds } };
    const plainFused = await runGraph(buildClipTextGraph(SECOND_TEXT_CONFIG, catalog, { fused: true }), textDir, plainFeeds);
    const plainPrimitive = await runGraph(buildClipTextGraph(SECOND_TEXT_CONFIG, catalog, { fused: false }), textDir, plainFeeds);
    const plain = float32Output(plainFused, CLIP_TEXT_OUTPUTS.lastHiddenState);
    expect(plainFused[CLIP_TEXT_OUTPUTS.lastHiddenState]?.dims).toEqual([1, sequence, d]);
    expect(maxAbsDiff(float32Output(plainPrimitive, CLIP_TEXT_OUTPUTS.lastHiddenState), plain)).toBeLessThanOrEqual(1e-5 * maxAbs(plain) + 1e-6);
  });
});
