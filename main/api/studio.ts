/**
 * The main-process implementation of `StudioApi`, shared by Electron, serve mode and the CLI: it owns
 * the library database, the ORT worker and the job queues of one data folder, and announces changes as
 * contract events. Transports call it only through `dispatchCall`, which validates every argument.
 */
import { cpus, totalmem } from 'node:os';
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import packageJson from '../../package.json' with { type: 'json' };
import type {
  AppInfo,
  BackendInfo,
  DataFolderInfo,
  EmbeddingsRequest,
  GenerationDetail,
  GenerationDeletion,
  GenerationQuery,
  GenerationRequest,
  JobRef,
  JobSummary,
  ModelDownloadRequest,
  ModelFolderRequest,
  FolderChoice,
  ModelRemoval,
  RunMode,
  RuntimeCheckRequest,
  SettingsPatch,
  StudioApi,
  StudioEvent,
  StudioEvents,
  NewSubject,
  PhotoRemoval,
  PhotoUpload,
  PhotoUploadResult,
  PhotoWeightsUpdate,
  PngUpload,
  ReproduceRequest,
  SubjectQuery,
  SubjectRef,
  SubjectUpdate,
  AdapterImport,
  AdapterQuery,
  AdapterSummary,
  FileDownload,
  FinetuneOptions,
  FinetuneOptionsRequest,
  FinetuneStartRequest,
  ControlMapRequest,
  ControlSourceRequest,
  DrawnControlMap,
} from './contract';
import { StudioError } from './studio-error';
import { tokenizePrompts } from '../engine/pipelines/text-embeddings';
import { generationGeometry } from '../engine/pipelines/generate';
import { LibraryStore } from '../library/library-store';
import { JobQueue } from '../jobs/job-queue';
import { RuntimeClient } from '../engine/runtime/runtime-client';
import { freeBytesAt } from '../models/disk-space';
import { folderSize } from '../files/folder-size';
import { SubjectService, UNDO_WINDOW_MS } from '../library/subject-service';
import { computeSubjectEmbeddingsWithEngine } from '../library/subject-embeddings';
import { loadModelFolder, ModelFolderError, type ModelFolder } from '../models/model-folder';
import { openLibraryModel } from './library-model';
import { DEMO_MODEL_KIND, DEMO_MODEL_NAME, demoModelFolder } from '../models/demo-model';
import { GenerationsStore } from '../gallery/generations-store';
import { recipeMixLibrarySubject } from '../gallery/recipe-library';
import { readUploadedRecipe } from './gallery-recipes';
import { planReproduction, ReproductionResults, runReproductionJob } from './gallery-reproduce-job';
import { describeGenerations, generationLabel, planGeneration, plannedSteps, runGenerationJob } from './generation-job';
import { ModelJobs } from './model-jobs';
import { recoverInterruptedWork } from './crash-recovery';
import { journaledJob, jobRunSummary } from '../library/job-journal';
import { AdapterStore, adapterSummary } from '../library/adapter-store';
import { finetuneLabel, finetunePresets, measuredStepTimes, planFinetune, runFinetuneJob } from './finetune-job';
import { modelFingerprint } from '../library/model-fingerprint';
import { requireComponent } from '../models/model-folder';
import { loraTargets, LoraFileError, readLoraFile } from '../engine/weights/lora-weights';
import { resolveDevice } from '../engine/pipelines/resolved-device';
import { FINETUNE_FILES } from '../engine/pipelines/finetune-defaults';
import { addControlSource, FittedSourceCache, makeControlMap, saveDrawnControlMap, type ControlEnvironment } from './control-requests';
import { controlFilePath, findControlImage } from '../library/control-images';
import { ControlModelStore } from '../library/control-model-store';
import { estimateDepthMap } from '../engine/pipelines/depth-map';
import type { DepthEstimator } from '../engine/pipelines/control-map';
import type { EngineContext } from '../engine/pipelines/engine-context';
import type { Recipe } from '../gallery/recipe';

export type StudioEventListener = <E extends StudioEvent>(event: E, payload: StudioEvents[E]) => void;

export interface StudioOptions {
  dataDir: string;
  mode: RunMode;
  electronVersion?: string | null;
  /** The ORT worker script; found next to the built main process when left out (tests pass a fresh bundle). */
  workerFile?: string;
  /** The app's resources folder (the demo model lives there); found from this module when left out. */
  resourcesDir?: string;
  /** A native folder dialog (the desktop app's); resolves with the chosen folder, or null when cancelled. */
  chooseFolder?: (title: string) => Promise<string | null>;
}

export interface Studio {
  readonly api: StudioApi;
  readonly dataDir: string;
  onEvent(listener: StudioEventListener): () => void;
  close(): Promise<void>;
}

export async function openStudio(options: StudioOptions): Promise<Studio> {
  const dataDir = resolve(options.dataDir);
  mkdirSync(dataDir, { recursive: true });
  const library = LibraryStore.open(dataDir);
  // Work cut short by a crash (an import, an embeddings job, a generation) is marked failed and cleaned up first.
  const recovery = recoverInterruptedWork(library.connection, dataDir);
  registerDemoModel(library, options.resourcesDir);
  return new StudioService(dataDir, options, library, recovery.failedJobs.map(jobRunSummary));
}

/** Every library gets the bundled demo model, so each flow works before a real model is installed. */
function registerDemoModel(library: LibraryStore, resourcesDir: string | undefined): void {
  const folder = demoModelFolder(resourcesDir);
  // A build without the demo (or a damaged install) simply has no demo model to offer.
  if (!existsSync(join(folder, 'model_index.json'))) return;
  library.registerDemoModel({ name: DEMO_MODEL_NAME, kind: DEMO_MODEL_KIND, folder });
}

class StudioService implements Studio {
  readonly api: StudioApi;
  readonly #listeners = new Set<StudioEventListener>();
  readonly #queues = new Map<string, JobQueue>();
  /** Job id → the model folder it reads (generations, reproductions, embeddings), pruned as jobs end. */
  readonly #modelUsers = new Map<string, string>();
  readonly #purgeTimers = new Set<NodeJS.Timeout>();
  readonly #subjects: SubjectService;
  readonly #gallery: GenerationsStore;
  readonly #adapters: AdapterStore;
  readonly #controlModels: ControlModelStore;
  readonly #fittedSources = new FittedSourceCache();
  readonly #reproductions = new ReproductionResults();
  readonly #models: ModelJobs;
  #runtime: RuntimeClient | null = null;
  #closed = false;

  constructor(
    readonly dataDir: string,
    private readonly options: StudioOptions,
    private readonly library: LibraryStore,
    /** Jobs a crash cut short, listed with the live ones so the app shows they were interrupted. */
    private readonly interruptedJobs: readonly JobSummary[] = [],
  ) {
    this.#subjects = new SubjectService(library.connection, dataDir);
    this.#gallery = new GenerationsStore(library.connection, dataDir);
    this.#adapters = new AdapterStore(library.connection);
    this.#controlModels = new ControlModelStore(library.connection);
    this.#models = new ModelJobs({
      dataDir,
      library,
      db: library.connection,
      settings: () => library.getSettings(),
      // Their own queues (names no device has): a download or a check never waits behind a generation.
      downloadQueue: () => this.#queue('model-downloads'),
      checkQueue: () => this.#queue('model-checks'),
      modelsChanged: () => this.#emit('libraryChanged', { what: 'models' }),
      jobUsingModel: (folder) => this.#jobUsingModel(folder),
      controlModels: this.#controlModels,
    });
    this.api = this.#buildApi();
  }

  onEvent(listener: StudioEventListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const timer of this.#purgeTimers) clearTimeout(timer);
    for (const queue of this.#queues.values()) queue.cancelAll();
    await Promise.all([...this.#queues.values()].map((q) => q.whenIdle()));
    await this.#runtime?.close();
    this.library.close();
    this.#listeners.clear();
  }

  #emit<E extends StudioEvent>(event: E, payload: StudioEvents[E]): void {
    for (const listener of this.#listeners) listener(event, payload);
  }

  #runtimeClient(): RuntimeClient {
    if (this.#closed) throw new StudioError('unavailable', 'The studio is shutting down.');
    this.#runtime ??= RuntimeClient.start({
      threads: this.library.getSettings().threads,
      ...(this.options.workerFile !== undefined ? { workerFile: this.options.workerFile } : {}),
    });
    return this.#runtime;
  }

  /** One serial queue per device, created on first use. */
  #queue(device: string): JobQueue {
    let queue = this.#queues.get(device);
    if (!queue) {
      queue = new JobQueue((job) => this.#emit('jobChanged', job));
      this.#queues.set(device, queue);
    }
    return queue;
  }

  /** Purges the deletion once its undo window has passed (a restart purges it otherwise). */
  #schedulePurge(): void {
    const timer = setTimeout(() => {
      this.#purgeTimers.delete(timer);
      if (this.#closed) return;
      if (this.#subjects.purgeDeletedSubjects() > 0) this.#emit('libraryChanged', { what: 'subjects' });
      // Purged, not listed: the gallery needs no event (the result vanished from it at deletion).
      this.#gallery.purgeDeleted(UNDO_WINDOW_MS);
      this.#adapters.purgeDeleted(UNDO_WINDOW_MS);
    }, UNDO_WINDOW_MS + 250);
    timer.unref();
    this.#purgeTimers.add(timer);
  }

  /** Records that a job reads the model in `folder`, so the model is not removed from under it. */
  #usesModel(job: JobSummary, folder: string): void {
    this.#modelUsers.set(job.id, folder);
  }

  /** The queue holding a job, if any queue does. */
  #queueOf(jobId: string): JobQueue | undefined {
    return [...this.#queues.values()].find((q) => q.get(jobId) !== undefined);
  }

  #jobUsingModel(folder: string): string | null {
    for (const [jobId, usedFolder] of this.#modelUsers) {
      const job = this.#queueOf(jobId)?.get(jobId);
      if (!job || (job.state !== 'queued' && job.state !== 'running')) {
        this.#modelUsers.delete(jobId);
        continue;
      }
      if (usedFolder === folder) return job.label;
    }
    return null;
  }

  #subjectsChanged<T>(value: T): T {
    this.#emit('libraryChanged', { what: 'subjects' });
    return value;
  }

  #computeEmbeddings({ subjectId, model }: EmbeddingsRequest): JobRef {
    let folder: ModelFolder;
    try {
      folder = loadModelFolder(model);
    } catch (error) {
      if (error instanceof ModelFolderError) throw new StudioError('invalid-request', error.message);
      throw error;
    }
    const subject = this.#subjects.getSubject(subjectId);
    if (subject.photoCount === 0) throw new StudioError('invalid-request', `${subject.name} has no photos yet: add at least one.`);
    const runtime = this.#runtimeClient();
    const device = this.library.getSettings().device;
    const job = this.#queue(device).submit({
      kind: 'subject-embeddings',
      label: `Subject embeddings of ${subject.name}`,
      totalSteps: subject.photoCount,
      run: async (context) => {
        context.progress(0, subject.photoCount, 'Checking the model');
        const engine = { runtime, device, cacheDir: join(this.dataDir, 'cache'), signal: context.signal };
        const result = await computeSubjectEmbeddingsWithEngine(this.library.connection, this.dataDir, engine, folder, subjectId, {
          signal: context.signal,
          onProgress: (p) => context.progress(p.done, p.total, p.message),
        });
        this.#emit('libraryChanged', { what: 'subjects' });
        return `${result.computed} computed, ${result.cached} reused from the cache`;
      },
    });
    this.#usesModel(job, folder.dir);
    return { id: job.id };
  }

  async #uploadPhoto({ subjectId, name, dataBase64 }: PhotoUpload): Promise<PhotoUploadResult> {
    const buffer = Buffer.from(dataBase64, 'base64');
    const bytes = new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
    const result = await this.#subjects.addPhotos(subjectId, [{ name, bytes }]);
    if (result.added.length > 0) {
      // The subject's summary (photo count, cover) changed along with its photos.
      this.#emit('libraryChanged', { what: 'photos' });
      this.#emit('libraryChanged', { what: 'subjects' });
    }
    return { subject: this.#subjects.getSubject(subjectId), rejected: result.rejected };
  }

  #startGeneration(request: GenerationRequest): JobRef {
    const subject = this.#subjects.getSubject(request.subjectId);
    if (subject.photoCount === 0) throw new StudioError('invalid-request', `${subject.name} has no photos yet: add at least one.`);
    const model = request.modelId !== undefined ? this.library.getModel(request.modelId) : this.library.defaultModel();
    if (!model) {
      throw request.modelId !== undefined
        ? new StudioError('not-found', `No model with id ${request.modelId}.`)
        : new StudioError('unavailable', 'No model is ready yet: add a model first.');
    }
    if (model.status !== 'ready') throw new StudioError('conflict', `${model.name} is not ready (${model.status}).`);
    const folder = openLibraryModel(model);
    const settings = this.library.getSettings();
    const mixSubject = request.mix !== undefined ? this.#subjects.getSubject(request.mix.subjectId) : undefined;
    const plan = planGeneration(request, settings, subject, model, folder, mixSubject, this.#adapters, {
      mapFile: (mapId) => findControlImage(this.dataDir, mapId),
      controlNet: (id) => this.#controlModels.get(id),
    });
    // Problems the user can fix (a negative prompt too long for the model's tokenizer, a size the model
    // cannot make) are answered now, not as a failed job later.
    try {
      tokenizePrompts(folder, { prompt: plan.prompt, targetSubject: plan.targetSubject, negativePrompt: plan.negativePrompt });
      generationGeometry(folder, plan.height, plan.width);
    } catch (error) {
      throw new StudioError('invalid-request', error instanceof Error ? error.message : String(error));
    }
    const runtime = this.#runtimeClient();
    const environment = { db: this.library.connection, dataDir: this.dataDir, runtime, device: settings.device, subjects: this.#subjects, gallery: this.#gallery };
    const job = this.#queue(settings.device).submit(journaledJob(this.library.connection, {
      kind: 'generation',
      label: generationLabel(plan),
      totalSteps: plannedSteps(plan),
      run: async (context) => {
        // Each image is announced as it lands, so it shows while the rest of the batch runs.
        const records = await runGenerationJob(context, plan, environment, (record) => {
          context.setResult(record.id);
          this.#emit('libraryChanged', { what: 'generations' });
        });
        return describeGenerations(records);
      },
    }, { subjectId: subject.id }));
    this.#usesModel(job, model.folder);
    return { id: job.id };
  }

  #getGeneration(id: number): GenerationDetail {
    const record = this.#gallery.get(id);
    if (!record) throw new StudioError('not-found', `No generation with id ${id}: it may have been deleted.`);
    return {
      id: record.id,
      subjectId: record.subjectId,
      prompt: record.prompt,
      seed: record.seed,
      width: record.width,
      height: record.height,
      imagePath: record.imagePath,
      createdAt: record.createdAt,
      recipe: record.recipe,
      mixSubjectId: recipeMixLibrarySubject(this.library.connection, record.recipe),
      control: this.#recipeControlPaths(record.recipe),
    };
  }

  #recipeControlPaths(recipe: Recipe): GenerationDetail['control'] {
    if (!recipe.control) return null;
    const stored = (sha256: string | undefined) => (sha256 !== undefined && findControlImage(this.dataDir, sha256) !== null ? controlFilePath(sha256) : null);
    return { mapPath: stored(recipe.control.sha256), sourcePath: stored(recipe.control.source?.sha256) };
  }

  #reproduce(request: ReproduceRequest): JobRef {
    const plan = planReproduction(request, { db: this.library.connection, dataDir: this.dataDir, gallery: this.#gallery, models: this.library.listModels() });
    const runtime = this.#runtimeClient();
    const device = this.library.getSettings().device;
    const environment = { db: this.library.connection, dataDir: this.dataDir, runtime, device, gallery: this.#gallery };
    const job = this.#queue(device).submit(journaledJob(this.library.connection, {
      kind: 'reproduce',
      label: plan.label,
      totalSteps: plan.recipe.steps,
      run: async (context) => {
        const { record, reproduction } = await runReproductionJob(context, plan, environment);
        this.#reproductions.add({ jobId: job.id, ...reproduction });
        context.setResult(record.id);
        this.#emit('libraryChanged', { what: 'generations' });
        return reproduction.summary;
      },
    }, { subjectId: plan.subjectId }));
    this.#usesModel(job, plan.model.folder);
    return { id: job.id };
  }

  #deleteGeneration(id: number): GenerationDeletion {
    const now = Date.now();
    if (!this.#gallery.delete(id, { undoable: true, now })) throw new StudioError('not-found', `No generation with id ${id}: it may have been deleted.`);
    this.#schedulePurge();
    this.#emit('libraryChanged', { what: 'generations' });
    return { id, undoUntil: new Date(now + UNDO_WINDOW_MS).toISOString() };
  }

  #undoDeleteGeneration(id: number): GenerationDetail {
    if (!this.#gallery.undoDelete(id)) throw new StudioError('not-found', `Generation ${id} cannot be brought back: it was not deleted, or it is gone for good.`);
    this.#emit('libraryChanged', { what: 'generations' });
    return this.#getGeneration(id);
  }

  /** A ready library model: the one asked for, or the default. */
  #readyModel(modelId: number | undefined) {
    const model = modelId !== undefined ? this.library.getModel(modelId) : this.library.defaultModel();
    if (!model) {
      throw modelId !== undefined ? new StudioError('not-found', `No model with id ${modelId}.`) : new StudioError('unavailable', 'No model is ready yet: add a model first.');
    }
    if (model.status !== 'ready') throw new StudioError('conflict', `${model.name} is not ready (${model.status}).`);
    return { model, folder: openLibraryModel(model) };
  }

  async #finetuneOptions(request: FinetuneOptionsRequest): Promise<FinetuneOptions> {
    const subject = this.#subjects.getSubject(request.subjectId);
    const { model, folder } = this.#readyModel(request.modelId);
    const device = await resolveDevice({ runtime: this.#runtimeClient(), device: this.library.getSettings().device, cacheDir: join(this.dataDir, 'cache') });
    return {
      modelId: model.id,
      modelName: model.name,
      device,
      photoCount: subject.photos.filter((p) => p.weight > 0).length,
      presets: finetunePresets(folder, device),
      measuredMsPerStepPerPhoto: measuredStepTimes(this.#adapters.list({ kind: 'finetune' }), device),
    };
  }

  async #startFinetune(request: FinetuneStartRequest): Promise<JobRef> {
    const subject = this.#subjects.getSubject(request.subjectId);
    const { model, folder } = this.#readyModel(request.modelId);
    const runtime = this.#runtimeClient();
    const settingsDevice = this.library.getSettings().device;
    const device = await resolveDevice({ runtime, device: settingsDevice, cacheDir: join(this.dataDir, 'cache') });
    const plan = planFinetune(request, subject, model, folder, device, this.dataDir);
    const environment = { db: this.library.connection, dataDir: this.dataDir, runtime, device, adapters: this.#adapters };
    // Fine-tunes have their own queue per device: two fine-tunes queue, a generation does not wait for
    // one (the ORT worker interleaves their runs, so it waits at most one training step at a time).
    const job = this.#queue(`finetune:${device}`).submit(journaledJob(this.library.connection, {
      kind: 'finetune',
      label: finetuneLabel(plan),
      totalSteps: plan.settings.steps,
      run: async (context) => {
        const id = await runFinetuneJob(context, plan, environment);
        context.setResult(id);
        this.#emit('libraryChanged', { what: 'adapters' });
        const adapter = this.#adapters.get(id);
        return `Stored the fine-tune (final loss ${adapter?.finalLoss?.toFixed(4) ?? '?'})`;
      },
    }, { subjectId: subject.id }));
    this.#usesModel(job, model.folder);
    return { id: job.id };
  }

  #adapterSummary(id: number): AdapterSummary {
    const record = this.#adapters.get(id);
    if (!record) throw new StudioError('not-found', `No adapter with id ${id}: it may have been deleted.`);
    return adapterSummary(record, this.library.listModels());
  }

  async #importAdapter(upload: AdapterImport): Promise<AdapterSummary> {
    const { model, folder } = this.#readyModel(upload.modelId);
    const buffer = Buffer.from(upload.dataBase64, 'base64');
    const bytes = new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
    let rank: number;
    try {
      rank = readLoraFile(bytes, loraTargets(requireComponent(folder, 'unet').config), { file: upload.name }).lora.rank;
    } catch (error) {
      if (error instanceof LoraFileError) throw new StudioError('invalid-request', error.message);
      throw error;
    }
    const modelHash = model.hash ?? (await modelFingerprint(folder, { weightsCacheDir: join(this.dataDir, 'cache', 'weights') }));
    const name = upload.name.replace(/\.safetensors$/i, '').trim() || 'Imported LoRA';
    const id = this.#adapters.insertStyle({ name, modelHash, modelName: model.name, rank, lora: bytes });
    this.#emit('libraryChanged', { what: 'adapters' });
    return this.#adapterSummary(id);
  }

  #controlEnvironment(): ControlEnvironment {
    const depth = this.#controlModels.depthEstimator();
    const estimateDepth: DepthEstimator | null =
      depth === null
        ? null
        : async (fitted) => {
            const engine: EngineContext = { runtime: this.#runtimeClient(), device: this.library.getSettings().device, cacheDir: join(this.dataDir, 'cache') };
            return estimateDepthMap({ ...engine, device: await resolveDevice(engine) }, { dir: depth.folder }, fitted);
          };
    return { dataDir: this.dataDir, gallery: this.#gallery, fittedSources: this.#fittedSources, estimateDepth };
  }

  #allJobs(): JobSummary[] {
    return [...this.interruptedJobs, ...[...this.#queues.values()].flatMap((q) => q.list())];
  }

  #buildApi(): StudioApi {
    return {
      getAppInfo: async (): Promise<AppInfo> => ({
        appName: packageJson.productName,
        appVersion: packageJson.version,
        mode: this.options.mode,
        electronVersion: this.options.electronVersion ?? null,
        nodeVersion: process.versions.node,
        onnxruntimeVersion: await this.#runtimeClient().onnxruntimeVersion(),
        sqliteVersion: this.library.sqliteVersion,
        platform: process.platform,
        arch: process.arch,
        cpuCount: cpus().length,
        totalMemoryBytes: totalmem(),
        dataDir: this.dataDir,
        schemaVersion: this.library.schemaVersion,
      }),
      getLibraryCounts: async () => this.library.counts(),
      getDataFolder: async (): Promise<DataFolderInfo> => ({
        path: this.dataDir,
        sizeBytes: await folderSize(this.dataDir),
        databaseBytes: await folderSize(this.library.databaseFile),
        freeBytes: await freeBytesAt(this.dataDir),
      }),
      listBackends: async (): Promise<BackendInfo[]> => this.#runtimeClient().listBackends(),
      checkRuntime: async ({ backend }: RuntimeCheckRequest): Promise<JobRef> => {
        const runtime = this.#runtimeClient();
        const job = this.#queue(backend).submit({
          kind: 'runtime-check',
          label: `Check ${backend} execution provider`,
          totalSteps: 1,
          run: async (context) => {
            context.progress(0, 1, `Running a test graph on ${backend}`);
            const result = await runtime.checkBackend(backend);
            if (!result.ok) throw new Error(result.message);
            return result.message;
          },
        });
        return { id: job.id };
      },
      getSettings: async () => this.library.getSettings(),
      updateSettings: async (patch: SettingsPatch) => {
        const settings = this.library.updateSettings(patch);
        this.#emit('settingsChanged', settings);
        return settings;
      },
      listSubjects: async (query: SubjectQuery) => this.library.listSubjects(query),
      getSubject: async ({ id }: SubjectRef) => this.#subjects.getSubject(id),
      createSubject: async (subject: NewSubject) => this.#subjectsChanged(this.#subjects.createSubject(subject)),
      updateSubject: async (update: SubjectUpdate) => this.#subjectsChanged(this.#subjects.updateSubject(update)),
      removePhotos: async ({ subjectId, photoIds }: PhotoRemoval) => this.#subjectsChanged(this.#subjects.removePhotos(subjectId, photoIds)),
      setPhotoWeights: async (update: PhotoWeightsUpdate) => this.#subjectsChanged(this.#subjects.setPhotoWeights(update)),
      deleteSubject: async ({ id }: SubjectRef) => {
        const deletion = this.#subjects.deleteSubject(id);
        this.#schedulePurge();
        return this.#subjectsChanged(deletion);
      },
      undoDeleteSubject: async ({ id }: SubjectRef) => this.#subjectsChanged(this.#subjects.undoDeleteSubject(id)),
      computeEmbeddings: async (request: EmbeddingsRequest) => this.#computeEmbeddings(request),
      uploadPhoto: async (upload: PhotoUpload) => this.#uploadPhoto(upload),
      startGeneration: async (request: GenerationRequest) => this.#startGeneration(request),
      listGenerations: async (query: GenerationQuery) => this.#gallery.listSummaries(query),
      getGeneration: async ({ id }: { id: number }) => this.#getGeneration(id),
      deleteGeneration: async ({ id }: { id: number }) => this.#deleteGeneration(id),
      undoDeleteGeneration: async ({ id }: { id: number }) => this.#undoDeleteGeneration(id),
      readPngRecipe: async (png: PngUpload) => readUploadedRecipe(this.library.connection, this.dataDir, png),
      reproduce: async (request: ReproduceRequest) => this.#reproduce(request),
      getReproduction: async ({ id }: JobRef) => this.#reproductions.get(id),
      listModels: async () => this.library.listModels(),
      addModelFolder: async ({ folder }: ModelFolderRequest) => this.#models.adoptFolder(folder),
      pickModelFolder: async (): Promise<FolderChoice> => {
        const choose = this.options.chooseFolder;
        if (!choose) throw new StudioError('unavailable', 'A folder dialog is only available in the desktop app: type the full path of the model folder instead.');
        return { folder: await choose('Choose a model folder (the one with model_index.json)') };
      },
      downloadModel: async ({ repo }: ModelDownloadRequest) => this.#models.download(repo),
      listModelDownloads: async () => this.#models.listDownloads(),
      removeModel: async (removal: ModelRemoval) => this.#models.remove(removal),
      getFinetuneOptions: async (request: FinetuneOptionsRequest) => this.#finetuneOptions(request),
      startFinetune: async (request: FinetuneStartRequest) => this.#startFinetune(request),
      listAdapters: async (query: AdapterQuery) => {
        const models = this.library.listModels();
        return this.#adapters.list(query).map((record) => adapterSummary(record, models));
      },
      deleteAdapter: async ({ id }: { id: number }) => {
        const now = Date.now();
        if (!this.#adapters.delete(id, now)) throw new StudioError('not-found', `No adapter with id ${id}: it may have been deleted.`);
        this.#schedulePurge();
        this.#emit('libraryChanged', { what: 'adapters' });
        return { id, undoUntil: new Date(now + UNDO_WINDOW_MS).toISOString() };
      },
      undoDeleteAdapter: async ({ id }: { id: number }) => {
        if (!this.#adapters.undoDelete(id)) throw new StudioError('not-found', `Adapter ${id} cannot be brought back: it was not deleted, or it is gone for good.`);
        this.#emit('libraryChanged', { what: 'adapters' });
        return this.#adapterSummary(id);
      },
      exportAdapter: async ({ id }: { id: number }): Promise<FileDownload> => {
        const record = this.#adapters.get(id);
        if (!record) throw new StudioError('not-found', `No adapter with id ${id}: it may have been deleted.`);
        return { name: FINETUNE_FILES.lora, dataBase64: Buffer.from(record.lora).toString('base64') };
      },
      importAdapter: async (upload: AdapterImport) => this.#importAdapter(upload),
      addControlSource: async (request: ControlSourceRequest) => addControlSource(this.#controlEnvironment(), request),
      makeControlMap: async (request: ControlMapRequest) => makeControlMap(this.#controlEnvironment(), request),
      saveDrawnControlMap: async (map: DrawnControlMap) => saveDrawnControlMap(this.#controlEnvironment(), map),
      listControlModels: async () => this.#controlModels.list(),
      removeControlModel: async (removal: ModelRemoval) => this.#models.removeControl(removal),
      listJobs: async () => this.#allJobs(),
      cancelJob: async ({ id }: JobRef) => {
        const queue = this.#queueOf(id);
        if (!queue) throw new StudioError('not-found', `No job with id ${id}.`);
        queue.cancel(id);
      },
    };
  }
}
