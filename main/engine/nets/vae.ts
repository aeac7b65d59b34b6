/**
 * diffusers' AutoencoderKL (0.25.1, models/autoencoders/autoencoder_kl.py and vae.py) as two graphs.
 *
 * Decoder: the UNet-space latents in; the graph itself undoes the pipeline's scaling
 * (`vae.decode(latents / scaling_factor)`, BlipDiffusionPipeline), then post_quant_conv → Decoder
 * (conv_in, mid block, up blocks, norm, act, conv_out). Outputs: `sample`, the raw decoded tensor
 * (NCHW, what vae.decode returns), and/or `image`, VaeImageProcessor's `output_type="np"` result:
 * (sample / 2 + 0.5).clamp(0, 1) in NHWC.
 *
 * Encoder: an image in [−1, 1] in; Encoder (conv_in, down blocks, mid block, norm, act, conv_out with
 * 2 × latent channels) → quant_conv → DiagonalGaussianDistribution's mean and logvar (clamped to
 * [−30, 20]). The caller samples z = mean + exp(logvar / 2) · ε (or takes the mean) and multiplies by
 * scaling_factor to get UNet-space latents.
 *
 * Each graph reads only its own part of the weights (the encoder never sees `decoder.*`), so a model
 * check has to build both to account for every tensor (component-checks.ts does).
 *
 * Shapes: B batch, L latent channels, h×w latent size, f = 2^(blocks − 1), H×W = (f·h)×(f·w) image size.
 */
import type { Value } from '../graph/builder';
import { buildNetGraph, netCacheKey, type NetGraph, resolveKernels } from './net-graph';
import { clamp, conv2d, conv3x3, downsample, midBlock, resnetBlock, upsample, vaeActivation, vaeGroupNorm, type VaeBlockContext } from './vae-blocks';
import { parseAutoencoderKLConfig, vaeScaleFactor, type AutoencoderKLConfig } from './vae-config';
import type { WeightCatalog, WeightEntry } from './weight-catalog';
import type { AttentionLowering } from '../providers/provider-types';

export const VAE_DECODER_NET = 'vae-decoder';
export const VAE_ENCODER_NET = 'vae-encoder';
export const VAE_DECODER_INPUTS = { latents: 'latents' } as const;
export const VAE_DECODER_OUTPUTS = { sample: 'sample', image: 'image' } as const;
export const VAE_ENCODER_INPUTS = { image: 'image' } as const;
export const VAE_ENCODER_OUTPUTS = { mean: 'mean', logvar: 'logvar' } as const;

export type VaeDecoderOutput = keyof typeof VAE_DECODER_OUTPUTS;

/** DiagonalGaussianDistribution: torch.clamp(logvar, -30.0, 20.0). */
export const VAE_LOGVAR_MIN = -30;
export const VAE_LOGVAR_MAX = 20;
/** VaeImageProcessor.denormalize: images / 2 + 0.5, then clamp(0, 1). */
const IMAGE_HALF_RANGE = 2;
const IMAGE_CENTRE = 0.5;
const IMAGE_MIN = 0;
const IMAGE_MAX = 1;
/** NCHW → NHWC (VaeImageProcessor.pt_to_numpy's permute(0, 2, 3, 1)). */
const CHANNELS_LAST = [0, 2, 3, 1];
/** 1×1 convs: quant_conv, post_quant_conv. */
const POINTWISE = 1;

/** Weight prefixes each graph reads (AutoencoderKL's state dict keys). */
const DECODER_WEIGHTS = ['decoder.', 'post_quant_conv.'];
const ENCODER_WEIGHTS = ['encoder.', 'quant_conv.'];

export interface VaeDecoderGraphOptions {
  /** Latents per run (default 1). */
  batch?: number;
  /** Latent height h and width w; the image is f·h × f·w. */
  latentHeight: number;
  latentWidth: number;
  /** Fused ORT kernels (default) or the primitive op set (for the reverse-mode pass). */
  fused?: boolean;
  /** Attention as one fused kernel (the default when fused) or as MatMul + Softmax + MatMul (providers/kernel-routing.ts). */
  attention?: AttentionLowering;
  /** Which outputs, in this order (default ['sample']): `sample` raw NCHW, `image` clamped NHWC. */
  outputs?: readonly VaeDecoderOutput[];
}

export interface VaeEncoderGraphOptions {
  /** Images per run (default 1). */
  batch?: number;
  /** Image height and width, multiples of f. */
  height: number;
  width: number;
  fused?: boolean;
  /** Attention as one fused kernel (the default when fused) or as MatMul + Softmax + MatMul (providers/kernel-routing.ts). */
  attention?: AttentionLowering;
}

interface ResolvedDecoderOptions {
  batch: number;
  latentHeight: number;
  latentWidth: number;
  fused: boolean;
  attention: AttentionLowering;
  outputs: VaeDecoderOutput[];
}

export interface ResolvedEncoderOptions {
  batch: number;
  height: number;
  width: number;
  fused: boolean;
  attention: AttentionLowering;
}

/**
 * Inputs: latents [B, L, h, w] float32, UNet space (the graph divides by scaling_factor).
 * Outputs (as chosen): sample [B, out_channels, f·h, f·w] raw; image [B, f·h, f·w, out_channels] in [0, 1].
 */
export function buildVaeDecoderGraph(config: unknown, catalog: WeightCatalog, options: VaeDecoderGraphOptions): NetGraph {
  const parsed = parseAutoencoderKLConfig(config);
  const resolved = resolveDecoderOptions(options);
  const { batch, latentHeight, latentWidth } = resolved;
  return buildNetGraph({
    net: VAE_DECODER_NET,
    component: 'vae',
    config,
    options: resolved,
    catalog: catalogPart(catalog, DECODER_WEIGHTS),
    body: (netContext) => {
      const context: VaeBlockContext = { ...netContext, config: parsed };
      const { b } = context;
      const latents = b.input(VAE_DECODER_INPUTS.latents, 'float32', [batch, parsed.latentChannels, latentHeight, latentWidth]);
      const unscaled = b.div(latents, b.scalar(parsed.scalingFactor));
      const z = parsed.shiftFactor === 0 ? unscaled : b.add(unscaled, b.scalar(parsed.shiftFactor));
      const sample = decoder(context, parsed.usePostQuantConv ? b.scope('post_quant_conv', () => conv2d(context, z, 'post_quant_conv', parsed.latentChannels, { kernel: POINTWISE })) : z);
      const image = () =>
        b.scope('image', () => {
          const shifted = b.add(b.div(sample, b.scalar(IMAGE_HALF_RANGE)), b.scalar(IMAGE_CENTRE));
          return b.transpose(clamp(b, shifted, IMAGE_MIN, IMAGE_MAX), CHANNELS_LAST);
        });
      return resolved.outputs.map((output) => ({ name: VAE_DECODER_OUTPUTS[output], value: output === 'sample' ? sample : image() }));
    },
  });
}

/**
 * Inputs: image [B, in_channels, H, W] float32 in [−1, 1].
 * Outputs: mean and logvar, each [B, L, H/f, W/f]; logvar clamped to [−30, 20].
 */
export function buildVaeEncoderGraph(config: unknown, catalog: WeightCatalog, options: VaeEncoderGraphOptions): NetGraph {
  const parsed = parseAutoencoderKLConfig(config);
  const resolved = resolveEncoderOptions(options, parsed);
  const { batch, height, width } = resolved;
  return buildNetGraph({
    net: VAE_ENCODER_NET,
    component: 'vae',
    config,
    options: resolved,
    catalog: vaeEncoderCatalog(catalog),
    body: (netContext) => {
      const context: VaeBlockContext = { ...netContext, config: parsed };
      const { b } = context;
      const image = b.input(VAE_ENCODER_INPUTS.image, 'float32', [batch, parsed.inChannels, height, width]);
      const { mean, logvar } = vaeEncoderPosterior(context, image);
      return [
        { name: VAE_ENCODER_OUTPUTS.mean, value: mean },
        { name: VAE_ENCODER_OUTPUTS.logvar, value: logvar },
      ];
    },
  });
}

/** The cache key `buildVaeDecoderGraph` would give, without building. */
export function vaeDecoderGraphKey(config: unknown, catalog: WeightCatalog, options: VaeDecoderGraphOptions): string {
  parseAutoencoderKLConfig(config); // an invalid config gets no key, as it gets no graph
  return netCacheKey(VAE_DECODER_NET, config, resolveDecoderOptions(options), catalogPart(catalog, DECODER_WEIGHTS));
}

/** The cache key `buildVaeEncoderGraph` would give, without building. */
export function vaeEncoderGraphKey(config: unknown, catalog: WeightCatalog, options: VaeEncoderGraphOptions): string {
  return netCacheKey(VAE_ENCODER_NET, config, resolveEncoderOptions(options, parseAutoencoderKLConfig(config)), vaeEncoderCatalog(catalog));
}

/**
 * Encoder → quant_conv → DiagonalGaussianDistribution's parameters: the mean and the log-variance
 * clamped to [−30, 20], each [B, L, H/f, W/f]. Shared with the sampling encoder (vae-encoder.ts).
 */
export function vaeEncoderPosterior(context: VaeBlockContext, image: Value): { mean: Value; logvar: Value } {
  const { b, config } = context;
  const latents = config.latentChannels;
  const encoded = encoder(context, image);
  const moments = config.useQuantConv ? b.scope('quant_conv', () => conv2d(context, encoded, 'quant_conv', 2 * latents, { kernel: POINTWISE })) : encoded;
  // torch.chunk(moments, 2, dim=1): the first half of the channels is the mean, the second the log-variance.
  const mean = b.slice(moments, { starts: [0], ends: [latents], axes: [1] });
  const logvar = b.scope('logvar', () => clamp(b, b.slice(moments, { starts: [latents], ends: [2 * latents], axes: [1] }), VAE_LOGVAR_MIN, VAE_LOGVAR_MAX));
  return { mean, logvar };
}

/** The part of a VAE's weights that an encoder graph reads (and must read): `encoder.*` and `quant_conv.*`. */
export function vaeEncoderCatalog(catalog: WeightCatalog): WeightCatalog {
  return catalogPart(catalog, ENCODER_WEIGHTS);
}

/** Encoder(double_z=True): conv_in → down blocks (a stride-2 conv after all but the last) → mid block → norm, act → conv_out [2L]. */
function encoder(context: VaeBlockContext, image: Value): Value {
  const { b, config } = context;
  const channels = config.blockOutChannels;
  let h = b.scope('encoder/conv_in', () => conv3x3(context, image, 'encoder.conv_in', channels[0] as number));
  channels.forEach((outChannels, i) => {
    for (let j = 0; j < config.layersPerBlock; j++) h = resnetBlock(context, h, `encoder.down_blocks.${i}.resnets.${j}`, outChannels);
    if (i < channels.length - 1) h = downsample(context, h, `encoder.down_blocks.${i}.downsamplers.0`);
  });
  h = midBlock(context, h, 'encoder.mid_block');
  return b.scope('encoder/out', () => conv3x3(context, vaeActivation(context, vaeGroupNorm(context, h, 'encoder.conv_norm_out')), 'encoder.conv_out', 2 * config.latentChannels));
}

/** Decoder: conv_in → mid block → up blocks (reversed widths, layers_per_block + 1 resnets, nearest ×2 + conv after all but the last) → norm, act → conv_out. */
function decoder(context: VaeBlockContext, z: Value): Value {
  const { b, config } = context;
  const reversed = [...config.blockOutChannels].reverse();
  let h = b.scope('decoder/conv_in', () => conv3x3(context, z, 'decoder.conv_in', reversed[0] as number));
  h = midBlock(context, h, 'decoder.mid_block');
  reversed.forEach((outChannels, i) => {
    for (let j = 0; j < config.layersPerBlock + 1; j++) h = resnetBlock(context, h, `decoder.up_blocks.${i}.resnets.${j}`, outChannels);
    if (i < reversed.length - 1) h = upsample(context, h, `decoder.up_blocks.${i}.upsamplers.0`);
  });
  return b.scope('decoder/out', () => conv3x3(context, vaeActivation(context, vaeGroupNorm(context, h, 'decoder.conv_norm_out')), 'decoder.conv_out', config.outChannels));
}

/** The tensors of `catalog` whose names start with one of `prefixes`: what one of the two graphs may (and must) consume. */
function catalogPart(catalog: WeightCatalog, prefixes: readonly string[]): WeightCatalog {
  const ours = (name: string) => prefixes.some((prefix) => name.startsWith(prefix));
  return {
    names: () => catalog.names().filter(ours),
    lookup: (name, request): WeightEntry | undefined => (ours(name) ? catalog.lookup(name, request) : undefined),
  };
}

function resolveDecoderOptions(options: VaeDecoderGraphOptions): ResolvedDecoderOptions {
  const batch = options.batch ?? 1;
  positiveInteger('batch', batch);
  positiveInteger('latentHeight', options.latentHeight);
  positiveInteger('latentWidth', options.latentWidth);
  const outputs = [...(options.outputs ?? ['sample'])];
  if (outputs.length === 0 || new Set(outputs).size !== outputs.length || outputs.some((o) => !(o in VAE_DECODER_OUTPUTS))) {
    throw new Error(`VAE decoder graph: outputs must list 'sample' and/or 'image' once each (got ${JSON.stringify(outputs)})`);
  }
  return { batch, latentHeight: options.latentHeight, latentWidth: options.latentWidth, ...resolveKernels(options), outputs };
}

/** Checks an encoder graph's options (image sizes are multiples of f) and fills in the defaults. */
export function resolveEncoderOptions(options: VaeEncoderGraphOptions, config: AutoencoderKLConfig): ResolvedEncoderOptions {
  const batch = options.batch ?? 1;
  positiveInteger('batch', batch);
  const factor = vaeScaleFactor(config);
  for (const [name, size] of [
    ['height', options.height],
    ['width', options.width],
  ] as const) {
    positiveInteger(name, size);
    if (size % factor !== 0) throw new Error(`VAE encoder graph: ${name} (${size}) must be a multiple of ${factor} (2^(len(block_out_channels) − 1)), so that the latents cover the whole image`);
  }
  return { batch, height: options.height, width: options.width, ...resolveKernels(options) };
}

function positiveInteger(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 1) throw new Error(`VAE graph: ${name} must be a positive integer (got ${value})`);
}
