import type { ControlModelSummary, HubRepo, JobSummary, ModelDownloadInfo, ModelSummary, StudioBridge } from '../contract';
import { toStudioError, type StudioError } from '../transport/studio-error';
import { isActive, type JobsState } from './jobs.svelte';
import { Resource } from './resource.svelte';

/** What each hub repository is, for the download list. */
export const REPO_DESCRIPTIONS: Record<HubRepo, string> = {
  'Salesforce/blipdiffusion': 'The BLIP-Diffusion model: subject-driven generation from your subject photos.',
  'Salesforce/blipdiffusion-controlnet': 'BLIP-Diffusion with a Canny-edge ControlNet, to steer the layout with an edge map.',
  'depth-anything/Depth-Anything-V2-Small-hf': 'Depth Anything V2 Small (99 MB): makes depth maps from your pictures for the depth ControlNet.',
  'lllyasviel/sd-controlnet-depth': 'The SD-1.5 depth ControlNet (1.4 GB): steers the layout with a depth map, beside any BLIP-Diffusion model.',
};

/** A download as the UI shows it: the stored state, overlaid with its live job while one runs. */
export interface DownloadView {
  info: ModelDownloadInfo;
  job: JobSummary | undefined;
  /** Live bytes (from the job) or the bytes on disk. */
  bytesDone: number;
  bytesTotal: number;
  /** The job's current step, e.g. "Downloading unet/… (1.2 MiB of 3.4 MiB)" or "Checking…". */
  activity: string | null;
  etaMs: number | null;
  starting: boolean;
  /** A call failed (not the download itself: that is `info.error`). */
  callError: StudioError | null;
}

/** Where "Add a folder you have" stands: the call, then its job. */
export interface AdoptView {
  starting: boolean;
  job: JobSummary | undefined;
  /** Refused at once (path, structure) or the job failed: the first line, then one line per problem. */
  failure: { summary: string; problems: string[] } | null;
}

/** "X is not usable:\n- a\n- b" → summary and problem lines. */
export function splitProblems(message: string): { summary: string; problems: string[] } {
  const [summary = '', ...rest] = message.split('\n');
  return { summary, problems: rest.map((line) => line.replace(/^\s*-\s*/, '').trim()).filter((line) => line !== '') };
}

/**
 * Installing models: hub downloads (start, pause = cancel the job keeping partial files, resume =
 * start again), adopting a folder the user has, removing a model. Live progress comes from the job
 * queue; the download list is reloaded whenever main says the models changed.
 */
export class ModelsState {
  readonly downloads: Resource<ModelDownloadInfo[]>;
  readonly #bridge: StudioBridge;
  readonly #jobs: JobsState;
  #starting = $state.raw<ReadonlySet<HubRepo>>(new Set());
  #callErrors = $state.raw<ReadonlyMap<HubRepo, StudioError>>(new Map());
  #adoptStarting = $state(false);
  #adoptJobId = $state<string | null>(null);
  #adoptRefusal = $state<string | null>(null);
  #removing = $state<number | null>(null);
  #removeError = $state.raw<StudioError | null>(null);
  /** The folder path typed in "Add a folder you have". */
  folderPath = $state('');

  constructor(bridge: StudioBridge, jobs: JobsState) {
    this.#bridge = bridge;
    this.#jobs = jobs;
    this.downloads = new Resource(() => bridge.listModelDownloads());
  }

  async load(): Promise<void> {
    await this.downloads.load();
  }

  connect(): () => void {
    return this.#bridge.on('libraryChanged', (change) => {
      if (change.what === 'models') void this.downloads.load();
    });
  }

  view(info: ModelDownloadInfo): DownloadView {
    const job = info.jobId === null ? undefined : this.#jobs.byId(info.jobId);
    const live = job !== undefined && isActive(job) && job.totalSteps > 1 && job.message.startsWith('Downloading');
    return {
      info,
      job,
      bytesDone: live ? job.step : info.bytesDone,
      bytesTotal: live ? job.totalSteps : info.bytesTotal,
      activity: job !== undefined && isActive(job) ? job.message : null,
      etaMs: live ? job.etaMs : null,
      starting: this.#starting.has(info.repo),
      callError: this.#callErrors.get(info.repo) ?? null,
    };
  }

  /** Starts, resumes or retries a download. */
  async download(repo: HubRepo): Promise<void> {
    if (this.#starting.has(repo)) return;
    this.#starting = new Set([...this.#starting, repo]);
    this.#setCallError(repo, null);
    try {
      await this.#bridge.downloadModel({ repo });
      await this.downloads.load();
    } catch (error) {
      this.#setCallError(repo, toStudioError(error));
    } finally {
      const next = new Set(this.#starting);
      next.delete(repo);
      this.#starting = next;
    }
  }

  /** Pausing is cancelling the job: main keeps the partial files, and downloading again resumes. */
  async pause(info: ModelDownloadInfo): Promise<void> {
    if (info.jobId !== null) await this.#jobs.cancel(info.jobId);
  }

  get adopt(): AdoptView {
    const job = this.#adoptJobId === null ? undefined : this.#jobs.byId(this.#adoptJobId);
    const failure =
      this.#adoptRefusal !== null ? splitProblems(this.#adoptRefusal) : job?.state === 'failed' ? splitProblems(job.message) : null;
    return { starting: this.#adoptStarting, job, failure };
  }

  async adoptFolder(): Promise<void> {
    if (this.#adoptStarting) return;
    this.#adoptStarting = true;
    this.#adoptRefusal = null;
    this.#adoptJobId = null;
    try {
      const ref = await this.#bridge.addModelFolder({ folder: this.folderPath.trim() });
      this.#adoptJobId = ref.id;
    } catch (error) {
      this.#adoptRefusal = toStudioError(error).message;
    } finally {
      this.#adoptStarting = false;
    }
  }

  /** Desktop app: the native folder dialog (shown by main); a chosen folder is checked and added at once. */
  async chooseAndAdoptFolder(): Promise<void> {
    this.#adoptRefusal = null;
    try {
      const { folder } = await this.#bridge.pickModelFolder();
      if (folder === null) return;
      this.folderPath = folder;
    } catch (error) {
      this.#adoptRefusal = toStudioError(error).message;
      return;
    }
    await this.adoptFolder();
  }

  get removing(): number | null {
    return this.#removing;
  }

  get removeError(): StudioError | null {
    return this.#removeError;
  }

  /** The download a model came from, if it was downloaded into the data folder (its files may be deleted). */
  downloadOf(model: ModelSummary): ModelDownloadInfo | undefined {
    return this.downloads.value?.find((download) => download.modelId === model.id);
  }

  /** The download a control model came from (its files may be deleted with it). */
  controlDownloadOf(model: ControlModelSummary): ModelDownloadInfo | undefined {
    return this.downloads.value?.find((download) => download.controlModelId === model.id);
  }

  async removeControlModel(model: ControlModelSummary, deleteFiles: boolean): Promise<boolean> {
    this.#removeError = null;
    try {
      await this.#bridge.removeControlModel({ id: model.id, deleteFiles });
      return true;
    } catch (error) {
      this.#removeError = toStudioError(error);
      return false;
    }
  }

  async remove(model: ModelSummary, deleteFiles: boolean): Promise<boolean> {
    this.#removing = model.id;
    this.#removeError = null;
    try {
      await this.#bridge.removeModel({ id: model.id, deleteFiles });
      return true;
    } catch (error) {
      this.#removeError = toStudioError(error);
      return false;
    } finally {
      this.#removing = null;
    }
  }

  #setCallError(repo: HubRepo, error: StudioError | null): void {
    const next = new Map(this.#callErrors);
    if (error === null) next.delete(repo);
    else next.set(repo, error);
    this.#callErrors = next;
  }
}
