/**
 * `generate --subject NAME` without --reference: the subject comes from the library (its cached
 * embeddings, computed if missing), and the job runs through the same studio API and job queue as the
 * app's Generate view; the result is recorded in the gallery with its recipe, then copied to --out.
 */
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { GenerationRequest, JobSummary, SchedulerName } from '../api/contract';
import { openStudio } from '../api/studio';
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
