/**
 * The fine-tune's text conditioning, as LAVIS trains BLIP-Diffusion (fine-tune kit README, step 5):
 * the caption `a {category}` for every photo, CLIP-tokenised with `padding="do_not_pad"`,
 * `truncation=True`, `max_length=77` (the tokenizer's model_max_length), so the sequence is the n
 * caption ids, not a padded 77; the context text encoder then splices the Q subject embeddings in at
 * ctx_begin_pos, giving n + Q positions (nets/clip-text-encoder.ts, option `textTokens: n`).
 * Inference tokenises differently (blip-prompt.ts: a repeated prompt padded to 77 − Q).
 * Pure: no Node, no I/O.
 */
import type { ClipTokenizer } from '../tokenizers/clip-bpe';

/** CLIP's tokenizer_config.json `model_max_length`, the length LAVIS truncates the caption to. */
export const CLIP_MODEL_MAX_LENGTH = 77;

export interface TrainingCaptionInput {
  /** The subject's category word(s), e.g. 'dog'. */
  category: string;
  /** The text encoder's `max_position_embeddings`: caption ids + query tokens must fit. */
  maxPositionEmbeddings: number;
  /** The Q-Former's `num_query_tokens`. */
  queryTokenCount: number;
  /** model_index.json `ctx_begin_pos`: the caption must have at least this many ids before the splice. */
  ctxBeginPos: number;
  /** The tokenizer's `model_max_length` (default 77). */
  modelMaxLength?: number;
}

/** The reference would index past the position table here; we refuse with the numbers instead. */
export class CaptionTooLongError extends Error {
  constructor(
    readonly tokenCount: number,
    readonly maxTokenCount: number,
  ) {
    super(`The category is too long: the caption has ${tokenCount} tokens, and at most ${maxTokenCount} fit beside the subject embedding. Use a shorter category.`);
    this.name = 'CaptionTooLongError';
  }
}

/** LAVIS's SubjectDrivenTextToImageDataset: one caption for every photo. */
export function trainingCaption(category: string): string {
  return `a ${category}`;
}

/** The caption's ids, `<|startoftext|>` … `<|endoftext|>`, unpadded. */
export function tokenizeTrainingCaption(clip: ClipTokenizer, input: TrainingCaptionInput): number[] {
  const { maxPositionEmbeddings, queryTokenCount, ctxBeginPos } = input;
  const ids = clip.encode(trainingCaption(input.category), { maxLength: input.modelMaxLength ?? CLIP_MODEL_MAX_LENGTH, padding: 'none', truncation: true });
  const room = maxPositionEmbeddings - queryTokenCount;
  if (ids.length > room) throw new CaptionTooLongError(ids.length, room);
  if (ids.length < ctxBeginPos) throw new RangeError(`ctx_begin_pos ${ctxBeginPos} lies beyond the caption's ${ids.length} tokens`);
  return ids;
}

export interface CaptionConditioningFeeds {
  /** [B, n] int64: the caption's ids, the same for every batch item. */
  inputIds: { dims: [number, number]; data: BigInt64Array };
  /** [B, Q, D] float32: the subject embedding [1, Q, D] broadcast to the batch. */
  ctxEmbeddings: { dims: [number, number, number]; data: Float32Array };
}

/** The context text encoder's inputs for a batch: every row gets the same caption and the same subject embedding. */
export function captionConditioningFeeds(ids: readonly number[], embedding: { dims: readonly number[]; data: Float32Array }, batch: number): CaptionConditioningFeeds {
  const [rows, tokens, hidden] = embedding.dims as [number, number, number];
  if (embedding.dims.length !== 3 || rows !== 1 || embedding.data.length !== tokens * hidden) {
    throw new RangeError(`the subject embedding must be [1, Q, D], got [${embedding.dims.join(', ')}]`);
  }
  if (!Number.isSafeInteger(batch) || batch < 1) throw new RangeError(`batch must be a positive integer, got ${batch}`);
  const inputIds = new BigInt64Array(batch * ids.length);
  const ctxEmbeddings = new Float32Array(batch * embedding.data.length);
  for (let row = 0; row < batch; row++) {
    ids.forEach((id, i) => (inputIds[row * ids.length + i] = BigInt(id)));
    ctxEmbeddings.set(embedding.data, row * embedding.data.length);
  }
  return { inputIds: { dims: [batch, ids.length], data: inputIds }, ctxEmbeddings: { dims: [batch, tokens, hidden], data: ctxEmbeddings } };
}
