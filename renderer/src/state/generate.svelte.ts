import type { AdapterSummary, ControlUse, GenerationRequest, GenerationSummary, JobSummary, SchedulerName, StudioBridge, SubjectDetail } from '../contract';
import { toStudioError, type StudioError } from '../transport/studio-error';
import { isActive, type JobsState } from './jobs.svelte';
import type { LibraryState } from './library.svelte';
import type { RecipeFormValues } from './recipe-fields';
import { PhotoWeights } from './photo-weights.svelte';
import { SETTING_LIMITS, type SettingsState } from './settings.svelte';
import { firstReadyModel } from './subjects.svelte';
import type { ControlState } from './control.svelte';

/** The negative prompt most BLIP-Diffusion examples use. */
export const NEGATIVE_PRESET =
  'over-exposure, under-exposure, saturated, duplicate, out of frame, lowres, cropped, worst quality, low quality, jpeg artifacts, morbid, mutilated, out of frame, ugly, bad anatomy, bad proportions, deformed, blurry, duplicate';

/** Square sizes offered as presets; the demo model is quick at the small ones. */
export const SIZE_PRESETS: readonly number[] = [64, 128, 256, 512];
export const SIZE_LIMITS = { min: 64, max: 1024, multiple: 8 } as const;
const MAX_SEED = 2n ** 64n - 1n;
/** How many of the latest results the Generate view lists. */
const RECENT_RESULTS = 8;
/** Images one click may ask for (A1111's batch count); main accepts the same. */
export const MAX_BATCH_COUNT = 8;
/** The first subject's share when a second one is mixed in, until the user moves the slider. */
export const DEFAULT_MIX_RATIO = 0.5;

export function isGenerationJob(job: JobSummary): boolean {
  return job.kind.startsWith('generat');
}

/** A random seed in 0 … 2^64 − 1, as a decimal string. */
export function randomSeed(): string {
  const words = crypto.getRandomValues(new Uint32Array(2));
  return ((BigInt(words[0] ?? 0) << 32n) | BigInt(words[1] ?? 0)).toString();
}

type FieldErrors = Partial<Record<'subject' | 'target' | 'mix' | 'prompt' | 'steps' | 'guidance' | 'width' | 'height' | 'seed', string>>;

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
  /** How many images one click makes: seeds seed, seed+1, … (or random ones). */
  batchCount = $state(1);
  /** The second subject mixed in, or null for none. */
  mixSubjectId = $state<number | null>(null);
  /** The first subject's share of the mix, 0 … 1. */
  mixRatio = $state(DEFAULT_MIX_RATIO);
  /** Use the subject's fine-tune (when it has one for the chosen model), at `finetuneStrength` (0 … 1.5). */
  finetuneEnabled = $state(true);
  finetuneStrength = $state(1);
  /** The fine-tune picked when the subject has several (default: the newest). */
  finetuneChoice = $state<number | null>(null);
  /** Style LoRAs switched on, with their strengths. */
  styleUses = $state<{ adapterId: number; scale: number }[]>([]);
  /** The chosen subject's per-photo weights (saved on the subject, as on its page). */
  readonly weights: PhotoWeights;
  /** The control panel's state (the studio connects it). */
  control: ControlState | null = null;
  #subjectAdapters = $state.raw<readonly AdapterSummary[]>([]);
  #styleAdapters = $state.raw<readonly AdapterSummary[]>([]);
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
  #target = $state<string | null>(null);
  #detail = $state.raw<SubjectDetail | null>(null);

  constructor(bridge: StudioBridge, jobs: JobsState, library: LibraryState, settings: SettingsState) {
    this.#bridge = bridge;
    this.#jobs = jobs;
    this.#library = library;
    this.#settings = settings;
    this.weights = new PhotoWeights(bridge, () => this.subjectDetail, (saved) => {
      if (this.#detail?.id === saved.id) this.#detail = saved;
    });
  }

  /** The word the prompt names the subject by: the subject's category until the user edits it. */
  get targetSubject(): string {
    return this.#target ?? this.subject?.category ?? '';
  }

  set targetSubject(word: string) {
    this.#target = word;
  }

  /** Picks the subject; the target word follows its category again. */
  chooseSubject(id: number): void {
    if (id === this.subject?.id) return;
    this.subjectId = id;
    this.#target = null;
    this.weights.reset();
    if (this.mixSubjectId === id) this.mixSubjectId = null;
    this.finetuneChoice = null;
    this.finetuneEnabled = true;
  }

  /** The chosen subject with its photos (for the weight sliders), once loaded. */
  get subjectDetail(): SubjectDetail | null {
    const detail = this.#detail;
    return detail !== null && detail.id === this.subject?.id ? detail : null;
  }

  /** The subject's fine-tunes made for the chosen model, newest first. */
  get finetunes(): readonly AdapterSummary[] {
    const model = this.model;
    return this.#subjectAdapters.filter((a) => a.kind === 'finetune' && a.subjectId === this.subject?.id && model !== null && a.modelId === model.id);
  }

  /** The subject's fine-tunes that need another model than the chosen one (shown, not usable). */
  get otherModelFinetunes(): readonly AdapterSummary[] {
    const model = this.model;
    return this.#subjectAdapters.filter((a) => a.kind === 'finetune' && a.subjectId === this.subject?.id && (model === null || a.modelId !== model.id));
  }

  get styleAdapters(): readonly AdapterSummary[] {
    const model = this.model;
    return this.#styleAdapters.filter((a) => model !== null && a.modelId === model.id);
  }

  /** The fine-tune a generation would use now, or null. */
  get finetune(): AdapterSummary | null {
    if (!this.finetuneEnabled || this.mixSubjectId !== null) return null;
    const list = this.finetunes;
    return list.find((a) => a.id === this.finetuneChoice) ?? list[0] ?? null;
  }

  setStyle(adapterId: number, on: boolean): void {
    const rest = this.styleUses.filter((use) => use.adapterId !== adapterId);
    this.styleUses = on ? [...rest, { adapterId, scale: 1 }] : rest;
  }

  setStyleScale(adapterId: number, scale: number): void {
    this.styleUses = this.styleUses.map((use) => (use.adapterId === adapterId ? { ...use, scale } : use));
  }

  /** Loads the subject's fine-tunes and the library's style adapters. */
  async loadAdapters(): Promise<void> {
    const id = this.subject?.id;
    try {
      const [mine, styles] = await Promise.all([id === undefined ? Promise.resolve([]) : this.#bridge.listAdapters({ subjectId: id }), this.#bridge.listAdapters({ kind: 'style' })]);
      if (this.subject?.id !== id) return;
      this.#subjectAdapters = mine;
      this.#styleAdapters = styles;
      const known = new Set(styles.map((a) => a.id));
      this.styleUses = this.styleUses.filter((use) => known.has(use.adapterId));
    } catch {
      // Generation works without adapters; the subject's page says what is wrong with them.
    }
  }

  /** Loads the chosen subject's photos; the view calls it when the choice changes. */
  async loadSubjectDetail(): Promise<void> {
    const id = this.subject?.id;
    if (id === undefined) return;
    try {
      const detail = await this.#bridge.getSubject({ id });
      if (this.subject?.id === id) this.#detail = detail;
    } catch {
      // The subject list shows why (e.g. it was deleted); the sliders simply stay hidden.
    }
  }

  /** The second subject of a mix, when one is picked. */
  readonly mixSubject = $derived.by(() => {
    const id = this.mixSubjectId;
    return id === null ? null : ((this.#library.subjects.value ?? []).find((subject) => subject.id === id) ?? null);
  });

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
    const target = this.targetSubject.trim();
    if (target === '') errors.target = 'Enter the word the prompt calls the subject, such as “dog”.';
    else if (target.length > 100) errors.target = 'Keep the word under 100 characters.';
    const mix = this.mixSubject;
    if (this.mixSubjectId !== null && mix === null) errors.mix = 'That subject is gone: pick another or none.';
    else if (mix !== null && mix.id === this.subject?.id) errors.mix = 'Pick a different subject to mix with.';
    else if (mix !== null && mix.photoCount === 0) errors.mix = `${mix.name} has no photos yet.`;
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

  /** The output size when both fields are valid, else null. */
  get outputSize(): { width: number; height: number } | null {
    const width = parseSize(this.width);
    const height = parseSize(this.height);
    return width === null || height === null ? null : { width, height };
  }

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

  /** Fills the form from a recipe ("Reuse settings" in the Gallery); a subject no longer in the library keeps the current pick. */
  applyRecipe(values: RecipeFormValues): void {
    if (values.subjectId !== null) {
      this.chooseSubject(values.subjectId);
      if (values.targetSubject !== null) this.targetSubject = values.targetSubject;
      this.mixSubjectId = values.mix?.subjectId ?? null;
      if (values.mix) this.mixRatio = values.mix.ratio;
      this.finetuneEnabled = values.finetuneStrength !== null;
      if (values.finetuneStrength !== null) this.finetuneStrength = values.finetuneStrength;
    }
    this.batchCount = 1;
    this.prompt = values.prompt;
    this.negativePrompt = values.negativePrompt;
    this.seed = values.seed;
    this.#steps = String(values.steps);
    this.#guidance = String(values.guidance);
    this.#scheduler = values.scheduler;
    this.width = String(values.width);
    this.height = String(values.height);
    if (values.control !== null) void this.control?.restore(values.control);
    else if (this.control) this.control.enabled = false;
  }

  async start(): Promise<void> {
    this.#submitted = true;
    const subject = this.subject;
    const model = this.model;
    if (!this.canStart || subject === null || model === null) return;
    this.#starting = true;
    // The job reads the weights from the subject: a slider moved just now must be saved first.
    await this.weights.flush();
    const seed = this.seed.trim();
    const mix = this.mixSubject;
    const negative = this.negativePrompt.trim();
    let control: ControlUse | null;
    try {
      control = (await this.control?.use()) ?? null;
    } catch (error) {
      this.#startError = toStudioError(error);
      this.#starting = false;
      return;
    }
    const request: GenerationRequest = {
      subjectId: subject.id,
      prompt: this.prompt.trim(),
      steps: Number(this.steps.trim()),
      guidanceScale: Number(this.guidance.trim()),
      scheduler: this.scheduler,
      width: Number(this.width.trim()),
      height: Number(this.height.trim()),
      modelId: model.id,
      targetSubject: this.targetSubject.trim(),
      ...(negative === '' ? {} : { negativePrompt: negative }),
      ...(seed === '' ? {} : { seed }),
      ...(this.batchCount > 1 ? { batchCount: this.batchCount } : {}),
      ...(mix === null ? {} : { mix: { subjectId: mix.id, ratio: this.mixRatio } }),
      ...(this.finetune === null ? {} : { finetune: { adapterId: this.finetune.id, scale: this.finetuneStrength } }),
      ...(this.styleUses.length === 0 ? {} : { styles: this.styleUses.map((use) => ({ ...use })) }),
      ...(control === null ? {} : { control }),
    };
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
    const stopJobs = this.#bridge.on('jobChanged', (job) => {
      if (isGenerationJob(job) && job.state === 'done') {
        void this.#library.generations.load();
        void this.#library.counts.load();
      }
    });
    // Weights or photos changed elsewhere (the subject's page): the sliders follow.
    const stopLibrary = this.#bridge.on('libraryChanged', (change) => {
      if (change.what === 'subjects' || change.what === 'photos') void this.loadSubjectDetail();
      if (change.what === 'adapters' || change.what === 'models') void this.loadAdapters();
    });
    return () => {
      stopJobs();
      stopLibrary();
      this.weights.reset();
    };
  }

  async cancel(): Promise<void> {
    const job = this.job;
    if (job !== null && isActive(job)) await this.#jobs.cancel(job.id);
  }
}
