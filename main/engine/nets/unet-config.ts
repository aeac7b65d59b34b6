/**
 * Typed configs of diffusers 0.25.1's UNet2DConditionModel and ControlNetModel, resolved into the
 * per-block shapes that the graph builders walk (channels, resnet layers, attention heads, transformer
 * depth per layer), so the builders read no JSON. A key that is absent takes the class's __init__
 * default; per-block keys may be one value or a list, as diffusers allows. Variants the builders do not
 * implement are refused with an error naming the key, never silently approximated.
 *
 * `attention_head_dim` is, in diffusers' long-standing naming quirk, the NUMBER of heads when
 * `num_attention_heads` is null (SD-1.5: 8 heads, head size = channels / 8). UNet2DConditionModel
 * 0.25.1 refuses a non-null `num_attention_heads`; ControlNetModel accepts it.
 *
 * Keys these block types never read in diffusers are ignored as diffusers ignores them:
 * resnet_out_scale_factor, resnet_skip_time_act, cross_attention_norm, mid_block_only_cross_attention
 * (Simple* blocks only), dropout (inference), upcast_attention (a float16 measure; graphs compute in
 * float32), and the class/addition sizes that only matter when their embedding type is set.
 */
import { ConfigError, ConfigReader } from './configs';

export type DownBlockType = 'CrossAttnDownBlock2D' | 'DownBlock2D';
export type UpBlockType = 'CrossAttnUpBlock2D' | 'UpBlock2D';

const DOWN_BLOCK_TYPES: readonly DownBlockType[] = ['CrossAttnDownBlock2D', 'DownBlock2D'];
const UP_BLOCK_TYPES: readonly UpBlockType[] = ['CrossAttnUpBlock2D', 'UpBlock2D'];
/** get_down_block / get_up_block strip this prefix from a block type name. */
const RES_BLOCK_PREFIX = 'UNetRes';
const MID_BLOCK_CROSS_ATTENTION = 'UNetMidBlock2DCrossAttn';
/** diffusers' get_activation names for SiLU. */
const SILU_NAMES = ['silu', 'swish'];
/** TimestepEmbedding's width when `time_embedding_dim` is null: 4 × block_out_channels[0]. */
const TIME_EMBED_EXPANSION = 4;

/** One Transformer2DModel per resnet layer of a cross-attention block. */
export interface AttentionSpec {
  heads: number;
  /** Width of encoder_hidden_states (to_k / to_v input). */
  crossAttentionDim: number;
  /** BasicTransformerBlock's attn1 attends to encoder_hidden_states too. */
  onlyCrossAttention: boolean;
  /** BasicTransformerBlocks in each layer's Transformer2DModel (one entry per resnet layer). */
  transformerLayers: readonly number[];
}

export interface DownBlockSpec {
  type: DownBlockType;
  inChannels: number;
  outChannels: number;
  /** Resnet (and, with attention, transformer) layers. */
  layers: number;
  attention: AttentionSpec | null;
  addDownsample: boolean;
}

export interface MidBlockSpec {
  channels: number;
  /** UNetMidBlock2DCrossAttn: resnet, then (transformer, resnet) once. */
  attention: AttentionSpec;
  /** Resnet outputs are divided by this (`mid_block_scale_factor`). */
  outputScaleFactor: number;
}

export interface UpBlockSpec {
  type: UpBlockType;
  /** The channels of the skip consumed by the block's last layer (diffusers' `in_channels`). */
  inChannels: number;
  /** The channels arriving from the block below (`prev_output_channel`). */
  prevOutputChannels: number;
  outChannels: number;
  layers: number;
  attention: AttentionSpec | null;
  addUpsample: boolean;
}

export interface TimeEmbeddingSpec {
  /** Sinusoidal channels (`block_out_channels[0]`). */
  projectionChannels: number;
  /** TimestepEmbedding output width, fed to every resnet. */
  embedDim: number;
  flipSinToCos: boolean;
  freqShift: number;
}

/** What UNet2DConditionModel and ControlNetModel share: input conv, time embedding, down path, mid block. */
export interface UnetTrunkConfig {
  inChannels: number;
  blockOutChannels: readonly number[];
  convInKernel: number;
  time: TimeEmbeddingSpec;
  down: readonly DownBlockSpec[];
  mid: MidBlockSpec | null;
  normNumGroups: number;
  normEps: number;
  useLinearProjection: boolean;
  /** Downsample2D conv padding; 0 means diffusers' asymmetric (0, 1, 0, 1) pad. */
  downsamplePadding: number;
}

export interface UnetConfig extends UnetTrunkConfig {
  outChannels: number;
  up: readonly UpBlockSpec[];
  convOutKernel: number;
  centerInputSample: boolean;
  /** Latent [height, width] the model was trained at, or null when the config has none. */
  sampleSize: readonly [number, number] | null;
}

export interface ControlNetConfig extends UnetTrunkConfig {
  conditioningChannels: number;
  conditioningEmbeddingOutChannels: readonly number[];
  /** `controlnet_conditioning_channel_order: bgr`: the control image's channels are flipped first. */
  flipConditioningChannels: boolean;
}

/** diffusers 0.25.1 UNet2DConditionModel. */
export function parseUnetConfig(json: unknown): UnetConfig {
  const c = new ConfigReader(json, UNET_WHERE);
  refuseUnsupported(c, UNET_UNSUPPORTED);
  const numAttention = c.raw('num_attention_heads');
  if (numAttention !== undefined) {
    throw new ConfigError(
      `${UNET_WHERE}: num_attention_heads must be null for UNet2DConditionModel (diffusers 0.25.1 refuses it; the head count is read from attention_head_dim), got ${JSON.stringify(numAttention)}`,
    );
  }
  const timeType = c.string('time_embedding_type', 'positional');
  if (timeType !== 'positional') throw c.invalid('time_embedding_type', "'positional' (Fourier time embeddings are not supported)", timeType);

  const downTypes = blockTypes(c, 'down_block_types', ['CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D'], DOWN_BLOCK_TYPES);
  const upTypes = blockTypes(c, 'up_block_types', ['UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D'], UP_BLOCK_TYPES);
  const blocks = downTypes.length;
  if (upTypes.length !== blocks) throw new ConfigError(`${UNET_WHERE}: up_block_types has ${upTypes.length} entries, down_block_types ${blocks}: they must match`);

  const blockOutChannels = positiveIntList(c, 'block_out_channels', [320, 640, 1280, 1280], blocks);
  const layersPerBlock = perBlockInts(c, 'layers_per_block', 2, blocks);
  const heads = perBlockInts(c, 'attention_head_dim', 8, blocks);
  const crossAttentionDims = perBlockInts(c, 'cross_attention_dim', 1280, blocks);
  const onlyCrossAttention = perBlockBooleans(c, 'only_cross_attention', false, blocks);
  const transformerLayers = transformerLayersPerBlock(c, 'transformer_layers_per_block', blocks, layersPerBlock);
  const timeEmbedDim = c.positiveInt('time_embedding_dim', TIME_EMBED_EXPANSION * (blockOutChannels[0] as number));

  const trunk = parseTrunk(c, UNET_WHERE, {
    downTypes,
    blockOutChannels,
    layersPerBlock,
    heads,
    crossAttentionDims,
    onlyCrossAttention,
    transformerLayers,
    timeEmbedDim,
    convInKernel: oddKernel(c, 'conv_in_kernel'),
    hasMidBlock: !c.isExplicitNull('mid_block_type'),
  });

  const up = upBlocks(c, UNET_WHERE, upTypes, { blockOutChannels, layersPerBlock, heads, crossAttentionDims, onlyCrossAttention, transformerLayers });
  checkCrossAttentionWidth(c, trunk, up);
  return {
    ...trunk,
    outChannels: c.positiveInt('out_channels', 4),
    up,
    convOutKernel: oddKernel(c, 'conv_out_kernel'),
    centerInputSample: c.boolean('center_input_sample', false),
    sampleSize: sampleSize(c),
  };
}

/** diffusers 0.25.1 ControlNetModel. */
export function parseControlNetConfig(json: unknown): ControlNetConfig {
  const c = new ConfigReader(json, CONTROLNET_WHERE);
  refuseUnsupported(c, CONTROLNET_UNSUPPORTED);
  if (c.boolean('global_pool_conditions', false)) throw c.invalid('global_pool_conditions', 'false (pooled residuals are not supported)', true);
  const order = c.string('controlnet_conditioning_channel_order', 'rgb');
  if (order !== 'rgb' && order !== 'bgr') throw c.invalid('controlnet_conditioning_channel_order', "'rgb' or 'bgr'", order);

  const downTypes = blockTypes(c, 'down_block_types', ['CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D'], DOWN_BLOCK_TYPES);
  const blocks = downTypes.length;
  const blockOutChannels = positiveIntList(c, 'block_out_channels', [320, 640, 1280, 1280], blocks);
  // ControlNetModel takes one int for these (its zero-conv loop runs `range(layers_per_block)`).
  const layers = c.positiveInt('layers_per_block', 2);
  const layersPerBlock = downTypes.map(() => layers);
  const crossAttentionDim = c.positiveInt('cross_attention_dim', 1280);
  const heads = c.raw('num_attention_heads') === undefined ? perBlockInts(c, 'attention_head_dim', 8, blocks) : perBlockInts(c, 'num_attention_heads', 8, blocks);
  if (c.isExplicitNull('mid_block_type')) throw c.invalid('mid_block_type', `'${MID_BLOCK_CROSS_ATTENTION}'`, null);

  const trunk = parseTrunk(c, CONTROLNET_WHERE, {
    downTypes,
    blockOutChannels,
    layersPerBlock,
    heads,
    crossAttentionDims: downTypes.map(() => crossAttentionDim),
    onlyCrossAttention: perBlockBooleans(c, 'only_cross_attention', false, blocks),
    transformerLayers: transformerLayersPerBlock(c, 'transformer_layers_per_block', blocks, layersPerBlock),
    timeEmbedDim: TIME_EMBED_EXPANSION * (blockOutChannels[0] as number),
    convInKernel: 3,
    hasMidBlock: true,
  });
  const conditioningEmbeddingOutChannels = positiveIntList(c, 'conditioning_embedding_out_channels', [16, 32, 96, 256]);
  return {
    ...trunk,
    conditioningChannels: c.positiveInt('conditioning_channels', 3),
    conditioningEmbeddingOutChannels,
    flipConditioningChannels: order === 'bgr',
  };
}

const UNET_WHERE = 'unet config';
const CONTROLNET_WHERE = 'controlnet config';

/** Keys whose other values select modules the builders do not implement: the values accepted (absent and null always are when listed). */
type Unsupported = readonly [key: string, accepted: readonly unknown[], what: string][];

const SHARED_UNSUPPORTED: Unsupported = [
  ['class_embed_type', [null], 'class embeddings'],
  ['num_class_embeds', [null], 'class embeddings'],
  ['addition_embed_type', [null], 'additional (text/image/time) embeddings'],
  ['encoder_hid_dim', [null], 'encoder_hidden_states projections'],
  ['encoder_hid_dim_type', [null], 'encoder_hidden_states projections'],
  ['resnet_time_scale_shift', ['default'], 'other time conditionings (scale_shift, ada_group, spatial)'],
  ['act_fn', SILU_NAMES, 'activations other than SiLU'],
];
const UNET_UNSUPPORTED: Unsupported = [
  ...SHARED_UNSUPPORTED,
  ['attention_type', ['default'], 'gated (GLIGEN) attention layers'],
  ['dual_cross_attention', [false], 'dual cross-attention blocks'],
  ['time_cond_proj_dim', [null], 'timestep condition projections'],
  ['timestep_post_act', [null], 'activations after the time embedding'],
  ['time_embedding_act_fn', [null], 'activations after the time embedding'],
];
const CONTROLNET_UNSUPPORTED: Unsupported = SHARED_UNSUPPORTED;

function refuseUnsupported(c: ConfigReader, table: Unsupported): void {
  for (const [key, accepted, what] of table) {
    const value = c.raw(key);
    if (value === undefined || accepted.includes(value)) continue;
    throw c.invalid(key, `${accepted.map((v) => JSON.stringify(v)).join(' or ')}: ${what} are not supported`, value);
  }
}

interface TrunkParts {
  downTypes: readonly DownBlockType[];
  blockOutChannels: readonly number[];
  layersPerBlock: readonly number[];
  heads: readonly number[];
  crossAttentionDims: readonly number[];
  onlyCrossAttention: readonly boolean[];
  /** Per down block, per resnet layer. */
  transformerLayers: readonly (readonly number[])[];
  timeEmbedDim: number;
  convInKernel: number;
  hasMidBlock: boolean;
}

function parseTrunk(c: ConfigReader, where: string, parts: TrunkParts): UnetTrunkConfig {
  const { downTypes, blockOutChannels, layersPerBlock, heads, crossAttentionDims, onlyCrossAttention, transformerLayers } = parts;
  const normNumGroups = c.positiveInt('norm_num_groups', 32);
  for (const channels of blockOutChannels) {
    if (channels % normNumGroups !== 0) throw new ConfigError(`${where}: block_out_channels entry ${channels} must be divisible by norm_num_groups (${normNumGroups})`);
  }
  const attention = (i: number, layers: readonly number[]): AttentionSpec => ({
    heads: heads[i] as number,
    crossAttentionDim: crossAttentionDims[i] as number,
    onlyCrossAttention: onlyCrossAttention[i] as boolean,
    transformerLayers: layers,
  });
  const down = downTypes.map((type, i): DownBlockSpec => {
    const outChannels = blockOutChannels[i] as number;
    if (type === 'CrossAttnDownBlock2D') checkHeads(where, heads[i] as number, outChannels);
    return {
      type,
      inChannels: i === 0 ? outChannels : (blockOutChannels[i - 1] as number),
      outChannels,
      layers: layersPerBlock[i] as number,
      attention: type === 'CrossAttnDownBlock2D' ? attention(i, transformerLayers[i] as readonly number[]) : null,
      addDownsample: i < downTypes.length - 1,
    };
  });
  const last = downTypes.length - 1;
  const midChannels = blockOutChannels[last] as number;
  // UNetMidBlock2DCrossAttn takes transformer_layers_per_block[-1] (its first entry when that is per layer) and the last block's heads.
  const mid: MidBlockSpec | null = parts.hasMidBlock
    ? {
        channels: midChannels,
        attention: { ...attention(last, [(transformerLayers[last] as readonly number[])[0] as number]), onlyCrossAttention: false },
        outputScaleFactor: c.positiveNumber('mid_block_scale_factor', 1),
      }
    : null;
  if (parts.hasMidBlock) {
    const midType = c.string('mid_block_type', MID_BLOCK_CROSS_ATTENTION);
    if (midType !== MID_BLOCK_CROSS_ATTENTION) throw c.invalid('mid_block_type', `'${MID_BLOCK_CROSS_ATTENTION}' or null`, midType);
  }
  const downsamplePadding = c.nonNegativeInt('downsample_padding', 1);
  return {
    inChannels: c.positiveInt('in_channels', 4),
    blockOutChannels,
    convInKernel: parts.convInKernel,
    time: {
      projectionChannels: blockOutChannels[0] as number,
      embedDim: parts.timeEmbedDim,
      flipSinToCos: c.boolean('flip_sin_to_cos', true),
      freqShift: finiteNumber(c, 'freq_shift', 0),
    },
    down,
    mid,
    normNumGroups,
    normEps: c.positiveNumber('norm_eps', 1e-5),
    useLinearProjection: c.boolean('use_linear_projection', false),
    downsamplePadding,
  };
}

function upBlocks(
  c: ConfigReader,
  where: string,
  upTypes: readonly UpBlockType[],
  parts: Pick<TrunkParts, 'blockOutChannels' | 'layersPerBlock' | 'heads' | 'crossAttentionDims' | 'onlyCrossAttention' | 'transformerLayers'>,
): UpBlockSpec[] {
  const reversed = <T>(list: readonly T[]) => [...list].reverse();
  const channels = reversed(parts.blockOutChannels);
  const layers = reversed(parts.layersPerBlock);
  const heads = reversed(parts.heads);
  const crossDims = reversed(parts.crossAttentionDims);
  const onlyCross = reversed(parts.onlyCrossAttention);
  const upTransformerLayers = reverseTransformerLayers(c, upTypes.length, layers, parts.transformerLayers);
  const last = upTypes.length - 1;
  return upTypes.map((type, i): UpBlockSpec => {
    const outChannels = channels[i] as number;
    if (type === 'CrossAttnUpBlock2D') checkHeads(where, heads[i] as number, outChannels);
    return {
      type,
      inChannels: channels[Math.min(i + 1, last)] as number,
      prevOutputChannels: channels[Math.max(i - 1, 0)] as number,
      outChannels,
      // Each up block has one more layer than its down block: it also consumes the downsampler's skip.
      layers: (layers[i] as number) + 1,
      attention:
        type === 'CrossAttnUpBlock2D'
          ? { heads: heads[i] as number, crossAttentionDim: crossDims[i] as number, onlyCrossAttention: onlyCross[i] as boolean, transformerLayers: upTransformerLayers[i] as number[] }
          : null,
      addUpsample: i < last,
    };
  });
}

/** `reverse_transformer_layers_per_block` or, when null, the reversed `transformer_layers_per_block` (which must then be one int per block). */
function reverseTransformerLayers(c: ConfigReader, blocks: number, reversedLayers: readonly number[], downLayers: readonly (readonly number[])[]): number[][] {
  const key = 'reverse_transformer_layers_per_block';
  const upLayerCount = (i: number) => (reversedLayers[i] as number) + 1;
  const raw = c.raw(key);
  if (raw === undefined) {
    const perBlock = c.raw('transformer_layers_per_block');
    if (Array.isArray(perBlock) && perBlock.some(Array.isArray)) {
      throw new ConfigError(`${UNET_WHERE}: ${key} is required when transformer_layers_per_block lists per-layer depths (diffusers refuses this asymmetric UNet without it)`);
    }
    return [...downLayers].reverse().map((depths, i) => Array.from({ length: upLayerCount(i) }, () => depths[0] as number));
  }
  if (!Array.isArray(raw) || raw.length !== blocks) throw c.invalid(key, `a list of ${blocks} entries (one per up block)`, raw);
  return raw.map((entry: unknown, i) => {
    if (isPositiveInt(entry)) return Array.from({ length: upLayerCount(i) }, () => entry);
    if (Array.isArray(entry) && entry.length === upLayerCount(i) && entry.every(isPositiveInt)) return entry;
    throw c.invalid(`${key}[${i}]`, `a positive integer or a list of ${upLayerCount(i)} (one per layer of up block ${i})`, entry);
  });
}

/** `transformer_layers_per_block`: one int, one per block, or (per block) one per resnet layer. */
function transformerLayersPerBlock(c: ConfigReader, key: string, blocks: number, layersPerBlock: readonly number[]): number[][] {
  const raw = c.raw(key) ?? 1;
  const perLayer = (entry: unknown, i: number): number[] => {
    const layers = layersPerBlock[i] as number;
    if (isPositiveInt(entry)) return Array.from({ length: layers }, () => entry);
    if (Array.isArray(entry) && entry.length === layers && entry.every(isPositiveInt)) return entry;
    throw c.invalid(`${key}[${i}]`, `a positive integer or a list of ${layers} (one per layer of block ${i})`, entry);
  };
  if (isPositiveInt(raw)) return Array.from({ length: blocks }, (_, i) => perLayer(raw, i));
  if (!Array.isArray(raw) || raw.length !== blocks) throw c.invalid(key, `a positive integer or a list of ${blocks} (one per down block)`, raw);
  return raw.map(perLayer);
}

function blockTypes<T extends string>(c: ConfigReader, key: string, fallback: readonly T[], supported: readonly T[]): T[] {
  const raw = c.raw(key) ?? fallback;
  if (!Array.isArray(raw) || raw.length === 0 || !raw.every((t) => typeof t === 'string')) throw c.invalid(key, 'a non-empty list of block type names', raw);
  return raw.map((name: string, i) => {
    const type = (name.startsWith(RES_BLOCK_PREFIX) ? name.slice(RES_BLOCK_PREFIX.length) : name) as T;
    if (!supported.includes(type)) throw c.invalid(`${key}[${i}]`, `one of ${supported.join(', ')}`, name);
    return type;
  });
}

function positiveIntList(c: ConfigReader, key: string, fallback: readonly number[], length?: number): number[] {
  const raw = c.raw(key) ?? fallback;
  if (!Array.isArray(raw) || raw.length === 0 || !raw.every(isPositiveInt)) throw c.invalid(key, 'a non-empty list of positive integers', raw);
  if (length !== undefined && raw.length !== length) throw c.invalid(key, `a list of ${length} (one per down block)`, raw);
  return raw;
}

/** One int for every block, or a list with one per block. */
function perBlockInts(c: ConfigReader, key: string, fallback: number, blocks: number): number[] {
  const raw = c.raw(key) ?? fallback;
  if (isPositiveInt(raw)) return Array.from({ length: blocks }, () => raw);
  if (Array.isArray(raw) && raw.length === blocks && raw.every(isPositiveInt)) return raw;
  throw c.invalid(key, `a positive integer or a list of ${blocks} (one per down block)`, raw);
}

function perBlockBooleans(c: ConfigReader, key: string, fallback: boolean, blocks: number): boolean[] {
  const raw = c.raw(key) ?? fallback;
  if (typeof raw === 'boolean') return Array.from({ length: blocks }, () => raw);
  if (Array.isArray(raw) && raw.length === blocks && raw.every((v) => typeof v === 'boolean')) return raw;
  throw c.invalid(key, `true, false or a list of ${blocks} (one per down block)`, raw);
}

function oddKernel(c: ConfigReader, key: string): number {
  const kernel = c.positiveInt(key, 3);
  // diffusers pads (k − 1) // 2, which keeps the size only for odd kernels.
  if (kernel % 2 !== 1) throw c.invalid(key, 'an odd positive integer', kernel);
  return kernel;
}

function finiteNumber(c: ConfigReader, key: string, fallback: number): number {
  const raw = c.raw(key) ?? fallback;
  if (typeof raw !== 'number' || !Number.isFinite(raw)) throw c.invalid(key, 'a number', raw);
  return raw;
}

function sampleSize(c: ConfigReader): readonly [number, number] | null {
  const raw = c.raw('sample_size');
  if (raw === undefined) return null;
  if (isPositiveInt(raw)) return [raw, raw];
  if (Array.isArray(raw) && raw.length === 2 && raw.every(isPositiveInt)) return [raw[0] as number, raw[1] as number];
  throw c.invalid('sample_size', 'a positive integer or [height, width]', raw);
}

function checkHeads(where: string, heads: number, channels: number): void {
  // Transformer2DModel(heads, channels // heads): a zero head size leaves no attention.
  if (heads > channels) throw new ConfigError(`${where}: ${heads} attention heads (attention_head_dim / num_attention_heads) exceed the block's ${channels} channels`);
}

/** encoder_hidden_states is one tensor: every cross-attention block must read the same width. */
function checkCrossAttentionWidth(c: ConfigReader, trunk: UnetTrunkConfig, up: readonly UpBlockSpec[]): void {
  const widths = new Set([...trunk.down, ...up].flatMap((block) => (block.attention ? [block.attention.crossAttentionDim] : [])).concat(trunk.mid ? [trunk.mid.attention.crossAttentionDim] : []));
  if (widths.size > 1) throw c.invalid('cross_attention_dim', 'one width for every cross-attention block (encoder_hidden_states is one tensor)', [...widths]);
}

function isPositiveInt(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 1;
}
