/**
 * A library subject as a recipe names it (photo hashes + weights, and optionally a second subject mixed
 * in with a ratio), and the one way such a subject becomes the embedding the generator uses. The app's
 * generation job and every reproduction (CLI `reproduce`, the gallery) go through `recipeSubjectEmbedding`,
 * so the same photos, weights and ratio give the same bits, hence the same pixels.
 */
import type { SubjectDetail } from '../api/contract';
import { meanEmbedding, type SubjectEmbedding } from '../engine/pipelines/subject-embedding';
import { RECIPE_LIMITS, type LibraryRecipeSubject, type RecipeMix } from '../gallery/recipe';
import { mixSubjects } from './subject-embeddings';

/** One photo's embedding for a category word: from the cache (the job) or computed again (reproduce). */
export type RecipePhotoEmbedder = (sha256: string, category: string) => Promise<SubjectEmbedding>;

/** A subject's photos by hash with their weights; only ratios matter, so weights above the recipe's bound are scaled down together. */
export function recipeSubjectOf(subject: SubjectDetail): LibraryRecipeSubject {
  const largest = Math.max(...subject.photos.map((p) => p.weight));
  const scale = largest > RECIPE_LIMITS.scale ? RECIPE_LIMITS.scale / largest : 1;
  return { name: subject.name, category: subject.category, photos: subject.photos.map((p) => ({ sha256: p.sha256, weight: p.weight * scale })) };
}

/** The weighted mean of the subject's per-photo embeddings, with the recipe's weights. */
export async function librarySubjectEmbedding(subject: LibraryRecipeSubject, embed: RecipePhotoEmbedder): Promise<SubjectEmbedding> {
  const embeddings: SubjectEmbedding[] = [];
  for (const photo of subject.photos) embeddings.push(await embed(photo.sha256, subject.category));
  return meanEmbedding(embeddings, subject.photos.map((p) => p.weight));
}

/** The subject's embedding, mixed with the second subject's at the recipe's ratio when there is one (LAVIS' `ratio`). */
export async function recipeSubjectEmbedding(recipe: { subject: LibraryRecipeSubject; mix?: RecipeMix | undefined }, embed: RecipePhotoEmbedder): Promise<SubjectEmbedding> {
  const first = await librarySubjectEmbedding(recipe.subject, embed);
  if (recipe.mix === undefined) return first;
  return mixSubjects(first, await librarySubjectEmbedding(recipe.mix.subject, embed), recipe.mix.ratio);
}
