/**
 * diffusers 0.25.1's ControlNetModel as one graph: the UNet's encoder half (conv_in, time embedding,
 * down blocks, mid block) with the control image's ControlNetConditioningEmbedding added after conv_in,
 * then one zero-initialised 1×1 conv per skip (`controlnet_down_blocks.k`) and one for the mid block
 * (`controlnet_mid_block`), every residual × conditioning_scale. Its outputs are named as the UNet
 * graph's residual inputs, so they can be passed straight on.
 *
 * `controlnetBody` is the forward as a function of graph values, for the whole-step graph to compose.
 *
 * Shapes: B batch, C latent channels, h×w latent size, f = 2^(conditioning blocks − 1) the control
 * image's downscale, so the control image is [B, 3, f·h, f·w]; L text tokens, D cross-attention width.
 */
import type { Value } from '../graph/builder';
import { silu } from '../graph/layers';
import { buildNetGraph, netCacheKey, type NetContext, type NetGraph, resolveKernels } from './net-graph';
import { childKey, conv2d, downPath, midBlock, timeConditioning, type UnetBlockContext } from './unet-blocks';
import { parseControlNetConfig, type ControlNetConfig } from './unet-config';
import { crossAttentionWidth, downResidualName, UNET_INPUTS } from './unet';
import type { WeightCatalog } from './weight-catalog';
import type { AttentionLowering } from '../providers/provider-types';

export const CONTROLNET_NET = 'controlnet';
export const CONTROLNET_INPUTS = {
  sample: UNET_INPUTS.sample,
  timestep: UNET_INPUTS.timestep,
  encoderHiddenStates: UNET_INPUTS.encoderHiddenStates,
  controlnetCond: 'controlnet_cond',
  conditioningScale: 'conditioning_scale',
} as const;
export const CONTROLNET_OUTPUTS = { midResidual: UNET_INPUTS.midResidual, downResidual: downResidualName } as const;

/** ControlNetConditioningEmbedding: conv_in, then per step a 3×3 conv and a stride-2 3×3 conv, conv_out. */
const CONDITIONING_KERNEL = 3;
const CONDITIONING_STRIDE = 2;

export interface ControlNetGraphOptions {
  /** Rows (default 1; 2 for a CFG pair). */
  batch?: number;
  /** Latent size; the control image is `controlImageScale(config)` times larger. */
  height: number;
  width: number;
  /** Tokens of encoder_hidden_states. */
  textLength: number;
  fused?: boolean;
  /** Attention as one fused kernel (the default when fused) or as MatMul + Softmax + MatMul (providers/kernel-routing.ts). */
  attention?: AttentionLowering;
}

export interface ResolvedControlNetOptions {
  batch: number;
  height: number;
  width: number;
  textLength: number;
  fused: boolean;
  attention: AttentionLowering;
}

export interface ControlNetBodyInputs {
  /** [B, C, h, w] */
  sample: Value;
  /** [T] float32 */
  timestep: Value;
  /** [B, L, D] */
  encoderHiddenStates: Value;
  /** [B, 3, f·h, f·w] in [0, 1] */
  controlnetCond: Value;
  /** [1] float32 */
  conditioningScale: Value;
}

export interface ControlNetResiduals {
  down: Value[];
  mid: Value;
}

/**
 * Inputs: sample [B, C, h, w], timestep [1] float32, encoder_hidden_states [B, L, D],
 * controlnet_cond [B, 3, f·h, f·w], conditioning_scale [1].
 * Outputs: down_residual_00… (the UNet's skip shapes), mid_residual — all × conditioning_scale.
 */
export function buildControlNetGraph(config: unknown, catalog: WeightCatalog, options: ControlNetGraphOptions): NetGraph {
  const parsed = parseControlNetConfig(config);
  const resolved = resolveControlNetOptions(options);
  return buildNetGraph({
    net: CONTROLNET_NET,
    component: 'controlnet',
    config,
    options: resolved,
    catalog,
    body: (context) => {
      const { b } = context;
      const { batch, height, width } = resolved;
      const scale = controlImageScale(parsed);
      const residuals = controlnetBody(context, parsed, {
        sample: b.input(CONTROLNET_INPUTS.sample, 'float32', [batch, parsed.inChannels, height, width]),
        timestep: b.input(CONTROLNET_INPUTS.timestep, 'float32', [1]),
        encoderHiddenStates: b.input(CONTROLNET_INPUTS.encoderHiddenStates, 'float32', [batch, resolved.textLength, crossAttentionWidth(parsed)]),
        controlnetCond: b.input(CONTROLNET_INPUTS.controlnetCond, 'float32', [batch, parsed.conditioningChannels, height * scale, width * scale]),
        conditioningScale: b.input(CONTROLNET_INPUTS.conditioningScale, 'float32', [1]),
      });
      return [...residuals.down.map((value, k) => ({ name: CONTROLNET_OUTPUTS.downResidual(k), value })), { name: CONTROLNET_OUTPUTS.midResidual, value: residuals.mid }];
    },
  });
}

/** The cache key `buildControlNetGraph` would give, without building. */
export function controlNetGraphKey(config: unknown, catalog: WeightCatalog, options: ControlNetGraphOptions): string {
  parseControlNetConfig(config);
  return netCacheKey(CONTROLNET_NET, config, resolveControlNetOptions(options), catalog);
}

/** How much larger than the latents the control image is: one stride-2 conv per conditioning step. */
export function controlImageScale(config: ControlNetConfig): number {
  return CONDITIONING_STRIDE ** (config.conditioningEmbeddingOutChannels.length - 1);
}

export function resolveControlNetOptions(options: ControlNetGraphOptions): ResolvedControlNetOptions {
  const resolved = { batch: options.batch ?? 1, height: options.height, width: options.width, textLength: options.textLength, ...resolveKernels(options) };
  for (const name of ['batch', 'height', 'width', 'textLength'] as const) {
    const value = resolved[name];
    if (!Number.isSafeInteger(value) || value < 1) throw new Error(`ControlNet graph: ${name} must be a positive integer (got ${value})`);
  }
  return resolved;
}

/** ControlNetModel.forward (guess_mode off) → the scaled residuals. `prefix` roots the weight names. */
export function controlnetBody(netContext: NetContext, config: ControlNetConfig, inputs: ControlNetBodyInputs, prefix = ''): ControlNetResiduals {
  const { b } = netContext;
  const context: UnetBlockContext = {
    ...netContext,
    trunk: config,
    timeActivation: timeConditioning(netContext, config, inputs.timestep, prefix),
    context: inputs.encoderHiddenStates,
  };
  const channels = config.blockOutChannels[0] as number;
  const convIn = b.scope('conv_in', () => conv2d(context, childKey(prefix, 'conv_in'), inputs.sample, channels, config.convInKernel));
  const condition = b.scope('controlnet_cond_embedding', () => conditioningEmbedding(context, config, childKey(prefix, 'controlnet_cond_embedding'), inputs.controlnetCond, channels));
  const down = downPath(context, prefix, b.add(convIn, condition));
  const mid = config.mid ? midBlock(context, childKey(prefix, 'mid_block'), config.mid, down.output) : down.output;

  return b.scope('controlnet_residuals', () => {
    const zeroConv = (name: string, x: Value) => b.mul(conv2d(context, childKey(prefix, name), x, x.shape[1] as number, 1), inputs.conditioningScale);
    return { down: down.skips.map((skip, k) => zeroConv(`controlnet_down_blocks.${k}`, skip)), mid: zeroConv('controlnet_mid_block', mid) };
  });
}

/** ControlNetConditioningEmbedding: SiLU after every conv but the last (bgr order flips the channels first). */
function conditioningEmbedding(context: NetContext, config: ControlNetConfig, name: string, image: Value, outChannels: number): Value {
  const { b } = context;
  let x = image;
  if (config.flipConditioningChannels) x = b.slice(x, { starts: [-1], ends: [-(x.shape[1] as number) - 1], axes: [1], steps: [-1] });
  const steps = config.conditioningEmbeddingOutChannels;
  x = silu(b, conv2d(context, `${name}.conv_in`, x, steps[0] as number, CONDITIONING_KERNEL));
  for (let i = 0; i < steps.length - 1; i++) {
    const [channelIn, channelOut] = [steps[i] as number, steps[i + 1] as number];
    x = silu(b, conv2d(context, `${name}.blocks.${2 * i}`, x, channelIn, CONDITIONING_KERNEL));
    x = silu(b, conv2d(context, `${name}.blocks.${2 * i + 1}`, x, channelOut, CONDITIONING_KERNEL, { stride: CONDITIONING_STRIDE }));
  }
  return conv2d(context, `${name}.conv_out`, x, outChannels, CONDITIONING_KERNEL);
}
