/**
 * A journal of long jobs (photo imports, embedding computations, generations) in the `job_runs` table.
 * The in-memory job queue forgets everything when the process dies; this record does not, so a job cut
 * short by a crash or `kill -9` is found at the next start and marked failed with a reason, never lost.
 */
import { randomUUID } from 'node:crypto';
import type { Database } from 'better-sqlite3';
import type { JobSummary } from '../api/contract';
import type { JobSpec } from '../jobs/job-queue';

export type JobRunState = 'running' | 'done' | 'failed' | 'cancelled';

export interface JobRun {
  id: string;
  kind: string;
  label: string;
  subjectId: number | null;
  state: JobRunState;
  step: number;
  totalSteps: number;
  message: string;
  pid: number;
  startedAt: string;
  finishedAt: string | null;
}

interface JobRunRow {
  id: string;
  kind: string;
  label: string;
  subject_id: number | null;
  state: JobRunState;
  step: number;
  total_steps: number;
  message: string;
  pid: number;
  started_at: string;
  finished_at: string | null;
}

export const INTERRUPTED_MESSAGE = 'Interrupted: BLIP Studio stopped while this job ran. Run it again; finished work is kept and not repeated.';

/** Finished runs kept for the record; older ones are dropped when a new run begins. */
const FINISHED_RUNS_KEPT = 200;

export function beginJobRun(db: Database, run: { kind: string; label: string; subjectId?: number | null; totalSteps: number }): string {
  const id = randomUUID();
  db.prepare('INSERT INTO job_runs (id, kind, label, subject_id, state, total_steps, pid) VALUES (?, ?, ?, ?, ?, ?, ?)').run(
    id,
    run.kind,
    run.label,
    run.subjectId ?? null,
    'running',
    run.totalSteps,
    process.pid,
  );
  db.prepare(
    `DELETE FROM job_runs WHERE state != 'running' AND id NOT IN
       (SELECT id FROM job_runs WHERE state != 'running' ORDER BY started_at DESC LIMIT ?)`,
  ).run(FINISHED_RUNS_KEPT);
  return id;
}

export function updateJobRun(db: Database, id: string, step: number, totalSteps: number, message: string): void {
  db.prepare("UPDATE job_runs SET step = ?, total_steps = ?, message = ? WHERE id = ? AND state = 'running'").run(step, totalSteps, message, id);
}

export function finishJobRun(db: Database, id: string, state: Exclude<JobRunState, 'running'>, message: string): void {
  db.prepare(
    "UPDATE job_runs SET state = ?, message = ?, finished_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ? AND state = 'running'",
  ).run(state, message, id);
}

/**
 * Runs `work` as a journalled run: begun now, then finished as done (with `doneMessage` of its result),
 * cancelled (when `signal` was aborted) or failed (with the error's message). Only a process that dies
 * meanwhile leaves it 'running'. `work` gets the run's id to record its steps.
 */
export async function withJobRun<T>(
  db: Database,
  run: { kind: string; label: string; subjectId?: number | null; totalSteps: number },
  work: (runId: string) => Promise<T>,
  doneMessage: (result: T) => string,
  signal?: AbortSignal,
): Promise<T> {
  const id = beginJobRun(db, run);
  try {
    const result = await work(id);
    finishJobRun(db, id, 'done', doneMessage(result));
    return result;
  } catch (error) {
    const cancelled = signal?.aborted === true;
    finishJobRun(db, id, cancelled ? 'cancelled' : 'failed', cancelled ? 'Cancelled' : error instanceof Error ? error.message : String(error));
    throw error;
  }
}

export function getJobRun(db: Database, id: string): JobRun | undefined {
  const row = db.prepare('SELECT * FROM job_runs WHERE id = ?').get(id) as JobRunRow | undefined;
  return row ? toJobRun(row) : undefined;
}

export function listJobRuns(db: Database, limit = 50): JobRun[] {
  return (db.prepare('SELECT * FROM job_runs ORDER BY started_at DESC LIMIT ?').all(limit) as JobRunRow[]).map(toJobRun);
}

/** True while a process that began a job still runs it (this one, or another app or CLI instance). */
export function hasLiveJobRuns(db: Database): boolean {
  const rows = db.prepare("SELECT pid FROM job_runs WHERE state = 'running'").all() as { pid: number }[];
  return rows.some((row) => isProcessAlive(row.pid));
}

/** Marks every running job whose process is gone as failed; returns those jobs. */
export function failInterruptedJobRuns(db: Database): JobRun[] {
  const running = (db.prepare("SELECT * FROM job_runs WHERE state = 'running'").all() as JobRunRow[]).map(toJobRun);
  const dead = running.filter((run) => run.pid !== process.pid && !isProcessAlive(run.pid));
  const mark = db.prepare(
    "UPDATE job_runs SET state = 'failed', message = ?, finished_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ? AND state = 'running'",
  );
  db.transaction(() => {
    for (const run of dead) mark.run(`${INTERRUPTED_MESSAGE} (${run.step} of ${run.totalSteps} steps were done.)`, run.id);
  })();
  // Read back, so callers get the message and finish time as recorded.
  return dead.map((run) => getJobRun(db, run.id) ?? { ...run, state: 'failed' });
}

/**
 * Wraps a queue job so its run is journalled: begun when it starts, its step recorded as it goes, and
 * finished as done, failed or cancelled. Only a process that dies mid-run leaves it 'running'.
 */
export function journaledJob(db: Database, spec: JobSpec, extra: { subjectId?: number | null } = {}): JobSpec {
  return {
    ...spec,
    ...(extra.subjectId !== undefined && extra.subjectId !== null ? { subjectId: extra.subjectId } : {}),
    run: (context) => {
      let recorded = -1;
      return withJobRun(
        db,
        { kind: spec.kind, label: spec.label, subjectId: extra.subjectId ?? null, totalSteps: spec.totalSteps },
        (id) =>
          spec.run({
            ...context,
            progress: (step, totalSteps, message, preview) => {
              // One write per step, not per preview or message: the journal only needs to say how far it got.
              if (step !== recorded) {
                recorded = step;
                updateJobRun(db, id, step, totalSteps, message ?? '');
              }
              context.progress(step, totalSteps, message, preview);
            },
          }),
        (message) => message,
        context.signal,
      );
    },
  };
}

/** A recovered run as the API lists jobs, so the interrupted job shows up in the app after the restart. */
export function jobRunSummary(run: JobRun): JobSummary {
  return {
    id: run.id,
    kind: run.kind,
    label: run.label,
    state: run.state,
    step: run.step,
    totalSteps: run.totalSteps,
    progressUnit: 'steps',
    startedAt: run.startedAt,
    finishedAt: run.finishedAt,
    etaMs: null,
    message: run.message,
    preview: null,
    resultId: null,
    series: null,
    subjectId: run.subjectId,
  };
}

function isProcessAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function toJobRun(row: JobRunRow): JobRun {
  return {
    id: row.id,
    kind: row.kind,
    label: row.label,
    subjectId: row.subject_id,
    state: row.state,
    step: row.step,
    totalSteps: row.total_steps,
    message: row.message,
    pid: row.pid,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
  };
}
