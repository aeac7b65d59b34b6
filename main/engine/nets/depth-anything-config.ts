/**
 * transformers' DepthAnythingConfig (with its DINOv2 `backbone_config`, a Dinov2Config), parsed with the
 * defaults of their `__init__` (transformers 4.57.6) for missing or null keys, and checked for what the
 * reference model would refuse or break on (a mis-sized neck, a patch size the reassemble stage cannot
 * reshape with, reshape_hidden_states …). Every error names the key.
 *
 * Depth-Anything-V2-Small-hf's config.json states only the backbone's geometry (hidden_size 384, 6
 * heads, image_size 518, patch 14, out_indices [3, 6, 9, 12], reshape_hidden_states false); the rest
 * (12 layers, mlp_ratio 4, GELU, LayerNorm eps 1e-6, qkv bias, layer scale, mask token, the final
 * LayerNorm on every feature map) comes from these defaults.
 */
import type { Activation } from '../graph/layers';
import { ConfigError, ConfigReader } from './configs';

const WHERE = 'depth config';

/** The MLP activations of transformers' ACT2FN that the DINOv2 layers here implement. */
export type DinoActivation = Activation | 'relu' | 'silu';

const ACTIVATIONS: Readonly<Record<string, DinoActivation>> = {
  gelu: 'gelu',
  gelu_new: 'gelu_tanh',
  gelu_pytorch_tanh: 'gelu_tanh',
  quick_gelu: 'quick_gelu',
  relu: 'relu',
  silu: 'silu',
  swish: 'silu',
};

export interface Dinov2BackboneConfig {
  hiddenSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  /** int(hidden_size × mlp_ratio): the plain MLP's hidden width. */
  intermediateSize: number;
  /** The SwiGLU FFN's hidden width: (int(intermediate × 2/3) + 7) // 8 × 8 (Dinov2SwiGLUFFN). */
  swigluHiddenSize: number;
  useSwigluFfn: boolean;
  hiddenAct: DinoActivation;
  layerNormEps: number;
  /** The stored position grid is (image_size / patch_size)², interpolated to each input's patch grid. */
  imageSize: number;
  patchSize: number;
  qkvBias: boolean;
  /** Whether the checkpoint holds `embeddings.mask_token` (unused at inference). */
  useMaskToken: boolean;
  /** Indices into ["stem", "stage1", …]: 0 is the embedding output, i the output of layer i. Ascending, distinct. */
  outIndices: readonly number[];
  /** backbone.layernorm on every feature map. */
  applyLayernorm: boolean;
}

export type DepthEstimationType = 'relative' | 'metric';

export interface DepthAnythingConfig {
  backbone: Dinov2BackboneConfig;
  /** Channels the reassemble projections read: the backbone's hidden size. */
  reassembleHiddenSize: number;
  patchSize: number;
  /** Per neck stage: > 1 a ConvTranspose of kernel = stride = factor, 1 nothing, < 1 a 3×3 conv of stride int(1/factor). */
  reassembleFactors: readonly number[];
  neckHiddenSizes: readonly number[];
  fusionHiddenSize: number;
  headHiddenSize: number;
  /** Which fusion output the head reads, as a non-negative index. */
  headInIndex: number;
  depthEstimationType: DepthEstimationType;
  /** The head's output scale: max_depth for metric models, 1 for relative ones (`max_depth if max_depth else 1`). */
  maxDepth: number;
}

/** DepthAnythingConfig's backbone when the config has neither `backbone_config` nor `backbone`. */
const DEFAULT_BACKBONE = { model_type: 'dinov2', image_size: 518, hidden_size: 384, num_attention_heads: 6, out_indices: [9, 10, 11, 12], apply_layernorm: true, reshape_hidden_states: false };

const DEFAULT_NECK_HIDDEN_SIZES = [48, 96, 192, 384];
const DEFAULT_REASSEMBLE_FACTORS = [4, 2, 1, 0.5];
/** RGB: the image processor makes three channels. */
const DINO_CHANNELS = 3;
/** Dinov2SwiGLUFFN rounds its hidden width up to a multiple of this. */
const SWIGLU_MULTIPLE = 8;

export function parseDepthAnythingConfig(json: unknown): DepthAnythingConfig {
  const c = new ConfigReader(json, WHERE);
  const modelType = c.string('model_type', 'depth_anything');
  if (modelType !== 'depth_anything') throw c.invalid('model_type', '"depth_anything"', modelType);
  if (c.raw('backbone') !== undefined) throw c.invalid('backbone', 'null (a named timm or hub backbone is not supported: the config must carry backbone_config)', c.raw('backbone'));
  if (c.boolean('use_timm_backbone', false)) throw c.invalid('use_timm_backbone', 'false (timm backbones are not supported)', true);

  const backbone = parseBackbone(c.raw('backbone_config') === undefined ? new ConfigReader(DEFAULT_BACKBONE, WHERE, 'backbone_config.') : c.child('backbone_config'));
  const neckHiddenSizes = positiveIntList(c, 'neck_hidden_sizes', DEFAULT_NECK_HIDDEN_SIZES);
  const reassembleFactors = factorList(c, 'reassemble_factors', DEFAULT_REASSEMBLE_FACTORS);
  const reassembleHiddenSize = c.positiveInt('reassemble_hidden_size', 384);
  const patchSize = c.positiveInt('patch_size', 14);
  const fusionHiddenSize = c.positiveInt('fusion_hidden_size', 64);
  const depthEstimationType = c.string('depth_estimation_type', 'relative');
  if (depthEstimationType !== 'relative' && depthEstimationType !== 'metric') throw c.invalid('depth_estimation_type', '"relative" or "metric"', depthEstimationType);
  // DepthAnythingConfig: `self.max_depth = max_depth if max_depth else 1` (so 0 means 1 too).
  const maxDepthRaw = c.raw('max_depth');
  const maxDepth = maxDepthRaw === 0 ? 1 : c.positiveNumber('max_depth', 1);

  if (reassembleFactors.length !== neckHiddenSizes.length) {
    throw c.invalid('reassemble_factors', `a list of ${neckHiddenSizes.length} factors, one per neck_hidden_sizes entry`, reassembleFactors);
  }
  if (backbone.outIndices.length !== neckHiddenSizes.length) {
    throw new ConfigError(
      `${WHERE}: backbone_config.out_indices (${JSON.stringify(backbone.outIndices)}) must name ${neckHiddenSizes.length} feature maps, one per neck_hidden_sizes entry (the neck refuses any other count)`,
    );
  }
  if (reassembleHiddenSize !== backbone.hiddenSize) {
    throw new ConfigError(`${WHERE}: reassemble_hidden_size (${reassembleHiddenSize}) must equal backbone_config.hidden_size (${backbone.hiddenSize}): the reassemble projections read the backbone's tokens`);
  }
  if (patchSize !== backbone.patchSize) {
    throw new ConfigError(`${WHERE}: patch_size (${patchSize}) must equal backbone_config.patch_size (${backbone.patchSize}): the neck reshapes the backbone's tokens on its own patch grid`);
  }
  if (fusionHiddenSize < 2) throw c.invalid('fusion_hidden_size', 'at least 2 (the head halves it)', fusionHiddenSize);
  const headInIndex = c.raw('head_in_index') ?? -1;
  const stages = neckHiddenSizes.length;
  if (typeof headInIndex !== 'number' || !Number.isSafeInteger(headInIndex) || headInIndex < -stages || headInIndex >= stages) {
    throw c.invalid('head_in_index', `an index into the ${stages} fusion outputs (−${stages}…${stages - 1})`, headInIndex);
  }
  return {
    backbone,
    reassembleHiddenSize,
    patchSize,
    reassembleFactors,
    neckHiddenSizes,
    fusionHiddenSize,
    headHiddenSize: c.positiveInt('head_hidden_size', 32),
    headInIndex: headInIndex < 0 ? headInIndex + stages : headInIndex,
    depthEstimationType,
    maxDepth,
  };
}

/** The stride of the 3×3 conv that downsamples a neck stage by `factor` < 1: int(1 / factor), as the reference. */
export function downsampleStride(factor: number): number {
  return Math.trunc(1 / factor);
}

function parseBackbone(b: ConfigReader): Dinov2BackboneConfig {
  const modelType = b.string('model_type', 'dinov2');
  if (modelType !== 'dinov2') throw b.invalid('model_type', '"dinov2" (the only backbone supported)', modelType);
  const hiddenSize = b.positiveInt('hidden_size', 768);
  const numHiddenLayers = b.positiveInt('num_hidden_layers', 12);
  const numAttentionHeads = b.positiveInt('num_attention_heads', 12);
  b.divisible('hidden_size', hiddenSize, 'num_attention_heads', numAttentionHeads);
  const mlpRatio = b.positiveNumber('mlp_ratio', 4);
  const intermediateSize = Math.trunc(hiddenSize * mlpRatio);
  if (intermediateSize < 1) throw b.invalid('mlp_ratio', 'a ratio giving an MLP of at least 1 unit', mlpRatio);
  const imageSize = squareSize(b, 'image_size', 224);
  const patchSize = squareSize(b, 'patch_size', 14);
  if (patchSize > imageSize) throw b.invalid('patch_size', `at most image_size (${imageSize})`, patchSize);
  const numChannels = b.positiveInt('num_channels', DINO_CHANNELS);
  if (numChannels !== DINO_CHANNELS) throw b.invalid('num_channels', `${DINO_CHANNELS} (RGB images)`, numChannels);
  if (b.boolean('reshape_hidden_states', true)) {
    throw b.invalid('reshape_hidden_states', 'false (DepthAnything reads the backbone tokens unreshaped; with true the reference neck fails)', true);
  }
  const name = b.string('hidden_act', 'gelu');
  const hiddenAct = ACTIVATIONS[name];
  if (!hiddenAct) throw b.invalid('hidden_act', `one of ${Object.keys(ACTIVATIONS).join(', ')}`, name);
  return {
    hiddenSize,
    numHiddenLayers,
    numAttentionHeads,
    intermediateSize,
    swigluHiddenSize: Math.floor((Math.trunc((intermediateSize * 2) / 3) + SWIGLU_MULTIPLE - 1) / SWIGLU_MULTIPLE) * SWIGLU_MULTIPLE,
    useSwigluFfn: b.boolean('use_swiglu_ffn', false),
    hiddenAct,
    layerNormEps: b.positiveNumber('layer_norm_eps', 1e-6),
    imageSize,
    patchSize,
    qkvBias: b.boolean('qkv_bias', true),
    useMaskToken: b.boolean('use_mask_token', true),
    outIndices: outIndices(b, numHiddenLayers),
    applyLayernorm: b.boolean('apply_layernorm', true),
  };
}

/** An int, or a [n, n] pair (the reference accepts iterables but its position grid is square). */
function squareSize(b: ConfigReader, key: string, fallback: number): number {
  const value = b.raw(key) ?? fallback;
  const pair = Array.isArray(value) && value.length === 2 && value[0] === value[1] ? value[0] : value;
  if (typeof pair !== 'number' || !Number.isSafeInteger(pair) || pair < 1) throw b.invalid(key, 'a positive integer (or a square [n, n])', value);
  return pair;
}

/**
 * transformers' get_aligned_output_features_output_indices over stage_names ["stem", "stage1", …]:
 * out_indices (negative ones counted from the end) and/or out_features, which must agree; neither → the
 * last stage. Distinct and ascending, as the reference requires.
 */
function outIndices(b: ConfigReader, layers: number): number[] {
  const stageNames = ['stem', ...Array.from({ length: layers }, (_, i) => `stage${i + 1}`)];
  const rawIndices = b.raw('out_indices');
  const rawFeatures = b.raw('out_features');
  let fromIndices: number[] | null = null;
  if (rawIndices !== undefined) {
    if (!Array.isArray(rawIndices) || rawIndices.length === 0 || !rawIndices.every((i) => typeof i === 'number' && Number.isSafeInteger(i) && i >= -stageNames.length && i < stageNames.length)) {
      throw b.invalid('out_indices', `a non-empty list of stage indices in −${stageNames.length}…${stageNames.length - 1} (stem = 0, layer i = i)`, rawIndices);
    }
    fromIndices = (rawIndices as number[]).map((i) => (i < 0 ? i + stageNames.length : i));
  }
  let fromFeatures: number[] | null = null;
  if (rawFeatures !== undefined) {
    if (!Array.isArray(rawFeatures) || rawFeatures.length === 0 || !rawFeatures.every((f) => typeof f === 'string' && stageNames.includes(f))) {
      throw b.invalid('out_features', `a non-empty list of stage names from ${stageNames[0]}, …, ${stageNames[stageNames.length - 1]}`, rawFeatures);
    }
    fromFeatures = (rawFeatures as string[]).map((f) => stageNames.indexOf(f));
  }
  if (fromIndices && fromFeatures && (fromIndices.length !== fromFeatures.length || fromIndices.some((i, k) => i !== fromFeatures[k]))) {
    throw b.invalid('out_features', `the stages out_indices names (${fromIndices.map((i) => stageNames[i]).join(', ')})`, rawFeatures);
  }
  const indices = fromIndices ?? fromFeatures ?? [layers];
  const key = fromIndices ? 'out_indices' : 'out_features';
  if (indices.some((i, k) => k > 0 && i <= (indices[k - 1] as number))) throw b.invalid(key, 'distinct stages in ascending order', fromIndices ? rawIndices : rawFeatures);
  return indices;
}

function positiveIntList(c: ConfigReader, key: string, fallback: readonly number[]): number[] {
  const value = c.raw(key) ?? fallback;
  if (!Array.isArray(value) || value.length === 0 || !value.every((v) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 1)) {
    throw c.invalid(key, 'a non-empty list of positive integers', value);
  }
  return [...(value as number[])];
}

/** Factors > 1 are ConvTranspose kernels (whole numbers); factors in (0, 1) give a 3×3 conv of stride int(1/f). */
function factorList(c: ConfigReader, key: string, fallback: readonly number[]): number[] {
  const value = c.raw(key) ?? fallback;
  const valid = (f: unknown) => typeof f === 'number' && Number.isFinite(f) && f > 0 && (f < 1 || Number.isSafeInteger(f));
  if (!Array.isArray(value) || value.length === 0 || !value.every(valid)) {
    throw c.invalid(key, 'a non-empty list of factors: whole numbers ≥ 1, or fractions in (0, 1) (a 3×3 conv of stride int(1/factor))', value);
  }
  return [...(value as number[])];
}
