import type { JobSummary, ModelSummary, StudioBridge, SubjectDetail, SubjectUpdate } from '../contract';
import { toStudioError, type StudioError } from '../transport/studio-error';
import { isActive, type JobsState } from './jobs.svelte';
import type { LibraryState } from './library.svelte';
import { PhotoWeights } from './photo-weights.svelte';
import { UndoWindow, type PendingUndo } from './undo-window.svelte';

/** A subject learns from 1–10 photos. */
export const MAX_PHOTOS = 10;
/** The job kind main gives embedding jobs. */
const EMBEDDINGS_KIND = 'subject-embeddings';

export type UploadStatus = 'waiting' | 'reading' | 'uploading' | 'added' | 'refused' | 'failed';

export const UPLOAD_STATUS_LABELS: Record<UploadStatus, string> = {
  waiting: 'Waiting',
  reading: 'Reading',
  uploading: 'Adding',
  added: 'Added',
  refused: 'Refused',
  failed: 'Failed',
};

/** One file dropped or picked, and what became of it. */
export interface UploadItem {
  readonly key: number;
  readonly name: string;
  readonly status: UploadStatus;
  /** Why it was refused or failed, written for the user. */
  readonly reason: string | null;
}

/** Bytes → base64 without blowing the call stack on large photos. */
export function bytesToBase64(bytes: Uint8Array): string {
  const CHUNK = 0x8000;
  let binary = '';
  for (let start = 0; start < bytes.length; start += CHUNK) {
    binary += String.fromCharCode(...bytes.subarray(start, start + CHUNK));
  }
  return btoa(binary);
}

/** "it is not an image" → "It is not an image." */
function sentence(text: string): string {
  const trimmed = text.trim();
  if (trimmed === '') return 'It was refused.';
  const capital = trimmed.charAt(0).toUpperCase() + trimmed.slice(1);
  return /[.!?)]$/.test(capital) ? capital : `${capital}.`;
}

/** The model that computes embeddings and generates: the first ready one. */
export function firstReadyModel(models: readonly ModelSummary[] | undefined): ModelSummary | null {
  return models?.find((model) => model.status === 'ready' && model.kind === 'blipdiffusion') ??
    models?.find((model) => model.status === 'ready') ??
    null;
}

/** The "new subject" form. */
export class NewSubjectForm {
  name = $state('');
  category = $state('');
  note = $state('');
  #open = $state(false);
  #submitting = $state(false);
  #error = $state.raw<StudioError | null>(null);
  #touched = $state(false);
  readonly #create: (name: string, category: string, note: string) => Promise<void>;

  constructor(create: (name: string, category: string, note: string) => Promise<void>) {
    this.#create = create;
  }

  get open(): boolean {
    return this.#open;
  }

  get submitting(): boolean {
    return this.#submitting;
  }

  get error(): StudioError | null {
    return this.#error;
  }

  readonly nameError: string | null = $derived(this.#touched && this.name.trim() === '' ? 'Give the subject a name.' : null);

  readonly categoryError: string | null = $derived.by(() => {
    if (!this.#touched) return null;
    const word = this.category.trim();
    if (word === '') return 'Enter the category word, such as “dog” or “backpack”.';
    if (word.split(/\s+/).length > 3) return 'Keep the category to a word or two.';
    return null;
  });

  show(): void {
    this.#open = true;
    this.#error = null;
  }

  hide(): void {
    this.#open = false;
    this.name = '';
    this.category = '';
    this.note = '';
    this.#touched = false;
    this.#error = null;
  }

  async submit(): Promise<void> {
    this.#touched = true;
    if (this.nameError !== null || this.categoryError !== null || this.#submitting) return;
    this.#submitting = true;
    this.#error = null;
    try {
      await this.#create(this.name.trim(), this.category.trim(), this.note.trim());
      this.hide();
    } catch (error) {
      this.#error = toStudioError(error);
    } finally {
      this.#submitting = false;
    }
  }
}

/** The "edit subject" form: name, category word and note, checked before anything is sent. */
export class SubjectEditForm {
  readonly #subject: () => SubjectDetail | null;
  readonly #save: (update: SubjectUpdate) => Promise<void>;
  name = $state('');
  category = $state('');
  note = $state('');
  #open = $state(false);
  #saving = $state(false);
  #error = $state.raw<StudioError | null>(null);

  constructor(subject: () => SubjectDetail | null, save: (update: SubjectUpdate) => Promise<void>) {
    this.#subject = subject;
    this.#save = save;
  }

  get open(): boolean {
    return this.#open;
  }

  get saving(): boolean {
    return this.#saving;
  }

  get error(): StudioError | null {
    return this.#error;
  }

  readonly nameError: string | null = $derived(this.name.trim() === '' ? 'Give the subject a name.' : null);

  readonly categoryError: string | null = $derived.by(() => {
    const word = this.category.trim();
    if (word === '') return 'Enter the category word, such as “dog” or “backpack”.';
    if (word.split(/\s+/).length > 3) return 'Keep the category to a word or two.';
    return null;
  });

  /** The category word differs from the saved one: its embeddings will be computed again. */
  readonly categoryChanged: boolean = $derived.by(() => this.#open && this.category.trim() !== (this.#subject()?.category ?? ''));

  start(): void {
    const subject = this.#subject();
    if (subject === null) return;
    this.name = subject.name;
    this.category = subject.category;
    this.note = subject.note;
    this.#error = null;
    this.#open = true;
  }

  cancel(): void {
    this.#open = false;
    this.#error = null;
  }

  async submit(): Promise<void> {
    const subject = this.#subject();
    if (subject === null || this.nameError !== null || this.categoryError !== null || this.#saving) return;
    const update: SubjectUpdate = { id: subject.id };
    if (this.name.trim() !== subject.name) update.name = this.name.trim();
    if (this.category.trim() !== subject.category) update.category = this.category.trim();
    if (this.note.trim() !== subject.note) update.note = this.note.trim();
    this.#saving = true;
    this.#error = null;
    try {
      if (Object.keys(update).length > 1) await this.#save(update);
      this.#open = false;
    } catch (error) {
      this.#error = toStudioError(error);
    } finally {
      this.#saving = false;
    }
  }
}

/**
 * The Subjects screen's working state: the subject that is open, its uploads, weights and embeddings
 * job, and the undo window after a deletion. The list itself lives in LibraryState.
 */
export class SubjectsState {
  readonly form: NewSubjectForm;
  readonly #bridge: StudioBridge;
  readonly #library: LibraryState;
  readonly #jobs: JobsState;
  #openId = $state<number | null>(null);
  #detail = $state.raw<SubjectDetail | null>(null);
  #detailError = $state.raw<StudioError | null>(null);
  #uploads = $state.raw<readonly UploadItem[]>([]);
  #uploading = $state(false);
  #uploadKey = 0;
  readonly weights: PhotoWeights;
  readonly edit: SubjectEditForm;
  #confirmRemoval = $state<number | null>(null);
  #removing = $state(false);
  #embeddingJobs = $state<Record<number, string>>({});
  #embeddingError = $state.raw<StudioError | null>(null);
  #embeddingStarting = $state(false);
  readonly #undo = new UndoWindow();
  #deleting = $state(false);
  #actionError = $state.raw<StudioError | null>(null);

  constructor(bridge: StudioBridge, library: LibraryState, jobs: JobsState) {
    this.#bridge = bridge;
    this.#library = library;
    this.#jobs = jobs;
    this.form = new NewSubjectForm((name, category, note) => this.#createSubject(name, category, note));
    this.weights = new PhotoWeights(bridge, () => this.#detail, (saved) => {
      if (this.#openId === saved.id) this.#detail = saved;
    });
    this.edit = new SubjectEditForm(() => this.#detail, (update) => this.#saveEdit(update));
  }

  get openId(): number | null {
    return this.#openId;
  }

  /** The open subject, once loaded. */
  get detail(): SubjectDetail | null {
    return this.#detail;
  }

  get detailError(): StudioError | null {
    return this.#detailError;
  }

  get uploads(): readonly UploadItem[] {
    return this.#uploads;
  }

  get uploading(): boolean {
    return this.#uploading;
  }

  /** The photo whose removal waits for a second click. */
  get confirmRemoval(): number | null {
    return this.#confirmRemoval;
  }

  get removing(): boolean {
    return this.#removing;
  }

  get pendingUndo(): PendingUndo | null {
    return this.#undo.pending;
  }

  get deleting(): boolean {
    return this.#deleting;
  }

  /** Why the last delete or undo failed. */
  get actionError(): StudioError | null {
    return this.#actionError;
  }

  /** How many more photos the open subject takes. */
  readonly room: number = $derived(MAX_PHOTOS - (this.#detail?.photos.length ?? 0));

  /** The model embeddings are computed with. */
  readonly model: ModelSummary | null = $derived.by(() => firstReadyModel(this.#library.models.value));

  /** The open subject's embeddings job: the one started here, else one main is running for it. */
  readonly embeddingsJob: JobSummary | null = $derived.by(() => {
    const detail = this.#detail;
    if (detail === null) return null;
    const id = this.#embeddingJobs[detail.id];
    const tracked = id === undefined ? undefined : this.#jobs.byId(id);
    if (tracked !== undefined) return tracked;
    return (
      this.#jobs.active.find((job) => job.kind === EMBEDDINGS_KIND && job.label.endsWith(` of ${detail.name}`)) ?? null
    );
  });

  get embeddingsStarting(): boolean {
    return this.#embeddingStarting;
  }

  get embeddingsError(): StudioError | null {
    return this.#embeddingError;
  }

  readonly embeddingsBusy: boolean = $derived(
    this.#embeddingStarting || (this.embeddingsJob !== null && isActive(this.embeddingsJob)),
  );

  async open(id: number): Promise<void> {
    if (this.#openId !== id) {
      this.#detail = null;
      this.#uploads = [];
      this.weights.reset();
      this.edit.cancel();
      this.#confirmRemoval = null;
      this.#embeddingError = null;
    }
    this.#openId = id;
    await this.#reloadDetail();
  }

  /** Opens the "new subject" form in place of the open subject. */
  startNew(): void {
    this.close();
    this.form.show();
  }

  close(): void {
    this.#openId = null;
    this.#detail = null;
    this.#uploads = [];
    this.weights.reset();
    this.edit.cancel();
    this.#confirmRemoval = null;
  }

  /** Reads and uploads the files one by one, then computes embeddings if any photo was added. */
  async addFiles(files: readonly File[]): Promise<void> {
    const subject = this.#detail;
    if (subject === null || files.length === 0) return;
    const room = Math.max(0, MAX_PHOTOS - subject.photos.length);
    const items: UploadItem[] = files.map((file, index) => ({
      key: ++this.#uploadKey,
      name: file.name,
      status: index < room ? 'waiting' : 'refused',
      reason: index < room ? null : `A subject holds at most ${MAX_PHOTOS} photos.`,
    }));
    this.#uploads = [...items, ...this.#uploads.filter((item) => item.status !== 'added')].slice(0, 30);
    if (this.#uploading) return;
    this.#uploading = true;
    let added = 0;
    try {
      for (const [index, file] of files.entries()) {
        const item = items[index];
        if (item === undefined || item.status !== 'waiting') continue;
        this.#setUpload(item.key, 'reading', null);
        let dataBase64: string;
        try {
          dataBase64 = bytesToBase64(new Uint8Array(await file.arrayBuffer()));
        } catch {
          this.#setUpload(item.key, 'failed', 'The file could not be read.');
          continue;
        }
        this.#setUpload(item.key, 'uploading', null);
        try {
          const result = await this.#bridge.uploadPhoto({ subjectId: subject.id, name: file.name, dataBase64 });
          if (this.#openId === subject.id) this.#detail = result.subject;
          const refusal = result.rejected[0];
          if (refusal === undefined) {
            added += 1;
            this.#setUpload(item.key, 'added', null);
          } else {
            this.#setUpload(item.key, 'refused', sentence(refusal.reason));
          }
        } catch (error) {
          this.#setUpload(item.key, 'failed', toStudioError(error).message);
        }
      }
    } finally {
      this.#uploading = false;
    }
    void this.#library.subjects.load();
    void this.#library.counts.load();
    if (added > 0 && this.#openId === subject.id) await this.computeEmbeddings();
  }

  dismissUpload(key: number): void {
    this.#uploads = this.#uploads.filter((item) => item.key !== key);
  }

  async computeEmbeddings(): Promise<void> {
    const subject = this.#detail;
    const model = this.model;
    if (subject === null || this.#embeddingStarting) return;
    if (model === null) {
      this.#embeddingError = null;
      return;
    }
    this.#embeddingStarting = true;
    this.#embeddingError = null;
    try {
      const ref = await this.#bridge.computeEmbeddings({ subjectId: subject.id, model: model.folder });
      this.#embeddingJobs[subject.id] = ref.id;
    } catch (error) {
      this.#embeddingError = toStudioError(error);
    } finally {
      this.#embeddingStarting = false;
    }
  }

  /** Asks for a second click before a photo (and its file) is removed for good. */
  askToRemove(photoId: number | null): void {
    this.#confirmRemoval = photoId;
  }

  async removePhoto(photoId: number): Promise<void> {
    const subject = this.#detail;
    if (subject === null || this.#removing) return;
    this.#actionError = null;
    this.#removing = true;
    try {
      this.#detail = await this.#bridge.removePhotos({ subjectId: subject.id, photoIds: [photoId] });
      this.#confirmRemoval = null;
      void this.#library.subjects.load();
    } catch (error) {
      this.#actionError = toStudioError(error);
    } finally {
      this.#removing = false;
    }
  }

  /** Makes the photo the subject's cover in the list. */
  async setCover(photoId: number): Promise<void> {
    const subject = this.#detail;
    if (subject === null || subject.coverPhotoId === photoId) return;
    this.#actionError = null;
    try {
      this.#detail = await this.#bridge.updateSubject({ id: subject.id, coverPhotoId: photoId });
      void this.#library.subjects.load();
    } catch (error) {
      this.#actionError = toStudioError(error);
    }
  }

  /** Deletes the open subject; it can be brought back until the undo window closes. */
  async deleteOpen(): Promise<void> {
    const subject = this.#detail;
    if (subject === null || this.#deleting) return;
    this.#deleting = true;
    this.#actionError = null;
    try {
      const deletion = await this.#bridge.deleteSubject({ id: subject.id });
      this.#undo.show(subject.id, subject.name, deletion.undoUntil);
      this.close();
      void this.#library.load();
    } catch (error) {
      this.#actionError = toStudioError(error);
    } finally {
      this.#deleting = false;
    }
  }

  async undoDelete(): Promise<void> {
    const pending = this.#undo.take();
    if (pending === null) return;
    this.#actionError = null;
    try {
      const subject = await this.#bridge.undoDeleteSubject({ id: pending.id });
      void this.#library.load();
      await this.open(subject.id);
    } catch (error) {
      this.#actionError = toStudioError(error);
    }
  }

  dismissUndo(): void {
    this.#undo.clear();
  }

  /** Follows library changes for the open subject. Returns the cleanup. */
  connect(): () => void {
    const stop = this.#bridge.on('libraryChanged', (change) => {
      if (change.what === 'subjects' || change.what === 'photos') void this.#reloadDetail();
    });
    return () => {
      stop();
      this.weights.reset();
      this.#undo.clear();
    };
  }

  async #createSubject(name: string, category: string, note: string): Promise<void> {
    const subject = await this.#bridge.createSubject({ name, category, ...(note === '' ? {} : { note }) });
    void this.#library.subjects.load();
    void this.#library.counts.load();
    this.#openId = subject.id;
    this.#detail = subject;
    this.#uploads = [];
    this.weights.reset();
  }

  /** Saves an edit; a new category word means new embeddings (they are keyed by it), so they are computed at once. */
  async #saveEdit(update: SubjectUpdate): Promise<void> {
    const before = this.#detail;
    const saved = await this.#bridge.updateSubject(update);
    if (this.#openId === saved.id) this.#detail = saved;
    void this.#library.subjects.load();
    if (before !== null && saved.category !== before.category && saved.photos.length > 0 && this.#openId === saved.id) await this.computeEmbeddings();
  }

  async #reloadDetail(): Promise<void> {
    const id = this.#openId;
    if (id === null) return;
    try {
      const detail = await this.#bridge.getSubject({ id });
      if (this.#openId !== id) return;
      this.#detail = detail;
      this.#detailError = null;
    } catch (error) {
      if (this.#openId === id) this.#detailError = toStudioError(error);
    }
  }

  #setUpload(key: number, status: UploadStatus, reason: string | null): void {
    this.#uploads = this.#uploads.map((item) => (item.key === key ? { ...item, status, reason } : item));
  }
}
