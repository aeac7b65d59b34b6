/**
 * The VAE encoder as the fine-tune uses it: diffusers' `vae.encode(x).latent_dist.sample()` with the
 * noise given, times scaling_factor (LAVIS / the fine-tune kit, step 2), in one graph:
 *
 *   mean, logvar = chunk(quant_conv(Encoder(x)), 2, dim=1),  logvar clamped to [−30, 20]
 *   std = exp(0.5 · logvar)                      (DiagonalGaussianDistribution)
 *   latents = (mean + std · ε − shift_factor) · scaling_factor
 *
 * ε is an input so that the random draws stay in TypeScript, on the one seeded generator
 * (pipelines/finetune-draws.ts). The encoder is frozen: the fused kernels are the default, the primitive
 * set works too. shift_factor is 0 for every diffusers 0.25.1 model (vae-config.ts).
 *
 * Shapes: B batch, L latent channels, H×W image, f = 2^(blocks − 1), h×w = (H/f)×(W/f).
 */
import { buildNetGraph, netCacheKey, type NetGraph } from './net-graph';
import { resolveEncoderOptions, vaeEncoderCatalog, vaeEncoderPosterior, type VaeEncoderGraphOptions } from './vae';
import type { VaeBlockContext } from './vae-blocks';
import { parseAutoencoderKLConfig, vaeScaleFactor } from './vae-config';
import type { WeightCatalog } from './weight-catalog';

export const VAE_ENCODER_SAMPLE_NET = 'vae-encoder-sample';
export const VAE_ENCODER_SAMPLE_INPUTS = { image: 'image', eps: 'eps' } as const;
export const VAE_ENCODER_SAMPLE_OUTPUTS = { mean: 'mean', std: 'std', latents: 'latents' } as const;

/** DiagonalGaussianDistribution: std = exp(0.5 · logvar). */
const HALF = 0.5;

/** Same options as the posterior graph: batch, image height and width (multiples of f), kernels. */
export type VaeEncoderSampleGraphOptions = VaeEncoderGraphOptions;

/**
 * Inputs: image [B, in_channels, H, W] float32 in [−1, 1]; eps [B, L, h, w] float32 (standard normal).
 * Outputs: mean and std [B, L, h, w] (the posterior), latents [B, L, h, w] in UNet space.
 */
export function buildVaeEncoderSampleGraph(config: unknown, catalog: WeightCatalog, options: VaeEncoderSampleGraphOptions): NetGraph {
  const parsed = parseAutoencoderKLConfig(config);
  const resolved = resolveEncoderOptions(options, parsed);
  const { batch, height, width } = resolved;
  const factor = vaeScaleFactor(parsed);
  const latentShape = [batch, parsed.latentChannels, height / factor, width / factor];
  return buildNetGraph({
    net: VAE_ENCODER_SAMPLE_NET,
    component: 'vae',
    config,
    options: resolved,
    catalog: vaeEncoderCatalog(catalog),
    body: (netContext) => {
      const context: VaeBlockContext = { ...netContext, config: parsed };
      const { b } = context;
      const image = b.input(VAE_ENCODER_SAMPLE_INPUTS.image, 'float32', [batch, parsed.inChannels, height, width]);
      const eps = b.input(VAE_ENCODER_SAMPLE_INPUTS.eps, 'float32', latentShape);
      const { mean, logvar } = vaeEncoderPosterior(context, image);
      const std = b.scope('std', () => b.exp(b.mul(logvar, b.scalar(HALF))));
      const latents = b.scope('latents', () => {
        const z = b.add(mean, b.mul(std, eps));
        const shifted = parsed.shiftFactor === 0 ? z : b.sub(z, b.scalar(parsed.shiftFactor));
        return b.mul(shifted, b.scalar(parsed.scalingFactor));
      });
      return [
        { name: VAE_ENCODER_SAMPLE_OUTPUTS.mean, value: mean },
        { name: VAE_ENCODER_SAMPLE_OUTPUTS.std, value: std },
        { name: VAE_ENCODER_SAMPLE_OUTPUTS.latents, value: latents },
      ];
    },
  });
}

/** The cache key `buildVaeEncoderSampleGraph` would give, without building. */
export function vaeEncoderSampleGraphKey(config: unknown, catalog: WeightCatalog, options: VaeEncoderSampleGraphOptions): string {
  return netCacheKey(VAE_ENCODER_SAMPLE_NET, config, resolveEncoderOptions(options, parseAutoencoderKLConfig(config)), vaeEncoderCatalog(catalog));
}
