import type { GenerationRequest, GenerationSummary, JobSummary, SchedulerName, StudioBridge } from '../contract';
import { toStudioError, type StudioError } from '../transport/studio-error';
import { isActive, type JobsState } from './jobs.svelte';
import type { LibraryState } from './library.svelte';
import { SETTING_LIMITS, type SettingsState } from './settings.svelte';
import { firstReadyModel } from './subjects.svelte';

/** The negative prompt most BLIP-Diffusion examples use. */
export const NEGATIVE_PRESET =
  'over-exposure, under-exposure, saturated, duplicate, out of frame, lowres, cropped, worst quality, low quality, jpeg artifacts, morbid, mutilated, out of frame, ugly, bad anatomy, bad proportions, deformed, blurry, duplicate';

/** Square sizes offered as presets; the demo model is quick at the small ones. */
export const SIZE_PRESETS: readonly number[] = [64, 128, 256, 512];
export const SIZE_LIMITS = { min: 64, max: 1024, multiple: 8 } as const;
const MAX_SEED = 2n ** 64n - 1n;
/** How many of the latest results the Generate view lists. */
const RECENT_RESULTS = 8;

export function isGenerationJob(job: JobSummary): boolean {
  return job.kind.startsWith('generat');
}

/** A random seed in 0 … 2^64 − 1, as a decimal string. */
export function randomSeed(): string {
  const words = crypto.getRandomValues(new Uint32Array(2));
  return ((BigInt(words[0] ?? 0) << 32n) | BigInt(words[1] ?? 0)).toString();
}

type FieldErrors = Partial<Record<'subject' | 'prompt' | 'steps' | 'guidance' | 'width' | 'height' | 'seed', string>>;

function parseSize(text: string): number | null {
  const value = Number(text.trim());
  if (!Number.isInteger(value) || value < SIZE_LIMITS.min || value > SIZE_LIMITS.max || value % SIZE_LIMITS.multiple !== 0) return null;
  return value;
}

/**
 * The Generate form and the job it started. Steps, guidance and scheduler follow the Settings defaults
 * until the user changes them; the running generation is found again after a reload from the job list.
 */
export class GenerateState {
  subjectId = $state<number | null>(null);
  prompt = $state('');
  negativePrompt = $state('');
  width = $state('128');
  height = $state('128');
  seed = $state('');
  readonly #bridge: StudioBridge;
  readonly #jobs: JobsState;
  readonly #library: LibraryState;
  readonly #settings: SettingsState;
  #steps = $state<string | null>(null);
  #guidance = $state<string | null>(null);
  #scheduler = $state<SchedulerName | null>(null);
  #jobId = $state<string | null>(null);
  #starting = $state(false);
  #startError = $state.raw<StudioError | null>(null);
  #submitted = $state(false);

  constructor(bridge: StudioBridge, jobs: JobsState, library: LibraryState, settings: SettingsState) {
    this.#bridge = bridge;
    this.#jobs = jobs;
    this.#library = library;
    this.#settings = settings;
  }

  get steps(): string {
    return this.#steps ?? String(this.#settings.current?.defaultSteps ?? 50);
  }

  set steps(text: string) {
    this.#steps = text;
  }

  get guidance(): string {
    return this.#guidance ?? String(this.#settings.current?.defaultGuidance ?? 7.5);
  }

  set guidance(text: string) {
    this.#guidance = text;
  }

  get scheduler(): SchedulerName {
    return this.#scheduler ?? this.#settings.current?.defaultScheduler ?? 'pndm';
  }

  set scheduler(name: SchedulerName) {
    this.#scheduler = name;
  }

  get starting(): boolean {
    return this.#starting;
  }

  get startError(): StudioError | null {
    return this.#startError;
  }

  readonly model = $derived.by(() => firstReadyModel(this.#library.models.value));

  /** The subject picked, or the first one when none is picked yet. */
  readonly subject = $derived.by(() => {
    const subjects = this.#library.subjects.value ?? [];
    return (
      subjects.find((subject) => subject.id === this.subjectId) ??
      subjects.find((subject) => subject.photoCount > 0) ??
      subjects[0] ??
      null
    );
  });

  readonly errors: FieldErrors = $derived.by(() => {
    const errors: FieldErrors = {};
    if (this.subject === null) errors.subject = 'Create a subject first.';
    else if (this.subject.photoCount === 0) errors.subject = 'This subject has no photos yet.';
    if (this.#submitted && this.prompt.trim() === '') errors.prompt = 'Describe the scene, e.g. “on the beach at sunset”.';
    const steps = Number(this.steps.trim());
    const { min, max } = SETTING_LIMITS.steps;
    if (!Number.isInteger(steps) || steps < min || steps > max) errors.steps = `Enter a whole number from ${min} to ${max}.`;
    const guidance = Number(this.guidance.trim());
    const g = SETTING_LIMITS.guidance;
    if (this.guidance.trim() === '' || !Number.isFinite(guidance) || guidance < g.min || guidance > g.max) {
      errors.guidance = `Enter a number from ${g.min} to ${g.max}.`;
    }
    const sizeHint = `A multiple of ${SIZE_LIMITS.multiple} from ${SIZE_LIMITS.min} to ${SIZE_LIMITS.max}.`;
    if (parseSize(this.width) === null) errors.width = sizeHint;
    if (parseSize(this.height) === null) errors.height = sizeHint;
    const seed = this.seed.trim();
    if (seed !== '' && (!/^(0|[1-9]\d{0,19})$/.test(seed) || BigInt(seed) > MAX_SEED)) {
      errors.seed = 'Leave empty for a random seed, or enter a whole number from 0 to 18446744073709551615.';
    }
    return errors;
  });

  readonly canStart: boolean = $derived(
    this.model !== null && Object.keys(this.errors).length === 0 && this.prompt.trim() !== '' && !this.#starting,
  );

  /**
   * The generation on screen: the one started here, else the latest one main knows (running first), so
   * that after a reload the panel finds the running job again and follows it to the end.
   */
  readonly job: JobSummary | null = $derived.by(() => {
    const tracked = this.#jobId === null ? undefined : this.#jobs.byId(this.#jobId);
    if (tracked !== undefined) return tracked;
    return this.#jobs.all.find(isGenerationJob) ?? null;
  });

  readonly running: boolean = $derived(this.job !== null && isActive(this.job));

  /** The image the finished job made, once the gallery knows it. */
  readonly result: GenerationSummary | null = $derived.by(() => {
    const id = this.job?.resultId ?? null;
    if (id === null) return null;
    return this.#library.generations.value?.find((generation) => generation.id === id) ?? null;
  });

  /** The latest results for the subject picked. */
  readonly recent: readonly GenerationSummary[] = $derived.by(() => {
    const all = this.#library.generations.value ?? [];
    const subjectId = this.subject?.id;
    return all.filter((generation) => subjectId === undefined || generation.subjectId === subjectId).slice(0, RECENT_RESULTS);
  });

  setSize(size: number): void {
    this.width = String(size);
    this.height = String(size);
  }

  rollSeed(): void {
    this.seed = randomSeed();
  }

  useNegativePreset(): void {
    this.negativePrompt = NEGATIVE_PRESET;
  }

  resetToDefaults(): void {
    this.#steps = null;
    this.#guidance = null;
    this.#scheduler = null;
  }

  async start(): Promise<void> {
    this.#submitted = true;
    const subject = this.subject;
    const model = this.model;
    if (!this.canStart || subject === null || model === null) return;
    const seed = this.seed.trim();
    const negative = this.negativePrompt.trim();
    const request: GenerationRequest = {
      subjectId: subject.id,
      prompt: this.prompt.trim(),
      steps: Number(this.steps.trim()),
      guidanceScale: Number(this.guidance.trim()),
      scheduler: this.scheduler,
      width: Number(this.width.trim()),
      height: Number(this.height.trim()),
      modelId: model.id,
      ...(negative === '' ? {} : { negativePrompt: negative }),
      ...(seed === '' ? {} : { seed }),
    };
    this.#starting = true;
    this.#startError = null;
    try {
      const ref = await this.#bridge.startGeneration(request);
      this.#jobId = ref.id;
    } catch (error) {
      this.#startError = toStudioError(error);
    } finally {
      this.#starting = false;
    }
  }

  /** Reloads the results when a generation finishes (main may announce it too). Returns the cleanup. */
  connect(): () => void {
    return this.#bridge.on('jobChanged', (job) => {
      if (isGenerationJob(job) && job.state === 'done') {
        void this.#library.generations.load();
        void this.#library.counts.load();
      }
    });
  }

  async cancel(): Promise<void> {
    const job = this.job;
    if (job !== null && isActive(job)) await this.#jobs.cancel(job.id);
  }
}
