/**
 * One generation request as the app runs it, on a device's job queue: the subject's embeddings
 * (computing the missing ones; both subjects' when two are mixed), then for each image of the batch the
 * denoising loop with step progress and live previews, and the PNG with its recipe recorded in the
 * gallery as soon as it is done. A batch is one job (one cancel stops the rest; the images already
 * finished stay). Nothing is written unless an image is complete: a cancelled or failed image leaves no
 * row and no file.
 */
import { randomInt } from 'node:crypto';
import { join } from 'node:path';
import type { Database } from 'better-sqlite3';
import packageJson from '../../package.json' with { type: 'json' };
import type { ControlModelSummary, ControlUse, GenerationRequest, ModelSummary, SchedulerName, Settings, SubjectDetail } from './contract';
import { StudioError } from './studio-error';
import type { JobContext } from '../jobs/job-queue';
import type { RuntimeClient } from '../engine/runtime/runtime-client';
import type { EngineContext } from '../engine/pipelines/engine-context';
import { DEFAULT_PROMPT_REPS, DEFAULT_PROMPT_STRENGTH } from '../engine/pipelines/blip-prompt';
import { floatImageToRgb } from '../engine/imaging/encode';
import type { ModelComponent, ModelFolder } from '../models/model-folder';
import { controlNetComponent, detectControlModelFolder } from '../models/control-model-folder';
import { cachedPhotoEmbedding, computeSubjectEmbeddingsWithEngine } from '../library/subject-embeddings';
import type { SubjectService } from '../library/subject-service';
import { recipeSubjectEmbedding, recipeSubjectOf } from '../library/subject-recipe';
import { createRecipe, deviceNotesField, type Recipe, type RecipeMix } from '../gallery/recipe';
import type { GenerationRecord, GenerationsStore } from '../gallery/generations-store';
import { recordGeneration } from '../gallery/generation-png';
import { generateInJob } from './generation-progress';
import { resolveDevice } from '../engine/pipelines/resolved-device';
import type { AdapterStore } from '../library/adapter-store';
import { applyAdapters, planAdapters, type PlannedAdapter } from '../library/adapter-application';

const LABEL_PROMPT_CHARS = 60;
/** Images one request may ask for (A1111's batch count). */
export const MAX_BATCH_COUNT = 8;
const SEED_MODULUS = 2n ** 64n;

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
  /** One seed per image of the batch, decimal, 0 … 2^64 − 1. */
  seeds: string[];
  /** A second subject mixed in: embedding = ratio·subject + (1 − ratio)·mix subject. */
  mix?: { subjectId: number; subjectName: string; ratio: number };
  /** The subject's fine-tune at a strength (library adapters: adapter-application.ts). */
  finetune?: PlannedAdapter;
  styles?: PlannedAdapter[];
  /** The ControlNet map (found in the library when the job was queued), its settings and a ControlNet of its own when one was chosen. */
  control?: PlannedControl;
}

export type PlannedControl = ControlUse & { mapFile: string; controlnet?: { component: ModelComponent; name: string; hash: string } };

/** Where the plan finds a control map (by hash) and a chosen ControlNet (by id). */
export interface ControlLookup {
  mapFile: (mapId: string) => string | null;
  controlNet: (id: number) => ControlModelSummary | null;
}

/**
 * The seeds of a batch, as A1111: a given seed and the ones after it (wrapping at 2^64); with no seed,
 * a random one per image (below 2^47 as the CLI's, short enough to read out and type back).
 */
export function batchSeeds(seed: string | undefined, count: number): string[] {
  return Array.from({ length: count }, (_, i) => (seed === undefined ? String(randomInt(2 ** 47)) : String((BigInt(seed) + BigInt(i)) % SEED_MODULUS)));
}

export function planGeneration(
  request: GenerationRequest,
  settings: Settings,
  subject: SubjectDetail,
  model: ModelSummary,
  folder: ModelFolder,
  mixSubject?: SubjectDetail,
  adapters?: AdapterStore,
  controlLookup?: ControlLookup,
): GenerationPlan {
  const count = request.batchCount ?? 1;
  if (!Number.isInteger(count) || count < 1 || count > MAX_BATCH_COUNT) throw new StudioError('invalid-request', `The batch count must be from 1 to ${MAX_BATCH_COUNT}, got ${count}.`);
  if (request.mix !== undefined) {
    if (mixSubject === undefined || mixSubject.id !== request.mix.subjectId) throw new StudioError('not-found', `No subject with id ${request.mix.subjectId} to mix with.`);
    if (mixSubject.id === subject.id) throw new StudioError('invalid-request', `Mixing ${subject.name} with itself changes nothing: pick a different second subject.`);
    if (mixSubject.photoCount === 0) throw new StudioError('invalid-request', `${mixSubject.name} has no photos yet: add at least one before mixing it in.`);
  }
  const control = request.control ? planControl(request.control, model, folder, controlLookup) : undefined;
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
    seeds: batchSeeds(request.seed, count),
    ...(request.mix !== undefined && mixSubject !== undefined ? { mix: { subjectId: mixSubject.id, subjectName: mixSubject.name, ratio: request.mix.ratio } } : {}),
    ...planAdapters(request, subject, model, adapters),
    ...(control ? { control } : {}),
  };
}

function planControl(use: ControlUse, model: ModelSummary, folder: ModelFolder, lookup: ControlLookup | undefined): PlannedControl {
  const mapFile = lookup?.mapFile(use.mapId) ?? null;
  if (mapFile === null) throw new StudioError('not-found', `The control map (sha256 ${use.mapId.slice(0, 12)}…) is not in the library: make the map again.`);
  if (use.controlnetId !== undefined) {
    const chosen = lookup?.controlNet(use.controlnetId) ?? null;
    if (chosen === null || chosen.kind !== 'controlnet') throw new StudioError('not-found', `No ControlNet with id ${use.controlnetId}: it may have been removed.`);
    const found = detectControlModelFolder(chosen.folder);
    if (found === null || found.kind !== 'controlnet') throw new StudioError('conflict', `The ControlNet ${chosen.name} is no longer a ControlNet folder at ${chosen.folder}: add it again.`);
    return { ...use, mapFile, controlnet: { component: controlNetComponent(found), name: chosen.name, hash: chosen.hash } };
  }
  if (!folder.components.has('controlnet')) {
    throw new StudioError('invalid-request', `${model.name} has no ControlNet of its own: choose a ControlNet in the control panel (e.g. download lllyasviel/sd-controlnet-depth), or a model with one (Salesforce/blipdiffusion-controlnet).`);
  }
  return { ...use, mapFile };
}

/** The recipe's `control` field for a planned control (the map by hash, how it was made, its step window). */
export function recipeControlField(control: PlannedControl): NonNullable<Recipe['control']> {
  return {
    sha256: control.mapId,
    ...(control.controlnet ? { controlnet: { name: control.controlnet.name, hash: control.controlnet.hash } } : {}),
    scale: control.scale,
    ...(control.start !== 0 ? { start: control.start } : {}),
    ...(control.end !== 1 ? { end: control.end } : {}),
    mode: control.mode,
    ...(control.sourceId !== undefined ? { source: { sha256: control.sourceId } } : {}),
    ...(control.mode === 'canny' && control.low !== undefined ? { low: control.low } : {}),
    ...(control.mode === 'canny' && control.high !== undefined ? { high: control.high } : {}),
    ...(control.drawn ? { drawn: true } : {}),
  };
}

export function generationLabel(plan: GenerationPlan): string {
  const prompt = plan.prompt.length > LABEL_PROMPT_CHARS ? `${plan.prompt.slice(0, LABEL_PROMPT_CHARS - 1)}…` : plan.prompt;
  const subject = plan.mix ? `${plan.subjectName} + ${plan.mix.subjectName}` : plan.subjectName;
  return `“${prompt}” · ${subject}${plan.seeds.length > 1 ? ` · ${plan.seeds.length} images` : ''}`;
}

/** The finished job's message. */
export function describeGenerations(records: readonly GenerationRecord[]): string {
  const last = records.at(-1);
  if (last === undefined) return 'No image was made';
  if (records.length === 1) return `Saved a ${last.width}×${last.height} image (seed ${last.seed})`;
  return `Saved ${records.length} ${last.width}×${last.height} images (seeds ${records.map((r) => r.seed).join(', ')})`;
}

/** The job's step count before it starts: denoising steps for every image of the batch. */
export function plannedSteps(plan: GenerationPlan): number {
  return plan.steps * plan.seeds.length;
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

/**
 * Runs the plan; `onImage` hears of each image as soon as it is in the gallery (the studio announces it,
 * so it shows in Generate and the gallery while the rest of the batch runs).
 */
export async function runGenerationJob(
  context: JobContext,
  plan: GenerationPlan,
  env: GenerationEnvironment,
  onImage: (record: GenerationRecord) => void = () => undefined,
): Promise<GenerationRecord[]> {
  const engine: EngineContext = { runtime: env.runtime, device: env.device, cacheDir: join(env.dataDir, 'cache'), signal: context.signal };
  context.progress(0, plannedSteps(plan), 'Checking the model');
  // The recipe names the provider that actually ran, and every stage runs on that one.
  const device = await resolveDevice(engine);
  const ran: EngineContext = { ...engine, device };

  let modelHash = '';
  for (const [subjectId, which] of [[plan.subjectId, ''], ...(plan.mix ? [[plan.mix.subjectId, ` of ${plan.mix.subjectName}`] as const] : [])] as const) {
    context.progress(0, plannedSteps(plan), `Embedding photos${which}`);
    const computed = await computeSubjectEmbeddingsWithEngine(env.db, env.dataDir, ran, plan.folder, subjectId, {
      signal: context.signal,
      onProgress: (p) => context.progress(p.done, p.total, `Embedding photos${which} (${p.done} of ${p.total})`),
    });
    modelHash = computed.modelHash;
  }
  // Read after the embeddings, so the recipe lists exactly the photos and weights the mean uses; the
  // embedding is then made from the recipe itself, as a reproduction makes it.
  const subject = recipeSubjectOf(env.subjects.getSubject(plan.subjectId));
  const mix: RecipeMix | undefined = plan.mix ? { subject: recipeSubjectOf(env.subjects.getSubject(plan.mix.subjectId)), ratio: plan.mix.ratio } : undefined;
  const photosEmbedding = await recipeSubjectEmbedding({ subject, mix }, async (sha256, category) => {
    const cached = cachedPhotoEmbedding(env.db, sha256, { category, modelHash });
    // Only a photo added or re-categorised between the two reads lands here: the user can simply retry.
    if (cached === null) throw new StudioError('conflict', 'The subject changed while the job started: generate again.');
    return cached;
  });
  const applied = applyAdapters(plan, plan.folder, modelHash, photosEmbedding);
  const embedding = applied.embedding;

  const records: GenerationRecord[] = [];
  const perImage = plan.steps;
  for (const [index, seed] of plan.seeds.entries()) {
    const started = Date.now();
    const batch = plan.seeds.length > 1 ? `Image ${index + 1} of ${plan.seeds.length} · ` : '';
    context.progress(index * perImage, perImage * plan.seeds.length, `${batch}Encoding the prompt`);
    // The image's own progress (steps of this image), placed within the batch's.
    const imageContext: JobContext = {
      ...context,
      progress: (step, _imageSteps, message, preview) => {
        context.progress(index * perImage + step, perImage * plan.seeds.length, message === undefined ? undefined : `${batch}${message}`, preview);
      },
    };
    const result = await generateInJob(imageContext, ran, {
      model: plan.folder,
      subject: { embedding },
      targetSubject: plan.targetSubject,
      prompt: plan.prompt,
      negativePrompt: plan.negativePrompt,
      steps: plan.steps,
      guidanceScale: plan.guidanceScale,
      scheduler: plan.scheduler,
      ...(plan.width !== undefined ? { width: plan.width } : {}),
      ...(plan.height !== undefined ? { height: plan.height } : {}),
      noise: { seed: BigInt(seed) },
      promptStrength: DEFAULT_PROMPT_STRENGTH,
      promptReps: DEFAULT_PROMPT_REPS,
      ...(applied.lora ? { lora: applied.lora } : {}),
      ...(plan.control
        ? {
            control: { path: plan.control.mapFile },
            controlScale: plan.control.scale,
            controlStart: plan.control.start,
            controlEnd: plan.control.end,
            ...(plan.control.controlnet ? { controlnet: plan.control.controlnet.component } : {}),
          }
        : {}),
    });

    context.progress((index + 1) * perImage, perImage * plan.seeds.length, `${batch}Saving the image`);
    const recipe = createRecipe({
      appVersion: packageJson.version,
      model: { name: plan.model.name, folder: plan.folder.dir, hash: modelHash },
      subject,
      ...(mix ? { mix } : {}),
      ...applied.recipeFields,
      ...(plan.control ? { control: recipeControlField(plan.control) } : {}),
      targetSubject: plan.targetSubject,
      prompt: plan.prompt,
      negativePrompt: plan.negativePrompt,
      seed,
      steps: plan.steps,
      guidanceScale: plan.guidanceScale,
      scheduler: plan.scheduler,
      width: result.width,
      height: result.height,
      promptStrength: DEFAULT_PROMPT_STRENGTH,
      promptReps: DEFAULT_PROMPT_REPS,
      device,
      ...deviceNotesField(result.placements),
      durationMs: Date.now() - started,
      createdAt: new Date().toISOString(),
    });
    const record = await recordGeneration(env.gallery, {
      image: floatImageToRgb(result.image, result.width, result.height),
      recipe,
      subjectId: plan.subjectId,
      modelId: plan.model.id,
      signal: context.signal,
    });
    records.push(record);
    onImage(record);
  }
  return records;
}
