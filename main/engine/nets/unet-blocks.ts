/**
 * The building blocks that diffusers 0.25.1's UNet2DConditionModel and ControlNetModel share, each
 * requesting its weights under the module path diffusers gives it:
 * - time embedding: `Timesteps` (sinusoidal, computed in the graph from a float timestep) then
 *   `TimestepEmbedding` (linear_1, SiLU, linear_2);
 * - `ResnetBlock2D` (time_embedding_norm 'default'): GroupNorm, SiLU, conv, + time projection, GroupNorm,
 *   SiLU, conv, + (1×1 shortcut) input, / output_scale_factor;
 * - `Transformer2DModel` (continuous input): GroupNorm (eps 1e-6), proj_in (1×1 conv or Linear),
 *   `BasicTransformerBlock`s (LN → self-attention, LN → cross-attention, LN → GEGLU feed-forward, each
 *   residual), proj_out, + input;
 * - `Downsample2D` (3×3 stride-2 conv) and `Upsample2D` (nearest ×2, or to the skip's size, then 3×3 conv);
 * - `CrossAttnDownBlock2D` / `DownBlock2D`, `UNetMidBlock2DCrossAttn`, `CrossAttnUpBlock2D` / `UpBlock2D`.
 * Fused form: GroupNormalization, LayerNormalization, Gelu, MultiHeadAttention and Resize kernels;
 * primitive form: the same functions from the primitive op set (for the reverse-mode pass).
 *
 * Shapes: B batch, C channels, H×W spatial, S = H·W tokens, L text tokens, D cross-attention width,
 * T timestep rows (1, shared by the batch, or B), E time-embedding width.
 */
import type { Value } from '../graph/builder';
import { activation, groupNorm, layerNorm, linear, multiHeadAttention, silu } from '../graph/layers';
import type { Shape } from '../graph/shapes';
import { TORCH_LAYER_NORM_EPS } from './configs';
import type { NetContext } from './net-graph';
import { loraLinear, type LoraAdapters } from './lora-layers';
import type { AttentionSpec, DownBlockSpec, MidBlockSpec, TimeEmbeddingSpec, UnetTrunkConfig, UpBlockSpec } from './unet-config';

/** Transformer2DModel builds its GroupNorm with eps 1e-6 whatever the UNet's norm_eps. */
const TRANSFORMER_GROUP_NORM_EPS = 1e-6;
/** BasicTransformerBlock's LayerNorms use their default eps (the UNet passes none). */
const TRANSFORMER_LAYER_NORM_EPS = TORCH_LAYER_NORM_EPS;
/** FeedForward(mult=4): the GEGLU inner width is 4 × the transformer width. */
const FEED_FORWARD_MULT = 4;
/** get_timestep_embedding's max_period. */
const TIMESTEP_MAX_PERIOD = 10000;
/** Resnets, the transformers' 3×3 convs and the samplers: kernel 3, padding 1. */
const CONV_KERNEL = 3;
/** Downsample2D / the conditioning embedding's stride-2 convs. */
const DOWNSAMPLE_STRIDE = 2;

/** What a block body needs besides the builder: the trunk's norm settings and the shared conditioning. */
export interface UnetBlockContext extends NetContext {
  trunk: UnetTrunkConfig;
  /** SiLU(time embedding) [T, E]: every ResnetBlock2D applies SiLU to temb first, so it is computed once. */
  timeActivation: Value;
  /** encoder_hidden_states [B, L, D]. */
  context: Value;
  /** LoRA adapters on the attention projections (lora-layers.ts), when the graph applies any. */
  lora?: LoraAdapters;
  /** Records the cross-attention probabilities of chosen layers (attention-probe.ts), when the graph exposes any. */
  probe?: AttentionProbeRecorder;
}

/**
 * Asked by every cross-attention layer (`attn2`, by module path): a layer it wants also computes
 * softmax(QKᵀ/√d) averaged over heads, [B, S, L], beside the (unchanged, possibly fused) attention.
 */
export interface AttentionProbeRecorder {
  wants(name: string): boolean;
  record(name: string, probabilities: Value): void;
}

/** 'a.b' + 'c' → 'a.b.c' (weight keys are dotted module paths; the root prefix may be empty). */
export function childKey(prefix: string, name: string): string {
  return prefix === '' ? name : `${prefix}.${name}`;
}

/** A 2-D convolution with a bias, weights `${name}.weight` [out, in, k, k] and `${name}.bias` [out]. */
export function conv2d(context: NetContext, name: string, x: Value, outChannels: number, kernel: number, options: { stride?: number; pads?: readonly number[] } = {}): Value {
  const { b, weights } = context;
  const inChannels = x.shape[1] as number;
  const weight = weights.parameter(`${name}.weight`, [outChannels, inChannels, kernel, kernel]);
  const bias = weights.parameter(`${name}.bias`, [outChannels]);
  const pad = (kernel - 1) / 2;
  const stride = options.stride ?? 1;
  return b.conv(x, weight, bias, { strides: [stride, stride], pads: options.pads ?? [pad, pad, pad, pad] });
}

/** torch.nn.GroupNorm with affine `${name}.weight` / `${name}.bias`. */
export function groupNorm2d(context: NetContext, name: string, x: Value, groups: number, epsilon: number): Value {
  const { b, weights, fused } = context;
  const channels = x.shape[1] as number;
  return groupNorm(b, x, weights.parameter(`${name}.weight`, [channels]), weights.parameter(`${name}.bias`, [channels]), groups, epsilon, fused);
}

/**
 * Timesteps + TimestepEmbedding: timestep [T] (float, may be fractional) → [T, E].
 * The frequencies are float32 constants computed as torch does (exponent, division and exp in float32).
 */
export function timestepEmbedding(context: NetContext, spec: TimeEmbeddingSpec, timestep: Value, prefix: string): Value {
  const { b, weights } = context;
  const channels = spec.projectionChannels;
  const half = Math.floor(channels / 2);
  const frequencies = new Float32Array(half);
  const logPeriod = Math.fround(-Math.log(TIMESTEP_MAX_PERIOD));
  const divisor = Math.fround(half - spec.freqShift);
  for (let i = 0; i < half; i++) frequencies[i] = Math.exp(Math.fround(Math.fround(logPeriod * i) / divisor));
  const rows = timestep.shape[0] as number;
  const angles = b.mul(b.reshape(timestep, [rows, 1]), b.constant(frequencies, [1, half])); // [T, half]
  const [first, second] = spec.flipSinToCos ? [b.cos(angles), b.sin(angles)] : [b.sin(angles), b.cos(angles)];
  const parts = [first, second];
  // An odd width gets one zero column (get_timestep_embedding's F.pad).
  if (channels % 2 === 1) parts.push(b.constant(new Float32Array(rows), [rows, 1]));
  const sinusoid = b.concat(parts, 1);
  const dense = (name: string, x: Value, outFeatures: number) =>
    linear(b, x, weights.parameter(childKey(prefix, `time_embedding.${name}.weight`), [outFeatures, x.shape[1] as number]), weights.parameter(childKey(prefix, `time_embedding.${name}.bias`), [outFeatures]));
  return dense('linear_2', silu(b, dense('linear_1', sinusoid, spec.embedDim)), spec.embedDim);
}

/** ResnetBlock2D with time_embedding_norm 'default'. */
export function resnetBlock(context: UnetBlockContext, name: string, x: Value, outChannels: number, outputScaleFactor = 1): Value {
  const { b, weights, trunk, timeActivation } = context;
  return b.scope(name, () => {
    const inChannels = x.shape[1] as number;
    const { normNumGroups: groups, normEps: eps } = trunk;
    let h = conv2d(context, `${name}.conv1`, silu(b, groupNorm2d(context, `${name}.norm1`, x, groups, eps)), outChannels, CONV_KERNEL);
    const embedDim = timeActivation.shape[1] as number;
    const time = linear(b, timeActivation, weights.parameter(`${name}.time_emb_proj.weight`, [outChannels, embedDim]), weights.parameter(`${name}.time_emb_proj.bias`, [outChannels]));
    h = b.add(h, b.reshape(time, [timeActivation.shape[0] as number, outChannels, 1, 1]));
    h = conv2d(context, `${name}.conv2`, silu(b, groupNorm2d(context, `${name}.norm2`, h, groups, eps)), outChannels, CONV_KERNEL);
    const shortcut = inChannels === outChannels ? x : conv2d(context, `${name}.conv_shortcut`, x, outChannels, 1);
    const sum = b.add(shortcut, h);
    return outputScaleFactor === 1 ? sum : b.div(sum, b.scalar(outputScaleFactor));
  });
}

/** Transformer2DModel over a feature map, with `depth` BasicTransformerBlocks. */
export function transformer2d(context: UnetBlockContext, name: string, x: Value, attention: AttentionSpec, depth: number): Value {
  const { b, weights, trunk } = context;
  return b.scope(name, () => {
    const [batch, channels, height, width] = x.shape as [number, number, number, number];
    const tokens = height * width;
    // Transformer2DModel(heads, channels // heads): its width is heads × head size.
    const inner = attention.heads * Math.floor(channels / attention.heads);
    const normalized = groupNorm2d(context, `${name}.norm`, x, trunk.normNumGroups, TRANSFORMER_GROUP_NORM_EPS);
    const toTokens = (map: Value, size: number) => b.reshape(b.transpose(map, [0, 2, 3, 1]), [batch, tokens, size]);
    const toMap = (sequence: Value, size: number) => b.transpose(b.reshape(sequence, [batch, height, width, size]), [0, 3, 1, 2]);
    const projection = (projName: string, input: Value, outFeatures: number) => {
      const inFeatures = input.shape[trunk.useLinearProjection ? 2 : 1] as number;
      const weightShape: Shape = trunk.useLinearProjection ? [outFeatures, inFeatures] : [outFeatures, inFeatures, 1, 1];
      const weight = weights.parameter(`${name}.${projName}.weight`, weightShape);
      const bias = weights.parameter(`${name}.${projName}.bias`, [outFeatures]);
      return trunk.useLinearProjection ? linear(b, input, weight, bias) : b.conv(input, weight, bias, { strides: [1, 1] });
    };

    let hidden = trunk.useLinearProjection ? projection('proj_in', toTokens(normalized, channels), inner) : toTokens(projection('proj_in', normalized, inner), inner);
    for (let i = 0; i < depth; i++) {
      const input = hidden;
      hidden = b.scope(`block${i}`, () => basicTransformerBlock(context, `${name}.transformer_blocks.${i}`, input, attention));
    }
    const output = trunk.useLinearProjection ? toMap(projection('proj_out', hidden, channels), channels) : projection('proj_out', toMap(hidden, inner), channels);
    return b.add(output, x);
  });
}

/** BasicTransformerBlock (layer_norm, GEGLU): self-attention (or cross with only_cross_attention), cross-attention, feed-forward. */
function basicTransformerBlock(context: UnetBlockContext, name: string, x: Value, attention: AttentionSpec): Value {
  const { b, context: encoderStates } = context;
  const norm = (normName: string, input: Value) => layerNormalization(context, `${name}.${normName}`, input);
  let hidden = x;
  const selfNormalized = norm('norm1', hidden);
  hidden = b.add(attentionLayer(context, `${name}.attn1`, selfNormalized, attention.onlyCrossAttention ? encoderStates : selfNormalized, attention.heads), hidden);
  hidden = b.add(attentionLayer(context, `${name}.attn2`, norm('norm2', hidden), encoderStates, attention.heads, true), hidden);
  return b.add(feedForward(context, `${name}.ff`, norm('norm3', hidden)), hidden);
}

function layerNormalization(context: NetContext, name: string, x: Value): Value {
  const { b, weights, fused } = context;
  const width = x.shape[x.shape.length - 1] as number;
  return layerNorm(b, x, weights.parameter(`${name}.weight`, [width]), weights.parameter(`${name}.bias`, [width]), TRANSFORMER_LAYER_NORM_EPS, fused);
}

/** diffusers' Attention (no q/k/v bias, to_out.0 with bias), scale 1/√(head size). */
function attentionLayer(context: UnetBlockContext, name: string, x: Value, keysValues: Value, heads: number, cross = false): Value {
  const { b, weights, lora, probe } = context;
  const width = x.shape[2] as number;
  const keyWidth = keysValues.shape[2] as number;
  const adapted = (projName: string, input: Value, weight: Value, bias: Value | null) => loraLinear(b, input, weight, bias, `${name}.${projName}`, lora);
  const project = (projName: string, input: Value, inFeatures: number) => adapted(projName, input, weights.parameter(`${name}.${projName}.weight`, [width, inFeatures]), null);
  const query = project('to_q', x, width);
  const keys = project('to_k', keysValues, keyWidth);
  const values = project('to_v', keysValues, keyWidth);
  if (cross && probe?.wants(name)) probe.record(name, b.scope(`${name}.probe`, () => headMeanProbabilities(context, query, keys, heads)));
  const attended = multiHeadAttention(b, { query, key: keys, value: values, numHeads: heads, bias: null, fused: context.fusedAttention });
  return adapted('to_out.0', attended, weights.parameter(`${name}.to_out.0.weight`, [width, width]), weights.parameter(`${name}.to_out.0.bias`, [width]));
}

/** softmax(QKᵀ/√d) per head, averaged over heads: query [B, S, W], keys [B, L, W] → [B, S, L] (what diffusers' get_attention_scores gives, per head). */
function headMeanProbabilities(context: NetContext, query: Value, keys: Value, heads: number): Value {
  const { b } = context;
  const [batch, queries, width] = query.shape as [number, number, number];
  const length = keys.shape[1] as number;
  const size = width / heads;
  const q = b.transpose(b.reshape(query, [batch, queries, heads, size]), [0, 2, 1, 3]); // [B, H, S, d]
  const kT = b.transpose(b.reshape(keys, [batch, length, heads, size]), [0, 2, 3, 1]); // [B, H, d, L]
  const probabilities = b.softmax(b.mul(b.matMul(q, kT), b.scalar(1 / Math.sqrt(size))), -1);
  return b.reduceMean(probabilities, [1], false);
}

/** FeedForward with GEGLU: proj → (hidden, gate) halves → hidden · GELU(gate) → net.2. */
function feedForward(context: NetContext, name: string, x: Value): Value {
  const { b, weights, fused } = context;
  const width = x.shape[2] as number;
  const inner = width * FEED_FORWARD_MULT;
  const projected = linear(b, x, weights.parameter(`${name}.net.0.proj.weight`, [2 * inner, width]), weights.parameter(`${name}.net.0.proj.bias`, [2 * inner]));
  const hidden = b.slice(projected, { starts: [0], ends: [inner], axes: [-1] });
  const gate = b.slice(projected, { starts: [inner], ends: [2 * inner], axes: [-1] });
  const gated = b.mul(hidden, activation(b, gate, 'gelu', fused));
  return linear(b, gated, weights.parameter(`${name}.net.2.weight`, [width, inner]), weights.parameter(`${name}.net.2.bias`, [width]));
}

/** Downsample2D(use_conv): a 3×3 stride-2 conv; padding 0 means diffusers' F.pad (0, 1, 0, 1) then no padding. */
export function downsample(context: UnetBlockContext, name: string, x: Value): Value {
  const p = context.trunk.downsamplePadding;
  const pads = p === 0 ? [0, 0, 1, 1] : [p, p, p, p];
  return conv2d(context, `${name}.conv`, x, x.shape[1] as number, CONV_KERNEL, { stride: DOWNSAMPLE_STRIDE, pads });
}

/** Upsample2D(use_conv): nearest-neighbour to `size` ([H, W]; ×2 unless the skip is odd-sized), then a 3×3 conv. */
export function upsample(context: UnetBlockContext, name: string, x: Value, size: readonly [number, number]): Value {
  return conv2d(context, `${name}.conv`, nearestResize(context, x, size), x.shape[1] as number, CONV_KERNEL);
}

/**
 * PyTorch's `interpolate(mode='nearest')` of [B, C, H, W] to [B, C, h, w] (output index i reads
 * floor(i·H/h)): a Resize kernel when fused; otherwise Expand for whole factors (its reverse is a
 * ReduceSum) or a Gather of the source rows and columns.
 */
export function nearestResize(context: NetContext, x: Value, size: readonly [number, number]): Value {
  const { b, fused } = context;
  const [batch, channels, height, width] = x.shape as [number, number, number, number];
  const [outHeight, outWidth] = size;
  if (fused) return b.resizeNearest(x, [batch, channels, outHeight, outWidth]);
  const fy = outHeight / height;
  const fx = outWidth / width;
  if (Number.isInteger(fy) && Number.isInteger(fx)) {
    const spread = b.expand(b.reshape(x, [batch, channels, height, 1, width, 1]), [batch, channels, height, fy, width, fx]);
    return b.reshape(spread, [batch, channels, outHeight, outWidth]);
  }
  const sourceIndices = (out: number, input: number) =>
    b.constant(
      Array.from({ length: out }, (_, i) => Math.floor((i * input) / out)),
      [out],
      'int64',
    );
  return b.gather(b.gather(x, sourceIndices(outHeight, height), 2), sourceIndices(outWidth, width), 3);
}

/** The output of a down block and the skips it leaves for the up path (one per layer, plus the downsampler's). */
export interface DownBlockResult {
  output: Value;
  skips: Value[];
}

/** CrossAttnDownBlock2D / DownBlock2D. */
export function downBlock(context: UnetBlockContext, name: string, spec: DownBlockSpec, x: Value): DownBlockResult {
  const skips: Value[] = [];
  let hidden = x;
  for (let j = 0; j < spec.layers; j++) {
    hidden = resnetBlock(context, `${name}.resnets.${j}`, hidden, spec.outChannels);
    if (spec.attention) hidden = transformer2d(context, `${name}.attentions.${j}`, hidden, spec.attention, spec.attention.transformerLayers[j] as number);
    skips.push(hidden);
  }
  if (spec.addDownsample) {
    hidden = downsample(context, `${name}.downsamplers.0`, hidden);
    skips.push(hidden);
  }
  return { output: hidden, skips };
}

/** UNetMidBlock2DCrossAttn: resnet, then (transformer, resnet) per layer. */
export function midBlock(context: UnetBlockContext, name: string, spec: MidBlockSpec, x: Value): Value {
  let hidden = resnetBlock(context, `${name}.resnets.0`, x, spec.channels, spec.outputScaleFactor);
  spec.attention.transformerLayers.forEach((depth, j) => {
    hidden = transformer2d(context, `${name}.attentions.${j}`, hidden, spec.attention, depth);
    hidden = resnetBlock(context, `${name}.resnets.${j + 1}`, hidden, spec.channels, spec.outputScaleFactor);
  });
  return hidden;
}

/**
 * CrossAttnUpBlock2D / UpBlock2D: each layer concatenates the latest skip (taken from the end of
 * `skips`, which this consumes) to the channels; the upsampler targets the next skip's size.
 */
export function upBlock(context: UnetBlockContext, name: string, spec: UpBlockSpec, x: Value, skips: Value[]): Value {
  const { b } = context;
  let hidden = x;
  for (let j = 0; j < spec.layers; j++) {
    const skip = skips.pop();
    if (!skip) throw new Error(`${name}: no skip connection left for layer ${j}`);
    hidden = resnetBlock(context, `${name}.resnets.${j}`, b.concat([hidden, skip], 1), spec.outChannels);
    if (spec.attention) hidden = transformer2d(context, `${name}.attentions.${j}`, hidden, spec.attention, spec.attention.transformerLayers[j] as number);
  }
  if (spec.addUpsample) {
    const next = skips.at(-1);
    if (!next) throw new Error(`${name}: no skip connection left to size the upsampler`);
    hidden = upsample(context, `${name}.upsamplers.0`, hidden, [next.shape[2] as number, next.shape[3] as number]);
  }
  return hidden;
}

/** conv_in output → every down block: the lowest-resolution features and all skips (conv_in's first). */
export function downPath(context: UnetBlockContext, prefix: string, convIn: Value): DownBlockResult {
  const skips: Value[] = [convIn];
  let hidden = convIn;
  context.trunk.down.forEach((spec, i) => {
    const result = downBlock(context, childKey(prefix, `down_blocks.${i}`), spec, hidden);
    hidden = result.output;
    skips.push(...result.skips);
  });
  return { output: hidden, skips };
}

/** The trunk's conditioning: float timestep [T] → SiLU(TimestepEmbedding) [T, E], shared by every resnet. */
export function timeConditioning(context: NetContext, trunk: UnetTrunkConfig, timestep: Value, prefix: string): Value {
  return context.b.scope('time_embedding', () => silu(context.b, timestepEmbedding(context, trunk.time, timestep, prefix)));
}

/** Latent size → the spatial sizes of every skip (what the residual inputs / ControlNet outputs must be). */
export function skipShapes(trunk: UnetTrunkConfig, batch: number, height: number, width: number): Shape[] {
  const shapes: Shape[] = [[batch, trunk.blockOutChannels[0] as number, height, width]];
  let [h, w] = [height, width];
  for (const spec of trunk.down) {
    for (let j = 0; j < spec.layers; j++) shapes.push([batch, spec.outChannels, h, w]);
    if (spec.addDownsample) {
      [h, w] = [downsampledSize(h, trunk.downsamplePadding), downsampledSize(w, trunk.downsamplePadding)];
      shapes.push([batch, spec.outChannels, h, w]);
    }
  }
  return shapes;
}

/** The lowest-resolution (mid block) feature shape. */
export function midShape(trunk: UnetTrunkConfig, batch: number, height: number, width: number): Shape {
  const last = skipShapes(trunk, batch, height, width).at(-1) as Shape;
  return [batch, trunk.blockOutChannels.at(-1) as number, last[2] as number, last[3] as number];
}

function downsampledSize(size: number, padding: number): number {
  // Conv k3 s2 with padding p, or with diffusers' (0, 1) pad when p is 0.
  const padded = padding === 0 ? size + 1 : size + 2 * padding;
  return Math.floor((padded - CONV_KERNEL) / DOWNSAMPLE_STRIDE) + 1;
}
