/**
 * One serial job queue per device: jobs run one at a time in submission order, report progress
 * (step i/N, ETA, a message) and can be cancelled while queued or between steps. Every change is
 * announced through `onChange`, so the UI re-attaches to running work after a reload by listing jobs.
 */
import { randomUUID } from 'node:crypto';
import type { JobProgressUnit, JobState, JobSummary } from '../api/contract';

export interface JobContext {
  /** Aborted when the user cancels; long jobs check it between steps. */
  readonly signal: AbortSignal;
  /** `preview` (a `data:image/png` URL) replaces the live preview when given. */
  progress(step: number, totalSteps: number, message?: string, preview?: string): void;
  /** Replaces the live preview alone (previews may be encoded after their step was reported). */
  preview(dataUrl: string): void;
  /** Records what the job produced; a job with a result counts as done even if cancelled just after. */
  setResult(id: number): void;
  /** Appends one value to the job's plotted series (a fine-tune's loss per step). */
  appendSeries(value: number): void;
}

export interface JobSpec {
  kind: string;
  label: string;
  totalSteps: number;
  /** What the progress counts (default steps); the UI shows bytes as "1.2 GB of 3.4 GB". */
  progressUnit?: JobProgressUnit;
  /** The library subject the job works on, so its view can show the job. */
  subjectId?: number;
  /** Does the work; resolves with a short message for the user. */
  run(context: JobContext): Promise<string>;
  /** The message once cancelled while running (default "Cancelled"), e.g. a download's "Paused…". */
  cancelledMessage?: string;
}

export class JobCancelledError extends Error {
  constructor() {
    super('Cancelled');
    this.name = 'JobCancelledError';
  }
}

interface JobRecord {
  summary: JobSummary;
  spec: JobSpec;
  controller: AbortController;
  startedMs: number;
  /** Where the current phase (one totalSteps) began, so a job's second phase gets its own ETA. */
  phase: { startedMs: number; startStep: number };
}

/** How many finished jobs stay listed for the status area. */
const FINISHED_JOBS_KEPT = 20;

export class JobQueue {
  readonly #jobs = new Map<string, JobRecord>();
  readonly #pending: JobRecord[] = [];
  #running: JobRecord | null = null;
  #idle: Promise<void> = Promise.resolve();
  readonly #onChange: (job: JobSummary) => void;

  constructor(onChange: (job: JobSummary) => void) {
    this.#onChange = onChange;
  }

  submit(spec: JobSpec): JobSummary {
    const summary: JobSummary = {
      id: randomUUID(),
      kind: spec.kind,
      label: spec.label,
      state: 'queued',
      step: 0,
      totalSteps: spec.totalSteps,
      progressUnit: spec.progressUnit ?? 'steps',
      startedAt: null,
      finishedAt: null,
      etaMs: null,
      message: 'Waiting',
      preview: null,
      resultId: null,
      series: null,
      subjectId: spec.subjectId ?? null,
    };
    const record: JobRecord = { summary, spec, controller: new AbortController(), startedMs: 0, phase: { startedMs: 0, startStep: 0 } };
    this.#jobs.set(summary.id, record);
    this.#pending.push(record);
    this.#emit(record);
    this.#pump();
    return { ...summary };
  }

  list(): JobSummary[] {
    return [...this.#jobs.values()].map((r) => ({ ...r.summary }));
  }

  get(id: string): JobSummary | undefined {
    const record = this.#jobs.get(id);
    return record ? { ...record.summary } : undefined;
  }

  /** Returns false when the job is unknown or already finished. */
  cancel(id: string): boolean {
    const record = this.#jobs.get(id);
    if (!record || !isActive(record.summary.state)) return false;
    record.controller.abort();
    const index = this.#pending.indexOf(record);
    if (index >= 0) {
      this.#pending.splice(index, 1);
      this.#finish(record, 'cancelled', 'Cancelled before it started');
    }
    return true;
  }

  /** Resolves when nothing is queued or running (used on shutdown and in tests). */
  async whenIdle(): Promise<void> {
    while (this.#running || this.#pending.length > 0) await this.#idle;
  }

  cancelAll(): void {
    for (const record of this.#jobs.values()) if (isActive(record.summary.state)) this.cancel(record.summary.id);
  }

  #pump(): void {
    if (this.#running) return;
    const next = this.#pending.shift();
    if (!next) return;
    this.#running = next;
    this.#idle = this.#execute(next).finally(() => {
      this.#running = null;
      this.#pump();
    });
  }

  async #execute(record: JobRecord): Promise<void> {
    record.startedMs = Date.now();
    record.phase = { startedMs: record.startedMs, startStep: 0 };
    Object.assign(record.summary, { state: 'running', startedAt: new Date(record.startedMs).toISOString(), message: 'Starting' });
    this.#emit(record);
    const context: JobContext = {
      signal: record.controller.signal,
      progress: (step, totalSteps, message, preview) => {
        if (record.summary.state !== 'running') return;
        const now = Date.now();
        if (totalSteps !== record.summary.totalSteps || step < record.phase.startStep) record.phase = { startedMs: now, startStep: step };
        const stepsDone = step - record.phase.startStep;
        const etaMs = stepsDone > 0 && totalSteps >= step ? Math.round(((now - record.phase.startedMs) / stepsDone) * (totalSteps - step)) : null;
        Object.assign(record.summary, { step, totalSteps, etaMs, message: message ?? record.summary.message, preview: preview ?? record.summary.preview });
        this.#emit(record);
      },
      preview: (dataUrl) => {
        if (record.summary.state !== 'running') return;
        record.summary.preview = dataUrl;
        this.#emit(record);
      },
      setResult: (id) => {
        if (record.summary.state === 'running') record.summary.resultId = id;
      },
      appendSeries: (value) => {
        if (record.summary.state !== 'running') return;
        record.summary.series = [...(record.summary.series ?? []), value];
        this.#emit(record);
      },
    };
    try {
      const message = await record.spec.run(context);
      if (record.controller.signal.aborted && record.summary.resultId === null) this.#finish(record, 'cancelled', record.spec.cancelledMessage ?? 'Cancelled');
      else this.#finish(record, 'done', message);
    } catch (error) {
      if (record.controller.signal.aborted || error instanceof JobCancelledError) this.#finish(record, 'cancelled', record.spec.cancelledMessage ?? 'Cancelled');
      else this.#finish(record, 'failed', error instanceof Error ? error.message : String(error));
    }
  }

  #finish(record: JobRecord, state: JobState, message: string): void {
    Object.assign(record.summary, { state, message, etaMs: null, finishedAt: new Date().toISOString() });
    if (state === 'done') record.summary.step = record.summary.totalSteps;
    this.#emit(record);
    this.#forgetOldJobs();
  }

  #forgetOldJobs(): void {
    const finished = [...this.#jobs.values()].filter((r) => !isActive(r.summary.state));
    for (const record of finished.slice(0, Math.max(0, finished.length - FINISHED_JOBS_KEPT))) this.#jobs.delete(record.summary.id);
  }

  #emit(record: JobRecord): void {
    this.#onChange({ ...record.summary });
  }
}

function isActive(state: JobState): boolean {
  return state === 'queued' || state === 'running';
}

/** Throws `JobCancelledError` when the job was cancelled; call between steps. */
export function throwIfCancelled(signal: AbortSignal): void {
  if (signal.aborted) throw new JobCancelledError();
}
