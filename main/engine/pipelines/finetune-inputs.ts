/**
 * Everything a fine-tune needs from the user's photos and the model, prepared once: the training
 * pixels (shortest side to R with PIL's bicubic, centre crop, [−1, 1]), the initial subject embedding
 * (the photos' mean query embedding, as generation uses), the caption ids as LAVIS trains ("a <category>",
 * unpadded) and the projections that carry adapters.
 */
import { parseBlipDiffusionIndex, parseBlipQFormerModelConfig, parseClipTextConfig } from '../nets/configs';
import { parseAutoencoderKLConfig, vaeScaleFactor } from '../nets/vae-config';
import type { LoraTargetShape } from '../nets/finetune-step';
import { preprocessTrainingPhotos } from '../imaging/training-photos';
import { ClipTokenizer } from '../tokenizers/clip-bpe';
import { loraTargets } from '../weights/lora-weights';
import { throwIfAborted, type EngineContext } from './engine-context';
import type { FinetuneRequest } from './finetune';
import { requireComponent, type ModelFolder } from './model-folder';
import { embedSubject, meanEmbedding, readClipTokenizerFiles } from './subject-embedding';
import { tokenizeTrainingCaption } from './training-caption';

export interface FinetuneInputsRequest {
  model: ModelFolder;
  photos: readonly string[];
  category: string;
  resolution: number;
  /** Where the embedding starts, when the caller has it (the app: the library's weighted mean); default the photos' mean. */
  initialEmbedding?: { dims: [1, number, number]; data: Float32Array };
}

export type FinetuneInputs = Pick<FinetuneRequest, 'targetPixels' | 'initialEmbedding' | 'captionIds' | 'targets' | 'ctxBeginPos'>;

export async function prepareFinetuneInputs(context: EngineContext, request: FinetuneInputsRequest): Promise<FinetuneInputs> {
  const { model, photos, category, resolution } = request;
  if (photos.length === 0) throw new Error('the fine-tune needs at least one photo of the subject');
  if (category.trim() === '') throw new Error('the subject needs a category word (e.g. dog)');
  const factor = vaeScaleFactor(parseAutoencoderKLConfig(requireComponent(model, 'vae').config));
  if (!Number.isSafeInteger(resolution) || resolution < factor || resolution % factor !== 0) {
    throw new Error(`the resolution must be a positive multiple of ${factor} (the VAE's downscaling factor), got ${resolution}`);
  }
  const targetPixels = await preprocessTrainingPhotos(photos, resolution);
  const initial = request.initialEmbedding ?? (await photosMeanEmbedding(context, model, photos, category));
  const { ctxBeginPos } = parseBlipDiffusionIndex(model.index);
  const captionIds = tokenizeTrainingCaption(ClipTokenizer.fromFiles(readClipTokenizerFiles(model)), {
    category,
    maxPositionEmbeddings: parseClipTextConfig(requireComponent(model, 'text_encoder').config).maxPositionEmbeddings,
    queryTokenCount: parseBlipQFormerModelConfig(requireComponent(model, 'qformer').config).numQueryTokens,
    ctxBeginPos,
  });
  const targets: LoraTargetShape[] = loraTargets(requireComponent(model, 'unet').config);
  return { targetPixels, initialEmbedding: { dims: initial.dims, data: initial.data }, captionIds, targets, ctxBeginPos };
}

async function photosMeanEmbedding(context: EngineContext, model: ModelFolder, photos: readonly string[], category: string) {
  const embeddings = [];
  for (const photo of photos) {
    throwIfAborted(context.signal);
    embeddings.push(await embedSubject(context, { model, subject: category, image: { path: photo } }));
  }
  return meanEmbedding(embeddings);
}
