/**
 * Calling a real studio the way the transports do (through `dispatchCall`, so every payload is
 * validated), and waiting for its jobs: shared by the integration tests of the studio API.
 */
import { expect } from 'vitest';
import { dispatchCall } from '../../main/api/dispatch';
import type { JobSummary, StudioCallOutcome } from '../../main/api/contract';
import type { Studio } from '../../main/api/studio';

/** Calls `method` through dispatch and returns its value; a refusal throws with its code and message. */
export async function callStudio<T>(studio: Studio, method: string, ...args: unknown[]): Promise<T> {
  const outcome = await dispatchCall(studio.api, method, args);
  if (!outcome.ok) throw new Error(`${method} failed: ${outcome.error.code}: ${outcome.error.message}`);
  return outcome.value as T;
}

/** The error of an outcome that must be a refusal. */
export function refusal(outcome: StudioCallOutcome): { code: string; message: string } {
  expect(outcome.ok).toBe(false);
  return outcome.ok ? { code: '', message: '' } : outcome.error;
}

const isFinished = (job: JobSummary): boolean => job.state === 'done' || job.state === 'failed' || job.state === 'cancelled';

/**
 * Resolves with the job's final summary once it has finished: at once when `seen` (the events recorded
 * so far) already holds it, otherwise at the studio's event.
 */
export function whenJobFinished(studio: Studio, seen: readonly JobSummary[], jobId: string, timeoutMs = 120_000): Promise<JobSummary> {
  const finished = (job: JobSummary) => job.id === jobId && isFinished(job);
  return new Promise((resolve, reject) => {
    const already = seen.find(finished);
    if (already) return resolve(already);
    const timer = setTimeout(() => reject(new Error(`job ${jobId} did not finish in ${timeoutMs} ms`)), timeoutMs);
    const stop = studio.onEvent((event, payload) => {
      if (event !== 'jobChanged' || !finished(payload as JobSummary)) return;
      clearTimeout(timer);
      stop();
      resolve(payload as JobSummary);
    });
  });
}
