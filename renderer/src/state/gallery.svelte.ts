import type { GenerationDetail, GenerationSummary, JobSummary, RecipeReading, Reproduction, StudioBridge } from '../contract';
import { toStudioError, type StudioError } from '../transport/studio-error';
import { isActive } from './jobs.svelte';
import type { LibraryState } from './library.svelte';
import { recipeFormValues, recipeRows, type RecipeFormValues, type RecipeRow } from './recipe-fields';
import { UndoWindow } from './undo-window.svelte';
import { bytesToBase64 } from './subjects.svelte';

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

/** A PNG dropped onto the app (or picked), with its recipe. */
export interface DroppedPng {
  readonly reading: RecipeReading;
  readonly dataBase64: string;
}

/** The gallery: the filtered grid (paged), the result open in the detail panel, dropped PNGs and reproductions. */
export class GalleryState {
  /** The result just deleted, while it can be brought back. */
  readonly undo = new UndoWindow();
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
    const prompt = this.#detail?.id === id ? this.#detail.prompt : '';
    try {
      const deletion = await this.#bridge.deleteGeneration({ id });
      this.undo.show(id, prompt, deletion.undoUntil);
      this.close();
      await this.#reloadAll();
    } catch (error) {
      this.#deleteError = toStudioError(error);
    } finally {
      this.#deleting = false;
    }
  }

  /** Brings back the result just deleted, and opens it again. */
  async undoDelete(): Promise<void> {
    const pending = this.undo.take();
    if (pending === null) return;
    this.#deleteError = null;
    try {
      await this.#bridge.undoDeleteGeneration({ id: pending.id });
      await this.#reloadAll();
      await this.select(pending.id);
    } catch (error) {
      this.#deleteError = toStudioError(error);
    }
  }

  #reloadAll(): Promise<unknown> {
    return Promise.all([this.load(), this.#library.generations.load(), this.#library.counts.load()]);
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
      this.undo.clear();
    };
  }
}
