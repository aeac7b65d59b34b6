/**
 * A recipe back into what `generate` runs: the one conversion every reproduction uses (CLI `reproduce`,
 * reproducing from the gallery). Files are named by hash only, so each is found in the library or given
 * by the user (and checked); a library subject's embedding is computed again from its photos, weights
 * and mix through `recipeSubjectEmbedding`, the same code the generation job used. A LoRA file or a
 * subject embedding file is not kept in the library: the user gives it (checked by hash) or the
 * reproduction is refused, saying which file and flag.
 */
import type { Database } from 'better-sqlite3';
import { readLoraForModel, readSubjectEmbeddingFile } from '../engine/pipelines/adapter-files';
import type { EngineContext } from '../engine/pipelines/engine-context';
import type { GenerateRequest } from '../engine/pipelines/generate';
import type { ModelComponent, ModelFolder } from '../models/model-folder';
import { controlNetComponent, detectControlModelFolder } from '../models/control-model-folder';
import { ControlModelStore } from '../library/control-model-store';
import { engineEmbedder } from '../library/subject-embeddings';
import { recipeSubjectEmbedding } from '../library/subject-recipe';
import { recipeToGenerateRequest, type Recipe } from './recipe';
import { findLibraryPhoto, sha256OfFile } from './recipe-files';
import { recipePhotoNeeds } from './recipe-library';
import { applyAdapters, recipeAdapterPlan } from '../library/adapter-application';
import { combineLoras } from '../engine/weights/lora-combine';
import { findControlImage } from '../library/control-images';

export interface RecipeRunSources {
  /** The library that may hold the recipe's photos and control image (by hash). */
  db: Database;
  dataDir: string;
  /** A reference photo the user gives (zero-shot recipes); must have the recipe's hash. */
  reference?: string;
  /** A control image the user gives; must have the recipe's hash. */
  control?: string;
  /** The LoRA file the user gives (recipes that apply one); must have the recipe's hash. */
  lora?: string;
  /** The subject embedding file the user gives (recipes made from one); must have the recipe's hash. */
  embedding?: string;
}

/** Why a file a recipe needs cannot be used, written for the user. */
export class RecipeFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RecipeFileError';
  }
}

/** A file the recipe names by hash: the one given (checked) or the library's copy. */
export function locateRecipeFile(sources: RecipeRunSources, sha256: string, given: string | undefined, what: string, flag: string): string {
  if (given !== undefined) {
    const actual = sha256OfFile(given);
    if (actual !== sha256) throw new RecipeFileError(`${given} is not the ${what} this recipe used (its sha256 is ${actual}, the recipe's is ${sha256}): give the original file with ${flag}.`);
    return given;
  }
  const found = findLibraryPhoto(sources.db, sources.dataDir, sha256);
  if (found === null) throw new RecipeFileError(`the ${what} of this recipe (sha256 ${sha256}) is not in the library at ${sources.dataDir}: give the file with ${flag}.`);
  return found;
}

/** The recipe's control map: the file given (checked), the library's stored map, or a library photo with that hash. */
function locateControlImage(sources: RecipeRunSources, sha256: string): string {
  if (sources.control === undefined) {
    const stored = findControlImage(sources.dataDir, sha256);
    if (stored !== null) return stored;
  }
  return locateRecipeFile(sources, sha256, sources.control, 'control image', '--control');
}

/** A file the recipe names by hash that only the user can give (the library does not keep it). */
function givenRecipeFile(sha256: string, given: string | undefined, what: string, flag: string): string {
  if (given === undefined) throw new RecipeFileError(`this recipe used ${what} (sha256 ${sha256}), which the library does not keep: give the file with ${flag}.`);
  const actual = sha256OfFile(given);
  if (actual !== sha256) throw new RecipeFileError(`${given} is not ${what} this recipe used (its sha256 is ${actual}, the recipe's is ${sha256}): give the original file with ${flag}.`);
  return given;
}

/**
 * The generate request that runs `recipe` again on `context` (whose device should be the resolved one,
 * so the embeddings run where the denoising does). Every file is located before any computation starts.
 */
export async function recipeGenerateRequest(context: EngineContext, model: ModelFolder, recipe: Recipe, sources: RecipeRunSources): Promise<GenerateRequest> {
  const controlnet = recipeControlNet(sources, recipe);
  const request = await recipeRequestWithoutControlNet(context, model, recipe, sources);
  return controlnet ? { ...request, controlnet } : request;
}

/** The recipe's own ControlNet (a control model of the library, by fingerprint), or undefined when it used the model's. */
export function recipeControlNet(sources: Pick<RecipeRunSources, 'db'>, recipe: Recipe): ModelComponent | undefined {
  const wanted = recipe.control?.controlnet;
  if (!wanted) return undefined;
  const stored = new ControlModelStore(sources.db).byHash(wanted.hash);
  const folder = stored ? detectControlModelFolder(stored.folder) : null;
  if (!stored || folder === null || folder.kind !== 'controlnet') {
    throw new RecipeFileError(`this recipe used the ControlNet “${wanted.name}” (fingerprint ${wanted.hash.slice(0, 12)}…), which is not in the library: download or add it in Models & Settings, then reproduce again.`);
  }
  return controlNetComponent(folder);
}

async function recipeRequestWithoutControlNet(context: EngineContext, model: ModelFolder, recipe: Recipe, sources: RecipeRunSources): Promise<GenerateRequest> {
  const control = recipe.control ? locateControlImage(sources, recipe.control.sha256) : undefined;
  // A LoRA at strength 0 is not applied (generate runs the plain graph), so its file is not needed.
  const loraFile = recipe.lora && recipe.lora.scale !== 0 ? givenRecipeFile(recipe.lora.sha256, sources.lora, 'a LoRA file', '--lora') : undefined;
  const subject = recipe.subject;
  if (recipe.styles && !('photos' in subject)) throw new RecipeFileError('this recipe applies library style adapters to a subject that is not a library subject, which BLIP Studio never writes');
  const embeddingFile = 'embedding' in subject ? givenRecipeFile(subject.embedding.sha256, sources.embedding, 'a subject embedding file', '--embedding') : undefined;
  const inputs = { ...(control !== undefined ? { control: { path: control } } : {}), ...(loraFile !== undefined ? { lora: readLoraForModel(loraFile, model).lora } : {}) };
  if ('embedding' in subject) return recipeToGenerateRequest(recipe, { model, subject: { embedding: readSubjectEmbeddingFile(embeddingFile!, model) }, ...inputs });
  if ('reference' in subject) {
    const reference = locateRecipeFile(sources, subject.reference.sha256, sources.reference, 'subject photo', '--reference');
    return recipeToGenerateRequest(recipe, { model, subject: { image: { path: reference }, category: subject.category }, ...inputs });
  }
  const paths = new Map<string, string>();
  for (const need of recipePhotoNeeds(recipe)) {
    const found = findLibraryPhoto(sources.db, sources.dataDir, need.sha256);
    if (found === null) {
      throw new RecipeFileError(`${need.label} (sha256 ${need.sha256}) is not in the library at ${sources.dataDir}: add it to a subject there, then reproduce again.`);
    }
    paths.set(need.sha256, found);
  }
  // Library adapters (a fine-tune, style LoRAs) come from the library by hash, before any model runs.
  const adapters = recipeAdapterPlan(sources.db, recipe);
  const embed = engineEmbedder(context, model);
  const photos = await recipeSubjectEmbedding({ subject, mix: recipe.mix }, (sha256, category) => embed({ path: paths.get(sha256)!, sha256 }, category));
  const applied = applyAdapters(adapters, model, recipe.model.hash, photos);
  const request = recipeToGenerateRequest(recipe, { model, subject: { embedding: applied.embedding }, ...inputs });
  const lora = combineLoras([...(request.lora ? [request.lora] : []), ...(applied.lora ? [applied.lora] : [])]);
  const { lora: _given, ...rest } = request;
  return lora ? { ...rest, lora } : rest;
}
