/**
 * The BLIP-2 vision tower (diffusers' Blip2VisionModel, a CLIP-style ViT): patch conv without bias,
 * class token + learned position embedding, pre-LayerNorm, pre-LN encoder layers with a fused
 * `qkv` Linear laid out [q; k; v], and a post-LayerNorm over every token.
 *
 * Shapes: B batch, S image size, P patch size, N = (S/P)² patches, T = N + 1 tokens, D hidden.
 */
import type { Value } from '../graph/builder';
import { activation, layerNorm, linear, multiHeadAttention } from '../graph/layers';
import type { Blip2VisionConfig } from './configs';
import type { NetContext } from './net-graph';

/** The tower reads RGB images (the patch conv has 3 input channels in the reference). */
export const VISION_CHANNELS = 3;

export function visionTokenCount(config: Blip2VisionConfig): number {
  return Math.floor(config.imageSize / config.patchSize) ** 2 + 1;
}

/** pixel_values [B, 3, S, S] → last_hidden_state [B, T, D] (after post_layernorm). `prefix` is the weights' key prefix. */
export function visionTower(context: NetContext, config: Blip2VisionConfig, pixelValues: Value, prefix: string): Value {
  const { b, weights } = context;
  const d = config.hiddenSize;
  const batch = pixelValues.shape[0] as number;
  const tokens = visionTokenCount(config);

  const embeddings = b.scope('vision/embeddings', () => {
    const patchWeight = weights.parameter(`${prefix}embeddings.patch_embedding.weight`, [d, VISION_CHANNELS, config.patchSize, config.patchSize]);
    const patches = b.conv(pixelValues, patchWeight, null, { strides: [config.patchSize, config.patchSize] }); // [B, D, S/P, S/P]
    const patchTokens = b.transpose(b.reshape(patches, [batch, d, tokens - 1]), [0, 2, 1]); // [B, N, D]
    const classToken = b.expand(weights.parameter(`${prefix}embeddings.class_embedding`, [1, 1, d]), [batch, 1, d]);
    const position = weights.parameter(`${prefix}embeddings.position_embedding`, [1, tokens, d]);
    return b.add(b.concat([classToken, patchTokens], 1), position);
  });

  let hidden = b.scope('vision/pre_layernorm', () => normalization(context, config, embeddings, `${prefix}pre_layernorm`));
  for (let i = 0; i < config.numHiddenLayers; i++) {
    hidden = b.scope(`vision/layer${i}`, () => encoderLayer(context, config, hidden, `${prefix}encoder.layers.${i}.`));
  }
  return b.scope('vision/post_layernorm', () => normalization(context, config, hidden, `${prefix}post_layernorm`));
}

function normalization(context: NetContext, config: Blip2VisionConfig, x: Value, name: string): Value {
  const d = config.hiddenSize;
  return layerNorm(context.b, x, context.weights.parameter(`${name}.weight`, [d]), context.weights.parameter(`${name}.bias`, [d]), config.layerNormEps, context.fused);
}

/** x + attention(LN1(x)), then + MLP(LN2(·)). */
function encoderLayer(context: NetContext, config: Blip2VisionConfig, x: Value, prefix: string): Value {
  const { b, weights, fused } = context;
  const d = config.hiddenSize;
  const attended = b.scope('attention', () => {
    const h = normalization(context, config, x, `${prefix}layer_norm1`);
    const qkvBias = config.qkvBias ? weights.parameter(`${prefix}self_attn.qkv.bias`, [3 * d]) : null;
    const qkv = linear(b, h, weights.parameter(`${prefix}self_attn.qkv.weight`, [3 * d, d]), qkvBias); // [B, T, 3D]
    const part = (index: number) => b.slice(qkv, { starts: [index * d], ends: [(index + 1) * d], axes: [-1] });
    const heads = multiHeadAttention(b, { query: part(0), key: part(1), value: part(2), numHeads: config.numAttentionHeads, bias: null, fused: context.fusedAttention });
    return linear(b, heads, weights.parameter(`${prefix}self_attn.projection.weight`, [d, d]), weights.parameter(`${prefix}self_attn.projection.bias`, [d]));
  });
  const afterAttention = b.add(x, attended);
  const mlp = b.scope('mlp', () => {
    const h = normalization(context, config, afterAttention, `${prefix}layer_norm2`);
    const up = linear(b, h, weights.parameter(`${prefix}mlp.fc1.weight`, [config.intermediateSize, d]), weights.parameter(`${prefix}mlp.fc1.bias`, [config.intermediateSize]));
    const act = activation(b, up, config.hiddenAct, fused);
    return linear(b, act, weights.parameter(`${prefix}mlp.fc2.weight`, [d, config.intermediateSize]), weights.parameter(`${prefix}mlp.fc2.bias`, [d]));
  });
  return b.add(afterAttention, mlp);
}
