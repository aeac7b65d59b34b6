import type { AdapterSummary, FinetuneOptions, FinetunePreset, FinetuneSettings, JobSummary, StudioBridge } from '../contract';
import { toStudioError, type StudioError } from '../transport/studio-error';
import type { JobsState } from './jobs.svelte';
import { bytesToBase64 } from './subjects.svelte';
import { UndoWindow } from './undo-window.svelte';

/** Setup before the first step (VAE encode, graph, session) as a share of the steps, for the estimate. */
const SETUP_STEPS = 2;

/** Milliseconds a fine-tune with these settings should take on this machine, from the last measured run (null before one). */
export function estimateMs(options: FinetuneOptions | null, settings: FinetuneSettings): number | null {
  if (!options || options.photoCount === 0) return null;
  const measured = options.measuredMsPerStepPerPhoto;
  if (measured.length === 0) return null;
  // Nearest measured resolution, scaled by the pixel count (the step's cost grows with it).
  const nearest = measured.reduce((best, m) => (Math.abs(m.resolution - settings.resolution) < Math.abs(best.resolution - settings.resolution) ? m : best));
  const perPhoto = nearest.ms * (settings.resolution / nearest.resolution) ** 2;
  return perPhoto * options.photoCount * (settings.steps + SETUP_STEPS);
}

/**
 * A subject's fine-tunes and the library's style adapters, the fine-tune dialog (preset, custom
 * settings, time estimate) and the running fine-tune job. Reloads on `libraryChanged: adapters`.
 */
export class FinetunesState {
  readonly #bridge: StudioBridge;
  readonly #jobs: JobsState;
  #subjectId = $state<number | null>(null);
  #adapters = $state.raw<readonly AdapterSummary[]>([]);
  #styles = $state.raw<readonly AdapterSummary[]>([]);
  #error = $state.raw<StudioError | null>(null);
  readonly undo = new UndoWindow();

  // The dialog.
  dialogOpen = $state(false);
  preset = $state<FinetunePreset>('standard');
  custom = $state<FinetuneSettings>({ steps: 80, resolution: 256, rank: 4, lrLora: 1e-4, lrEmbedding: 1e-5 });
  #options = $state.raw<FinetuneOptions | null>(null);
  #starting = $state(false);

  constructor(bridge: StudioBridge, jobs: JobsState) {
    this.#bridge = bridge;
    this.#jobs = jobs;
  }

  get adapters(): readonly AdapterSummary[] {
    return this.#adapters;
  }

  get styles(): readonly AdapterSummary[] {
    return this.#styles;
  }

  get error(): StudioError | null {
    return this.#error;
  }

  get options(): FinetuneOptions | null {
    return this.#options;
  }

  get starting(): boolean {
    return this.#starting;
  }

  /** The settings the dialog would start with. */
  readonly settings: FinetuneSettings | null = $derived.by(() => {
    if (this.preset === 'custom') return this.custom;
    return this.#options ? this.#options.presets[this.preset] : null;
  });

  readonly estimate: number | null = $derived(this.settings ? estimateMs(this.#options, this.settings) : null);

  /** This subject's fine-tune jobs (running and queued first, then the finished ones this session). */
  get jobs(): readonly JobSummary[] {
    return this.#jobs.all.filter((job) => job.kind === 'finetune' && job.subjectId !== null && job.subjectId === this.#subjectId);
  }

  async show(subjectId: number | null): Promise<void> {
    if (subjectId !== this.#subjectId) {
      this.#subjectId = subjectId;
      this.dialogOpen = false;
    }
    await this.load();
  }

  async load(): Promise<void> {
    const subjectId = this.#subjectId;
    try {
      const [mine, styles] = await Promise.all([
        subjectId === null ? Promise.resolve([]) : this.#bridge.listAdapters({ subjectId }),
        this.#bridge.listAdapters({ kind: 'style' }),
      ]);
      if (subjectId !== this.#subjectId) return;
      this.#adapters = mine;
      this.#styles = styles;
      this.#error = null;
    } catch (error) {
      this.#error = toStudioError(error);
    }
  }

  async openDialog(): Promise<void> {
    if (this.#subjectId === null) return;
    this.dialogOpen = true;
    this.#error = null;
    try {
      this.#options = await this.#bridge.getFinetuneOptions({ subjectId: this.#subjectId });
      this.custom = { ...this.#options.presets.standard };
    } catch (error) {
      this.#error = toStudioError(error);
    }
  }

  closeDialog(): void {
    this.dialogOpen = false;
  }

  async start(): Promise<void> {
    if (this.#subjectId === null || this.#starting) return;
    this.#starting = true;
    this.#error = null;
    try {
      const request = this.preset === 'custom' ? { subjectId: this.#subjectId, preset: this.preset, settings: { ...this.custom } } : { subjectId: this.#subjectId, preset: this.preset };
      await this.#bridge.startFinetune(request);
      this.dialogOpen = false;
    } catch (error) {
      this.#error = toStudioError(error);
    } finally {
      this.#starting = false;
    }
  }

  async remove(adapter: AdapterSummary): Promise<void> {
    try {
      const deletion = await this.#bridge.deleteAdapter({ id: adapter.id });
      this.undo.show(adapter.id, adapter.name, deletion.undoUntil);
    } catch (error) {
      this.#error = toStudioError(error);
    }
  }

  async undoRemove(): Promise<void> {
    const pending = this.undo.take();
    if (!pending) return;
    try {
      await this.#bridge.undoDeleteAdapter({ id: pending.id });
    } catch (error) {
      this.#error = toStudioError(error);
    }
  }

  /** Hands the adapter's LoRA file to the browser's download (the renderer never sees a path). */
  async exportFile(adapter: AdapterSummary, save: (name: string, bytes: Uint8Array) => void): Promise<void> {
    try {
      const file = await this.#bridge.exportAdapter({ id: adapter.id });
      const binary = atob(file.dataBase64);
      const bytes = new Uint8Array(binary.length);
      for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
      save(file.name, bytes);
    } catch (error) {
      this.#error = toStudioError(error);
    }
  }

  async importFile(file: File): Promise<AdapterSummary | null> {
    this.#error = null;
    try {
      const dataBase64 = bytesToBase64(new Uint8Array(await file.arrayBuffer()));
      return await this.#bridge.importAdapter({ name: file.name, dataBase64 });
    } catch (error) {
      this.#error = toStudioError(error);
      return null;
    }
  }

  connect(): () => void {
    const stop = this.#bridge.on('libraryChanged', ({ what }) => {
      if (what === 'adapters' || what === 'models') void this.load();
    });
    return () => {
      stop();
      this.undo.clear();
    };
  }
}
