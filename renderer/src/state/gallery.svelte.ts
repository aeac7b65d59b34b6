import type { GenerationDetail, GenerationSummary, StudioBridge } from '../contract';
import { toStudioError, type StudioError } from '../transport/studio-error';
import type { LibraryState } from './library.svelte';
import { SCHEDULER_LABELS } from './settings.svelte';

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
export function recipeRows(detail: GenerationDetail, subjectName: string | null): RecipeRow[] {
  const recipe = detail.recipe;
  const model = record(recipe['model']);
  const subject = record(recipe['subject']);
  const photos = subject?.['photos'];
  const subjectLabel = [text(subject?.['name']) ?? subjectName, text(recipe['targetSubject']) ?? text(subject?.['category'])]
    .filter((part): part is string => part !== null && part !== '')
    .join(' · ');
  const rows: (RecipeRow | null)[] = [
    row('prompt', 'Prompt', text(recipe['prompt']) ?? detail.prompt),
    row('negative', 'Negative prompt', text(recipe['negativePrompt']) || '—'),
    row('seed', 'Seed', text(recipe['seed']) ?? detail.seed, true),
    row('steps', 'Steps', text(recipe['steps'])),
    row('scheduler', 'Scheduler', schedulerLabel(recipe['scheduler'])),
    row('guidance', 'Guidance', text(recipe['guidanceScale'])),
    row('size', 'Size', `${text(recipe['width']) ?? detail.width} × ${text(recipe['height']) ?? detail.height}`),
    row('model', 'Model', text(model?.['name'])),
    row('hash', 'Model hash', text(model?.['hash']), true),
    row(
      'subject',
      'Subject',
      subjectLabel === '' ? null : Array.isArray(photos) ? `${subjectLabel} (${photos.length} photos)` : subjectLabel,
    ),
    row('device', 'Device', text(recipe['device'])),
    row('app', 'App version', text(recipe['appVersion'])),
    row('duration', 'Duration', formatMs(recipe['durationMs'])),
  ];
  return rows.filter((entry): entry is RecipeRow => entry !== null);
}

function row(key: string, label: string, value: string | null, mono = false): RecipeRow | null {
  return value === null ? null : { key, label, value, mono };
}

/** The gallery's filter and the result that is open in the detail panel. */
export class GalleryState {
  readonly #bridge: StudioBridge;
  readonly #library: LibraryState;
  #subjectFilter = $state<number | null>(null);
  #selectedId = $state<number | null>(null);
  #detail = $state.raw<GenerationDetail | null>(null);
  #detailError = $state.raw<StudioError | null>(null);
  #deleting = $state(false);
  #deleteError = $state.raw<StudioError | null>(null);

  constructor(bridge: StudioBridge, library: LibraryState) {
    this.#bridge = bridge;
    this.#library = library;
  }

  get subjectFilter(): number | null {
    return this.#subjectFilter;
  }

  set subjectFilter(id: number | null) {
    this.#subjectFilter = id;
  }

  /** `subjectFilter` for a `<select>` value ('' for all). */
  get subjectFilterValue(): string {
    return this.#subjectFilter === null ? '' : String(this.#subjectFilter);
  }

  set subjectFilterValue(value: string) {
    this.#subjectFilter = value === '' ? null : Number(value);
  }

  readonly items: readonly GenerationSummary[] = $derived.by(() => {
    const all = this.#library.generations.value ?? [];
    const filter = this.#subjectFilter;
    return filter === null ? all : all.filter((generation) => generation.subjectId === filter);
  });

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
    return recipeRows(detail, subject?.name ?? null);
  });

  subjectName(id: number | null): string | null {
    if (id === null) return null;
    return this.#library.subjects.value?.find((subject) => subject.id === id)?.name ?? null;
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
      await Promise.all([this.#library.generations.load(), this.#library.counts.load()]);
    } catch (error) {
      this.#deleteError = toStudioError(error);
    } finally {
      this.#deleting = false;
    }
  }
}
