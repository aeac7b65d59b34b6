/**
 * `generate --subject NAME` without --reference: the subject comes from the library (its cached
 * embeddings, computed if missing), and the job runs through the same studio API and job queue as the
 * app's Generate view; the result is recorded in the gallery with its recipe, then copied to --out.
 */
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { CONTROL_DEFAULTS, type ControlMode, type ControlUse, type GenerationRequest, type JobSummary, type ModelSummary, type SchedulerName } from '../api/contract';
import { openStudio, type Studio } from '../api/studio';
import { generationGeometry } from '../engine/pipelines/generate';
import { loadModelFolder } from '../models/model-folder';
import { ProgressBar } from './progress-bar';

export interface LibraryGenerateOptions {
  dataDir: string;
  model: string;
  subject: string;
  target?: string;
  prompt: string;
  negative: string;
  steps: number;
  guidance: number;
  scheduler: SchedulerName;
  height?: number;
  width?: number;
  seed?: bigint;
  out: string;
  /** A control map made from this picture through the app's own API (fitted to the output size, then the mode). */
  controlFrom?: string;
  controlMode: ControlMode;
  low?: number;
  high?: number;
  l2?: boolean;
  controlScale: number;
  controlStart: number;
  controlEnd: number;
}

/** The control panel's steps through the API: store the picture, make its map at the output size. */
async function controlUse(studio: Studio, options: LibraryGenerateOptions, model: ModelSummary): Promise<ControlUse> {
  const size = generationGeometry(loadModelFolder(model.folder), options.height, options.width);
  const source = await studio.api.addControlSource({ name: basename(options.controlFrom!), dataBase64: readFileSync(options.controlFrom!).toString('base64') });
  const settings = { low: options.low ?? CONTROL_DEFAULTS.low, high: options.high ?? CONTROL_DEFAULTS.high };
  const map = await studio.api.makeControlMap({ sourceId: source.id, mode: options.controlMode, width: size.width, height: size.height, ...settings, l2: options.l2 ?? false });
  if (map.stretched) process.stderr.write(`note: ${options.controlFrom} (${source.width}×${source.height}) is stretched to ${size.width}×${size.height}, as the reference resizes a control image\n`);
  return {
    mapId: map.id,
    scale: options.controlScale,
    start: options.controlStart,
    end: options.controlEnd,
    mode: options.controlMode,
    sourceId: source.id,
    ...(options.controlMode === 'canny' ? settings : {}),
  };
}

export async function generateFromLibrary(options: LibraryGenerateOptions): Promise<void> {
  const studio = await openStudio({ dataDir: options.dataDir, mode: 'cli' });
  try {
    const wanted = options.subject.trim().toLowerCase();
    const subject = (await studio.api.listSubjects({ search: options.subject.trim() })).find((s) => s.name.toLowerCase() === wanted);
    if (!subject) {
      throw new Error(`there is no subject named "${options.subject}" in ${studio.dataDir}: add it with \`subjects add\`, or give a photo with --reference`);
    }
    const modelFolder = resolve(options.model);
    const model = (await studio.api.listModels()).find((m) => resolve(m.folder) === modelFolder);
    if (!model) throw new Error(`${modelFolder} is not in the library yet: run \`subjects add --model ${options.model} …\` once (it registers the model), or give --reference`);

    const control = options.controlFrom !== undefined ? await controlUse(studio, options, model) : undefined;
    const request: GenerationRequest = {
      subjectId: subject.id,
      modelId: model.id,
      prompt: options.prompt,
      negativePrompt: options.negative,
      steps: options.steps,
      guidanceScale: options.guidance,
      scheduler: options.scheduler,
      ...(options.target !== undefined ? { targetSubject: options.target } : {}),
      ...(options.height !== undefined ? { height: options.height } : {}),
      ...(options.width !== undefined ? { width: options.width } : {}),
      ...(options.seed !== undefined ? { seed: options.seed.toString() } : {}),
      ...(control ? { control } : {}),
    };
    const bar = new ProgressBar('generating');
    const started = Date.now();
    let jobId = '';
    const finished = new Promise<JobSummary>((resolveJob) => {
      studio.onEvent((event, payload) => {
        if (event !== 'jobChanged') return;
        const job = payload as JobSummary;
        if (job.id !== jobId) return;
        if (job.state === 'running' && job.totalSteps > 0) bar.update(job.step, job.totalSteps, job.etaMs, Date.now() - started);
        if (job.state === 'done' || job.state === 'failed' || job.state === 'cancelled') resolveJob(job);
      });
    });
    jobId = (await studio.api.startGeneration(request)).id;
    const onInterrupt = () => void studio.api.cancelJob({ id: jobId });
    process.on('SIGINT', onInterrupt);
    try {
      const job = await finished;
      if (job.state === 'cancelled') {
        bar.finish('cancelled: no image written');
        process.exitCode = 130;
        return;
      }
      if (job.state === 'failed' || job.resultId === null) throw new Error(job.message);
      const generation = await studio.api.getGeneration({ id: job.resultId });
      mkdirSync(dirname(resolve(options.out)), { recursive: true });
      copyFileSync(join(studio.dataDir, generation.imagePath), options.out);
      bar.finish(`wrote ${options.out} (${generation.width}×${generation.height}, seed ${generation.seed}); also in the gallery`);
    } finally {
      process.off('SIGINT', onInterrupt);
    }
  } finally {
    await studio.close();
  }
}
