/**
 * BLIP-Diffusion's prompt building and CLIP tokenisation (diffusers v0.25.1 `BlipDiffusionPipeline`):
 * the conditional prompt is amplified by repetition and cut to leave room for the Q-Former's query
 * tokens; the negative prompt is padded to the full text length and never cut. Pure: no Node, no DOM.
 */
import type { ClipTokenizer } from '../tokenizers/clip-bpe';
import { pythonStrip } from '../tokenizers/unicode-text';

/** The reference pipeline's defaults (`prompt_strength=1.0`, `prompt_reps=20`, `neg_prompt=""`). */
export const DEFAULT_PROMPT_STRENGTH = 1.0;
export const DEFAULT_PROMPT_REPS = 20;
export const DEFAULT_NEGATIVE_PROMPT = '';

export interface BlipPromptInput {
  prompt: string;
  /** The subject word(s) put into the prompt: `a {targetSubject} {prompt}`. */
  targetSubject: string;
  promptStrength?: number;
  promptReps?: number;
}

export interface BlipPromptTokenizeInput extends BlipPromptInput {
  negativePrompt?: string;
  /** The text encoder's `max_position_embeddings` (77 for CLIP). */
  maxPositionEmbeddings: number;
  /** The Q-Former's `num_query_tokens` (16): these many subject embeddings are spliced into the prompt. */
  queryTokenCount: number;
}

export interface BlipPromptIds {
  /** `maxPositionEmbeddings - queryTokenCount` ids: truncated, padded with `<|endoftext|>`. */
  condIds: number[];
  /** `maxPositionEmbeddings` ids: padded, never truncated. */
  uncondIds: number[];
}

/** Thrown instead of the reference's crash when the negative prompt does not fit the text encoder. */
export class NegativePromptTooLongError extends Error {
  constructor(
    readonly tokenCount: number,
    readonly maxTokenCount: number,
  ) {
    super(
      `The negative prompt is too long: it has ${tokenCount} tokens, and at most ${maxTokenCount} fit ` +
        `(${maxTokenCount + 2} with the start and end tokens). Shorten the negative prompt.`,
    );
    this.name = 'NegativePromptTooLongError';
  }
}

/** `", ".join([f"a {target} {prompt.strip()}"] * int(prompt_strength * prompt_reps))`. */
export function buildBlipPrompt(input: BlipPromptInput): string {
  const strength = input.promptStrength ?? DEFAULT_PROMPT_STRENGTH;
  const reps = input.promptReps ?? DEFAULT_PROMPT_REPS;
  const product = strength * reps;
  if (!Number.isFinite(product)) throw new RangeError(`promptStrength x promptReps must be finite, got ${strength} x ${reps}`);
  // Python's int() truncates toward zero, and a list repeated a negative number of times is empty.
  const repetitions = Math.max(0, Math.trunc(product));
  const phrase = `a ${input.targetSubject} ${pythonStrip(input.prompt)}`;
  return Array.from({ length: repetitions }, () => phrase).join(', ');
}

export function tokenizeBlipPrompts(clip: ClipTokenizer, input: BlipPromptTokenizeInput): BlipPromptIds {
  const { maxPositionEmbeddings, queryTokenCount } = input;
  if (!Number.isInteger(maxPositionEmbeddings) || !Number.isInteger(queryTokenCount) || queryTokenCount < 0) {
    throw new RangeError(`maxPositionEmbeddings and queryTokenCount must be integers, got ${maxPositionEmbeddings} and ${queryTokenCount}`);
  }
  const condLength = maxPositionEmbeddings - queryTokenCount;
  // The query embeddings go in after `<|startoftext|>` and the first word, so at least those two must fit.
  if (condLength < 2) {
    throw new RangeError(`${queryTokenCount} query tokens leave no room for the prompt in ${maxPositionEmbeddings} text positions`);
  }
  const condIds = clip.encode(buildBlipPrompt(input), { maxLength: condLength, padding: 'max_length', truncation: true });
  const uncondIds = clip.encode(input.negativePrompt ?? DEFAULT_NEGATIVE_PROMPT, { maxLength: maxPositionEmbeddings, padding: 'max_length' });
  if (uncondIds.length > maxPositionEmbeddings) {
    throw new NegativePromptTooLongError(uncondIds.length - 2, maxPositionEmbeddings - 2);
  }
  return { condIds, uncondIds };
}
