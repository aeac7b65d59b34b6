/**
 * The CLIP text transformer, in the two forms the pipeline uses:
 * - context (diffusers' ContextCLIPTextModel with ctx_embeddings): the prompt's token embeddings with the
 *   Q subject embeddings spliced in at ctx_begin_pos, so (maxPos − Q) token ids + Q embeddings fill all
 *   maxPos positions; position embeddings 0..maxPos−1; one causal mask over every position (the subject
 *   tokens too); no padding mask; final LayerNorm.
 * - plain (ctx_embeddings = None, the negative prompt): maxPos token ids, same transformer.
 * Pre-LN layers: x + out_proj(attention(LN1(x))), then + fc2(act(fc1(LN2(·)))).
 *
 * Shapes: B batch, T token ids, Q subject embeddings, S = T (+ Q) = sequence, D hidden.
 */
import type { Value } from '../graph/builder';
import { activation, layerNorm, linear, multiHeadAttention } from '../graph/layers';
import { parseClipTextConfig, type ClipTextConfig } from './configs';
import { buildNetGraph, netCacheKey, type NetContext, type NetGraph, resolveKernels } from './net-graph';
import type { WeightCatalog } from './weight-catalog';
import type { AttentionLowering } from '../providers/provider-types';

export const CLIP_TEXT_NET = 'clip-text';
export const CONTEXT_CLIP_TEXT_NET = 'context-clip-text';
export const CLIP_TEXT_INPUTS = { inputIds: 'input_ids', ctxEmbeddings: 'ctx_embeddings' } as const;
export const CLIP_TEXT_OUTPUTS = { lastHiddenState: 'last_hidden_state', inputsEmbeds: 'inputs_embeds' } as const;

/** The additive causal mask value: float32's lowest, as the reference fills it (torch.finfo(float32).min). */
const FLOAT32_LOWEST = -3.4028234663852886e38;
const TEXT_MODEL_PREFIX = 'text_model.';

export interface ClipTextGraphOptions {
  /** Prompts per run (default 1). */
  batch?: number;
  /** Fused ORT kernels (default) or the primitive op set. */
  fused?: boolean;
  /** Attention as one fused kernel (the default when fused) or as MatMul + Softmax + MatMul (providers/kernel-routing.ts). */
  attention?: AttentionLowering;
  /** Also output the encoder's input (token + position embeddings) as `inputs_embeds`. */
  exposeInputEmbeds?: boolean;
}

export interface ContextClipTextGraphOptions extends ClipTextGraphOptions {
  /** Subject embeddings spliced into the prompt (the Q-Former's num_query_tokens). */
  queryTokenCount: number;
  /** Where they go: after this many token embeddings (model_index.json ctx_begin_pos). */
  ctxBeginPos: number;
  /** Prompt ids per row (default maxPos − Q, the padded inference prompt; the fine-tune's caption is unpadded, so shorter). */
  textTokens?: number;
}

interface ResolvedOptions {
  batch: number;
  fused: boolean;
  attention: AttentionLowering;
  exposeInputEmbeds: boolean;
}

/**
 * Inputs: input_ids [B, maxPos − Q] int64, ctx_embeddings [B, Q, D] float32.
 * Outputs: last_hidden_state [B, maxPos, D] (after the final LayerNorm); inputs_embeds [B, maxPos, D] when asked.
 */
export function buildContextClipTextGraph(config: unknown, catalog: WeightCatalog, options: ContextClipTextGraphOptions): NetGraph {
  const parsed = parseClipTextConfig(config);
  const resolved = resolveContextOptions(options, parsed);
  const { batch } = resolved;
  const d = parsed.hiddenSize;
  return buildNetGraph({
    net: CONTEXT_CLIP_TEXT_NET,
    component: 'text_encoder',
    config,
    options: resolved,
    catalog,
    body: (context) => {
      const { b } = context;
      const inputIds = b.input(CLIP_TEXT_INPUTS.inputIds, 'int64', [batch, resolved.textTokens]);
      const ctxEmbeddings = b.input(CLIP_TEXT_INPUTS.ctxEmbeddings, 'float32', [batch, resolved.queryTokenCount, d]);
      return textTransformer(context, parsed, resolved, inputIds, spliceAt(context, ctxEmbeddings, resolved.ctxBeginPos));
    },
  });
}

/**
 * The context text encoder inside another graph (the fine-tune's training step): input_ids [B, n] and
 * ctx_embeddings [B, Q, D] → last_hidden_state [B, n + Q, D]. `namePrefix` roots the weight names in a
 * combined catalog (e.g. 'text_encoder.').
 */
export function contextClipTextBody(context: NetContext, config: unknown, inputs: { inputIds: Value; ctxEmbeddings: Value }, ctxBeginPos: number, namePrefix: string): Value {
  const parsed = parseClipTextConfig(config);
  const [batch, textTokens] = inputs.inputIds.shape as [number, number];
  const resolved = resolveContextOptions({ batch, fused: context.fused, queryTokenCount: inputs.ctxEmbeddings.shape[1] as number, ctxBeginPos, textTokens }, parsed);
  const outputs = textTransformer(context, parsed, { ...resolved, attention: context.fusedAttention ? 'fused' : 'primitive' }, inputs.inputIds, spliceAt(context, inputs.ctxEmbeddings, ctxBeginPos), namePrefix);
  return (outputs[0] as { value: Value }).value;
}

/** Token embeddings [B, n, D] → [tokens before ctxBeginPos; the Q subject embeddings; the rest]. */
function spliceAt(context: NetContext, ctxEmbeddings: Value, ctxBeginPos: number): (tokens: Value) => Value {
  const { b } = context;
  return (tokens) => {
    const n = tokens.shape[1] as number;
    const before = b.slice(tokens, { starts: [0], ends: [ctxBeginPos], axes: [1] });
    const after = b.slice(tokens, { starts: [ctxBeginPos], ends: [n], axes: [1] });
    return b.concat([before, ctxEmbeddings, after], 1);
  };
}

/** Inputs: input_ids [B, maxPos] int64. Outputs: last_hidden_state [B, maxPos, D]; inputs_embeds when asked. */
export function buildClipTextGraph(config: unknown, catalog: WeightCatalog, options: ClipTextGraphOptions = {}): NetGraph {
  const parsed = parseClipTextConfig(config);
  const resolved = resolveOptions(options);
  return buildNetGraph({
    net: CLIP_TEXT_NET,
    component: 'text_encoder',
    config,
    options: resolved,
    catalog,
    body: (context) => {
      const inputIds = context.b.input(CLIP_TEXT_INPUTS.inputIds, 'int64', [resolved.batch, parsed.maxPositionEmbeddings]);
      return textTransformer(context, parsed, resolved, inputIds, (tokens) => tokens);
    },
  });
}

export function contextClipTextGraphKey(config: unknown, catalog: WeightCatalog, options: ContextClipTextGraphOptions): string {
  return netCacheKey(CONTEXT_CLIP_TEXT_NET, config, resolveContextOptions(options, parseClipTextConfig(config)), catalog);
}

export function clipTextGraphKey(config: unknown, catalog: WeightCatalog, options: ClipTextGraphOptions = {}): string {
  parseClipTextConfig(config);
  return netCacheKey(CLIP_TEXT_NET, config, resolveOptions(options), catalog);
}

function resolveOptions(options: ClipTextGraphOptions): ResolvedOptions {
  const batch = options.batch ?? 1;
  if (!Number.isSafeInteger(batch) || batch < 1) throw new Error(`CLIP text graph: batch must be a positive integer (got ${batch})`);
  return { batch, ...resolveKernels(options), exposeInputEmbeds: options.exposeInputEmbeds ?? false };
}

function resolveContextOptions(options: ContextClipTextGraphOptions, config: ClipTextConfig): ResolvedOptions & { queryTokenCount: number; ctxBeginPos: number; textTokens: number } {
  const { queryTokenCount, ctxBeginPos } = options;
  const maxPositions = config.maxPositionEmbeddings;
  if (!Number.isSafeInteger(queryTokenCount) || queryTokenCount < 1 || queryTokenCount >= maxPositions) {
    throw new Error(`context CLIP text graph: queryTokenCount must be an integer from 1 to max_position_embeddings − 1 (${maxPositions - 1}), got ${queryTokenCount}`);
  }
  const textTokens = options.textTokens ?? maxPositions - queryTokenCount;
  if (!Number.isSafeInteger(textTokens) || textTokens < 1 || textTokens + queryTokenCount > maxPositions) {
    throw new Error(`context CLIP text graph: textTokens must be an integer from 1 to ${maxPositions - queryTokenCount} (max_position_embeddings − ${queryTokenCount} query tokens), got ${textTokens}`);
  }
  if (!Number.isSafeInteger(ctxBeginPos) || ctxBeginPos < 0 || ctxBeginPos > textTokens) {
    throw new Error(`context CLIP text graph: ctxBeginPos must be an integer from 0 to ${textTokens} (the prompt's token count), got ${ctxBeginPos}`);
  }
  return { ...resolveOptions(options), queryTokenCount, ctxBeginPos, textTokens };
}

/** Embeddings (with `splice` inserting anything between token lookup and positions), layers, final LayerNorm. */
function textTransformer(context: NetContext, config: ClipTextConfig, options: ResolvedOptions, inputIds: Value, splice: (tokens: Value) => Value, namePrefix = ''): { name: string; value: Value }[] {
  const { b, weights } = context;
  const prefix = `${namePrefix}${TEXT_MODEL_PREFIX}`;
  const d = config.hiddenSize;
  const inputsEmbeds = b.scope('embeddings', () => {
    // Position ids are recomputed as 0..S−1 (a slice of the table); the stored buffer is not read.
    weights.buffer(`${prefix}embeddings.position_ids`, [1, config.maxPositionEmbeddings]);
    const tokens = b.gather(weights.parameter(`${prefix}embeddings.token_embedding.weight`, [config.vocabSize, d]), inputIds);
    const sequence = splice(tokens);
    const length = sequence.shape[1] as number;
    const positions = b.slice(weights.parameter(`${prefix}embeddings.position_embedding.weight`, [config.maxPositionEmbeddings, d]), { starts: [0], ends: [length], axes: [0] });
    return b.add(sequence, positions);
  });
  const length = inputsEmbeds.shape[1] as number;
  const causalBias = b.constant(causalMask(length), [1, 1, length, length]);

  let hidden = inputsEmbeds;
  for (let i = 0; i < config.numHiddenLayers; i++) {
    const current = hidden;
    hidden = b.scope(`layer${i}`, () => encoderLayer(context, config, current, causalBias, `${prefix}encoder.layers.${i}.`));
  }
  const last = b.scope('final_layer_norm', () => normalization(context, config, hidden, `${prefix}final_layer_norm`, config.finalLayerNormEps));
  return [
    { name: CLIP_TEXT_OUTPUTS.lastHiddenState, value: last },
    ...(options.exposeInputEmbeds ? [{ name: CLIP_TEXT_OUTPUTS.inputsEmbeds, value: inputsEmbeds }] : []),
  ];
}

/** [S, S] additive mask: 0 where key ≤ query, float32-lowest above the diagonal. */
function causalMask(length: number): Float32Array {
  const mask = new Float32Array(length * length);
  for (let row = 0; row < length; row++) mask.fill(FLOAT32_LOWEST, row * length + row + 1, (row + 1) * length);
  return mask;
}

function normalization(context: NetContext, config: ClipTextConfig, x: Value, name: string, epsilon: number): Value {
  const d = config.hiddenSize;
  return layerNorm(context.b, x, context.weights.parameter(`${name}.weight`, [d]), context.weights.parameter(`${name}.bias`, [d]), epsilon, context.fused);
}

function encoderLayer(context: NetContext, config: ClipTextConfig, x: Value, causalBias: Value, prefix: string): Value {
  const { b, weights, fused } = context;
  const d = config.hiddenSize;
  const attended = b.scope('attention', () => {
    const h = normalization(context, config, x, `${prefix}layer_norm1`, config.layerNormEps);
    const project = (name: string, input: Value) => linear(b, input, weights.parameter(`${prefix}self_attn.${name}.weight`, [d, d]), weights.parameter(`${prefix}self_attn.${name}.bias`, [d]));
    const heads = multiHeadAttention(b, { query: project('q_proj', h), key: project('k_proj', h), value: project('v_proj', h), numHeads: config.numAttentionHeads, bias: causalBias, fused: context.fusedAttention });
    return project('out_proj', heads);
  });
  const afterAttention = b.add(x, attended);
  const mlp = b.scope('mlp', () => {
    const h = normalization(context, config, afterAttention, `${prefix}layer_norm2`, config.layerNormEps);
    const i = config.intermediateSize;
    const up = activation(b, linear(b, h, weights.parameter(`${prefix}mlp.fc1.weight`, [i, d]), weights.parameter(`${prefix}mlp.fc1.bias`, [i])), config.hiddenAct, fused);
    return linear(b, up, weights.parameter(`${prefix}mlp.fc2.weight`, [d, i]), weights.parameter(`${prefix}mlp.fc2.bias`, [d]));
  });
  return b.add(afterAttention, mlp);
}
