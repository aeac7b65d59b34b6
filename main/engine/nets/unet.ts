/**
 * diffusers 0.25.1's UNet2DConditionModel as one graph: (center_input_sample), sinusoidal timestep →
 * TimestepEmbedding, conv_in, down blocks (their outputs kept as skips), optional ControlNet residuals
 * added to every skip and to the mid block's output, mid block, up blocks (each consuming its skips),
 * GroupNorm → SiLU → conv_out.
 *
 * The timestep is a float32 graph input, so one graph serves every denoising step. `unetBody` is the
 * forward as a function of graph values, for the whole-step graphs (unet-step.ts) to compose.
 *
 * Shapes: B batch, C in/out channels, h×w latent size, L text tokens, D cross-attention width,
 * T timestep rows (1, shared, or B).
 */
import type { Value } from '../graph/builder';
import { silu } from '../graph/layers';
import type { Shape } from '../graph/shapes';
import { buildNetGraph, netCacheKey, type NetContext, type NetGraph, resolveKernels } from './net-graph';
import { conv2d, downPath, groupNorm2d, childKey, midBlock, midShape, skipShapes, timeConditioning, upBlock, type UnetBlockContext } from './unet-blocks';
import { parseUnetConfig, type UnetConfig, type UnetTrunkConfig } from './unet-config';
import type { WeightCatalog } from './weight-catalog';
import type { LoraAdapters } from './lora-layers';
import type { AttentionLowering } from '../providers/provider-types';
import { AttentionProbeCollector, selectAttentionLayers, type AttentionProbeOptions, type CrossAttentionLayer } from './attention-probe';

export const UNET_NET = 'unet-2d-condition';
export const UNET_INPUTS = {
  sample: 'sample',
  timestep: 'timestep',
  encoderHiddenStates: 'encoder_hidden_states',
  midResidual: 'mid_residual',
} as const;
export const UNET_OUTPUTS = { noisePred: 'noise_pred' } as const;

/** The name of the k-th down residual (ControlNet output / UNet input): down_residual_00, _01, … */
export function downResidualName(index: number): string {
  return `down_residual_${String(index).padStart(2, '0')}`;
}

export interface UnetGraphOptions {
  /** Rows of `sample` (default 1; 2 for a CFG pair). */
  batch?: number;
  /** Latent size (default: the config's sample_size). */
  height?: number;
  width?: number;
  /** Tokens of encoder_hidden_states (the text encoder's max_position_embeddings). */
  textLength: number;
  /** Fused ORT kernels (default) or the primitive op set. */
  fused?: boolean;
  /** Attention as one fused kernel (the default when fused) or as MatMul + Softmax + MatMul (providers/kernel-routing.ts). */
  attention?: AttentionLowering;
  /** Also take ControlNet residuals as inputs, added as diffusers does. */
  withResiduals?: boolean;
  /** timestep [B] (one per row, for training) instead of [1] shared by the batch. */
  perSampleTimesteps?: boolean;
  /**
   * Also output the cross-attention probabilities of these layers, averaged over heads: one output
   * attention_probe_00… [B, h·w of the layer, L] per layer (attention-probe.ts). Absent: the default
   * graph, with the same outputs and cache key as before.
   */
  attentionProbe?: AttentionProbeOptions;
}

/** Options with every default filled in: what the cache key hashes. */
export interface ResolvedUnetOptions {
  batch: number;
  height: number;
  width: number;
  textLength: number;
  fused: boolean;
  attention: AttentionLowering;
  withResiduals: boolean;
  perSampleTimesteps: boolean;
  /** Only present when asked for, so that the default graph's cache key does not change. */
  attentionProbe?: { layers: readonly string[] };
}

/** The values a UNet forward reads. */
export interface UnetBodyInputs {
  /** [B, C, h, w] */
  sample: Value;
  /** [T] float32 */
  timestep: Value;
  /** [B, L, D] */
  encoderHiddenStates: Value;
  /** ControlNet residuals: one per skip (shapes of `unetSkipShapes`) and one for the mid block. */
  residuals?: { down: readonly Value[]; mid: Value };
  /** LoRA adapters on the attention projections (lora-layers.ts). */
  lora?: LoraAdapters;
  /** Records the cross-attention probabilities of chosen layers (attention-probe.ts). */
  attentionProbe?: AttentionProbeCollector;
}

/**
 * Inputs: sample [B, C, h, w], timestep [1] (or [B] with perSampleTimesteps) float32,
 * encoder_hidden_states [B, L, D]; with `withResiduals`, down_residual_00… (the shapes of
 * `unetSkipShapes`) and mid_residual [B, C_last, h/2^k, w/2^k].
 * Output: noise_pred [B, C_out, h, w].
 */
export function buildUnetGraph(config: unknown, catalog: WeightCatalog, options: UnetGraphOptions): NetGraph {
  const parsed = parseUnetConfig(config);
  const resolved = resolveUnetOptions(parsed, options);
  return buildNetGraph({
    net: UNET_NET,
    component: 'unet',
    config,
    options: resolved,
    catalog,
    body: (context) => {
      const inputs = declareUnetInputs(context, parsed, resolved);
      if (!resolved.attentionProbe) return [{ name: UNET_OUTPUTS.noisePred, value: unetBody(context, parsed, inputs) }];
      const probe = new AttentionProbeCollector(selectAttentionLayers(parsed, resolved.height, resolved.width, resolved.attentionProbe.layers));
      const noisePred = unetBody(context, parsed, { ...inputs, attentionProbe: probe });
      return [{ name: UNET_OUTPUTS.noisePred, value: noisePred }, ...probe.outputs()];
    },
  });
}

/** The layers (in output order: attention_probe_00, …) that `options.attentionProbe` exposes; [] without a probe. */
export function unetAttentionProbeLayers(config: unknown, options: UnetGraphOptions): CrossAttentionLayer[] {
  const parsed = parseUnetConfig(config);
  const resolved = resolveUnetOptions(parsed, options);
  return resolved.attentionProbe ? selectAttentionLayers(parsed, resolved.height, resolved.width, resolved.attentionProbe.layers) : [];
}

/** The cache key `buildUnetGraph` would give, without building. */
export function unetGraphKey(config: unknown, catalog: WeightCatalog, options: UnetGraphOptions): string {
  return netCacheKey(UNET_NET, config, resolveUnetOptions(parseUnetConfig(config), options), catalog);
}

export function resolveUnetOptions(config: UnetConfig, options: UnetGraphOptions): ResolvedUnetOptions {
  const height = options.height ?? config.sampleSize?.[0];
  const width = options.width ?? config.sampleSize?.[1];
  if (height === undefined || width === undefined) throw new Error('UNet graph: the config has no sample_size, so height and width (latent size) must be given');
  const resolved: ResolvedUnetOptions = {
    batch: options.batch ?? 1,
    height,
    width,
    textLength: options.textLength,
    ...resolveKernels(options),
    withResiduals: options.withResiduals ?? false,
    perSampleTimesteps: options.perSampleTimesteps ?? false,
  };
  for (const name of ['batch', 'height', 'width', 'textLength'] as const) {
    const value = resolved[name];
    if (!Number.isSafeInteger(value) || value < 1) throw new Error(`UNet graph: ${name} must be a positive integer (got ${value})`);
  }
  // Resolved to explicit layer names (validated here), so the key says exactly what is exposed.
  if (options.attentionProbe) resolved.attentionProbe = { layers: selectAttentionLayers(config, height, width, options.attentionProbe.layers).map((layer) => layer.name) };
  return resolved;
}

/** Declares the graph inputs of `buildUnetGraph` (in order) for a batch of `resolved.batch` rows. */
export function declareUnetInputs(context: NetContext, config: UnetConfig, resolved: ResolvedUnetOptions): UnetBodyInputs {
  const { b } = context;
  const { batch, height, width } = resolved;
  const sample = b.input(UNET_INPUTS.sample, 'float32', [batch, config.inChannels, height, width]);
  const timestep = b.input(UNET_INPUTS.timestep, 'float32', [resolved.perSampleTimesteps ? batch : 1]);
  const encoderHiddenStates = b.input(UNET_INPUTS.encoderHiddenStates, 'float32', [batch, resolved.textLength, crossAttentionWidth(config)]);
  if (!resolved.withResiduals) return { sample, timestep, encoderHiddenStates };
  return { sample, timestep, encoderHiddenStates, residuals: declareResidualInputs(context, config, batch, height, width) };
}

/** down_residual_00… and mid_residual inputs for a batch of `batch` rows. */
export function declareResidualInputs(context: NetContext, config: UnetTrunkConfig, batch: number, height: number, width: number): { down: Value[]; mid: Value } {
  const { b } = context;
  const down = unetSkipShapes(config, batch, height, width).map((shape, k) => b.input(downResidualName(k), 'float32', shape));
  return { down, mid: b.input(UNET_INPUTS.midResidual, 'float32', midShape(config, batch, height, width)) };
}

/** The shapes of the UNet's skips = the ControlNet's down residuals, in order. */
export function unetSkipShapes(config: UnetTrunkConfig, batch: number, height: number, width: number): Shape[] {
  return skipShapes(config, batch, height, width);
}

/** The width every cross-attention block reads from encoder_hidden_states (the parser checked they agree). */
export function crossAttentionWidth(config: UnetTrunkConfig & { up?: UnetConfig['up'] }): number {
  const blocks = [...config.down, ...(config.up ?? [])];
  const width = blocks.find((block) => block.attention)?.attention?.crossAttentionDim ?? config.mid?.attention.crossAttentionDim;
  if (width === undefined) throw new Error('UNet graph: the config has no cross-attention block, so encoder_hidden_states has no width');
  return width;
}

/** UNet2DConditionModel.forward → noise prediction [B, C_out, h, w]. `prefix` roots the weight names (e.g. for a combined graph). */
export function unetBody(netContext: NetContext, config: UnetConfig, inputs: UnetBodyInputs, prefix = ''): Value {
  const { b } = netContext;
  let sample = inputs.sample;
  if (config.centerInputSample) sample = b.sub(b.mul(sample, b.scalar(2)), b.scalar(1));
  const context: UnetBlockContext = {
    ...netContext,
    trunk: config,
    timeActivation: timeConditioning(netContext, config, inputs.timestep, prefix),
    context: inputs.encoderHiddenStates,
    ...(inputs.lora ? { lora: inputs.lora } : {}),
    ...(inputs.attentionProbe ? { probe: inputs.attentionProbe } : {}),
  };

  const convIn = b.scope('conv_in', () => conv2d(context, childKey(prefix, 'conv_in'), sample, config.blockOutChannels[0] as number, config.convInKernel));
  const down = downPath(context, prefix, convIn);
  let hidden = down.output;
  let skips = down.skips;
  const { residuals } = inputs;
  if (residuals) {
    if (residuals.down.length !== skips.length) throw new Error(`UNet graph: ${residuals.down.length} down residuals for ${skips.length} skips`);
    skips = b.scope('controlnet_residuals', () => skips.map((skip, k) => b.add(skip, residuals.down[k] as Value)));
  }
  if (config.mid) hidden = midBlock(context, childKey(prefix, 'mid_block'), config.mid, hidden);
  if (residuals) hidden = b.add(hidden, residuals.mid);

  config.up.forEach((spec, i) => {
    hidden = upBlock(context, childKey(prefix, `up_blocks.${i}`), spec, hidden, skips);
  });
  return b.scope('conv_out', () => {
    const normalized = silu(b, groupNorm2d(context, childKey(prefix, 'conv_norm_out'), hidden, config.normNumGroups, config.normEps));
    return conv2d(context, childKey(prefix, 'conv_out'), normalized, config.outChannels, config.convOutKernel);
  });
}
