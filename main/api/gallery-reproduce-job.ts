/**
 * "Reproduce" in the app: a recipe (a gallery result's, or a dropped PNG's) run again as a job on the
 * device queue, through the same conversion as the CLI's `reproduce` (`recipeGenerateRequest`: photos
 * from the library by hash, the subject's weights and mix) and the same step progress and previews as a
 * generation; the new image goes into the gallery (as a child of the original) and its pixels are
 * compared with the original's.
 */
import { join } from 'node:path';
import type { Database } from 'better-sqlite3';
import packageJson from '../../package.json' with { type: 'json' };
import type { ModelSummary, ReproduceRequest, Reproduction } from './contract';
import { StudioError } from './studio-error';
import type { JobContext } from '../jobs/job-queue';
import type { RuntimeClient } from '../engine/runtime/runtime-client';
import type { EngineContext } from '../engine/pipelines/engine-context';
import { resolveDevice } from '../engine/pipelines/resolved-device';
import { decodeRgb } from '../engine/imaging/decode';
import { floatImageToRgb } from '../engine/imaging/encode';
import { modelFingerprint } from '../library/model-fingerprint';
import type { ModelFolder } from '../models/model-folder';
import { openLibraryModel } from './library-model';
import type { GenerationRecord, GenerationsStore } from '../gallery/generations-store';
import { recordGeneration } from '../gallery/generation-png';
import { comparePixels, type PixelComparison } from '../gallery/pixel-compare';
import { readPngFile } from '../gallery/png-recipe';
import { rerunRecipe, type Recipe } from '../gallery/recipe';
import { recipeControlNet, recipeGenerateRequest, RecipeFileError } from '../gallery/recipe-run';
import { findControlImage } from '../library/control-images';
import { findLibraryPhoto } from '../gallery/recipe-files';
import { missingRecipePhotos, recipeLibrarySubject } from '../gallery/recipe-library';
import { uploadedRecipe } from './gallery-recipes';
import { missingRecipeAdapters } from '../library/adapter-application';
import { generateInJob } from './generation-progress';

/** Finished comparisons kept for `getReproduction` (older ones drop off). */
const REPRODUCTIONS_KEPT = 50;

/** Everything checked before the job is queued: what the user can fix is answered at once. */
export interface ReproductionPlan {
  recipe: Recipe;
  originalPng: Uint8Array;
  originalId: number | null;
  /** The library subject the new result is filed under (the original's, else the one holding the photos). */
  subjectId: number | null;
  model: ModelSummary;
  folder: ModelFolder;
  label: string;
}

export interface ReproduceEnvironment {
  db: Database;
  dataDir: string;
  gallery: GenerationsStore;
  models: readonly ModelSummary[];
}

export function planReproduction(request: ReproduceRequest, env: ReproduceEnvironment): ReproductionPlan {
  let recipe: Recipe;
  let originalPng: Uint8Array;
  let originalId: number | null = null;
  let subjectId: number | null;
  if ('generationId' in request) {
    const record = env.gallery.get(request.generationId);
    if (!record) throw new StudioError('not-found', `No generation with id ${request.generationId}: it may have been deleted.`);
    recipe = record.recipe;
    originalPng = readPngFile(env.gallery.absolutePath(record.imagePath));
    originalId = record.id;
    subjectId = record.subjectId ?? recipeLibrarySubject(env.db, recipe);
  } else {
    ({ recipe, bytes: originalPng } = uploadedRecipe(request.png));
    subjectId = recipeLibrarySubject(env.db, recipe);
  }
  const missing = missingRecipePhotos(env.db, env.dataDir, recipe)[0];
  if (missing) {
    throw new StudioError(
      'not-found',
      `This image cannot be made again: ${missing.label} (sha256 ${missing.sha256.slice(0, 12)}…) is no longer in the library. Add that photo to a subject again, then reproduce.`,
    );
  }
  if (recipe.control && findControlImage(env.dataDir, recipe.control.sha256) === null && findLibraryPhoto(env.db, env.dataDir, recipe.control.sha256) === null) {
    throw new StudioError('not-found', `This image was steered by a control image (sha256 ${recipe.control.sha256.slice(0, 12)}…) that is not in the library; reproduce it with the CLI's --control.`);
  }
  try {
    recipeControlNet(env, recipe);
  } catch (error) {
    if (error instanceof RecipeFileError) throw new StudioError('not-found', `This image cannot be made again: ${error.message}`);
    throw error;
  }
  // The library keeps no LoRA or embedding files (yet): only the CLI, given the file, can run these again.
  const given = [
    ...(recipe.lora && recipe.lora.scale !== 0 ? [{ what: 'a LoRA file', sha256: recipe.lora.sha256, flag: '--lora' }] : []),
    ...('embedding' in recipe.subject ? [{ what: 'a subject embedding file', sha256: recipe.subject.embedding.sha256, flag: '--embedding' }] : []),
  ];
  if (given.length > 0) {
    const files = given.map((file) => `${file.what} (sha256 ${file.sha256.slice(0, 12)}…)`).join(' and ');
    throw new StudioError('not-found', `This image was made with ${files} that the library does not keep; reproduce it with the CLI's ${given.map((file) => file.flag).join(' and ')}.`);
  }
  const missingAdapters = missingRecipeAdapters(env.db, recipe);
  if (missingAdapters.length > 0) {
    throw new StudioError('not-found', `This image cannot be made again: it was made with ${missingAdapters.join(' and ')}, which is no longer in the library.`);
  }
  const model = recipeModel(recipe, env.models);
  const folder = openLibraryModel(model);
  const label = `Reproduce “${recipe.prompt.length > 50 ? `${recipe.prompt.slice(0, 49)}…` : recipe.prompt}” (seed ${recipe.seed})`;
  return { recipe, originalPng, originalId, subjectId, model, folder, label };
}

/** The library model the recipe names: by content hash, else by folder; the job checks the hash before running. */
function recipeModel(recipe: Recipe, models: readonly ModelSummary[]): ModelSummary {
  const ready = models.filter((m) => m.status === 'ready');
  const model = ready.find((m) => m.hash === recipe.model.hash) ?? ready.find((m) => recipe.model.folder !== undefined && m.folder === recipe.model.folder);
  if (!model) {
    throw new StudioError(
      'not-found',
      `The model this image was made with, “${recipe.model.name}” (sha256 ${recipe.model.hash.slice(0, 12)}…), is not in the library: add it in Models & Settings, then reproduce.`,
    );
  }
  return model;
}

export interface ReproduceJobEnvironment {
  db: Database;
  dataDir: string;
  runtime: RuntimeClient;
  /** The device chosen in Settings; the recipe's device is what it is compared against. */
  device: string;
  gallery: GenerationsStore;
}

export async function runReproductionJob(
  context: JobContext,
  plan: ReproductionPlan,
  env: ReproduceJobEnvironment,
): Promise<{ record: GenerationRecord; reproduction: Omit<Reproduction, 'jobId'> }> {
  const started = Date.now();
  const { recipe } = plan;
  const engine: EngineContext = { runtime: env.runtime, device: env.device, cacheDir: join(env.dataDir, 'cache'), signal: context.signal };
  context.progress(0, recipe.steps, 'Checking the model');
  const device = await resolveDevice(engine);
  const ran: EngineContext = { ...engine, device };
  const hash = await modelFingerprint(plan.folder, { weightsCacheDir: join(engine.cacheDir, 'weights'), signal: context.signal });
  if (hash !== recipe.model.hash) {
    throw new Error(`${plan.model.name} has changed since this image was made (its files no longer match the recipe's model hash), so the pixels could not be the same.`);
  }

  context.progress(0, recipe.steps, 'Embedding photos');
  let request;
  try {
    request = await recipeGenerateRequest(ran, plan.folder, recipe, { db: env.db, dataDir: env.dataDir });
  } catch (error) {
    // A photo removed after the job was queued: say which, as planning does.
    if (error instanceof RecipeFileError) throw new StudioError('not-found', error.message);
    throw error;
  }
  context.signal.throwIfAborted();
  context.progress(0, recipe.steps, 'Encoding the prompt');
  const result = await generateInJob(context, ran, request);

  context.progress(recipe.steps, recipe.steps, 'Comparing the pixels');
  const image = floatImageToRgb(result.image, result.width, result.height);
  const comparison = comparePixels(await decodeRgb(plan.originalPng), image);
  const rerun = rerunRecipe(recipe, { appVersion: packageJson.version, device, placements: result.placements, durationMs: Date.now() - started });
  const record = await recordGeneration(env.gallery, {
    image,
    recipe: rerun,
    subjectId: plan.subjectId,
    modelId: plan.model.id,
    parentId: plan.originalId,
    signal: context.signal,
  });
  const reproduction = { generationId: record.id, imagePath: record.imagePath, originalId: plan.originalId, ...comparison, device, recipeDevice: recipe.device };
  return { record, reproduction: { ...reproduction, summary: describeReproduction(reproduction) } };
}

/** One sentence on how a reproduction came out, for the job list and the gallery. */
export function describeReproduction(report: PixelComparison & { device: string; recipeDevice: string }): string {
  if (report.identical) return `Identical pixels: every pixel matches the original (on ${report.device}).`;
  const why =
    report.device !== report.recipeDevice
      ? ` The original was made on ${report.recipeDevice} and this ran on ${report.device}: small differences across devices are expected.`
      : ' Same device and model: this should not happen; please report it.';
  if (!report.sameSize) return `Different: the new image is not the original's size.${why}`;
  return `Different: ${report.differingPixels} pixels differ, by at most ${report.maxDifference}/255.${why}`;
}

/** The comparisons of finished reproduce jobs, by job id. */
export class ReproductionResults {
  readonly #byJob = new Map<string, Reproduction>();

  add(reproduction: Reproduction): void {
    this.#byJob.set(reproduction.jobId, reproduction);
    while (this.#byJob.size > REPRODUCTIONS_KEPT) this.#byJob.delete(this.#byJob.keys().next().value!);
  }

  get(jobId: string): Reproduction {
    const found = this.#byJob.get(jobId);
    if (!found) throw new StudioError('not-found', `No finished reproduction for job ${jobId}: it is still running, failed, or was too long ago.`);
    return found;
  }
}
