/**
 * Which network builds read each model component's weights: one table, used by `inspect` (and the
 * model adoption check later) to derive the tensors a config implies.
 */
import { buildClipTextGraph, buildContextClipTextGraph } from './clip-text-encoder';
import { parseBlipQFormerModelConfig } from './configs';
import { impliedParameters } from './implied-parameters';
import { buildQFormerGraph } from './qformer';
import { buildControlNetGraph } from './controlnet';
import { buildUnetGraph } from './unet';
import { parseControlNetConfig, parseUnetConfig, type UnetTrunkConfig } from './unet-config';
import { buildVaeDecoderGraph, buildVaeEncoderGraph } from './vae';
import { parseAutoencoderKLConfig, vaeScaleFactor } from './vae-config';
import type { TensorRequest, WeightCatalog } from './weight-catalog';

type Build = (config: unknown, catalog: WeightCatalog, pipeline: PipelineFacts) => unknown;

export interface PipelineFacts {
  /** model_index.json ctx_begin_pos */
  ctxBeginPos: number;
  /** The Q-Former's num_query_tokens (it sets the text encoder's prompt length). */
  queryTokenCount: number;
}

/** The prompt or category length does not change which tensors a net reads: any valid length will do. */
const ANY_CATEGORY_LENGTH = 3;
/** Nor does the image size change which tensors the VAE reads: one latent pixel will do. */
const ANY_LATENT_SIZE = 1;

/** Nor do the text length and latent size change which tensors the UNet and ControlNet read: the smallest valid ones will do. */
const ANY_TEXT_LENGTH = 1;
/** A latent side that every downsampler halves down to one pixel, whatever downsample_padding is. */
const smallestLatentSize = (trunk: UnetTrunkConfig): number => 2 ** (trunk.down.length - 1);

export const COMPONENT_BUILDS: Readonly<Record<string, readonly Build[]>> = {
  // The plain, residual and guided-step UNet graphs all read the same weights; one build lists them.
  unet: [
    (config, catalog) => {
      const size = smallestLatentSize(parseUnetConfig(config));
      return buildUnetGraph(config, catalog, { height: size, width: size, textLength: ANY_TEXT_LENGTH });
    },
  ],
  controlnet: [
    (config, catalog) => {
      const size = smallestLatentSize(parseControlNetConfig(config));
      return buildControlNetGraph(config, catalog, { height: size, width: size, textLength: ANY_TEXT_LENGTH });
    },
  ],
  qformer: [(config, catalog) => buildQFormerGraph(config, catalog, { textLength: ANY_CATEGORY_LENGTH })],
  text_encoder: [
    (config, catalog) => buildClipTextGraph(config, catalog),
    (config, catalog, pipeline) => buildContextClipTextGraph(config, catalog, { queryTokenCount: pipeline.queryTokenCount, ctxBeginPos: pipeline.ctxBeginPos }),
  ],
  // Each VAE graph reads its half of the weights (encoder.* + quant_conv.*, decoder.* + post_quant_conv.*).
  vae: [
    (config, catalog) => {
      const imageSize = ANY_LATENT_SIZE * vaeScaleFactor(parseAutoencoderKLConfig(config));
      return buildVaeEncoderGraph(config, catalog, { height: imageSize, width: imageSize });
    },
    (config, catalog) => buildVaeDecoderGraph(config, catalog, { latentHeight: ANY_LATENT_SIZE, latentWidth: ANY_LATENT_SIZE }),
  ],
};

/** Every tensor the component's config implies (union over its builds), or null when no net reads it yet. */
export function impliedComponentParameters(component: string, config: unknown, pipeline: PipelineFacts): TensorRequest[] | null {
  const builds = COMPONENT_BUILDS[component];
  if (!builds) return null;
  const byName = new Map<string, TensorRequest>();
  for (const build of builds) for (const request of impliedParameters((catalog) => build(config, catalog, pipeline))) byName.set(request.name, request);
  return [...byName.values()];
}

export function queryTokenCountOf(qformerConfig: unknown): number {
  return parseBlipQFormerModelConfig(qformerConfig).numQueryTokens;
}
