import type { StudioBridge, SubjectDetail, SubjectPhoto } from '../contract';
import { toStudioError, type StudioError } from '../transport/studio-error';

/** Photo weights: the share of a photo in the subject's mean embedding. */
export const WEIGHT_LIMITS = { min: 0, max: 2, step: 0.1 } as const;
/** Pause after the last slider move before the weights are saved. */
const WEIGHT_SAVE_DEBOUNCE_MS = 300;

/**
 * A subject's per-photo weight sliders, wherever they show (the subject's page, Generate): moves show at
 * once and are saved shortly after the last one, so a drag is one call, not dozens.
 */
export class PhotoWeights {
  readonly #bridge: StudioBridge;
  readonly #subject: () => SubjectDetail | null;
  readonly #saved: (subject: SubjectDetail) => void;
  #pending = $state<Record<number, number>>({});
  #timer: ReturnType<typeof setTimeout> | null = null;
  #saving: Promise<void> | null = null;
  #error = $state.raw<StudioError | null>(null);

  /** `subject` is the subject the sliders belong to; `saved` receives it back after a save. */
  constructor(bridge: StudioBridge, subject: () => SubjectDetail | null, saved: (subject: SubjectDetail) => void) {
    this.#bridge = bridge;
    this.#subject = subject;
    this.#saved = saved;
  }

  get error(): StudioError | null {
    return this.#error;
  }

  weightOf(photo: SubjectPhoto): number {
    return this.#pending[photo.id] ?? photo.weight;
  }

  /** True when every photo counts the same (the default). */
  readonly equal: boolean = $derived.by(() => {
    const photos = this.#subject()?.photos ?? [];
    return photos.every((photo) => this.weightOf(photo) === this.weightOf(photos[0] ?? photo));
  });

  set(photoId: number, weight: number): void {
    this.#pending[photoId] = weight;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#saving = this.#save().finally(() => (this.#saving = null));
    }, WEIGHT_SAVE_DEBOUNCE_MS);
  }

  /** Every photo back to weight 1. */
  makeEqual(): void {
    for (const photo of this.#subject()?.photos ?? []) this.set(photo.id, 1);
  }

  /** Saves a pending move now (before a generation starts, so it uses what the sliders show). */
  async flush(): Promise<void> {
    if (this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
      await this.#save();
    }
    await this.#saving;
  }

  /** Forgets unsaved moves (another subject is shown). */
  reset(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.#pending = {};
    this.#error = null;
  }

  async #save(): Promise<void> {
    const subject = this.#subject();
    if (subject === null || subject.photos.length === 0) return;
    const weights = subject.photos.map((photo) => ({ photoId: photo.id, weight: this.weightOf(photo) }));
    this.#error = null;
    try {
      this.#saved(await this.#bridge.setPhotoWeights({ subjectId: subject.id, weights }));
      // The subject now holds these weights; moves made meanwhile stay pending.
      if (this.#timer === null) this.#pending = {};
    } catch (error) {
      this.#error = toStudioError(error);
    }
  }
}
