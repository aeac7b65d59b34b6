/**
 * LAVIS's LocalBlend (salesforce/LAVIS @ 506965b9, lavis/models/blip_diffusion_models/ptp_utils.py), the
 * mask of a prompt word from the UNet's cross-attention, as pure functions:
 * - `wordTokenIndices`: `get_word_inds(prompt, word, tokenizer)`: the prompt split on " ", the positions
 *   of the words equal to `word` (exact, case-sensitive), then the CLIP tokens of the prompt decoded one
 *   by one (`.strip("#")`) and their lengths accumulated until each word is covered; +1 for BOS. When
 *   the conditioning has the Q-Former's query tokens spliced in (BLIP-Diffusion's target prompt), every
 *   index at or after the splice position moves by their count (LAVIS writes 16 one-token "sks"
 *   placeholders into the text for this);
 * - `AttentionAccumulator`: AttentionStore: the per-step maps of each layer summed over steps
 *   (LocalBlend reads the running sum after every step);
 * - `wordAttentionMap`: `(maps * alpha).sum(-1).mean(1)`: summed over the word's tokens, averaged over
 *   heads × layers (the layers must share one grid);
 * - `maxPool2d` (3×3, stride 1, pad 1: k = 1), `resizeNearest` (F.interpolate's default mode, to the
 *   latent size), `normalizeByMax` (÷ max over H, W), `thresholdMask` (> 0.3 by default).
 * Pure: no Node, no DOM.
 */
import type { ClipTokenizer } from '../tokenizers/clip-bpe';
import { BYTE_TO_UNICODE } from '../tokenizers/byte-level';

/** LocalBlend's default `threshold` (`lb_threshold` of LAVIS's edit()). */
export const LOCAL_BLEND_THRESHOLD = 0.3;
/** LocalBlend's `k`: the max-pool kernel is (2k + 1)², stride 1, padding k. */
export const LOCAL_BLEND_POOL_RADIUS = 1;

export class WordNotInPromptError extends Error {
  constructor(
    readonly word: string,
    readonly prompt: string,
    readonly reason: 'absent' | 'truncated',
  ) {
    const words = prompt.split(' ').filter((w) => w !== '');
    super(
      reason === 'absent'
        ? `The word "${word}" is not in the prompt "${prompt}": pick one of its words (${words.map((w) => `"${w}"`).join(', ')}).`
        : `The word "${word}" of the prompt "${prompt}" lies past the text encoder's token limit, so it has no attention map: pick an earlier word or shorten the prompt.`,
    );
    this.name = 'WordNotInPromptError';
  }
}

/** The query tokens spliced into the text conditioning (BLIP-Diffusion: 16 at ctx_begin_pos 2). */
export interface SplicedTokens {
  begin: number;
  count: number;
}

export interface WordTokenOptions {
  splice?: SplicedTokens;
  /** Keys of the cross-attention (77): indices at or past it are dropped (the prompt was truncated). */
  length?: number;
}

/** LAVIS's get_word_inds (+ the splice offset): the positions of `word`'s tokens in the conditioning. Throws WordNotInPromptError. */
export function wordTokenIndices(clip: ClipTokenizer, prompt: string, word: string, options: WordTokenOptions = {}): number[] {
  const split = prompt.split(' ');
  const places = new Set(split.flatMap((w, i) => (w === word ? [i] : [])));
  if (places.size === 0) throw new WordNotInPromptError(word, prompt, 'absent');
  const pieces = clip.tokenize(prompt).map((token) => decodedLength(token));
  const out: number[] = [];
  let length = 0;
  let pointer = 0;
  for (let i = 0; i < pieces.length && pointer < split.length; i++) {
    length += pieces[i] as number;
    if (places.has(pointer)) out.push(i + 1);
    if (length >= (split[pointer] as string).length) {
      pointer += 1;
      length = 0;
    }
  }
  const shifted = options.splice ? out.map((index) => (index >= (options.splice as SplicedTokens).begin ? index + (options.splice as SplicedTokens).count : index)) : out;
  const kept = options.length === undefined ? shifted : shifted.filter((index) => index < (options.length as number));
  if (kept.length === 0) throw new WordNotInPromptError(word, prompt, shifted.length === 0 ? 'absent' : 'truncated');
  return kept;
}

const UNICODE_TO_BYTE = new Map(BYTE_TO_UNICODE.map((char, byte) => [char, byte]));
const END_OF_WORD = '</w>';

/** len(tokenizer.decode([id]).strip("#")) in Python code points: bytes decoded, `</w>` → space, stripped. */
function decodedLength(token: string): number {
  const bytes = [...token.replace(END_OF_WORD, '')].map((char) => UNICODE_TO_BYTE.get(char) ?? 0);
  const text = new TextDecoder('utf-8').decode(Uint8Array.from(bytes)).trim();
  return [...text.replace(/^#+|#+$/gu, '')].length;
}

/** One layer's head-averaged cross-attention probabilities, [S = height·width, L] (row-major). */
export interface LayerAttention {
  heads: number;
  height: number;
  width: number;
  keys: number;
  probabilities: Float32Array | Float64Array;
}

/** AttentionStore for the LocalBlend layers: each layer's maps summed over the steps added so far. */
export class AttentionAccumulator {
  readonly #sums: LayerAttention[] = [];
  #steps = 0;

  get steps(): number {
    return this.#steps;
  }

  /** One denoising step: the layers in the same order every step. */
  add(layers: readonly LayerAttention[]): void {
    if (this.#steps > 0 && layers.length !== this.#sums.length) throw new Error(`attention store: ${layers.length} layers this step, ${this.#sums.length} before`);
    layers.forEach((layer, k) => {
      if (layer.probabilities.length !== layer.height * layer.width * layer.keys) throw new Error(`attention store: layer ${k} has ${layer.probabilities.length} values for ${layer.height}×${layer.width}×${layer.keys}`);
      const sum = this.#sums[k];
      if (!sum) {
        this.#sums[k] = { ...layer, probabilities: Float64Array.from(layer.probabilities) };
        return;
      }
      const into = sum.probabilities;
      for (let i = 0; i < into.length; i++) into[i] = (into[i] as number) + (layer.probabilities[i] as number);
    });
    this.#steps += 1;
  }

  get layers(): readonly LayerAttention[] {
    return this.#sums;
  }
}

/** `(maps * alpha).sum(-1).mean(1)`: Σ over the word's tokens, mean over heads × layers → [height·width]. */
export function wordAttentionMap(layers: readonly LayerAttention[], tokens: readonly number[]): { map: Float64Array; height: number; width: number } {
  const first = layers[0];
  if (!first) throw new Error('LocalBlend: no attention layers');
  const { height, width } = first;
  for (const layer of layers) if (layer.height !== height || layer.width !== width) throw new Error(`LocalBlend: layers of ${height}×${width} and ${layer.height}×${layer.width} cannot be averaged`);
  if (tokens.length === 0) throw new Error('LocalBlend: no word tokens');
  const map = new Float64Array(height * width);
  let heads = 0;
  for (const layer of layers) {
    for (const t of tokens) if (!Number.isInteger(t) || t < 0 || t >= layer.keys) throw new Error(`LocalBlend: token index ${t} outside 0..${layer.keys - 1}`);
    // Each layer's map is already the mean over its heads: weight it by its head count.
    for (let s = 0; s < map.length; s++) {
      let sum = 0;
      for (const t of tokens) sum += layer.probabilities[s * layer.keys + t] as number;
      map[s] = (map[s] as number) + layer.heads * sum;
    }
    heads += layer.heads;
  }
  for (let s = 0; s < map.length; s++) map[s] = (map[s] as number) / heads;
  return { map, height, width };
}

/** F.max_pool2d((2r+1)², stride 1, padding r) of one [height, width] map (padding never wins). */
export function maxPool2d(map: ArrayLike<number>, height: number, width: number, radius = LOCAL_BLEND_POOL_RADIUS): Float64Array {
  checkSize(map, height, width);
  const out = new Float64Array(height * width);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let best = -Infinity;
      for (let dy = -radius; dy <= radius; dy++) {
        const yy = y + dy;
        if (yy < 0 || yy >= height) continue;
        for (let dx = -radius; dx <= radius; dx++) {
          const xx = x + dx;
          if (xx < 0 || xx >= width) continue;
          const v = map[yy * width + xx] as number;
          if (v > best) best = v;
        }
      }
      out[y * width + x] = best;
    }
  }
  return out;
}

/** F.interpolate(mode='nearest') of one map: output (i, j) reads (floor(i·h/H), floor(j·w/W)). */
export function resizeNearest(map: ArrayLike<number>, height: number, width: number, outHeight: number, outWidth: number): Float64Array {
  checkSize(map, height, width);
  const out = new Float64Array(outHeight * outWidth);
  for (let i = 0; i < outHeight; i++) {
    const y = Math.min(height - 1, Math.floor((i * height) / outHeight));
    for (let j = 0; j < outWidth; j++) out[i * outWidth + j] = map[y * width + Math.min(width - 1, Math.floor((j * width) / outWidth))] as number;
  }
  return out;
}

/** map / max(map) (LocalBlend's normalisation; an all-zero map gives NaN, which no threshold passes, as in torch). */
export function normalizeByMax(map: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < map.length; i++) max = Math.max(max, map[i] as number);
  return Float64Array.from(map as ArrayLike<number>, (v) => v / max);
}

/** `mask.gt(threshold)`: 1 where the value is above the threshold, else 0. */
export function thresholdMask(map: ArrayLike<number>, threshold = LOCAL_BLEND_THRESHOLD): Uint8Array {
  return Uint8Array.from(map as ArrayLike<number>, (v) => (v > threshold ? 1 : 0));
}

export interface LocalBlendResult {
  /** The word's map at the layers' grid, before pooling. */
  attention: Float64Array;
  /** After max-pool, resized (nearest) to the latent size and divided by its max: [latentHeight·latentWidth]. */
  normalized: Float64Array;
  /** normalized > threshold, 0/1, latent size. */
  mask: Uint8Array;
}

/** LocalBlend.__call__ for one prompt: word map → max-pool → nearest to the latent size → ÷ max → > threshold. */
export function localBlend(layers: readonly LayerAttention[], tokens: readonly number[], latentHeight: number, latentWidth: number, options: { threshold?: number; poolRadius?: number } = {}): LocalBlendResult {
  const { map, height, width } = wordAttentionMap(layers, tokens);
  const pooled = maxPool2d(map, height, width, options.poolRadius ?? LOCAL_BLEND_POOL_RADIUS);
  const normalized = normalizeByMax(resizeNearest(pooled, height, width, latentHeight, latentWidth));
  return { attention: map, normalized, mask: thresholdMask(normalized, options.threshold ?? LOCAL_BLEND_THRESHOLD) };
}

function checkSize(map: ArrayLike<number>, height: number, width: number): void {
  if (map.length !== height * width) throw new Error(`a ${height}×${width} map needs ${height * width} values, got ${map.length}`);
}
