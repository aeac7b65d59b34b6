import type {
  ControlModelSummary,
  GenerationSummary,
  LibraryCounts,
  ModelSummary,
  StudioBridge,
  StudioEvents,
  SubjectSort,
  SubjectSummary,
} from '../contract';
import { Resource } from './resource.svelte';

/** How many recent generations the gallery asks for. */
export const GALLERY_PAGE = 200;
/** Pause between a keystroke in the subject search and the query. */
const SEARCH_DEBOUNCE_MS = 200;

/**
 * Subjects, generations, models and their counts, reloaded when main says the library changed.
 */
export class LibraryState {
  readonly subjects: Resource<SubjectSummary[]>;
  readonly generations: Resource<GenerationSummary[]>;
  readonly models: Resource<ModelSummary[]>;
  /** ControlNets on their own and depth estimators. */
  readonly controlModels: Resource<ControlModelSummary[]>;
  readonly counts: Resource<LibraryCounts>;
  readonly #bridge: StudioBridge;
  #search = $state('');
  #sort = $state<SubjectSort>('recent');
  #searchTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(bridge: StudioBridge) {
    this.#bridge = bridge;
    this.subjects = new Resource(() => bridge.listSubjects({ search: this.#search.trim() || undefined, sort: this.#sort }));
    this.generations = new Resource(() => bridge.listGenerations({ limit: GALLERY_PAGE }));
    this.models = new Resource(() => bridge.listModels());
    this.controlModels = new Resource(() => bridge.listControlModels());
    this.counts = new Resource(() => bridge.getLibraryCounts());
  }

  /** At least one model is installed and verified. */
  get hasReadyModel(): boolean {
    return this.models.value?.some((model) => model.status === 'ready') ?? false;
  }

  get subjectCount(): number {
    return this.counts.value?.subjects ?? this.subjects.value?.length ?? 0;
  }

  get generationCount(): number {
    return this.counts.value?.generations ?? this.generations.value?.length ?? 0;
  }

  get search(): string {
    return this.#search;
  }

  set search(text: string) {
    this.#search = text;
    if (this.#searchTimer !== null) clearTimeout(this.#searchTimer);
    this.#searchTimer = setTimeout(() => {
      this.#searchTimer = null;
      void this.subjects.load();
    }, SEARCH_DEBOUNCE_MS);
  }

  get sort(): SubjectSort {
    return this.#sort;
  }

  set sort(sort: SubjectSort) {
    this.#sort = sort;
    void this.subjects.load();
  }

  /** True while a search narrows the subject list (so an empty list means "no match", not "none"). */
  get filtering(): boolean {
    return this.#search.trim() !== '';
  }

  async load(): Promise<void> {
    await Promise.all([this.subjects.load(), this.generations.load(), this.models.load(), this.controlModels.load(), this.counts.load()]);
  }

  connect(): () => void {
    const stop = this.#bridge.on('libraryChanged', (change) => void this.#reload(change.what));
    return () => {
      stop();
      if (this.#searchTimer !== null) clearTimeout(this.#searchTimer);
    };
  }

  async #reload(what: StudioEvents['libraryChanged']['what']): Promise<void> {
    const list =
      what === 'generations' ? this.generations : what === 'models' ? this.models : this.subjects;
    await Promise.all([list.load(), this.counts.load(), ...(what === 'models' ? [this.controlModels.load()] : [])]);
  }
}
