/**
 * transformers' DepthAnythingForDepthEstimation (Depth Anything V1/V2, 4.57.6) as one graph, for one
 * input size known at build time:
 *
 *  backbone (Dinov2Backbone): patch conv + CLS token + position embeddings interpolated bicubically
 *    to the input's patch grid; pre-LN layers x + γ₁·attn(LN₁(x)), x + γ₂·FFN(LN₂(x)) (layer scale γ,
 *    GELU MLP or SwiGLU); the hidden states at out_indices, each through backbone.layernorm when
 *    apply_layernorm;
 *  neck: reassemble (drop CLS, tokens → [D, h, w], 1×1 projection, ConvTranspose ×f / identity /
 *    strided 3×3 conv), a 3×3 conv to the fusion width, then fusion from the deepest map up (pre-
 *    activation residual units, bilinear align_corners=True upsampling to the next map's size, ×2
 *    after the last, 1×1 projection);
 *  head: 3×3 conv to F/2, bilinear align_corners=True to the patch grid × patch size, 3×3 conv, ReLU,
 *    1×1 conv to one channel, ReLU (relative) or Sigmoid (metric), × max_depth.
 *
 * Every bilinear/bicubic resize is two MatMuls with constant interpolation matrices (resize-matrices.ts),
 * and ReLU is (x + √(x²))/2, exact in IEEE arithmetic: the graph uses only ops the builder (and its
 * autodiff) already has. Weights are bound under the names transformers saves.
 *
 * Shapes: B batch, H×W input (multiples of the patch size P, as the image processor makes them),
 * h×w = (H/P)×(W/P) patch grid, T = h·w + 1 tokens, D hidden, F fusion width.
 */
import type { Value } from '../graph/builder';
import { activation, layerNorm, linear, multiHeadAttention, silu } from '../graph/layers';
import { parseDepthAnythingConfig, downsampleStride, type DepthAnythingConfig, type Dinov2BackboneConfig, type DinoActivation } from './depth-anything-config';
import { buildNetGraph, netCacheKey, resolveKernels, type NetContext, type NetGraph, type NetKernelOptions } from './net-graph';
import { bicubicMatrix, bilinearAlignCornersMatrix, transposeMatrix } from './resize-matrices';
import type { WeightCatalog } from './weight-catalog';

export const DEPTH_ANYTHING_NET = 'depth-anything';
export const DEPTH_ANYTHING_INPUTS = { pixelValues: 'pixel_values' } as const;
export const DEPTH_ANYTHING_OUTPUTS = { predictedDepth: 'predicted_depth' } as const;
/** With `intermediates`: the names of every stage's output (as the reference fixtures name them). */
export const DEPTH_ANYTHING_STAGES = {
  embeddings: 'embeddings',
  featureMap: (i: number) => `feature_map_${i}`,
  reassembled: (i: number) => `reassembled_${i}`,
  neck: (i: number) => `neck_${i}`,
} as const;

const RGB = 3;
/** Bilinear (align_corners=True) upsampling factor after the last fusion layer. */
const LAST_FUSION_UPSAMPLE = 2;
const CONV3 = { strides: [1, 1], pads: [1, 1, 1, 1] } as const;
const CONV1 = { strides: [1, 1] } as const;

export interface DepthAnythingGraphOptions extends NetKernelOptions {
  /** Images per run (default 1). */
  batch?: number;
  /** The pixel_values size the graph is built for (the image processor's output size). */
  height: number;
  width: number;
  /** Also output every stage (embeddings, feature maps, reassembled maps, fusion outputs), for parity checks. */
  intermediates?: boolean;
}

interface ResolvedOptions {
  batch: number;
  height: number;
  width: number;
  fused: boolean;
  attention: 'fused' | 'primitive';
  intermediates: boolean;
}

/** The depth the graph predicts for an input of `height`×`width`: the patch grid times the patch size. */
export function depthOutputSize(config: DepthAnythingConfig, height: number, width: number): { height: number; width: number } {
  const p = config.patchSize;
  return { height: Math.floor(height / p) * p, width: Math.floor(width / p) * p };
}

/**
 * Input: pixel_values [B, 3, H, W] float32 (DPT-preprocessed). Output: predicted_depth [B, h·P, w·P];
 * with `intermediates`, every stage too (DEPTH_ANYTHING_STAGES).
 */
export function buildDepthAnythingGraph(config: unknown, catalog: WeightCatalog, options: DepthAnythingGraphOptions): NetGraph {
  const parsed = parseDepthAnythingConfig(config);
  const resolved = resolveOptions(options, parsed);
  return buildNetGraph({
    net: DEPTH_ANYTHING_NET,
    component: 'depth estimator',
    config,
    options: resolved,
    catalog,
    body: (context) => {
      const { b } = context;
      const pixelValues = b.input(DEPTH_ANYTHING_INPUTS.pixelValues, 'float32', [resolved.batch, RGB, resolved.height, resolved.width]);
      const grid = { height: Math.floor(resolved.height / parsed.patchSize), width: Math.floor(resolved.width / parsed.patchSize) };
      const backbone = b.scope('backbone', () => dinov2Backbone(context, parsed.backbone, pixelValues, grid));
      const neck = b.scope('neck', () => depthNeck(context, parsed, backbone.featureMaps, grid));
      const depth = b.scope('head', () => depthHead(context, parsed, neck.fused, grid));
      const outputs: { name: string; value: Value }[] = [{ name: DEPTH_ANYTHING_OUTPUTS.predictedDepth, value: depth }];
      if (resolved.intermediates) {
        outputs.push({ name: DEPTH_ANYTHING_STAGES.embeddings, value: backbone.embeddings });
        backbone.featureMaps.forEach((value, i) => outputs.push({ name: DEPTH_ANYTHING_STAGES.featureMap(i), value }));
        neck.reassembled.forEach((value, i) => outputs.push({ name: DEPTH_ANYTHING_STAGES.reassembled(i), value }));
        neck.fused.forEach((value, i) => outputs.push({ name: DEPTH_ANYTHING_STAGES.neck(i), value }));
      }
      return outputs;
    },
  });
}

/** The cache key `buildDepthAnythingGraph` would give, without building. */
export function depthAnythingGraphKey(config: unknown, catalog: WeightCatalog, options: DepthAnythingGraphOptions): string {
  return netCacheKey(DEPTH_ANYTHING_NET, config, resolveOptions(options, parseDepthAnythingConfig(config)), catalog);
}

function resolveOptions(options: DepthAnythingGraphOptions, config: DepthAnythingConfig): ResolvedOptions {
  const { height, width } = options;
  const batch = options.batch ?? 1;
  if (!Number.isSafeInteger(batch) || batch < 1) throw new Error(`depth graph: batch must be a positive integer, got ${batch}`);
  for (const [name, size] of [
    ['height', height],
    ['width', width],
  ] as const) {
    if (!Number.isSafeInteger(size) || size < config.patchSize) throw new Error(`depth graph: ${name} must be an integer of at least the patch size (${config.patchSize}), got ${size}`);
  }
  return { batch, height, width, ...resolveKernels(options), intermediates: options.intermediates ?? false };
}

interface Grid {
  height: number;
  width: number;
}

// ------------------------------------------------------------------------------------------------
// Primitives: resizes as MatMuls, ReLU

type ResizeKind = 'bicubic' | 'bilinear-align-corners';
const RESIZE_MATRICES: Readonly<Record<ResizeKind, (inSize: number, outSize: number) => Float64Array>> = { bicubic: bicubicMatrix, 'bilinear-align-corners': bilinearAlignCornersMatrix };
/** One constant per (builder, kind, sizes, side), so a square resize and repeated sizes share their matrices. */
const resizeConstants = new WeakMap<NetContext['b'], Map<string, Value>>();

function resizeConstant(context: NetContext, kind: ResizeKind, inSize: number, outSize: number, transposed: boolean): Value {
  const cache = resizeConstants.get(context.b) ?? new Map<string, Value>();
  resizeConstants.set(context.b, cache);
  const key = `${kind} ${inSize}→${outSize}${transposed ? 'ᵀ' : ''}`;
  let value = cache.get(key);
  if (!value) {
    const matrix = RESIZE_MATRICES[kind](inSize, outSize);
    value = transposed ? context.b.constant(transposeMatrix(matrix, outSize, inSize), [inSize, outSize]) : context.b.constant(matrix, [outSize, inSize]);
    cache.set(key, value);
  }
  return value;
}

/**
 * Resizes the last two axes of x (…, h, w) to (height, width): X·R_wᵀ then R_h·(·). An axis that keeps
 * its size is left alone (both kinds are the identity there).
 */
function resize2d(context: NetContext, x: Value, height: number, width: number, kind: ResizeKind): Value {
  const { b } = context;
  const rank = x.shape.length;
  const [h, w] = [x.shape[rank - 2] as number, x.shape[rank - 1] as number];
  let y = x;
  if (width !== w) y = b.matMul(y, resizeConstant(context, kind, w, width, true));
  if (height !== h) y = b.matMul(resizeConstant(context, kind, h, height, false), y);
  return y;
}

/**
 * max(x, 0) from primitives: √(fl(x²)) is |x| exactly in IEEE arithmetic (while x² neither overflows nor
 * underflows: |x| within about 1e-19…1e19), so (x + √(x²))·½ is x or 0.
 */
function relu(context: NetContext, x: Value): Value {
  const { b } = context;
  return b.mul(b.add(x, b.sqrt(b.mul(x, x))), b.scalar(0.5));
}

function dinoActivation(context: NetContext, x: Value, kind: DinoActivation): Value {
  if (kind === 'relu') return relu(context, x);
  if (kind === 'silu') return silu(context.b, x);
  return activation(context.b, x, kind, context.fused);
}

function conv(context: NetContext, x: Value, name: string, outChannels: number, kernel: number, options: { strides: readonly number[]; pads?: readonly number[] }, bias = true): Value {
  const { b, weights } = context;
  const inChannels = x.shape[1] as number;
  const weight = weights.parameter(`${name}.weight`, [outChannels, inChannels, kernel, kernel]);
  return b.conv(x, weight, bias ? weights.parameter(`${name}.bias`, [outChannels]) : null, options);
}

// ------------------------------------------------------------------------------------------------
// Backbone: Dinov2Backbone

const BACKBONE = 'backbone.';

function dinov2Backbone(context: NetContext, config: Dinov2BackboneConfig, pixelValues: Value, grid: Grid): { embeddings: Value; featureMaps: Value[] } {
  const { b, weights } = context;
  const d = config.hiddenSize;
  const embeddings = b.scope('embeddings', () => dinov2Embeddings(context, config, pixelValues, grid));
  const hidden: Value[] = [embeddings];
  for (let i = 0; i < config.numHiddenLayers; i++) {
    hidden.push(b.scope(`layer${i}`, () => dinov2Layer(context, config, hidden[i] as Value, `${BACKBONE}encoder.layer.${i}.`)));
  }
  // Declared even when apply_layernorm is false: the checkpoint holds them (they are then unused).
  const normScale = weights.parameter(`${BACKBONE}layernorm.weight`, [d]);
  const normBias = weights.parameter(`${BACKBONE}layernorm.bias`, [d]);
  const featureMaps = config.outIndices.map((index) => {
    const state = hidden[index] as Value;
    return config.applyLayernorm ? b.scope(`layernorm${index}`, () => layerNorm(b, state, normScale, normBias, config.layerNormEps, context.fused)) : state;
  });
  return { embeddings, featureMaps };
}

/**
 * CLS + patch tokens + position embeddings. The stored positions cover a g×g grid (g = image_size / P);
 * for another grid the reference interpolates them (bicubic, align_corners=False, no antialias, in
 * float32) to h×w (Dinov2Embeddings.interpolate_pos_encoding; the CLS position is kept as it is).
 * transformers 4.57.6 passes the target size; older versions passed scale_factor = ((h + 0.1)/g,
 * (w + 0.1)/g), whose source coordinates differ slightly: 4.57.6 is the reference here.
 */
function dinov2Embeddings(context: NetContext, config: Dinov2BackboneConfig, pixelValues: Value, grid: Grid): Value {
  const { b, weights } = context;
  const d = config.hiddenSize;
  const p = config.patchSize;
  const batch = pixelValues.shape[0] as number;
  const prefix = `${BACKBONE}embeddings.`;
  const patches = conv(context, pixelValues, `${prefix}patch_embeddings.projection`, d, p, { strides: [p, p] }); // [B, D, h, w]
  const patchTokens = b.transpose(b.reshape(patches, [batch, d, grid.height * grid.width]), [0, 2, 1]); // [B, h·w, D]
  const cls = b.expand(weights.parameter(`${prefix}cls_token`, [1, 1, d]), [batch, 1, d]);
  // Only masked image modelling uses the mask token; declared so that it counts as consumed.
  if (config.useMaskToken) weights.parameter(`${prefix}mask_token`, [1, d]);
  const stored = Math.floor(config.imageSize / p);
  const positions = weights.parameter(`${prefix}position_embeddings`, [1, stored * stored + 1, d]);
  let position = positions;
  if (grid.height !== stored || grid.width !== stored) {
    const clsPosition = b.slice(positions, { starts: [0], ends: [1], axes: [1] });
    const patchPositions = b.transpose(b.reshape(b.slice(positions, { starts: [1], ends: [stored * stored + 1], axes: [1] }), [stored, stored, d]), [2, 0, 1]); // [D, g, g]
    const resized = resize2d(context, patchPositions, grid.height, grid.width, 'bicubic'); // [D, h, w]
    position = b.concat([clsPosition, b.reshape(b.transpose(resized, [1, 2, 0]), [1, grid.height * grid.width, d])], 1);
  }
  return b.add(b.concat([cls, patchTokens], 1), position);
}

/** Dinov2Layer: x + γ₁·attention(norm1(x)), then + γ₂·FFN(norm2(·)). */
function dinov2Layer(context: NetContext, config: Dinov2BackboneConfig, x: Value, prefix: string): Value {
  const { b, weights } = context;
  const d = config.hiddenSize;
  const norm = (h: Value, name: string) => layerNorm(b, h, weights.parameter(`${prefix}${name}.weight`, [d]), weights.parameter(`${prefix}${name}.bias`, [d]), config.layerNormEps, context.fused);
  const projection = (h: Value, name: string, bias: boolean, outFeatures = d) =>
    linear(b, h, weights.parameter(`${name}.weight`, [outFeatures, h.shape[h.shape.length - 1] as number]), bias ? weights.parameter(`${name}.bias`, [outFeatures]) : null);

  const attended = b.scope('attention', () => {
    const h = norm(x, 'norm1');
    const [query, key, value] = ['query', 'key', 'value'].map((part) => projection(h, `${prefix}attention.attention.${part}`, config.qkvBias)) as [Value, Value, Value];
    const heads = multiHeadAttention(b, { query, key, value, numHeads: config.numAttentionHeads, bias: null, fused: context.fusedAttention });
    const out = projection(heads, `${prefix}attention.output.dense`, true);
    return b.mul(out, weights.parameter(`${prefix}layer_scale1.lambda1`, [d]));
  });
  const afterAttention = b.add(attended, x);
  const ffn = b.scope('mlp', () => {
    const h = norm(afterAttention, 'norm2');
    let out: Value;
    if (config.useSwigluFfn) {
      const hidden = config.swigluHiddenSize;
      const both = projection(h, `${prefix}mlp.weights_in`, true, 2 * hidden);
      const half = (index: number) => b.slice(both, { starts: [index * hidden], ends: [(index + 1) * hidden], axes: [-1] });
      out = projection(b.mul(silu(b, half(0)), half(1)), `${prefix}mlp.weights_out`, true);
    } else {
      out = projection(dinoActivation(context, projection(h, `${prefix}mlp.fc1`, true, config.intermediateSize), config.hiddenAct), `${prefix}mlp.fc2`, true);
    }
    return b.mul(out, weights.parameter(`${prefix}layer_scale2.lambda1`, [d]));
  });
  return b.add(ffn, afterAttention);
}

// ------------------------------------------------------------------------------------------------
// Neck: DepthAnythingNeck (reassemble, convs, fusion)

function depthNeck(context: NetContext, config: DepthAnythingConfig, featureMaps: readonly Value[], grid: Grid): { reassembled: Value[]; fused: Value[] } {
  const { b } = context;
  const d = config.reassembleHiddenSize;
  const f = config.fusionHiddenSize;
  const reassembled = featureMaps.map((tokens, i) =>
    b.scope(`reassemble${i}`, () => {
      const batch = tokens.shape[0] as number;
      const prefix = `neck.reassemble_stage.layers.${i}.`;
      const channels = config.neckHiddenSizes[i] as number;
      const factor = config.reassembleFactors[i] as number;
      const patchTokens = b.slice(tokens, { starts: [1], ends: [grid.height * grid.width + 1], axes: [1] });
      const map = b.transpose(b.reshape(patchTokens, [batch, grid.height, grid.width, d]), [0, 3, 1, 2]); // [B, D, h, w]
      const projected = conv(context, map, `${prefix}projection`, channels, 1, CONV1);
      if (factor > 1) {
        const weight = context.weights.parameter(`${prefix}resize.weight`, [channels, channels, factor, factor]);
        return b.convTranspose(projected, weight, context.weights.parameter(`${prefix}resize.bias`, [channels]), { strides: [factor, factor] });
      }
      if (factor === 1) return projected;
      const stride = downsampleStride(factor);
      return conv(context, projected, `${prefix}resize`, channels, 3, { strides: [stride, stride], pads: [1, 1, 1, 1] });
    }),
  );
  const features = reassembled.map((map, i) => b.scope(`conv${i}`, () => conv(context, map, `neck.convs.${i}`, f, 3, CONV3, false)));

  // Fusion from the deepest map up; layer j's output takes the size of the next (shallower) map.
  const reversed = [...features].reverse();
  const fused: Value[] = [];
  reversed.forEach((feature, j) => {
    fused.push(
      b.scope(`fusion${j}`, () => {
        const prefix = `neck.fusion_stage.layers.${j}.`;
        const previous = fused[j - 1];
        // Layer 0 has a residual_layer1 too, which the reference never calls: declared so that it counts as consumed.
        const withResidual = previous === undefined ? (residualUnit(context, feature, `${prefix}residual_layer1.`, false), feature) : b.add(previous, residualUnit(context, feature, `${prefix}residual_layer1.`));
        // The reference resizes the residual when the shapes differ (bilinear, align_corners=False); by
        // construction they never do, since each fusion output takes the next map's size.
        if (previous !== undefined && previous.shape.some((dim, k) => dim !== feature.shape[k])) throw new Error(`depth neck: fusion ${j} shapes differ (${previous.shape.join('×')} vs ${feature.shape.join('×')})`);
        const refined = residualUnit(context, withResidual, `${prefix}residual_layer2.`);
        const next = reversed[j + 1];
        const [height, width] = next ? [next.shape[2] as number, next.shape[3] as number] : [(refined.shape[2] as number) * LAST_FUSION_UPSAMPLE, (refined.shape[3] as number) * LAST_FUSION_UPSAMPLE];
        const upsampled = resize2d(context, refined, height, width, 'bilinear-align-corners');
        return conv(context, upsampled, `${prefix}projection`, f, 1, CONV1);
      }),
    );
  });
  return { reassembled, fused };
}

/**
 * DepthAnythingPreActResidualLayer: x + conv2(ReLU(conv1(ReLU(x)))). With `apply` false only the
 * weights are declared (the value returned is not used).
 */
function residualUnit(context: NetContext, x: Value, prefix: string, apply = true): Value {
  const channels = x.shape[1] as number;
  const first = conv(context, relu(context, x), `${prefix}convolution1`, channels, 3, CONV3);
  const second = conv(context, relu(context, first), `${prefix}convolution2`, channels, 3, CONV3);
  return apply ? context.b.add(second, x) : x;
}

// ------------------------------------------------------------------------------------------------
// Head: DepthAnythingDepthEstimationHead

function depthHead(context: NetContext, config: DepthAnythingConfig, fused: readonly Value[], grid: Grid): Value {
  const { b } = context;
  const f = config.fusionHiddenSize;
  const input = fused[config.headInIndex] as Value;
  const first = conv(context, input, 'head.conv1', Math.floor(f / 2), 3, CONV3);
  const upsampled = resize2d(context, first, grid.height * config.patchSize, grid.width * config.patchSize, 'bilinear-align-corners');
  const second = relu(context, conv(context, upsampled, 'head.conv2', config.headHiddenSize, 3, CONV3));
  const logits = conv(context, second, 'head.conv3', 1, 1, CONV1);
  const activated = config.depthEstimationType === 'relative' ? relu(context, logits) : b.sigmoid(logits);
  const scaled = config.maxDepth === 1 ? activated : b.mul(activated, b.scalar(config.maxDepth));
  return b.squeeze(scaled, [1]); // [B, h·P, w·P]
}
