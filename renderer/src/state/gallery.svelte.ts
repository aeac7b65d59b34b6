import type { GenerationDetail, GenerationSummary, JobSummary, RecipeReading, Reproduction, SchedulerName, StudioBridge } from '../contract';
import { SCHEDULER_NAMES } from '../contract';
import { toStudioError, type StudioError } from '../transport/studio-error';
import { isActive } from './jobs.svelte';
import type { LibraryState } from './library.svelte';
import { SCHEDULER_LABELS } from './settings.svelte';
import { bytesToBase64 } from './subjects.svelte';

/** One line of the recipe panel. */
export interface RecipeRow {
  readonly key: string;
  readonly label: string;
  readonly value: string;
  /** Shown in monospace (hashes, seeds). */
  readonly mono?: boolean;
}

function text(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return null;
}

function record(value: unknown): Record<string, unknown> | null {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
}

function schedulerLabel(value: unknown): string | null {
  if (typeof value !== 'string') return null;
  return Object.hasOwn(SCHEDULER_LABELS, value) ? SCHEDULER_LABELS[value as keyof typeof SCHEDULER_LABELS] : value;
}

function formatMs(value: unknown): string | null {
  if (typeof value !== 'number' || !Number.isFinite(value)) return null;
  return value < 1000 ? `${Math.round(value)} ms` : `${(value / 1000).toFixed(1)} s`;
}

/** The recipe as labelled rows; fields the recipe lacks are left out. The recipe is untrusted JSON. */
export function recipeRows(recipe: Record<string, unknown>, subjectName: string | null): RecipeRow[] {
  const model = record(recipe['model']);
  const subject = record(recipe['subject']);
  const photos = subject?.['photos'];
  const subjectLabel = [text(subject?.['name']) ?? subjectName, text(recipe['targetSubject']) ?? text(subject?.['category'])]
    .filter((part): part is string => part !== null && part !== '')
    .join(' · ');
  const rows: (RecipeRow | null)[] = [
    row('prompt', 'Prompt', text(recipe['prompt'])),
    row('negative', 'Negative prompt', text(recipe['negativePrompt']) || '—'),
    row('seed', 'Seed', text(recipe['seed']), true),
    row('steps', 'Steps', text(recipe['steps'])),
    row('scheduler', 'Scheduler', schedulerLabel(recipe['scheduler'])),
    row('guidance', 'Guidance', text(recipe['guidanceScale'])),
    row('size', 'Size', `${text(recipe['width']) ?? '?'} × ${text(recipe['height']) ?? '?'}`),
    row('model', 'Model', text(model?.['name'])),
    row('hash', 'Model hash', text(model?.['hash']), true),
    row(
      'subject',
      'Subject',
      subjectLabel === '' ? null : Array.isArray(photos) ? `${subjectLabel} (${photos.length} photos)` : subjectLabel,
    ),
    row('photos', 'Photos', photoList(subject), true),
    row('mix', 'Mixed with', mixLabel(record(recipe['mix']))),
    row('mixPhotos', 'Its photos', photoList(record(record(recipe['mix'])?.['subject'])), true),
    row('device', 'Device', text(recipe['device'])),
    row('app', 'App version', text(recipe['appVersion'])),
    row('duration', 'Duration', formatMs(recipe['durationMs'])),
  ];
  return rows.filter((entry): entry is RecipeRow => entry !== null);
}

/** "3f2a91c0… ×1, 9bc1d2e3… ×0.5": each photo's hash (short) and its weight; or the reference photo's hash. */
function photoList(subject: Record<string, unknown> | null): string | null {
  const reference = text(record(subject?.['reference'])?.['sha256']);
  if (reference !== null) return `${reference.slice(0, 12)}… (reference photo)`;
  const photos = subject?.['photos'];
  if (!Array.isArray(photos) || photos.length === 0) return null;
  return photos
    .map((photo: unknown) => {
      const entry = record(photo);
      return `${(text(entry?.['sha256']) ?? '?').slice(0, 12)}… ×${text(entry?.['weight']) ?? '?'}`;
    })
    .join(', ');
}

/** "Mittens · cat, 30 %": the subject mixed in and its share (1 − ratio). */
function mixLabel(mix: Record<string, unknown> | null): string | null {
  if (mix === null) return null;
  const subject = record(mix['subject']);
  const ratio = mix['ratio'];
  const name = [text(subject?.['name']), text(subject?.['category'])].filter((part) => part !== null).join(' · ');
  const share = typeof ratio === 'number' && Number.isFinite(ratio) ? `, ${Math.round((1 - ratio) * 100)} %` : '';
  return `${name || 'another subject'}${share}`;
}

function row(key: string, label: string, value: string | null, mono = false): RecipeRow | null {
  return value === null ? null : { key, label, value, mono };
}

/** How many results one page of the grid holds ("Load more" fetches the next). */
export const GALLERY_PAGE_SIZE = 60;
/** Largest PNG read for its recipe (main refuses bigger ones too). */
export const MAX_RECIPE_PNG_BYTES = 30 * 1024 * 1024;

export type DateRange = 'all' | 'today' | 'week' | 'month';

export const DATE_RANGES: readonly { readonly id: DateRange; readonly label: string }[] = [
  { id: 'all', label: 'Any time' },
  { id: 'today', label: 'Today' },
  { id: 'week', label: 'Last 7 days' },
  { id: 'month', label: 'Last 30 days' },
];

/** The start of a date range as ISO 8601 (local midnight for "today"), or undefined for any time. */
export function rangeStart(range: DateRange, now: Date = new Date()): string | undefined {
  if (range === 'all') return undefined;
  if (range === 'today') return new Date(now.getFullYear(), now.getMonth(), now.getDate()).toISOString();
  const days = range === 'week' ? 7 : 30;
  return new Date(now.getTime() - days * 24 * 3600 * 1000).toISOString();
}

/** What "Reuse settings" puts into the Generate form. */
export interface RecipeFormValues {
  /** The library subject, or null when the recipe's subject is no longer there. */
  subjectId: number | null;
  /** The word the prompt named the subject by. */
  targetSubject: string | null;
  /** The subject mixed in and its ratio, when the recipe mixes one that is still in the library. */
  mix: { subjectId: number; ratio: number } | null;
  prompt: string;
  negativePrompt: string;
  seed: string;
  steps: number;
  guidance: number;
  scheduler: SchedulerName;
  width: number;
  height: number;
}

function numberField(value: unknown, fallback: number): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : fallback;
}

/** The Generate form's values from an (untrusted) recipe; `subjectId` only if that subject still exists. */
export function recipeFormValues(
  recipe: Record<string, unknown>,
  subjects: { subjectId: number | null; mixSubjectId: number | null },
  knownSubjects: readonly { id: number }[],
): RecipeFormValues {
  const scheduler = recipe['scheduler'];
  const known = (id: number | null): number | null => (id !== null && knownSubjects.some((subject) => subject.id === id) ? id : null);
  const mix = recipe['mix'];
  const ratio = typeof mix === 'object' && mix !== null && 'ratio' in mix ? numberField(mix.ratio, NaN) : NaN;
  const mixSubjectId = known(subjects.mixSubjectId);
  return {
    subjectId: known(subjects.subjectId),
    targetSubject: text(recipe['targetSubject']) ?? null,
    mix: mixSubjectId !== null && ratio >= 0 && ratio <= 1 ? { subjectId: mixSubjectId, ratio } : null,
    prompt: text(recipe['prompt']) ?? '',
    negativePrompt: text(recipe['negativePrompt']) ?? '',
    seed: text(recipe['seed']) ?? '',
    steps: numberField(recipe['steps'], 50),
    guidance: numberField(recipe['guidanceScale'], 7.5),
    scheduler: (SCHEDULER_NAMES as readonly string[]).includes(scheduler as string) ? (scheduler as SchedulerName) : 'pndm',
    width: numberField(recipe['width'], 512),
    height: numberField(recipe['height'], 512),
  };
}

/** A file name that says what the image is: blip-<subject>-<seed>.png. */
export function exportFileName(subjectName: string | null, seed: string): string {
  const slug = (subjectName ?? 'image')
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40);
  return `blip-${slug || 'image'}-${seed}.png`;
}

/** A PNG dropped onto the app (or picked), with its recipe. */
export interface DroppedPng {
  readonly reading: RecipeReading;
  readonly dataBase64: string;
}

/** The gallery: the filtered grid (paged), the result open in the detail panel, dropped PNGs and reproductions. */
export class GalleryState {
  readonly #bridge: StudioBridge;
  readonly #library: LibraryState;
  #subjectFilter = $state<number | null>(null);
  #range = $state<DateRange>('all');
  #items = $state.raw<readonly GenerationSummary[]>([]);
  #loaded = $state(false);
  #loading = $state(false);
  #hasMore = $state(false);
  #listError = $state.raw<StudioError | null>(null);
  #request = 0;
  #selectedId = $state<number | null>(null);
  #detail = $state.raw<GenerationDetail | null>(null);
  #detailError = $state.raw<StudioError | null>(null);
  #deleting = $state(false);
  #deleteError = $state.raw<StudioError | null>(null);
  #dropped = $state.raw<DroppedPng | null>(null);
  #dropError = $state<string | null>(null);
  #reading = $state(false);
  #reproJobId: string | null = null;
  #reproJob = $state.raw<JobSummary | null>(null);
  #reproStartError = $state.raw<StudioError | null>(null);
  #reproduction = $state.raw<Reproduction | null>(null);
  #editing = $state.raw<GenerationSummary | null>(null);

  constructor(bridge: StudioBridge, library: LibraryState) {
    this.#bridge = bridge;
    this.#library = library;
  }

  get subjectFilter(): number | null {
    return this.#subjectFilter;
  }

  set subjectFilter(id: number | null) {
    this.#subjectFilter = id;
    void this.load();
  }

  /** `subjectFilter` for a `<select>` value ('' for all). */
  get subjectFilterValue(): string {
    return this.#subjectFilter === null ? '' : String(this.#subjectFilter);
  }

  set subjectFilterValue(value: string) {
    this.subjectFilter = value === '' ? null : Number(value);
  }

  get range(): DateRange {
    return this.#range;
  }

  set range(range: DateRange) {
    this.#range = range;
    void this.load();
  }

  /** True when a filter narrows the grid (an empty grid then means "no match", not "nothing yet"). */
  get filtering(): boolean {
    return this.#subjectFilter !== null || this.#range !== 'all';
  }

  get items(): readonly GenerationSummary[] {
    return this.#items;
  }

  get loaded(): boolean {
    return this.#loaded;
  }

  get loading(): boolean {
    return this.#loading;
  }

  get hasMore(): boolean {
    return this.#hasMore;
  }

  get listError(): StudioError | null {
    return this.#listError;
  }

  /** Loads the first page for the current filters (again); `more` appends the next page instead. */
  async load(more = false): Promise<void> {
    const request = ++this.#request;
    const offset = more ? this.#items.length : 0;
    // A reload keeps as many rows as were on screen, so "Load more" pages survive a new result arriving.
    const limit = more ? GALLERY_PAGE_SIZE : Math.max(GALLERY_PAGE_SIZE, this.#items.length);
    this.#loading = true;
    try {
      const since = rangeStart(this.#range);
      const page = await this.#bridge.listGenerations({
        limit,
        offset,
        ...(this.#subjectFilter !== null ? { subjectId: this.#subjectFilter } : {}),
        ...(since !== undefined ? { since } : {}),
      });
      if (request !== this.#request) return;
      this.#items = more ? [...this.#items, ...page] : page;
      this.#hasMore = page.length === limit;
      this.#loaded = true;
      this.#listError = null;
    } catch (error) {
      if (request === this.#request) this.#listError = toStudioError(error);
    } finally {
      if (request === this.#request) this.#loading = false;
    }
  }

  loadMore(): Promise<void> {
    return this.load(true);
  }

  get selectedId(): number | null {
    return this.#selectedId;
  }

  get detail(): GenerationDetail | null {
    return this.#detail;
  }

  get detailError(): StudioError | null {
    return this.#detailError;
  }

  get deleting(): boolean {
    return this.#deleting;
  }

  get deleteError(): StudioError | null {
    return this.#deleteError;
  }

  readonly rows: readonly RecipeRow[] = $derived.by(() => {
    const detail = this.#detail;
    if (detail === null) return [];
    const subject = this.#library.subjects.value?.find((known) => known.id === detail.subjectId);
    return recipeRows(detail.recipe, subject?.name ?? null);
  });

  subjectName(id: number | null): string | null {
    if (id === null) return null;
    return this.#library.subjects.value?.find((subject) => subject.id === id)?.name ?? null;
  }

  /** The Generate form's values for a recipe (the subject only when it is still in the library). */
  formValues(recipe: Record<string, unknown>, subjects: { subjectId: number | null; mixSubjectId: number | null }): RecipeFormValues {
    return recipeFormValues(recipe, subjects, this.#library.subjects.value ?? []);
  }

  async select(id: number): Promise<void> {
    this.#selectedId = id;
    this.#deleteError = null;
    if (this.#detail?.id !== id) this.#detail = null;
    this.#detailError = null;
    try {
      const detail = await this.#bridge.getGeneration({ id });
      if (this.#selectedId === id) this.#detail = detail;
    } catch (error) {
      if (this.#selectedId === id) this.#detailError = toStudioError(error);
    }
  }

  close(): void {
    this.#selectedId = null;
    this.#detail = null;
    this.#detailError = null;
  }

  async deleteSelected(): Promise<void> {
    const id = this.#selectedId;
    if (id === null || this.#deleting) return;
    this.#deleting = true;
    this.#deleteError = null;
    try {
      await this.#bridge.deleteGeneration({ id });
      this.close();
      await Promise.all([this.load(), this.#library.generations.load(), this.#library.counts.load()]);
    } catch (error) {
      this.#deleteError = toStudioError(error);
    } finally {
      this.#deleting = false;
    }
  }

  // --- Dropped PNGs ---------------------------------------------------------------------------

  get dropped(): DroppedPng | null {
    return this.#dropped;
  }

  get dropError(): string | null {
    return this.#dropError;
  }

  get reading(): boolean {
    return this.#reading;
  }

  /** Reads the recipe of a PNG the user dropped or picked; a foreign or damaged one gets a clear message. */
  async openPng(file: File): Promise<void> {
    this.#dropError = null;
    if (!/\.png$/i.test(file.name) && file.type !== 'image/png') {
      this.#dropError = `${file.name} is not a PNG. Drop a PNG that BLIP Studio generated to restore its recipe.`;
      return;
    }
    if (file.size > MAX_RECIPE_PNG_BYTES) {
      this.#dropError = `${file.name} is ${(file.size / 1024 / 1024).toFixed(0)} MB, more than any image BLIP Studio writes.`;
      return;
    }
    this.#reading = true;
    try {
      const dataBase64 = bytesToBase64(new Uint8Array(await file.arrayBuffer()));
      const reading = await this.#bridge.readPngRecipe({ name: file.name, dataBase64 });
      this.#dropped = { reading, dataBase64 };
      this.#reproJob = null;
      this.#reproJobId = null;
      this.#reproduction = null;
    } catch (error) {
      this.#dropError = toStudioError(error).message;
    } finally {
      this.#reading = false;
    }
  }

  closeDropped(): void {
    this.#dropped = null;
    this.#dropError = null;
  }

  // --- Reproduce ------------------------------------------------------------------------------

  /** The reproduce job on screen (its live progress), or null. */
  get reproJob(): JobSummary | null {
    return this.#reproJob;
  }

  get reproducing(): boolean {
    return this.#reproJob !== null && isActive(this.#reproJob);
  }

  get reproStartError(): StudioError | null {
    return this.#reproStartError;
  }

  /** How the last reproduction came out, once its job is done. */
  get reproduction(): Reproduction | null {
    return this.#reproduction;
  }

  /** Runs the open result's recipe again (or the dropped PNG's) and compares the pixels. */
  async reproduce(source: 'selected' | 'dropped'): Promise<void> {
    const id = this.#selectedId;
    const dropped = this.#dropped;
    if (this.reproducing) return;
    this.#reproStartError = null;
    this.#reproduction = null;
    this.#reproJob = null;
    this.#reproJobId = null;
    try {
      const ref =
        source === 'dropped' && dropped !== null
          ? await this.#bridge.reproduce({ png: { name: dropped.reading.name, dataBase64: dropped.dataBase64 } })
          : id !== null
            ? await this.#bridge.reproduce({ generationId: id })
            : null;
      if (ref === null) return;
      this.#reproJobId = ref.id;
      // Events may have told of it already; the list fills in the ones that came before the id was known.
      const listed = (await this.#bridge.listJobs()).find((job) => job.id === ref.id);
      if (listed !== undefined) this.#track(listed);
    } catch (error) {
      this.#reproStartError = toStudioError(error);
    }
  }

  #track(job: JobSummary): void {
    if (job.id !== this.#reproJobId) return;
    const current = this.#reproJob;
    // A finished job never changes again: an older summary arriving late is dropped.
    if (current !== null && current.id === job.id && !isActive(current)) return;
    this.#reproJob = job;
    if (job.state === 'done') void this.#fetchReproduction(job.id);
  }

  async #fetchReproduction(jobId: string): Promise<void> {
    try {
      const reproduction = await this.#bridge.getReproduction({ id: jobId });
      if (this.#reproJob?.id === jobId) this.#reproduction = reproduction;
    } catch (error) {
      if (this.#reproJob?.id === jobId) this.#reproStartError = toStudioError(error);
    }
  }

  // --- Edit -----------------------------------------------------------------------------------

  /** The image chosen for the Edit view, or null. */
  get editing(): GenerationSummary | null {
    return this.#editing;
  }

  openInEdit(generation: GenerationSummary): void {
    this.#editing = generation;
  }

  closeEdit(): void {
    this.#editing = null;
  }

  /** Follows reproduce jobs and reloads the grid when results change. Returns the cleanup. */
  connect(): () => void {
    const stopJobs = this.#bridge.on('jobChanged', (job) => this.#track(job));
    const stopLibrary = this.#bridge.on('libraryChanged', (change) => {
      if (change.what === 'generations' && this.#loaded) void this.load();
    });
    return () => {
      stopJobs();
      stopLibrary();
    };
  }
}
