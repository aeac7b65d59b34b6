/**
 * A generation's PNG as the gallery keeps it: the 8-bit image with its recipe embedded. One code path
 * for the CLI (`generate`, `reproduce`) and the app's generation jobs, so both write the same file.
 */
import { encodePng } from '../engine/imaging/encode';
import type { RgbImage } from '../engine/imaging/decode';
import { embedRecipe } from './png-recipe';
import type { Recipe } from './recipe';
import type { GenerationRecord, GenerationsStore } from './generations-store';

export async function generationPng(image: RgbImage, recipe: Recipe | null): Promise<Uint8Array> {
  const plain = await encodePng(image);
  return recipe ? embedRecipe(plain, recipe) : plain;
}

export interface GenerationToRecord {
  image: RgbImage;
  recipe: Recipe;
  subjectId?: number | null;
  modelId?: number | null;
  parentId?: number | null;
  /** Checked once the PNG is encoded, just before anything is written: a cancelled job leaves nothing. */
  signal?: AbortSignal;
}

/** Encodes the PNG (recipe embedded) and records it in the gallery: file first, then its row. */
export async function recordGeneration(store: GenerationsStore, generation: GenerationToRecord): Promise<GenerationRecord> {
  const png = await generationPng(generation.image, generation.recipe);
  generation.signal?.throwIfAborted();
  return store.insert({
    recipe: generation.recipe,
    png,
    subjectId: generation.subjectId ?? null,
    modelId: generation.modelId ?? null,
    parentId: generation.parentId ?? null,
  });
}
