/**
 * `generate` as a job runs it: step progress (the steps asked for) and a live latent preview every few
 * steps. One path for the generation job and the reproduce job, so both
 * report alike.
 */
import type { JobContext } from '../jobs/job-queue';
import type { EngineContext } from '../engine/pipelines/engine-context';
import { generate, type GenerateRequest, type GenerateResult } from '../engine/pipelines/generate';
import { previewDataUrl } from '../gallery/preview-data-url';

/** A preview every few steps: often enough to watch, rarely enough to cost nothing. */
export const PREVIEW_EVERY_STEPS = 3;

export async function generateInJob(context: JobContext, engine: EngineContext, request: GenerateRequest): Promise<GenerateResult> {
  let previews = Promise.resolve();
  const result = await generate(engine, request, {
    previewEvery: PREVIEW_EVERY_STEPS,
    onProgress: (p) => {
      context.progress(p.step, p.totalSteps, p.step === p.totalSteps ? 'Decoding the image' : `Step ${p.step} of ${p.totalSteps}`);
      const preview = p.preview;
      // Encoded in order off the loop; a preview that fails to encode is skipped, never fatal.
      if (preview) previews = previews.then(() => previewDataUrl(preview).then((url) => context.preview(url), () => undefined));
    },
  });
  await previews;
  context.signal.throwIfAborted();
  return result;
}
