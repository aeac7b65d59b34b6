/**
 * LoRA weight files for the UNet's attention projections.
 *
 * - diffusers' `pytorch_lora_weights.safetensors` (LoraLoaderMixin.save_lora_weights): keys
 *   `unet.<module>.lora.down.weight` [r, in] and `.lora.up.weight` [out, r], F32, metadata
 *   {"format": "pt"}. The format stores no alpha, so the file's up is raw up × alpha / r and the file
 *   means the same in diffusers (network alpha None). Reading it for further training with a given
 *   (r, alpha) unfolds it: raw up = file up × r / alpha.
 * - kohya / A1111 SD-1.5 files: `lora_unet_<module with '.' → '_'>.lora_down.weight`, `.lora_up.weight`
 *   and a scalar `.alpha` (absent: alpha = r), effective update alpha/r · up·down. Underscores in module
 *   paths make the name ambiguous, so keys are matched against the model's own module list (each
 *   target's path with '.' → '_', see `kohyaName`), never split back by guessing.
 * - Text-encoder tensors (kohya's `lora_te*`, diffusers' `text_encoder.` / `text_encoder_2.`) are not
 *   applied: they are returned as skipped so the caller can say so.
 *
 * Every check names its keys: unknown keys, a down without its up, a rank that differs between
 * modules, shapes that do not fit the model, conv (4-D) adapters, non-float data, NaN or ±Inf.
 */
import { parseUnetConfig, type AttentionSpec } from '../nets/unet-config';
import { decodeToFloat32 } from './float-decode';
import { parseSafetensorsHeader, type TensorEntry } from './safetensors';
import { serializeSafetensors } from './safetensors-writer';

/** A projection that carries an adapter (diffusers module path), with its features. */
export interface LoraTarget {
  module: string;
  inFeatures: number;
  outFeatures: number;
}

/** Raw LoRA tensors: y = W·x + scale · (alpha / r) · up(down(x)). */
export interface LoraWeights {
  rank: number;
  alpha: number;
  /** Module path → down [r, in], up [out, r] (raw: alpha/r not folded in). */
  modules: Map<string, { down: Float32Array; up: Float32Array }>;
}

export type LoraFileFormat = 'diffusers' | 'kohya';

export interface ReadLora {
  format: LoraFileFormat;
  lora: LoraWeights;
  /** Tensors the file holds for parts we do not adapt (kohya's text encoder), with why. */
  skipped: string[];
}

export class LoraFileError extends Error {
  constructor(
    readonly file: string,
    readonly problems: readonly string[],
  ) {
    super(`${file} is not a LoRA for this model: ${problems.slice(0, 12).join('; ')}${problems.length > 12 ? `; and ${problems.length - 12} more` : ''}`);
    this.name = 'LoraFileError';
  }
}

const PROJECTIONS = ['to_q', 'to_k', 'to_v', 'to_out.0'] as const;
const DIFFUSERS_PREFIX = 'unet.';
const KOHYA_UNET_PREFIX = 'lora_unet_';
const KOHYA_TEXT_PREFIX = 'lora_te';
/** diffusers' text-encoder LoRA keys (save_lora_weights with text_encoder_lora_layers). */
const DIFFUSERS_TEXT_PREFIXES = ['text_encoder.', 'text_encoder_2.'];
const DIFFUSERS_METADATA = { format: 'pt' };

/**
 * Every attention projection of the UNet, in `unet.named_modules()` order: diffusers 0.25.1's
 * UNet2DConditionModel registers `down_blocks` and `up_blocks` (empty lists, filled later) before
 * `mid_block`; a cross-attention block registers `attentions` before `resnets`; a BasicTransformerBlock
 * has attn1 then attn2, each to_q, to_k, to_v, to_out.0. A default initialisation draws in this order.
 */
export function loraTargets(unetConfig: unknown): LoraTarget[] {
  const config = parseUnetConfig(unetConfig);
  const targets: LoraTarget[] = [];
  const addTransformers = (prefix: string, channels: number, attention: AttentionSpec, depths: readonly number[]) => {
    const inner = attention.heads * Math.floor(channels / attention.heads);
    depths.forEach((depth, j) => {
      for (let k = 0; k < depth; k++) {
        const block = `${prefix}.attentions.${j}.transformer_blocks.${k}`;
        const selfKeys = attention.onlyCrossAttention ? attention.crossAttentionDim : inner;
        for (const [name, keyWidth] of [['attn1', selfKeys], ['attn2', attention.crossAttentionDim]] as const) {
          for (const projection of PROJECTIONS) {
            const reads = projection === 'to_k' || projection === 'to_v' ? keyWidth : inner;
            targets.push({ module: `${block}.${name}.${projection}`, inFeatures: reads, outFeatures: inner });
          }
        }
      }
    });
  };
  config.down.forEach((block, i) => block.attention && addTransformers(`down_blocks.${i}`, block.outChannels, block.attention, block.attention.transformerLayers.slice(0, block.layers)));
  config.up.forEach((block, i) => block.attention && addTransformers(`up_blocks.${i}`, block.outChannels, block.attention, block.attention.transformerLayers.slice(0, block.layers)));
  if (config.mid) addTransformers('mid_block', config.mid.channels, config.mid.attention, config.mid.attention.transformerLayers);
  return targets;
}

/** diffusers' file: up stored as raw up × alpha / r. */
export function writeDiffusersLora(lora: LoraWeights): Uint8Array {
  if (!Number.isSafeInteger(lora.rank) || lora.rank < 1 || !Number.isFinite(lora.alpha)) throw new Error(`a LoRA needs a positive integer rank and a finite alpha (got rank ${lora.rank}, alpha ${lora.alpha})`);
  const uneven = [...lora.modules].filter(([, { down, up }]) => down.length === 0 || up.length === 0 || down.length % lora.rank !== 0 || up.length % lora.rank !== 0);
  if (uneven.length > 0) throw new Error(`LoRA tensors that are not [rank ${lora.rank}, n] / [n, rank ${lora.rank}]: ${uneven.map(([module]) => module).join(', ')}`);
  const fold = lora.alpha / lora.rank;
  const tensors = [...lora.modules].flatMap(([module, { down, up }]) => [
    { name: `${DIFFUSERS_PREFIX}${module}.lora.down.weight`, dtype: 'F32' as const, shape: [lora.rank, down.length / lora.rank], data: bytesOf(down) },
    { name: `${DIFFUSERS_PREFIX}${module}.lora.up.weight`, dtype: 'F32' as const, shape: [up.length / lora.rank, lora.rank], data: bytesOf(fold === 1 ? up : up.map((v) => Math.fround(v * fold))) },
  ]);
  return serializeSafetensors(tensors, DIFFUSERS_METADATA);
}

/**
 * Reads a diffusers or kohya LoRA file for `targets`. Without `alpha` the result is the file's effective
 * weights with alpha = r (apply at scale s: y += s · up·down); with `alpha` (training on), the up tensors
 * are unfolded to raw ones for that alpha.
 */
export function readLoraFile(bytes: Uint8Array, targets: readonly LoraTarget[], options: { alpha?: number; file?: string } = {}): ReadLora {
  const file = options.file ?? 'the LoRA file';
  let entries: readonly TensorEntry[];
  try {
    entries = parseSafetensorsHeader(bytes, bytes.length, file).tensors;
  } catch (error) {
    throw new LoraFileError(file, [error instanceof Error ? error.message : String(error)]);
  }
  const format: LoraFileFormat = entries.some((e) => e.name.startsWith(KOHYA_UNET_PREFIX) || e.name.startsWith(KOHYA_TEXT_PREFIX)) ? 'kohya' : 'diffusers';
  const byModule = new Map(targets.map((t) => [format === 'kohya' ? kohyaName(t.module) : t.module, t]));
  const problems: string[] = [];
  const skipped: string[] = [];
  const parts = new Map<string, { down?: TensorEntry; up?: TensorEntry; alpha?: TensorEntry }>();
  for (const entry of entries) {
    const parsed = format === 'kohya' ? parseKohyaKey(entry.name) : parseDiffusersKey(entry.name);
    if (parsed === 'text-encoder' || (format === 'diffusers' && DIFFUSERS_TEXT_PREFIXES.some((prefix) => entry.name.startsWith(prefix)))) {
      skipped.push(`${entry.name} (text encoder: not applied)`);
      continue;
    }
    if (!parsed || !byModule.has(parsed.module)) {
      problems.push(`'${entry.name}' is not a LoRA tensor of this UNet's attention projections`);
      continue;
    }
    const slot = parts.get(parsed.module) ?? {};
    slot[parsed.part] = entry;
    parts.set(parsed.module, slot);
  }

  let rank: number | null = null;
  const modules = new Map<string, { down: Float32Array; up: Float32Array }>();
  for (const [name, slot] of parts) {
    const target = byModule.get(name) as LoraTarget;
    if (!slot.down || !slot.up) {
      const has = [slot.down && 'a down', slot.up && 'an up', slot.alpha && 'an alpha'].filter(Boolean).join(' and ');
      problems.push(`${target.module} has ${has} tensor but no ${[!slot.down && 'down', !slot.up && 'up'].filter(Boolean).join(' or ')}`);
      continue;
    }
    const [down, up] = [slot.down, slot.up];
    for (const entry of [down, up, slot.alpha].filter((e): e is TensorEntry => e !== undefined)) {
      if (!['F32', 'F16', 'BF16', 'F64'].includes(entry.dtype)) problems.push(`'${entry.name}' is ${entry.dtype}, not a float type`);
    }
    if (down.shape.length !== 2 || up.shape.length !== 2) {
      problems.push(`'${down.shape.length !== 2 ? down.name : up.name}' has shape [${(down.shape.length !== 2 ? down : up).shape.join(', ')}]: only 2-D (linear) adapters are supported, not conv LoRA`);
      continue;
    }
    const r = down.shape[0] as number;
    if (r < 1) {
      problems.push(`'${down.name}' has rank 0`);
      continue;
    }
    if (slot.alpha && slot.alpha.shape.reduce((n, d) => n * d, 1) !== 1) problems.push(`'${slot.alpha.name}' is [${slot.alpha.shape.join(', ')}], not a scalar`);
    if (down.shape[1] !== target.inFeatures) problems.push(`'${down.name}' is [${down.shape.join(', ')}], but ${target.module} reads ${target.inFeatures} features`);
    if (up.shape[0] !== target.outFeatures || up.shape[1] !== r) problems.push(`'${up.name}' is [${up.shape.join(', ')}], but must be [${target.outFeatures}, ${r}] for ${target.module}`);
    if (rank !== null && r !== rank) problems.push(`'${down.name}' has rank ${r}, other modules ${rank}`);
    rank ??= r;
    const values = (entry: TensorEntry) => {
      const data = decodeToFloat32(bytes.subarray(entry.offset, entry.offset + entry.byteLength), entry.dtype);
      if (data.some((v) => !Number.isFinite(v))) problems.push(`'${entry.name}' holds NaN or infinite values`);
      return data;
    };
    const downValues = values(down);
    let upValues = values(up);
    // kohya: the effective update is alpha/r · up·down; fold it into up as diffusers' files do.
    const kohyaAlpha = slot.alpha ? (values(slot.alpha)[0] as number) : r;
    if (format === 'kohya' && kohyaAlpha !== r) upValues = upValues.map((v) => Math.fround((v * kohyaAlpha) / r));
    modules.set(target.module, { down: downValues, up: upValues });
  }
  if (problems.length === 0 && modules.size === 0) problems.push('it holds no LoRA tensors for this UNet');
  if (problems.length > 0) throw new LoraFileError(file, problems);

  const r = rank as number;
  if (options.alpha === undefined) return { format, lora: { rank: r, alpha: r, modules }, skipped };
  const unfold = r / options.alpha;
  for (const adapter of modules.values()) adapter.up = adapter.up.map((v) => Math.fround(v * unfold));
  return { format, lora: { rank: r, alpha: options.alpha, modules }, skipped };
}

/** 'down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q' → 'down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q'. */
export function kohyaName(module: string): string {
  return module.replace(/\./g, '_');
}

function parseDiffusersKey(key: string): { module: string; part: 'down' | 'up' } | null {
  const match = /^unet\.(.+)\.lora\.(down|up)\.weight$/.exec(key);
  return match ? { module: match[1] as string, part: match[2] as 'down' | 'up' } : null;
}

function parseKohyaKey(key: string): { module: string; part: 'down' | 'up' | 'alpha' } | 'text-encoder' | null {
  if (key.startsWith(KOHYA_TEXT_PREFIX)) return 'text-encoder';
  const match = /^lora_unet_(.+)\.(lora_down\.weight|lora_up\.weight|alpha)$/.exec(key);
  if (!match) return null;
  const part = match[2] === 'alpha' ? 'alpha' : match[2] === 'lora_down.weight' ? 'down' : 'up';
  return { module: match[1] as string, part };
}

function bytesOf(values: Float32Array): Uint8Array {
  const copy = Float32Array.from(values);
  return new Uint8Array(copy.buffer, copy.byteOffset, copy.byteLength);
}
