/**
 * diffusers' Blip2QFormerModel as one graph: the BLIP-2 vision tower, then the Q-Former (BERT-style,
 * post-LN) over [learned queries; text tokens], then the projection layer on the query rows.
 *
 * - Embeddings: LayerNorm(cat(query_tokens, word_emb(ids) + pos_emb(0..L−1))); queries get no position.
 * - Self-attention over queries + text (bidirectional), additive mask (1 − m)·−10000 on text keys.
 * - Cross-attention (layers i with i % cross_attention_frequency == 0): query rows only, against every
 *   vision token (class token included), no mask.
 * - Separate FFNs: query rows use intermediate_query/output_query, text rows intermediate/output.
 * - Output: proj_layer(seq[:, :Q]) = x + dense2(QuickGELU(dense1(LayerNorm_1e-12(x)))).
 *
 * Shapes: B batch, Q query tokens, L text tokens, H hidden, I intermediate, T vision tokens, Dv vision hidden.
 */
import type { Value } from '../graph/builder';
import { activation, layerNorm, linear, multiHeadAttention, type Activation } from '../graph/layers';
import { visionTower, VISION_CHANNELS } from './blip2-vision';
import { parseBlipQFormerModelConfig, type Blip2QFormerConfig } from './configs';
import { buildNetGraph, netCacheKey, type NetContext, type NetGraph, resolveKernels } from './net-graph';
import type { WeightCatalog } from './weight-catalog';
import type { AttentionLowering } from '../providers/provider-types';

export const QFORMER_NET = 'blip2-qformer';
export const QFORMER_INPUTS = { pixelValues: 'pixel_values', inputIds: 'input_ids', attentionMask: 'attention_mask' } as const;
export const QFORMER_OUTPUTS = {
  queryEmbeds: 'query_embeds',
  visionLastHiddenState: 'vision_last_hidden_state',
  queryOutputBeforeProjection: 'qformer_query_output_before_proj',
} as const;

/** diffusers builds ProjLayer(in = out = hidden, hidden_dim = 4 × hidden, eps = 1e-12) with a QuickGELU. */
const PROJECTION_EXPANSION = 4;
const PROJECTION_LAYER_NORM_EPS = 1e-12;
const PROJECTION_ACTIVATION: Activation = 'quick_gelu';
/** BERT's extended attention mask: masked keys get this added to their scores. */
const MASKED_SCORE = -10000;

export interface QFormerGraphOptions {
  /** Images per run (default 1). */
  batch?: number;
  /** BERT tokens of the subject category, [CLS] and [SEP] included: the graph is built for this length. */
  textLength: number;
  /** Fused ORT kernels (default) or the primitive op set. */
  fused?: boolean;
  /** Attention as one fused kernel (the default when fused) or as MatMul + Softmax + MatMul (providers/kernel-routing.ts). */
  attention?: AttentionLowering;
  /** Also output the vision tower's last hidden state and the query rows before the projection (parity checks). */
  intermediates?: boolean;
}

interface ResolvedOptions {
  batch: number;
  textLength: number;
  fused: boolean;
  attention: AttentionLowering;
  intermediates: boolean;
}

/**
 * Inputs: pixel_values [B, 3, S, S] float32, input_ids [B, L] int64, attention_mask [B, L] int64.
 * Outputs: query_embeds [B, Q, H]; with `intermediates`, also vision_last_hidden_state [B, T, Dv] and
 * qformer_query_output_before_proj [B, Q, H].
 */
export function buildQFormerGraph(config: unknown, catalog: WeightCatalog, options: QFormerGraphOptions): NetGraph {
  const parsed = parseBlipQFormerModelConfig(config);
  const resolved = resolveOptions(options, parsed.qformer);
  const { batch, textLength: textTokens } = resolved;
  const { vision, qformer, numQueryTokens: queries } = parsed;
  const hidden = qformer.hiddenSize;

  return buildNetGraph({
    net: QFORMER_NET,
    component: 'qformer',
    config,
    options: resolved,
    catalog,
    body: (context) => {
      const { b, weights } = context;
      const pixelValues = b.input(QFORMER_INPUTS.pixelValues, 'float32', [batch, VISION_CHANNELS, vision.imageSize, vision.imageSize]);
      const inputIds = b.input(QFORMER_INPUTS.inputIds, 'int64', [batch, textTokens]);
      const attentionMask = b.input(QFORMER_INPUTS.attentionMask, 'int64', [batch, textTokens]);

      const image = visionTower(context, vision, pixelValues, 'visual_encoder.');

      let sequence = b.scope('qformer/embeddings', () => {
        // The position ids are recomputed as 0..L−1 (a slice of the table); the stored buffer is not read.
        weights.buffer('embeddings.position_ids', [1, qformer.maxPositionEmbeddings]);
        const queryTokens = b.expand(weights.parameter('query_tokens', [1, queries, hidden]), [batch, queries, hidden]);
        const words = b.gather(weights.parameter('embeddings.word_embeddings.weight', [qformer.vocabSize, hidden]), inputIds);
        const positionTable = weights.parameter('embeddings.position_embeddings.weight', [qformer.maxPositionEmbeddings, hidden]);
        const positions = b.slice(positionTable, { starts: [0], ends: [textTokens], axes: [0] });
        const joined = b.concat([queryTokens, b.add(words, positions)], 1);
        return normalization(context, qformer, joined, 'embeddings.LayerNorm');
      });

      const scoresBias = b.scope('qformer/mask', () => {
        const textBias = b.mul(b.sub(b.scalar(1), b.cast(attentionMask, 'float32')), b.scalar(MASKED_SCORE));
        const queryBias = b.constant(new Float32Array(batch * queries), [batch, queries]);
        return b.reshape(b.concat([queryBias, textBias], 1), [batch, 1, 1, queries + textTokens]);
      });

      for (let i = 0; i < qformer.numHiddenLayers; i++) {
        const current = sequence;
        sequence = b.scope(`qformer/layer${i}`, () => qformerLayer(context, qformer, i, current, image, scoresBias, queries));
      }

      const beforeProjection = b.slice(sequence, { starts: [0], ends: [queries], axes: [1] });
      const queryEmbeds = b.scope('qformer/proj_layer', () => projection(context, hidden, beforeProjection));
      return [
        { name: QFORMER_OUTPUTS.queryEmbeds, value: queryEmbeds },
        ...(resolved.intermediates
          ? [
              { name: QFORMER_OUTPUTS.visionLastHiddenState, value: image },
              { name: QFORMER_OUTPUTS.queryOutputBeforeProjection, value: beforeProjection },
            ]
          : []),
      ];
    },
  });
}

/** The cache key `buildQFormerGraph` would give, without building. */
export function qformerGraphKey(config: unknown, catalog: WeightCatalog, options: QFormerGraphOptions): string {
  return netCacheKey(QFORMER_NET, config, resolveOptions(options, parseBlipQFormerModelConfig(config).qformer), catalog);
}

function resolveOptions(options: QFormerGraphOptions, qformer: Blip2QFormerConfig): ResolvedOptions {
  const batch = options.batch ?? 1;
  if (!Number.isSafeInteger(batch) || batch < 1) throw new Error(`Q-Former graph: batch must be a positive integer (got ${batch})`);
  const { textLength } = options;
  if (!Number.isSafeInteger(textLength) || textLength < 1 || textLength > qformer.maxPositionEmbeddings) {
    throw new Error(`Q-Former graph: textLength must be an integer from 1 to qformer_config.max_position_embeddings (${qformer.maxPositionEmbeddings}), got ${textLength}`);
  }
  return { batch, textLength, ...resolveKernels(options), intermediates: options.intermediates ?? false };
}

function normalization(context: NetContext, config: Blip2QFormerConfig, x: Value, name: string): Value {
  const h = config.hiddenSize;
  return layerNorm(context.b, x, context.weights.parameter(`${name}.weight`, [h]), context.weights.parameter(`${name}.bias`, [h]), config.layerNormEps, context.fused);
}

function qformerLayer(context: NetContext, config: Blip2QFormerConfig, index: number, sequence: Value, image: Value, scoresBias: Value, queries: number): Value {
  const { b } = context;
  const prefix = `encoder.layer.${index}.`;
  const length = sequence.shape[1] as number;
  const attended = b.scope('self_attention', () => attentionBlock(context, config, `${prefix}attention.`, sequence, sequence, scoresBias));

  let queryRows = b.slice(attended, { starts: [0], ends: [queries], axes: [1] });
  if (index % config.crossAttentionFrequency === 0) {
    const rows = queryRows;
    queryRows = b.scope('cross_attention', () => attentionBlock(context, config, `${prefix}crossattention.`, rows, image, null));
  }
  const queryOutput = b.scope('query_ffn', () => feedForward(context, config, `${prefix}intermediate_query`, `${prefix}output_query`, queryRows));
  const textRows = b.slice(attended, { starts: [queries], ends: [length], axes: [1] });
  const textOutput = b.scope('text_ffn', () => feedForward(context, config, `${prefix}intermediate`, `${prefix}output`, textRows));
  return b.concat([queryOutput, textOutput], 1);
}

/** BERT attention + output: LayerNorm(dense(attention(x → keys/values)) + x). */
function attentionBlock(context: NetContext, config: Blip2QFormerConfig, prefix: string, x: Value, keysValues: Value, bias: Value | null): Value {
  const { b, weights } = context;
  const h = config.hiddenSize;
  const kvHidden = keysValues.shape[2] as number;
  const project = (name: string, input: Value, inFeatures: number) =>
    linear(b, input, weights.parameter(`${prefix}attention.${name}.weight`, [h, inFeatures]), weights.parameter(`${prefix}attention.${name}.bias`, [h]));
  const query = project('query', x, h);
  const key = project('key', keysValues, kvHidden);
  const value = project('value', keysValues, kvHidden);
  const heads = multiHeadAttention(b, { query, key, value, numHeads: config.numAttentionHeads, bias, fused: context.fusedAttention });
  const dense = linear(b, heads, weights.parameter(`${prefix}output.dense.weight`, [h, h]), weights.parameter(`${prefix}output.dense.bias`, [h]));
  return normalization(context, config, b.add(dense, x), `${prefix}output.LayerNorm`);
}

/** BERT intermediate + output: LayerNorm(dense(act(dense(x))) + x). */
function feedForward(context: NetContext, config: Blip2QFormerConfig, intermediate: string, output: string, x: Value): Value {
  const { b, weights, fused } = context;
  const { hiddenSize: h, intermediateSize: i } = config;
  const up = activation(b, linear(b, x, weights.parameter(`${intermediate}.dense.weight`, [i, h]), weights.parameter(`${intermediate}.dense.bias`, [i])), config.hiddenAct, fused);
  const down = linear(b, up, weights.parameter(`${output}.dense.weight`, [h, i]), weights.parameter(`${output}.dense.bias`, [h]));
  return normalization(context, config, b.add(down, x), `${output}.LayerNorm`);
}

/** ProjLayer: x + dense2(QuickGELU(dense1(LayerNorm(x)))). */
function projection(context: NetContext, hidden: number, x: Value): Value {
  const { b, weights, fused } = context;
  const inner = hidden * PROJECTION_EXPANSION;
  const normalized = layerNorm(b, x, weights.parameter('proj_layer.LayerNorm.weight', [hidden]), weights.parameter('proj_layer.LayerNorm.bias', [hidden]), PROJECTION_LAYER_NORM_EPS, fused);
  const up = activation(b, linear(b, normalized, weights.parameter('proj_layer.dense1.weight', [inner, hidden]), weights.parameter('proj_layer.dense1.bias', [inner])), PROJECTION_ACTIVATION, fused);
  const down = linear(b, up, weights.parameter('proj_layer.dense2.weight', [hidden, inner]), weights.parameter('proj_layer.dense2.bias', [hidden]));
  return b.add(down, x);
}
