/**
 * The app's quick fine-tune of a library subject, as a job: the subject's photo embeddings (cached ones
 * reused; their weighted mean is where the embedding starts, the one zero-shot generation uses), the
 * photos prepared for training, then the engine's `finetune` with the loss of every step reported for the
 * live curve. Only a run that finished every step is stored, as one adapter row (adapter-store.ts); a
 * cancel, a divergence or a crash stores nothing.
 */
import { randomInt } from 'node:crypto';
import { join } from 'node:path';
import type { Database } from 'better-sqlite3';
import { FINETUNE_LIMITS, type FinetuneOptions, type FinetunePreset, type FinetuneSettings, type FinetuneStartRequest, type ModelSummary, type SubjectDetail } from './contract';
import { StudioError } from './studio-error';
import type { JobContext } from '../jobs/job-queue';
import type { RuntimeClient } from '../engine/runtime/runtime-client';
import type { EngineContext } from '../engine/pipelines/engine-context';
import { resolveDevice } from '../engine/pipelines/resolved-device';
import { finetune } from '../engine/pipelines/finetune';
import { prepareFinetuneInputs } from '../engine/pipelines/finetune-inputs';
import { defaultFinetuneResolution, defaultMicroBatch, FINETUNE_DEFAULTS } from '../engine/pipelines/finetune-defaults';
import { parseAutoencoderKLConfig, vaeScaleFactor } from '../engine/nets/vae-config';
import { requireComponent, type ModelFolder } from '../models/model-folder';
import { writeDiffusersLora } from '../engine/weights/lora-weights';
import { computeSubjectEmbeddingsWithEngine } from '../library/subject-embeddings';
import type { AdapterRecord, AdapterStore } from '../library/adapter-store';

/** Steps of the Quick preset: half of the default, for a first look. */
const QUICK_STEPS = 40;

export interface FinetunePlan {
  subject: SubjectDetail;
  model: ModelSummary;
  folder: ModelFolder;
  preset: FinetunePreset;
  settings: FinetuneSettings;
  seed: string;
  /** Photos that train (weight > 0), absolute paths. */
  photos: string[];
}

/** The presets for a model on a provider: Quick (40 steps) and Standard (the CLI's defaults). */
export function finetunePresets(folder: ModelFolder, device: string): FinetuneOptions['presets'] {
  const standard: FinetuneSettings = {
    steps: FINETUNE_DEFAULTS.steps,
    resolution: defaultFinetuneResolution(folder, device),
    rank: FINETUNE_DEFAULTS.rank,
    lrLora: FINETUNE_DEFAULTS.lrLora,
    lrEmbedding: FINETUNE_DEFAULTS.lrEmbedding,
  };
  return { quick: { ...standard, steps: QUICK_STEPS }, standard };
}

/** Per-photo step times of the fine-tunes this library ran on a device, newest per resolution. */
export function measuredStepTimes(adapters: readonly AdapterRecord[], device: string): FinetuneOptions['measuredMsPerStepPerPhoto'] {
  const byResolution = new Map<number, number>();
  for (const adapter of adapters) {
    const s = adapter.settings;
    if (!s || s.device !== device || s.steps < 1 || s.photos < 1 || byResolution.has(s.resolution)) continue;
    byResolution.set(s.resolution, s.durationMs / s.steps / s.photos);
  }
  return [...byResolution].map(([resolution, ms]) => ({ resolution, ms })).sort((a, b) => a.resolution - b.resolution);
}

export function planFinetune(request: FinetuneStartRequest, subject: SubjectDetail, model: ModelSummary, folder: ModelFolder, device: string, dataDir: string): FinetunePlan {
  const photos = subject.photos.filter((p) => p.weight > 0).map((p) => join(dataDir, p.filePath));
  if (photos.length === 0) throw new StudioError('invalid-request', `${subject.name} has no photos with a weight above 0: add a photo first.`);
  const presets = finetunePresets(folder, device);
  const base = request.preset === 'quick' ? presets.quick : presets.standard;
  const settings: FinetuneSettings = request.preset === 'custom' ? { ...presets.standard, ...request.settings } : base;
  const factor = vaeScaleFactor(parseAutoencoderKLConfig(requireComponent(folder, 'vae').config));
  if (settings.resolution % factor !== 0 || settings.resolution < factor || settings.resolution > FINETUNE_LIMITS.resolution) {
    throw new StudioError('invalid-request', `The training resolution must be a multiple of ${factor} from ${factor} to ${FINETUNE_LIMITS.resolution} pixels for ${model.name}, got ${settings.resolution}.`);
  }
  return { subject, model, folder, preset: request.preset, settings, seed: request.seed ?? String(randomInt(2 ** 47)), photos };
}

export function finetuneLabel(plan: FinetunePlan): string {
  return `Fine-tune ${plan.subject.name} · ${plan.settings.steps} steps at ${plan.settings.resolution}²`;
}

export interface FinetuneEnvironment {
  db: Database;
  dataDir: string;
  runtime: RuntimeClient;
  device: string;
  adapters: AdapterStore;
}

/** Runs the plan; resolves with the new adapter's id (nothing is stored unless every step ran). */
export async function runFinetuneJob(context: JobContext, plan: FinetunePlan, env: FinetuneEnvironment): Promise<number> {
  const engine: EngineContext = { runtime: env.runtime, device: env.device, cacheDir: join(env.dataDir, 'cache'), signal: context.signal };
  const { steps } = plan.settings;
  context.progress(0, steps, 'Checking the model');
  const device = await resolveDevice(engine);
  const ran: EngineContext = { ...engine, device };
  context.progress(0, steps, 'Embedding photos');
  const embeddings = await computeSubjectEmbeddingsWithEngine(env.db, env.dataDir, ran, plan.folder, plan.subject.id, {
    signal: context.signal,
    onProgress: (p) => context.progress(0, steps, `Embedding photos (${p.done} of ${p.total})`),
  });
  context.progress(0, steps, 'Preparing the photos');
  const inputs = await prepareFinetuneInputs(ran, {
    model: plan.folder,
    photos: plan.photos,
    category: plan.subject.category,
    resolution: plan.settings.resolution,
    initialEmbedding: embeddings.mean,
  });
  context.progress(0, steps, 'Building the training graph');
  let training = 0;
  const result = await finetune(ran, {
    model: plan.folder,
    ...inputs,
    rank: plan.settings.rank,
    alpha: plan.settings.rank,
    steps,
    lrLora: plan.settings.lrLora,
    lrEmbedding: plan.settings.lrEmbedding,
    weightDecay: FINETUNE_DEFAULTS.weightDecay,
    seed: BigInt(plan.seed),
    microBatch: defaultMicroBatch(device, plan.photos.length),
  }, {
    onStep: (report) => {
      training += report.ms;
      context.appendSeries(report.loss);
      const perStep = training / report.step;
      const pace = perStep < 1000 ? `${Math.round(perStep)} ms/step` : `${(perStep / 1000).toFixed(1)} s/step`;
      context.progress(report.step, steps, `Step ${report.step} of ${steps} · loss ${report.loss.toFixed(4)} · ${pace}`);
    },
  });
  // A cancel that lands after the last step still stores nothing: the user asked for nothing.
  if (context.signal.aborted) throw new StudioError('cancelled', 'Cancelled');
  const id = env.adapters.insertFinetune({
    subjectId: plan.subject.id,
    name: `${presetName(plan.preset)} · ${steps} steps at ${plan.settings.resolution}²`,
    modelHash: embeddings.modelHash,
    modelName: plan.model.name,
    rank: plan.settings.rank,
    settings: { ...plan.settings, photos: plan.photos.length, seed: plan.seed, device, durationMs: training },
    losses: result.losses,
    lora: writeDiffusersLora(result.lora),
    embedding: { dims: result.embedding.dims, trained: result.embedding.data, initial: inputs.initialEmbedding.data },
  });
  return id;
}

function presetName(preset: FinetunePreset): string {
  return preset === 'quick' ? 'Quick' : preset === 'standard' ? 'Standard' : 'Custom';
}
