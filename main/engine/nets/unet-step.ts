/**
 * Whole denoising-step graphs: classifier-free guidance inside the graph, so only the latents, the
 * text embeddings and a few scalars go in and one guided prediction comes out (the [2B, …] predictions,
 * and the ControlNet residuals, never cross into JS).
 *
 * - guided step: the latents are duplicated in the graph ([uncond rows; cond rows], as the pipeline's
 *   torch.cat([latents] * 2)), the UNet runs on 2B rows, and noise_pred = uncond + g · (cond − uncond).
 * - controlled guided step: the same with the ControlNet in front (control image duplicated likewise)
 *   feeding the UNet's residuals, both components' weights in one session.
 *
 * Shapes: B images, C latent channels, h×w latent size, L text tokens, D cross-attention width,
 * f the control image's scale over the latents.
 */
import { GraphBuilder, type Value } from '../graph/builder';
import type { Shape } from '../graph/shapes';
import { catalogUnion } from './catalog-union';
import { declareLoraInputs, resolveLoraOption, type LoraAdapters, type LoraGraphOption } from './lora-layers';
import { CONTROLNET_INPUTS, controlImageScale, controlnetBody } from './controlnet';
import { netCacheKey, buildNetGraph, type NetGraph } from './net-graph';
import { crossAttentionWidth, declareResidualInputs, resolveUnetOptions, UNET_INPUTS, UNET_OUTPUTS, unetBody } from './unet';
import { parseControlNetConfig, parseUnetConfig } from './unet-config';
import type { WeightCatalog } from './weight-catalog';
import type { AttentionLowering } from '../providers/provider-types';

export const UNET_GUIDED_STEP_NET = 'unet-guided-step';
export const CONTROLLED_UNET_GUIDED_STEP_NET = 'controlnet-unet-guided-step';
export const GUIDED_STEP_INPUTS = { ...UNET_INPUTS, guidanceScale: 'guidance_scale', controlnetCond: CONTROLNET_INPUTS.controlnetCond, conditioningScale: CONTROLNET_INPUTS.conditioningScale } as const;
export const GUIDED_STEP_OUTPUTS = {
  /** [B, C, h, w]: uncond + g · (cond − uncond). */
  noisePred: UNET_OUTPUTS.noisePred,
  /** [2B, C, h, w]: the UNet's raw predictions, [uncond rows; cond rows] (only with `exposeBatchPrediction`). */
  batchPrediction: 'noise_pred_batch',
} as const;

/** Where the combined graph finds each component's weights, relative to its external-data folder (the model folder). */
export const UNET_FOLDER = 'unet';
export const CONTROLNET_FOLDER = 'controlnet';
/** The ControlNet's tensor names in the combined graph carry this prefix (both components have e.g. conv_in.weight). */
const CONTROLNET_NAME_PREFIX = 'controlnet.';

export interface GuidedStepOptions {
  /** Images per step (default 1): the UNet runs on twice as many rows. */
  batch?: number;
  /** Latent size (default: the UNet config's sample_size). */
  height?: number;
  width?: number;
  /** Tokens of encoder_hidden_states. */
  textLength: number;
  fused?: boolean;
  /** Attention as one fused kernel (the default when fused) or as MatMul + Softmax + MatMul (providers/kernel-routing.ts). */
  attention?: AttentionLowering;
  /** Also output the raw [2B, …] predictions as noise_pred_batch (for checks; costs the copy). */
  exposeBatchPrediction?: boolean;
  /** LoRA adapters on the UNet's attention projections, fed as `lora.<module>.down/.up` and `lora_scale` (lora-layers.ts). */
  lora?: LoraGraphOption;
}

export interface GuidedUnetStepOptions extends GuidedStepOptions {
  /** Take ControlNet residuals for the 2B rows as inputs (from a separate ControlNet graph). */
  withResiduals?: boolean;
}

/**
 * Inputs: sample [B, C, h, w], timestep [1], encoder_hidden_states [2B, L, D] ([uncond; cond]),
 * guidance_scale [1]; with `withResiduals`, down_residual_00… and mid_residual for 2B rows.
 * Outputs: noise_pred [B, C, h, w] (guided); noise_pred_batch [2B, C, h, w] with `exposeBatchPrediction`.
 */
export function buildUnetGuidedStepGraph(config: unknown, catalog: WeightCatalog, options: GuidedUnetStepOptions): NetGraph {
  const parsed = parseUnetConfig(config);
  const images = options.batch ?? 1;
  const resolved = { ...resolveUnetOptions(parsed, { ...options, batch: 2 * images }), exposeBatchPrediction: options.exposeBatchPrediction ?? false, ...loraKey(options) };
  return buildNetGraph({
    net: UNET_GUIDED_STEP_NET,
    component: 'unet',
    config,
    options: resolved,
    catalog,
    body: (context) => {
      const { b } = context;
      const { height, width } = resolved;
      const inputs = guidedInputs(b, images, [parsed.inChannels, height, width], [resolved.textLength, crossAttentionWidth(parsed)]);
      const residuals = resolved.withResiduals ? declareResidualInputs(context, parsed, 2 * images, height, width) : undefined;
      const guidanceScale = b.input(GUIDED_STEP_INPUTS.guidanceScale, 'float32', [1]);
      const lora = loraInputs(b, options);
      const prediction = unetBody(context, parsed, { ...inputs, ...(residuals ? { residuals } : {}), ...(lora ? { lora } : {}) });
      return guidedOutputs(b, prediction, guidanceScale, images, resolved.exposeBatchPrediction);
    },
  });
}

/**
 * The two components of a ControlNet pipeline, each with its config and weights. `folder` is where the
 * component's files sit inside the graph's external-data folder (default 'unet' / 'controlnet', the
 * model folder layout; '' when the catalog's file names are already relative to that folder).
 */
export interface ControlledUnetComponents {
  unet: { config: unknown; catalog: WeightCatalog; folder?: string };
  controlnet: { config: unknown; catalog: WeightCatalog; folder?: string };
}

/**
 * ControlNet + UNet + guidance in one graph. Its external-data folder is the model folder: the weights
 * are read from `unet/…` and `controlnet/…` (UNET_FOLDER, CONTROLNET_FOLDER).
 * Inputs: sample [B, C, h, w], timestep [1], encoder_hidden_states [2B, L, D] ([uncond; cond]),
 * controlnet_cond [B, 3, f·h, f·w] (duplicated for the two halves in the graph), conditioning_scale [1],
 * guidance_scale [1]. Outputs: noise_pred [B, C, h, w]; noise_pred_batch [2B, …] with `exposeBatchPrediction`.
 */
export function buildControlledUnetGuidedStepGraph(components: ControlledUnetComponents, options: GuidedStepOptions): NetGraph {
  const unet = parseUnetConfig(components.unet.config);
  const controlnet = parseControlNetConfig(components.controlnet.config);
  if (controlnet.inChannels !== unet.inChannels) throw new Error(`controlnet in_channels (${controlnet.inChannels}) differs from the unet's (${unet.inChannels})`);
  const images = options.batch ?? 1;
  const resolved = { ...resolveUnetOptions(unet, { ...options, batch: 2 * images }), exposeBatchPrediction: options.exposeBatchPrediction ?? false, ...loraKey(options) };
  const catalog = controlledCatalog(components);
  return buildNetGraph({
    net: CONTROLLED_UNET_GUIDED_STEP_NET,
    component: 'unet + controlnet',
    config: { unet: components.unet.config, controlnet: components.controlnet.config },
    options: resolved,
    catalog,
    body: (context) => {
      const { b } = context;
      const { height, width } = resolved;
      const inputs = guidedInputs(b, images, [unet.inChannels, height, width], [resolved.textLength, crossAttentionWidth(unet)]);
      const scale = controlImageScale(controlnet);
      const controlImage = b.input(GUIDED_STEP_INPUTS.controlnetCond, 'float32', [images, controlnet.conditioningChannels, height * scale, width * scale]);
      const conditioningScale = b.input(GUIDED_STEP_INPUTS.conditioningScale, 'float32', [1]);
      const guidanceScale = b.input(GUIDED_STEP_INPUTS.guidanceScale, 'float32', [1]);
      const residuals = b.scope('controlnet', () =>
        controlnetBody(context, controlnet, { ...inputs, controlnetCond: b.concat([controlImage, controlImage], 0), conditioningScale }, CONTROLNET_NAME_PREFIX.slice(0, -1)),
      );
      const lora = loraInputs(b, options);
      const prediction = b.scope('unet', () => unetBody(context, unet, { ...inputs, residuals, ...(lora ? { lora } : {}) }));
      return guidedOutputs(b, prediction, guidanceScale, images, resolved.exposeBatchPrediction);
    },
  });
}

/** The LoRA option in the cache key only when there is one (graphs without adapters keep their keys). */
function loraKey(options: GuidedStepOptions): { lora?: LoraGraphOption } {
  const lora = resolveLoraOption(options.lora);
  return lora ? { lora } : {};
}

function loraInputs(b: GraphBuilder, options: GuidedStepOptions): LoraAdapters | undefined {
  const lora = resolveLoraOption(options.lora);
  return lora ? declareLoraInputs(b, lora.targets, lora.rank, { merged: true }) : undefined;
}

function controlledCatalog(components: ControlledUnetComponents): WeightCatalog {
  return catalogUnion([
    { catalog: components.unet.catalog, namePrefix: '', folder: components.unet.folder ?? UNET_FOLDER },
    { catalog: components.controlnet.catalog, namePrefix: CONTROLNET_NAME_PREFIX, folder: components.controlnet.folder ?? CONTROLNET_FOLDER },
  ]);
}

/** The cache key buildUnetGuidedStepGraph's graph will have, without building it. */
export function unetGuidedStepGraphKey(config: unknown, catalog: WeightCatalog, options: GuidedUnetStepOptions): string {
  const resolved = { ...resolveUnetOptions(parseUnetConfig(config), { ...options, batch: 2 * (options.batch ?? 1) }), exposeBatchPrediction: options.exposeBatchPrediction ?? false, ...loraKey(options) };
  return netCacheKey(UNET_GUIDED_STEP_NET, config, resolved, catalog);
}

/** The cache key buildControlledUnetGuidedStepGraph's graph will have, without building it. */
export function controlledUnetGuidedStepGraphKey(components: ControlledUnetComponents, options: GuidedStepOptions): string {
  const unet = parseUnetConfig(components.unet.config);
  const resolved = { ...resolveUnetOptions(unet, { ...options, batch: 2 * (options.batch ?? 1) }), exposeBatchPrediction: options.exposeBatchPrediction ?? false, ...loraKey(options) };
  return netCacheKey(CONTROLLED_UNET_GUIDED_STEP_NET, { unet: components.unet.config, controlnet: components.controlnet.config }, resolved, controlledCatalog(components));
}

/** sample [B, …] (duplicated to 2B rows in the graph), timestep [1], encoder_hidden_states [2B, L, D]. */
function guidedInputs(b: GraphBuilder, images: number, latent: Shape, text: Shape): { sample: Value; timestep: Value; encoderHiddenStates: Value } {
  const sample = b.input(GUIDED_STEP_INPUTS.sample, 'float32', [images, ...latent]);
  const timestep = b.input(GUIDED_STEP_INPUTS.timestep, 'float32', [1]);
  const encoderHiddenStates = b.input(GUIDED_STEP_INPUTS.encoderHiddenStates, 'float32', [2 * images, ...text]);
  return { sample: b.concat([sample, sample], 0), timestep, encoderHiddenStates };
}

/** uncond + g · (cond − uncond) over the two halves of the 2B rows. */
function guidedOutputs(b: GraphBuilder, prediction: Value, guidanceScale: Value, images: number, exposeBatch: boolean): { name: string; value: Value }[] {
  const guided = b.scope('guidance', () => {
    const uncond = b.slice(prediction, { starts: [0], ends: [images], axes: [0] });
    const cond = b.slice(prediction, { starts: [images], ends: [2 * images], axes: [0] });
    return b.add(uncond, b.mul(guidanceScale, b.sub(cond, uncond)));
  });
  return [{ name: GUIDED_STEP_OUTPUTS.noisePred, value: guided }, ...(exposeBatch ? [{ name: GUIDED_STEP_OUTPUTS.batchPrediction, value: prediction }] : [])];
}
