/**
 * Installing models from the app: adopting a folder the user has, downloading a hub repository into
 * the data folder (pause = cancel the job, keeping partial files; resume = download again, also after a
 * restart), and removing a model. Each long step runs as a job with progress; the checks and the
 * registration are the CLI's (`installModelFolder`), so both install models the same way.
 *
 * Security: a folder path from the renderer is only ever read as a model folder (configs and weights
 * through the strict readers) and never served. Files are deleted only inside the data folder's
 * `models/` download folders, never in a folder the user adopted.
 */
import { rm, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import type { Database } from 'better-sqlite3';
import { HUB_REPOS, type HubRepo, type JobRef, type ModelDownloadInfo, type ModelRemoval, type Settings } from './contract';
import { StudioError } from './studio-error';
import type { JobContext, JobQueue } from '../jobs/job-queue';
import type { LibraryStore } from '../library/library-store';
import { downloadRepo, HubDownloadError, type DownloadProgress } from '../models/hub-download';
import { readManifest } from '../models/download-manifest';
import { partialPathOf } from '../models/file-transfer';
import { installModelFolder, ModelCheckError, type InstallProgress } from '../models/model-install';
import { loadModelFolder, ModelFolderError } from '../models/model-folder';
import { detectControlModelFolder, installControlModelFolder, type ControlModelFolder } from '../models/control-model-folder';
import type { ControlModelStore } from '../library/control-model-store';

/** Progress events at most this often: a fast download would otherwise send one per 16 KiB chunk. */
const PROGRESS_INTERVAL_MS = 150;

/** The control-model repositories, and the files of each the app needs (their repos also carry .bin copies, fp16 variants, sample images). */
const CONTROL_REPO_FILES: Readonly<Partial<Record<HubRepo, readonly string[]>>> = {
  'depth-anything/Depth-Anything-V2-Small-hf': ['config.json', 'model.safetensors', 'preprocessor_config.json'],
  'lllyasviel/sd-controlnet-depth': ['config.json', 'diffusion_pytorch_model.safetensors'],
};

export const isControlRepo = (repo: HubRepo): boolean => CONTROL_REPO_FILES[repo] !== undefined;

/** Where a hub repository is downloaded: `<data>/models/<owner>--<name>`. */
export function downloadFolderOf(dataDir: string, repo: HubRepo): string {
  return join(dataDir, 'models', repo.replace('/', '--'));
}

export interface ModelJobsEnvironment {
  dataDir: string;
  library: LibraryStore;
  db: Database;
  settings: () => Settings;
  /** The serial queue downloads run on, and the one folder checks (and `.bin` conversions) run on. */
  downloadQueue: () => JobQueue;
  checkQueue: () => JobQueue;
  /** Announces that the models (and the downloads' states) changed. */
  modelsChanged: () => void;
  /** The label of a queued or running job that uses the model in `folder`, or null. */
  jobUsingModel: (folder: string) => string | null;
  controlModels: ControlModelStore;
}

interface Failure {
  message: string;
  file: string | null;
}

export class ModelJobs {
  /** The job of each repository's download, while it may still be queued or running. */
  readonly #downloadJobs = new Map<HubRepo, string>();
  /** Why each repository's last download failed (this session; a paused one has none). */
  readonly #failures = new Map<HubRepo, Failure>();

  constructor(private readonly env: ModelJobsEnvironment) {}

  /** Checks the folder's structure now (a wrong path is answered at once), then its weights as a job. */
  adoptFolder(folder: string): JobRef {
    const dir = resolve(folder);
    const control = detectControlModelFolder(dir);
    if (control !== null) return this.#adoptControlModel(control);
    try {
      loadModelFolder(dir);
    } catch (error) {
      if (error instanceof ModelFolderError) throw new StudioError('invalid-request', new ModelCheckError(error.dir, error.problems).message);
      throw error;
    }
    const name = basename(dir);
    const job = this.env.checkQueue().submit({
      kind: 'model-adopt',
      label: `Add model ${name}`,
      totalSteps: 1,
      run: async (context) => {
        await installModelFolder(this.env.db, dir, { dataDir: this.env.dataDir, signal: context.signal, onProgress: installProgress(context) });
        this.env.modelsChanged();
        return `Checked and added ${name}`;
      },
    });
    return { id: job.id };
  }

  #adoptControlModel(folder: ControlModelFolder): JobRef {
    const name = basename(folder.dir);
    const what = folder.kind === 'controlnet' ? 'ControlNet' : 'depth estimator';
    const job = this.env.checkQueue().submit({
      kind: 'model-adopt',
      label: `Add ${what} ${name}`,
      totalSteps: 1,
      run: async (context) => {
        context.progress(0, 1, 'Checking the weights against the config');
        await this.#installControl(folder, name, context.signal);
        return `Checked and added the ${what} ${name}`;
      },
    });
    return { id: job.id };
  }

  async #installControl(folder: ControlModelFolder, name: string, signal: AbortSignal): Promise<void> {
    try {
      await installControlModelFolder(this.env.controlModels, folder, { dataDir: this.env.dataDir, name, signal });
    } finally {
      this.env.modelsChanged();
    }
  }

  /** Starts or resumes a download; while one for the repository is queued or running, returns that job. */
  download(repo: HubRepo): JobRef {
    const running = this.#activeJob(repo);
    if (running !== null) return { id: running };
    const targetDir = downloadFolderOf(this.env.dataDir, repo);
    const job = this.env.downloadQueue().submit({
      kind: 'model-download',
      label: `Download ${repo}`,
      totalSteps: 0,
      progressUnit: 'bytes',
      cancelledMessage: 'Paused: the files so far are kept; download again to resume',
      run: async (context) => {
        this.#failures.delete(repo);
        try {
          const wanted = CONTROL_REPO_FILES[repo];
          await downloadRepo({
            baseUrl: this.env.settings().hubUrl,
            repo,
            targetDir,
            signal: context.signal,
            onProgress: throttledDownloadProgress(context),
            ...(wanted ? { include: (path: string) => wanted.includes(path) } : {}),
          });
          if (wanted) {
            const control = detectControlModelFolder(targetDir);
            if (control === null) throw new StudioError('invalid-request', `${repo} did not download as a ControlNet or depth estimator folder (its config.json says otherwise).`);
            context.progress(0, 1, 'Checking the weights against the config');
            await installControlModelFolder(this.env.controlModels, control, { dataDir: this.env.dataDir, name: repo, signal: context.signal });
            return `Downloaded, checked and added ${repo}`;
          }
          await installModelFolder(this.env.db, targetDir, { dataDir: this.env.dataDir, name: repo, signal: context.signal, onProgress: installProgress(context) });
          return `Downloaded, checked and added ${repo}`;
        } catch (error) {
          if (!context.signal.aborted) this.#failures.set(repo, failureOf(error));
          throw error;
        } finally {
          this.env.modelsChanged();
        }
      },
    });
    this.#downloadJobs.set(repo, job.id);
    this.#failures.delete(repo);
    this.env.modelsChanged();
    return { id: job.id };
  }

  async listDownloads(): Promise<ModelDownloadInfo[]> {
    const models = this.env.library.listModels();
    return Promise.all(
      HUB_REPOS.map(async (repo): Promise<ModelDownloadInfo> => {
        const folder = downloadFolderOf(this.env.dataDir, repo);
        const manifest = await readManifest(folder);
        let bytesDone = 0;
        let bytesTotal = 0;
        for (const file of manifest?.files ?? []) {
          bytesTotal += file.size;
          bytesDone += file.state === 'complete' ? file.size : Math.min(file.size, await sizeOf(partialPathOf(join(folder, file.path))));
        }
        const jobId = this.#activeJob(repo);
        const failure = this.#failures.get(repo) ?? null;
        const state = jobId !== null ? 'downloading' : failure !== null ? 'failed' : manifest === null ? 'none' : manifest.state === 'complete' ? 'complete' : 'paused';
        const model = isControlRepo(repo) ? undefined : models.find((m) => m.folder === resolve(folder));
        const controlModel = isControlRepo(repo) ? this.env.controlModels.list().find((m) => m.folder === resolve(folder)) : undefined;
        return { repo, folder, state, bytesDone, bytesTotal, jobId, error: jobId === null ? failure : null, modelId: model?.id ?? null, controlModelId: controlModel?.id ?? null };
      }),
    );
  }

  async remove({ id, deleteFiles }: ModelRemoval): Promise<void> {
    const model = this.env.library.getModel(id);
    if (!model) throw new StudioError('not-found', `No model with id ${id}: it may have been removed already.`);
    if (model.isDemo) throw new StudioError('invalid-request', 'The demo model is part of BLIP Studio and cannot be removed.');
    const repo = HUB_REPOS.find((r) => resolve(downloadFolderOf(this.env.dataDir, r)) === model.folder);
    if (deleteFiles && repo === undefined) {
      throw new StudioError('invalid-request', `${model.name} is a folder you added (${model.folder}); BLIP Studio only deletes models it downloaded. Remove it without deleting files.`);
    }
    if (repo !== undefined && this.#activeJob(repo) !== null) throw new StudioError('conflict', `${model.name} is downloading: pause it first.`);
    const user = this.env.jobUsingModel(model.folder);
    if (user !== null) throw new StudioError('conflict', `${model.name} is in use by “${user}”: let it finish or cancel it, then remove the model.`);
    this.env.library.removeModel(id);
    if (deleteFiles && repo !== undefined) {
      await rm(downloadFolderOf(this.env.dataDir, repo), { recursive: true, force: true });
      this.#failures.delete(repo);
    }
    this.env.modelsChanged();
  }

  async removeControl({ id, deleteFiles }: ModelRemoval): Promise<void> {
    const model = this.env.controlModels.get(id);
    if (!model) throw new StudioError('not-found', `No control model with id ${id}: it may have been removed already.`);
    const repo = HUB_REPOS.find((r) => resolve(downloadFolderOf(this.env.dataDir, r)) === model.folder);
    if (deleteFiles && repo === undefined) {
      throw new StudioError('invalid-request', `${model.name} is a folder you added (${model.folder}); BLIP Studio only deletes models it downloaded. Remove it without deleting files.`);
    }
    if (repo !== undefined && this.#activeJob(repo) !== null) throw new StudioError('conflict', `${model.name} is downloading: pause it first.`);
    const user = this.env.jobUsingModel(model.folder);
    if (user !== null) throw new StudioError('conflict', `${model.name} is in use by “${user}”: let it finish or cancel it, then remove it.`);
    this.env.controlModels.remove(id);
    if (deleteFiles && repo !== undefined) {
      await rm(downloadFolderOf(this.env.dataDir, repo), { recursive: true, force: true });
      this.#failures.delete(repo);
    }
    this.env.modelsChanged();
  }

  #activeJob(repo: HubRepo): string | null {
    const id = this.#downloadJobs.get(repo);
    if (id === undefined) return null;
    const job = this.env.downloadQueue().get(id);
    if (job && (job.state === 'queued' || job.state === 'running')) return id;
    this.#downloadJobs.delete(repo);
    return null;
  }
}

async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

function failureOf(error: unknown): Failure {
  if (error instanceof HubDownloadError) return { message: error.message, file: error.file ?? null };
  return { message: error instanceof Error ? error.message : String(error), file: null };
}

/** Bytes as steps (so the queue's ETA is a download ETA) and the current file in the message. */
function throttledDownloadProgress(context: JobContext): (progress: DownloadProgress) => void {
  let lastMs = 0;
  let lastFile = '';
  return (p) => {
    const now = Date.now();
    const fileDone = p.fileBytes === p.fileTotal;
    if (p.file === lastFile && !fileDone && now - lastMs < PROGRESS_INTERVAL_MS) return;
    lastMs = now;
    lastFile = p.file;
    context.progress(p.bytesDone, p.bytesTotal, `Downloading ${p.file}`);
  };
}

function installProgress(context: JobContext): (progress: InstallProgress) => void {
  let lastMs = 0;
  return (p) => {
    if (p.stage === 'converting' && p.conversion) {
      const now = Date.now();
      if (p.conversion.bytesDone < p.conversion.bytesTotal && now - lastMs < PROGRESS_INTERVAL_MS) return;
      lastMs = now;
      context.progress(p.conversion.bytesDone, p.conversion.bytesTotal, `Converting ${p.component}/ weights from .bin (once, into the model cache)`);
    } else if (p.stage === 'checking') {
      context.progress(0, 1, 'Checking every component’s weights against its config');
    } else if (p.stage === 'fingerprinting') {
      context.progress(0, 1, 'Fingerprinting the model');
    }
  };
}
