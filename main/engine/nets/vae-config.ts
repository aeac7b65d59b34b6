/**
 * diffusers' AutoencoderKL config, parsed with the defaults of its `__init__` (diffusers 0.25.1) for
 * missing or null keys. Keys added by later diffusers versions are read with the defaults that keep
 * 0.25.1's behaviour: `mid_block_add_attention`, `use_quant_conv`, `use_post_quant_conv` (true) and
 * `shift_factor` (none, i.e. 0). `sample_size` (tiling only), `force_upcast` (float16 only) and
 * `latents_mean`/`latents_std` (used by other pipelines, never by the model) are not read.
 */
import { ConfigError, ConfigReader } from './configs';

const WHERE = 'vae config';

/** The resnet activations diffusers' `get_activation` names that the VAE graph implements. */
export type VaeActivation = 'silu' | 'gelu';

const ACTIVATIONS: Readonly<Record<string, VaeActivation>> = { silu: 'silu', swish: 'silu', gelu: 'gelu' };

/** The only block types an AutoencoderKL's Encoder/Decoder are built from in the published models. */
export const VAE_DOWN_BLOCK = 'DownEncoderBlock2D';
export const VAE_UP_BLOCK = 'UpDecoderBlock2D';

export interface AutoencoderKLConfig {
  inChannels: number;
  outChannels: number;
  latentChannels: number;
  /** One entry per encoder down block (and, reversed, per decoder up block). */
  blockOutChannels: readonly number[];
  /** Resnets per encoder down block; the decoder's up blocks have one more. */
  layersPerBlock: number;
  normNumGroups: number;
  activation: VaeActivation;
  /** UNet-space latents = (VAE latents − shiftFactor) × scalingFactor. */
  scalingFactor: number;
  /** SD3-style shift, applied by later pipelines around the model; 0 for every 0.25.1 model (no such key). */
  shiftFactor: number;
  midBlockAddAttention: boolean;
  useQuantConv: boolean;
  usePostQuantConv: boolean;
}

export function parseAutoencoderKLConfig(json: unknown): AutoencoderKLConfig {
  const c = new ConfigReader(json, WHERE);
  const blockOutChannels = positiveIntList(c, 'block_out_channels', [64]);
  const config: AutoencoderKLConfig = {
    inChannels: c.positiveInt('in_channels', 3),
    outChannels: c.positiveInt('out_channels', 3),
    latentChannels: c.positiveInt('latent_channels', 4),
    blockOutChannels,
    layersPerBlock: c.positiveInt('layers_per_block', 1),
    normNumGroups: c.positiveInt('norm_num_groups', 32),
    activation: vaeActivation(c, 'act_fn', 'silu'),
    scalingFactor: c.positiveNumber('scaling_factor', 0.18215),
    shiftFactor: finiteNumber(c, 'shift_factor', 0),
    midBlockAddAttention: c.boolean('mid_block_add_attention', true),
    useQuantConv: c.boolean('use_quant_conv', true),
    usePostQuantConv: c.boolean('use_post_quant_conv', true),
  };
  checkBlockTypes(c, 'down_block_types', VAE_DOWN_BLOCK, blockOutChannels.length);
  checkBlockTypes(c, 'up_block_types', VAE_UP_BLOCK, blockOutChannels.length);
  for (const channels of blockOutChannels) {
    if (channels % config.normNumGroups !== 0) {
      throw new ConfigError(`${WHERE}: block_out_channels entry ${channels} must be divisible by norm_num_groups (${config.normNumGroups}): every block is group-normalised`);
    }
  }
  return config;
}

/** How many times the encoder halves the image (and the decoder doubles the latents): 2^(blocks − 1). */
export function vaeScaleFactor(config: AutoencoderKLConfig): number {
  return 2 ** (config.blockOutChannels.length - 1);
}

function positiveIntList(c: ConfigReader, key: string, fallback: readonly number[]): number[] {
  const value = c.raw(key) ?? fallback;
  if (!Array.isArray(value) || value.length === 0 || !value.every((v) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 1)) {
    throw c.invalid(key, 'a non-empty list of positive integers', value);
  }
  return [...(value as number[])];
}

function finiteNumber(c: ConfigReader, key: string, fallback: number): number {
  const value = c.raw(key) ?? fallback;
  if (typeof value !== 'number' || !Number.isFinite(value)) throw c.invalid(key, 'a number', value);
  return value;
}

function vaeActivation(c: ConfigReader, key: string, fallback: string): VaeActivation {
  const name = c.string(key, fallback);
  const activation = ACTIVATIONS[name];
  if (!activation) throw c.invalid(key, `one of ${Object.keys(ACTIVATIONS).join(', ')}`, name);
  return activation;
}

/** A list of `count` block type names (the default is one block), each `expected`: the only type this graph builds. */
function checkBlockTypes(c: ConfigReader, key: string, expected: string, count: number): void {
  const types = c.stringList(key);
  const listed = c.raw(key) === undefined ? [expected] : types;
  if (listed.length !== count) throw c.invalid(key, `a list of ${count} block types, one per block_out_channels entry`, listed);
  const other = listed.find((type) => type !== expected);
  if (other !== undefined) throw new ConfigError(`${WHERE}: ${key} entry ${JSON.stringify(other)} is not supported (only ${expected})`);
}
