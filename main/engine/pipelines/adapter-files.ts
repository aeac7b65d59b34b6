/**
 * The files a user gives generation besides photos, checked against the model they are for: a LoRA
 * (diffusers or kohya/A1111, weights/lora-weights.ts) and a subject embedding .npy (e.g. `finetune`'s
 * subject_embedding.npy). Shared by the CLI's `generate` and by reproducing a recipe that names them
 * by hash, so both refuse the same files with the same words.
 */
import { readFileSync } from 'node:fs';
import { readNpyFile } from '../io/npy-file';
import { parseBlipQFormerModelConfig, parseClipTextConfig } from '../nets/configs';
import { loraTargets, readLoraFile, type ReadLora } from '../weights/lora-weights';
import { requireComponent, type ModelFolder } from './model-folder';
import type { SubjectEmbedding } from './subject-embedding';

/** A LoRA file for this model's UNet, as applied at a strength (alpha/r folded in); `skipped` lists what is not applied. */
export function readLoraForModel(file: string, model: ModelFolder): ReadLora {
  return readLoraFile(new Uint8Array(readFileSync(file)), loraTargets(requireComponent(model, 'unet').config), { file });
}

/** A subject embedding .npy: float32 [1, Q, hidden] of this model (its Q-Former's query count, its text encoder's width), finite. */
export function readSubjectEmbeddingFile(file: string, model: ModelFolder): SubjectEmbedding {
  const array = readNpyFile(file);
  const queries = parseBlipQFormerModelConfig(requireComponent(model, 'qformer').config).numQueryTokens;
  const hidden = parseClipTextConfig(requireComponent(model, 'text_encoder').config).hiddenSize;
  if (array.dtype !== 'float32' || array.shape.length !== 3 || array.shape[0] !== 1 || array.shape[1] !== queries || array.shape[2] !== hidden) {
    throw new Error(`${file}: a subject embedding for this model is float32 [1, ${queries}, ${hidden}], this is ${array.dtype} [${array.shape.join(', ')}]`);
  }
  const data = array.data as Float32Array;
  if (data.some((v) => !Number.isFinite(v))) throw new Error(`${file}: the embedding holds NaN or infinite values`);
  return { dims: [1, queries, hidden], data };
}
