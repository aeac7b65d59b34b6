/**
 * One generation as the app runs it, on a device's job queue: the subject's embeddings (computing the
 * missing ones), the denoising loop with step progress and live previews, then the PNG with its recipe
 * recorded in the gallery. Nothing is written unless the image is complete: a cancelled or failed job
 * leaves no row and no file.
 */
import { randomInt } from 'node:crypto';
import { join } from 'node:path';
import type { Database } from 'better-sqlite3';
import packageJson from '../../package.json' with { type: 'json' };
import type { GenerationRequest, ModelSummary, SchedulerName, Settings, SubjectDetail } from './contract';
import type { JobContext } from '../jobs/job-queue';
import type { RuntimeClient } from '../engine/runtime/runtime-client';
import type { EngineContext } from '../engine/pipelines/engine-context';
import { generate } from '../engine/pipelines/generate';
import { DEFAULT_PROMPT_REPS, DEFAULT_PROMPT_STRENGTH } from '../engine/pipelines/blip-prompt';
import { floatImageToRgb } from '../engine/imaging/encode';
import type { ModelFolder } from '../models/model-folder';
import { computeSubjectEmbeddingsWithEngine } from '../library/subject-embeddings';
import type { SubjectService } from '../library/subject-service';
import { createRecipe, RECIPE_LIMITS, type Recipe } from '../gallery/recipe';
import type { GenerationRecord, GenerationsStore } from '../gallery/generations-store';
import { recordGeneration } from '../gallery/generation-png';
import { previewDataUrl } from '../gallery/preview-data-url';
import { resolveDevice } from '../engine/pipelines/resolved-device';

/** A preview every few steps: often enough to watch, rarely enough to cost nothing. */
export const PREVIEW_EVERY_STEPS = 3;
const LABEL_PROMPT_CHARS = 60;

/** The request with every default filled in (settings, subject), fixed when the job is queued. */
export interface GenerationPlan {
  subjectId: number;
  subjectName: string;
  model: ModelSummary;
  folder: ModelFolder;
  targetSubject: string;
  prompt: string;
  negativePrompt: string;
  steps: number;
  guidanceScale: number;
  scheduler: SchedulerName;
  width?: number;
  height?: number;
  /** Decimal, 0 … 2^64 − 1. */
  seed: string;
}

export function planGeneration(request: GenerationRequest, settings: Settings, subject: SubjectDetail, model: ModelSummary, folder: ModelFolder): GenerationPlan {
  return {
    subjectId: subject.id,
    subjectName: subject.name,
    model,
    folder,
    targetSubject: request.targetSubject ?? subject.category,
    prompt: request.prompt,
    negativePrompt: request.negativePrompt ?? '',
    steps: request.steps ?? settings.defaultSteps,
    guidanceScale: request.guidanceScale ?? settings.defaultGuidance,
    scheduler: request.scheduler ?? settings.defaultScheduler,
    ...(request.width !== undefined ? { width: request.width } : {}),
    ...(request.height !== undefined ? { height: request.height } : {}),
    // As the CLI: below 2^47, so a seed is short enough to read out and type back.
    seed: request.seed ?? String(randomInt(2 ** 47)),
  };
}

export function generationLabel(plan: GenerationPlan): string {
  const prompt = plan.prompt.length > LABEL_PROMPT_CHARS ? `${plan.prompt.slice(0, LABEL_PROMPT_CHARS - 1)}…` : plan.prompt;
  return `“${prompt}” · ${plan.subjectName}`;
}

export interface GenerationEnvironment {
  db: Database;
  dataDir: string;
  runtime: RuntimeClient;
  /** The device chosen in Settings ('auto' or a provider name). */
  device: string;
  subjects: SubjectService;
  gallery: GenerationsStore;
}

export async function runGenerationJob(context: JobContext, plan: GenerationPlan, env: GenerationEnvironment): Promise<GenerationRecord> {
  const started = Date.now();
  const engine: EngineContext = { runtime: env.runtime, device: env.device, cacheDir: join(env.dataDir, 'cache'), signal: context.signal };
  context.progress(0, plan.steps, 'Checking the model');
  // The recipe names the provider that actually ran, and every stage runs on that one.
  const device = await resolveDevice(engine);
  const ran: EngineContext = { ...engine, device };

  context.progress(0, plan.steps, 'Embedding photos');
  const embeddings = await computeSubjectEmbeddingsWithEngine(env.db, env.dataDir, ran, plan.folder, plan.subjectId, {
    signal: context.signal,
    onProgress: (p) => context.progress(p.done, p.total, `Embedding photos (${p.done} of ${p.total})`),
  });
  // Read after the embeddings, so the recipe lists exactly the photos and weights the mean used.
  const subject = env.subjects.getSubject(plan.subjectId);

  context.progress(0, plan.steps, 'Encoding the prompt');
  let previews = Promise.resolve();
  // Some schedulers take more model steps than asked (PNDM's warm-up), so progress counts what generate reports.
  let denoiseSteps = plan.steps;
  const result = await generate(
    ran,
    {
      model: plan.folder,
      subject: { embedding: embeddings.mean },
      targetSubject: plan.targetSubject,
      prompt: plan.prompt,
      negativePrompt: plan.negativePrompt,
      steps: plan.steps,
      guidanceScale: plan.guidanceScale,
      scheduler: plan.scheduler,
      ...(plan.width !== undefined ? { width: plan.width } : {}),
      ...(plan.height !== undefined ? { height: plan.height } : {}),
      noise: { seed: BigInt(plan.seed) },
      promptStrength: DEFAULT_PROMPT_STRENGTH,
      promptReps: DEFAULT_PROMPT_REPS,
    },
    {
      previewEvery: PREVIEW_EVERY_STEPS,
      onProgress: (p) => {
        denoiseSteps = p.totalSteps;
        context.progress(p.step, p.totalSteps, p.step === p.totalSteps ? 'Decoding the image' : `Step ${p.step} of ${p.totalSteps}`);
        const preview = p.preview;
        // Encoded in order off the loop; a preview that fails to encode is skipped, never fatal.
        if (preview) previews = previews.then(() => previewDataUrl(preview).then((url) => context.preview(url), () => undefined));
      },
    },
  );
  await previews;
  context.signal.throwIfAborted();

  context.progress(denoiseSteps, denoiseSteps, 'Saving the image');
  const recipe = createRecipe({
    appVersion: packageJson.version,
    model: { name: plan.model.name, folder: plan.folder.dir, hash: embeddings.modelHash },
    subject: { name: subject.name, category: subject.category, photos: recipePhotos(subject) },
    targetSubject: plan.targetSubject,
    prompt: plan.prompt,
    negativePrompt: plan.negativePrompt,
    seed: plan.seed,
    steps: plan.steps,
    guidanceScale: plan.guidanceScale,
    scheduler: plan.scheduler,
    width: result.width,
    height: result.height,
    promptStrength: DEFAULT_PROMPT_STRENGTH,
    promptReps: DEFAULT_PROMPT_REPS,
    device,
    durationMs: Date.now() - started,
    createdAt: new Date().toISOString(),
  });
  return recordGeneration(env.gallery, {
    image: floatImageToRgb(result.image, result.width, result.height),
    recipe,
    subjectId: plan.subjectId,
    modelId: plan.model.id,
    signal: context.signal,
  });
}

/** The subject's photos by hash with their weights; only the ratios matter, so weights above the recipe's bound are scaled down together. */
function recipePhotos(subject: SubjectDetail): Extract<Recipe['subject'], { photos: unknown }>['photos'] {
  const largest = Math.max(...subject.photos.map((p) => p.weight));
  const scale = largest > RECIPE_LIMITS.scale ? RECIPE_LIMITS.scale / largest : 1;
  return subject.photos.map((p) => ({ sha256: p.sha256, weight: p.weight * scale }));
}
