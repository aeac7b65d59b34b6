import type { JobState, JobSummary, StudioBridge } from '../contract';
import { toStudioError, type StudioError } from '../transport/studio-error';
import { formatBytes } from '../util/format';

/** Finished jobs kept in the tray; older ones drop off. */
export const FINISHED_JOBS_KEPT = 30;

export const JOB_STATE_LABELS: Record<JobState, string> = {
  queued: 'Queued',
  running: 'Running',
  done: 'Done',
  failed: 'Failed',
  cancelled: 'Cancelled',
};

const ACTIVE_STATES: ReadonlySet<JobState> = new Set(['queued', 'running']);

export function isActive(job: JobSummary): boolean {
  return ACTIVE_STATES.has(job.state);
}

/** 0…1, or null when the job has no step count yet. */
/** The job's count for display: "3/50" steps, or "1.2 GB of 3.4 GB" for a download. */
export function jobCountText(job: JobSummary): string {
  return job.progressUnit === 'bytes' ? `${formatBytes(job.step)} of ${formatBytes(job.totalSteps)}` : `${job.step}/${job.totalSteps}`;
}

export function jobProgress(job: JobSummary): number | null {
  if (job.state === 'done') return 1;
  if (job.totalSteps <= 0) return null;
  return Math.min(1, Math.max(0, job.step / job.totalSteps));
}

function sortTime(job: JobSummary): number {
  const time = Date.parse(job.finishedAt ?? job.startedAt ?? '');
  return Number.isNaN(time) ? Number.POSITIVE_INFINITY : time;
}

/** Running first, then queued, then finished; newest first within each group. */
function compareJobs(a: JobSummary, b: JobSummary): number {
  const rank = (job: JobSummary) => (job.state === 'running' ? 0 : job.state === 'queued' ? 1 : 2);
  return rank(a) - rank(b) || sortTime(b) - sortTime(a);
}

/**
 * The job queue as the renderer sees it: the list from `listJobs`, then every `jobChanged` event.
 * Events that arrive while the list is loading win over the list (they are newer).
 */
export class JobsState {
  readonly #bridge: StudioBridge;
  #jobs = $state.raw<ReadonlyMap<string, JobSummary>>(new Map());
  #eventsDuringLoad: Map<string, JobSummary> | null = null;
  #loaded = $state(false);
  #error = $state.raw<StudioError | null>(null);
  #cancelling = $state.raw<ReadonlySet<string>>(new Set());
  #cancelError = $state.raw<StudioError | null>(null);

  constructor(bridge: StudioBridge) {
    this.#bridge = bridge;
  }

  /** All known jobs, in tray order. */
  readonly all: readonly JobSummary[] = $derived.by(() => {
    const sorted = [...this.#jobs.values()].sort(compareJobs);
    const active = sorted.filter(isActive);
    const finished = sorted.filter((job) => !isActive(job)).slice(0, FINISHED_JOBS_KEPT);
    return [...active, ...finished];
  });

  readonly active: readonly JobSummary[] = $derived(this.all.filter(isActive));

  /** The job the status bar shows: the running one, else the next queued one. */
  readonly current: JobSummary | null = $derived(this.active[0] ?? null);

  /** The most recently finished job. */
  readonly lastFinished: JobSummary | null = $derived(this.all.find((job) => !isActive(job)) ?? null);

  /** One sentence for the screen-reader live region; changes on state changes, not on every step. */
  readonly announcement: string = $derived.by(() => {
    const job = this.current ?? this.lastFinished;
    if (job === null) return '';
    return `${job.label}: ${JOB_STATE_LABELS[job.state].toLowerCase()}`;
  });

  get loaded(): boolean {
    return this.#loaded;
  }

  get error(): StudioError | null {
    return this.#error;
  }

  get cancelError(): StudioError | null {
    return this.#cancelError;
  }

  byId(id: string): JobSummary | undefined {
    return this.#jobs.get(id);
  }

  isCancelling(id: string): boolean {
    return this.#cancelling.has(id);
  }

  async load(): Promise<void> {
    const during = new Map<string, JobSummary>();
    this.#eventsDuringLoad = during;
    try {
      const list = await this.#bridge.listJobs();
      if (this.#eventsDuringLoad !== during) return;
      const next = new Map(list.map((job) => [job.id, job]));
      for (const [id, job] of during) next.set(id, job);
      this.#jobs = next;
      this.#loaded = true;
      this.#error = null;
    } catch (error) {
      if (this.#eventsDuringLoad === during) this.#error = toStudioError(error);
    } finally {
      if (this.#eventsDuringLoad === during) this.#eventsDuringLoad = null;
    }
  }

  async cancel(id: string): Promise<void> {
    if (this.#cancelling.has(id)) return;
    this.#cancelling = new Set([...this.#cancelling, id]);
    this.#cancelError = null;
    try {
      await this.#bridge.cancelJob({ id });
    } catch (error) {
      this.#cancelError = toStudioError(error);
    } finally {
      const next = new Set(this.#cancelling);
      next.delete(id);
      this.#cancelling = next;
    }
  }

  connect(): () => void {
    return this.#bridge.on('jobChanged', (job) => this.#upsert(job));
  }

  #upsert(job: JobSummary): void {
    this.#eventsDuringLoad?.set(job.id, job);
    const next = new Map(this.#jobs);
    next.set(job.id, job);
    if (next.size > 2 * FINISHED_JOBS_KEPT) {
      const finished = [...next.values()].filter((known) => !isActive(known)).sort(compareJobs);
      for (const old of finished.slice(FINISHED_JOBS_KEPT)) next.delete(old.id);
    }
    this.#jobs = next;
  }
}
