/**
 * Transformer building blocks on top of the builder, each in two forms: fused (one ORT kernel:
 * LayerNormalization, Gelu, com.microsoft QuickGelu / MultiHeadAttention) for inference, and primitive
 * (MatMul, Softmax, ReduceMean, Erf, Sigmoid…) for graphs that the reverse-mode pass differentiates.
 * Both compute the same function; tests check that they agree numerically.
 */
import type { GraphBuilder, Value } from './builder';
import { formatShape } from './shapes';

/** The activations that the supported configs name (`hidden_act`), as transformers' ACT2FN defines them. */
export type Activation = 'gelu' | 'gelu_tanh' | 'quick_gelu';

/** QuickGELU (OpenAI CLIP): x·σ(1.702·x). */
export const QUICK_GELU_ALPHA = 1.702;
/** The tanh approximation of GELU: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))). */
const GELU_TANH_CUBIC = 0.044715;

/** x·Wᵀ + b with W in PyTorch's [out, in] layout (so the weight file is used as it is, via Gemm's transB). */
export function linear(b: GraphBuilder, x: Value, weight: Value, bias: Value | null): Value {
  const inFeatures = x.shape[x.shape.length - 1] as number;
  const outFeatures = weight.shape[0] as number;
  const rows = x.shape.slice(0, -1);
  const flat = x.shape.length === 2 ? x : b.reshape(x, [-1, inFeatures]);
  const y = b.gemm(flat, weight, bias, { transB: true });
  return x.shape.length === 2 ? y : b.reshape(y, [...rows, outFeatures]);
}

/** LayerNorm over the last axis (biased variance, as PyTorch). */
export function layerNorm(b: GraphBuilder, x: Value, scale: Value, bias: Value, epsilon: number, fused: boolean): Value {
  if (fused) return b.layerNormalization(x, scale, bias, { axis: -1, epsilon });
  const mean = b.reduceMean(x, [-1]);
  const centred = b.sub(x, mean);
  const variance = b.reduceMean(b.pow(centred, b.scalar(2)), [-1]);
  const inverseStd = b.reciprocal(b.sqrt(b.add(variance, b.scalar(epsilon))));
  return b.add(b.mul(b.mul(centred, inverseStd), scale), bias);
}

/**
 * GroupNorm over (N, C, spatial…) with per-channel affine [C], as torch.nn.GroupNorm (biased variance):
 * one GroupNormalization-21 kernel when fused, otherwise Reshape to [N, G, rest] + ReduceMean statistics.
 */
export function groupNorm(b: GraphBuilder, x: Value, scale: Value, bias: Value, numGroups: number, epsilon: number, fused: boolean): Value {
  if (fused) return b.groupNormalization(x, scale, bias, { numGroups, epsilon });
  const [batch, channels] = x.shape as [number, number];
  const spatialRank = x.shape.length - 2;
  const grouped = b.reshape(x, [batch, numGroups, -1]);
  const centred = b.sub(grouped, b.reduceMean(grouped, [-1]));
  const variance = b.reduceMean(b.mul(centred, centred), [-1]);
  const normalized = b.reshape(b.mul(centred, b.reciprocal(b.sqrt(b.add(variance, b.scalar(epsilon))))), x.shape);
  const perChannel = (p: Value) => b.reshape(p, [channels, ...Array.from({ length: spatialRank }, () => 1)]);
  return b.add(b.mul(normalized, perChannel(scale)), perChannel(bias));
}

/** SiLU (swish), x·σ(x): diffusers' `act_fn: silu`; ONNX has no single CPU kernel for it before opset 24. */
export function silu(b: GraphBuilder, x: Value): Value {
  return b.mul(x, b.sigmoid(x));
}

export function activation(b: GraphBuilder, x: Value, kind: Activation, fused: boolean): Value {
  switch (kind) {
    case 'gelu':
      if (fused) return b.gelu(x, 'none');
      // 0.5·x·(1 + erf(x/√2))
      return b.mul(b.mul(x, b.scalar(0.5)), b.add(b.scalar(1), b.erf(b.mul(x, b.scalar(Math.SQRT1_2)))));
    case 'gelu_tanh': {
      if (fused) return b.gelu(x, 'tanh');
      const cubic = b.mul(b.pow(x, b.scalar(3)), b.scalar(GELU_TANH_CUBIC));
      const inner = b.mul(b.add(x, cubic), b.scalar(Math.sqrt(2 / Math.PI)));
      return b.mul(b.mul(x, b.scalar(0.5)), b.add(b.scalar(1), b.tanh(inner)));
    }
    case 'quick_gelu':
      if (fused) return b.quickGelu(x, QUICK_GELU_ALPHA);
      return b.mul(x, b.sigmoid(b.mul(x, b.scalar(QUICK_GELU_ALPHA))));
  }
}

export interface AttentionInputs {
  /** [batch, queries, hidden] */
  query: Value;
  /** [batch, keys, hidden] */
  key: Value;
  /** [batch, keys, hidden_v] */
  value: Value;
  numHeads: number;
  /** Additive scores bias, rank 4, broadcastable to [batch, heads, queries, keys] (masks); null for none. */
  bias: Value | null;
  fused: boolean;
}

/** Scaled dot-product multi-head attention, softmax(q·kᵀ/√d_head + bias)·v, heads merged back: [batch, queries, hidden_v]. */
export function multiHeadAttention(b: GraphBuilder, inputs: AttentionInputs): Value {
  const { query, key, value, numHeads, bias, fused } = inputs;
  const [batch, queries, hidden] = query.shape as [number, number, number];
  const keys = key.shape[1] as number;
  const valueHidden = value.shape[2] as number;
  const headSize = hidden / numHeads;
  const scale = 1 / Math.sqrt(headSize);
  if (bias !== null && bias.shape.length !== 4) throw new Error(`attention bias ${bias.name} ${formatShape(bias.shape)} must have rank 4 [batch|1, heads|1, queries|1, keys|1]`);

  if (fused) {
    // The contrib op wants the bias as [batch|1, heads|1, queries, keys] exactly.
    const fullBias = bias === null || (bias.shape[2] === queries && bias.shape[3] === keys) ? bias : b.expand(bias, [bias.shape[0] as number, bias.shape[1] as number, queries, keys]);
    return b.multiHeadAttention(query, key, value, fullBias, { numHeads, scale });
  }

  const heads = (x: Value, length: number, size: number, perm: number[]) => b.transpose(b.reshape(x, [batch, length, numHeads, size / numHeads]), perm);
  const q = heads(query, queries, hidden, [0, 2, 1, 3]); // [B, H, S, d]
  const kT = heads(key, keys, hidden, [0, 2, 3, 1]); // [B, H, d, L]
  const v = heads(value, keys, valueHidden, [0, 2, 1, 3]); // [B, H, L, dv]
  const scores = b.mul(b.matMul(q, kT), b.scalar(scale));
  const probabilities = b.softmax(bias === null ? scores : b.add(scores, bias), -1);
  const context = b.transpose(b.matMul(probabilities, v), [0, 2, 1, 3]); // [B, S, H, dv]
  return b.reshape(context, [batch, queries, valueHidden]);
}
