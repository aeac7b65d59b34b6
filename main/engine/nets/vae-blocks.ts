/**
 * The blocks of diffusers' AutoencoderKL Encoder and Decoder (diffusers 0.25.1, models/resnet.py,
 * downsampling.py, upsampling.py, unet_2d_blocks.py, attention_processor.py), without time embedding:
 * ResnetBlock2D, Downsample2D (conv, stride 2), Upsample2D (nearest ×2 + conv), UNetMidBlock2D with its
 * single-head spatial self-attention, and the clamps of the posterior and the image.
 *
 * Shapes: B batch, C channels, H×W spatial, N = H·W positions.
 */
import type { GraphBuilder, Value } from '../graph/builder';
import { activation, groupNorm, linear, multiHeadAttention, silu } from '../graph/layers';
import type { NetContext } from './net-graph';
import type { AutoencoderKLConfig } from './vae-config';

/** Encoder and Decoder build every resnet, mid-block attention and output norm with eps 1e-6. */
export const VAE_NORM_EPS = 1e-6;
/** The Encoder/Decoder convs: 3×3, stride 1, padding 1 (conv_in, conv_out, resnet conv1/conv2, Upsample2D). */
const CONV_KERNEL = 3;
const SAME_PADDING = 1;
/**
 * Downsample2D with padding=0 (what Encoder passes): F.pad(x, (0, 1, 0, 1)), one zero column on the
 * right and one row at the bottom, then a 3×3 conv with stride 2. As ONNX Conv pads [top, left, bottom, right]:
 */
const DOWNSAMPLE_PADS = [0, 0, 1, 1];
const DOWNSAMPLE_STRIDE = 2;
/** Upsample2D: F.interpolate(scale_factor=2.0, mode="nearest"). */
const UPSAMPLE_FACTOR = 2;
/**
 * UNetMidBlock2D is built with attention_head_dim = channels, so its Attention has channels / channels
 * = 1 head of the full width; output_scale_factor (= rescale_output_factor) is 1 in Encoder and Decoder.
 */
const MID_BLOCK_ATTENTION_HEADS = 1;
/** UNetMidBlock2D's default num_layers: resnet, then (attention, resnet) once. */
const MID_BLOCK_LAYERS = 1;

export interface VaeBlockContext extends NetContext {
  config: AutoencoderKLConfig;
}

/** nn.Conv2d with bias: `${name}.weight` [out, in, k, k], `${name}.bias` [out]. Pads are ONNX's [top, left, bottom, right]. */
export function conv2d(context: VaeBlockContext, x: Value, name: string, outChannels: number, options: { kernel: number; stride?: number; pads?: readonly number[] }): Value {
  const { b, weights } = context;
  const inChannels = x.shape[1] as number;
  const { kernel } = options;
  const stride = options.stride ?? 1;
  const weight = weights.parameter(`${name}.weight`, [outChannels, inChannels, kernel, kernel]);
  const bias = weights.parameter(`${name}.bias`, [outChannels]);
  return b.conv(x, weight, bias, { strides: [stride, stride], pads: options.pads ?? [0, 0, 0, 0] });
}

/** A 3×3 "same" conv, as conv_in, conv_out, the resnets' conv1/conv2 and Upsample2D's conv. */
export function conv3x3(context: VaeBlockContext, x: Value, name: string, outChannels: number): Value {
  return conv2d(context, x, name, outChannels, { kernel: CONV_KERNEL, pads: [SAME_PADDING, SAME_PADDING, SAME_PADDING, SAME_PADDING] });
}

/** nn.GroupNorm(norm_num_groups, C, eps=1e-6) with its affine `${name}.weight`/`.bias` [C]. */
export function vaeGroupNorm(context: VaeBlockContext, x: Value, name: string): Value {
  const { b, weights, fused, config } = context;
  const channels = x.shape[1] as number;
  const scale = weights.parameter(`${name}.weight`, [channels]);
  const bias = weights.parameter(`${name}.bias`, [channels]);
  return groupNorm(b, x, scale, bias, config.normNumGroups, VAE_NORM_EPS, fused);
}

/** The config's `act_fn` (diffusers' get_activation). */
export function vaeActivation(context: VaeBlockContext, x: Value): Value {
  const { b, fused, config } = context;
  return config.activation === 'silu' ? silu(b, x) : activation(b, x, 'gelu', fused);
}

/** ResnetBlock2D with temb=None: (shortcut(x) + conv2(act(norm2(conv1(act(norm1(x))))))) / 1; dropout is a no-op. */
export function resnetBlock(context: VaeBlockContext, x: Value, prefix: string, outChannels: number): Value {
  const { b } = context;
  const inChannels = x.shape[1] as number;
  return b.scope(prefix, () => {
    const h1 = conv3x3(context, vaeActivation(context, vaeGroupNorm(context, x, `${prefix}.norm1`)), `${prefix}.conv1`, outChannels);
    const h2 = conv3x3(context, vaeActivation(context, vaeGroupNorm(context, h1, `${prefix}.norm2`)), `${prefix}.conv2`, outChannels);
    // use_in_shortcut = in_channels != out_channels: a 1×1 conv (with bias) brings x to the new width.
    const shortcut = inChannels === outChannels ? x : conv2d(context, x, `${prefix}.conv_shortcut`, outChannels, { kernel: 1 });
    return b.add(shortcut, h2);
  });
}

/** Downsample2D(use_conv=True, padding=0): the asymmetric zero pad is the conv's own padding. */
export function downsample(context: VaeBlockContext, x: Value, prefix: string): Value {
  const channels = x.shape[1] as number;
  return context.b.scope(prefix, () => conv2d(context, x, `${prefix}.conv`, channels, { kernel: CONV_KERNEL, stride: DOWNSAMPLE_STRIDE, pads: DOWNSAMPLE_PADS }));
}

/** Upsample2D(use_conv=True): nearest ×2, then a 3×3 conv. */
export function upsample(context: VaeBlockContext, x: Value, prefix: string): Value {
  const { b } = context;
  const [batch, channels, height, width] = x.shape as [number, number, number, number];
  return b.scope(prefix, () => {
    const doubled = b.resizeNearest(x, [batch, channels, height * UPSAMPLE_FACTOR, width * UPSAMPLE_FACTOR]);
    return conv3x3(context, doubled, `${prefix}.conv`, channels);
  });
}

/** UNetMidBlock2D(temb=None): resnets.0, then (attentions.i unless disabled, resnets.i+1). */
export function midBlock(context: VaeBlockContext, x: Value, prefix: string): Value {
  const channels = x.shape[1] as number;
  let h = resnetBlock(context, x, `${prefix}.resnets.0`, channels);
  for (let i = 0; i < MID_BLOCK_LAYERS; i++) {
    if (context.config.midBlockAddAttention) h = spatialSelfAttention(context, h, `${prefix}.attentions.${i}`);
    h = resnetBlock(context, h, `${prefix}.resnets.${i + 1}`, channels);
  }
  return h;
}

/**
 * The mid-block Attention (AttnProcessor, residual_connection=True): x [B, C, H, W] → group_norm → the
 * N positions as tokens [B, N, C] → to_q/to_k/to_v → softmax(q·kᵀ/√C)·v → to_out.0 → back to
 * [B, C, H, W] → + x (then / rescale_output_factor = 1).
 */
function spatialSelfAttention(context: VaeBlockContext, x: Value, prefix: string): Value {
  const { b, weights } = context;
  const [batch, channels, height, width] = x.shape as [number, number, number, number];
  const positions = height * width;
  return b.scope(prefix, () => {
    const normalized = vaeGroupNorm(context, x, `${prefix}.group_norm`);
    const tokens = b.transpose(b.reshape(normalized, [batch, channels, positions]), [0, 2, 1]);
    const project = (name: string, input: Value) => linear(b, input, weights.parameter(`${prefix}.${name}.weight`, [channels, channels]), weights.parameter(`${prefix}.${name}.bias`, [channels]));
    const attended = multiHeadAttention(b, {
      query: project('to_q', tokens),
      key: project('to_k', tokens),
      value: project('to_v', tokens),
      numHeads: MID_BLOCK_ATTENTION_HEADS,
      bias: null,
      fused: context.fusedAttention,
    });
    const output = project('to_out.0', attended);
    const spatial = b.reshape(b.transpose(output, [0, 2, 1]), [batch, channels, height, width]);
    return b.add(spatial, x);
  });
}

/**
 * torch.clamp(x, low, high). The builder has no Clip/Min/Max, so each bound is a Where on an exact
 * "y > 0" test (see `isPositive`): values inside the range pass through bit for bit, values outside
 * become the bound itself, for every finite float32 (a NaN becomes `low`, where torch keeps NaN).
 */
export function clamp(b: GraphBuilder, x: Value, low: number, high: number): Value {
  const lowBound = b.scalar(low);
  const highBound = b.scalar(high);
  const raised = b.where(isPositive(b, b.sub(lowBound, x)), lowBound, x);
  return b.where(isPositive(b, b.sub(raised, highBound)), highBound, raised);
}

/**
 * Scales y before the sign test so that even the smallest subnormal float32 (2⁻¹⁴⁹) lands where its
 * square is a normal number; multiplying by a power of two is exact, and what overflows becomes ±∞,
 * which tanh maps to ±1.
 */
const SIGN_TEST_GAIN = 2 ** 100;

/**
 * y > 0 as a bool tensor from the ops the builder has: t = tanh(y · 2¹⁰⁰) keeps y's sign, is never
 * subnormal unless y is 0, and cannot overflow when squared; t + √(t²) is then exactly 2t for t > 0 and
 * exactly 0 for t ≤ 0 (√(t²) = |t| in binary floating point), so its cast to bool is the test.
 */
function isPositive(b: GraphBuilder, y: Value): Value {
  const t = b.tanh(b.mul(y, b.scalar(SIGN_TEST_GAIN)));
  return b.cast(b.add(t, b.sqrt(b.mul(t, t))), 'bool');
}
