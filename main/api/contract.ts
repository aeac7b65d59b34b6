/**
 * The BLIP Studio API contract: the one interface between the untrusted renderer and the main process.
 *
 * main/api implements `StudioApi`, preload/ exposes it as `window.studio` (Electron), the serve-mode
 * transport speaks it over HTTP + WebSocket, and the renderer consumes it without knowing which.
 * This module is pure: it imports only types (the engine's provider types) and holds types plus the name tables that the
 * transports need to build their proxies (in the spirit of VS Code's ProxyChannel).
 */

// ---------------------------------------------------------------------------------------------
// DTOs
// ---------------------------------------------------------------------------------------------

// What the engine says about execution providers is the engine's own type (the engine imports nothing
// from the layers above it); the contract passes it on.
import type { BackendInfo } from '../engine/providers/provider-types';
export type { AttentionLowering, BackendInfo, NetName, NetPlacement, RuntimeCheckResult } from '../engine/providers/provider-types';

export type RunMode = 'electron' | 'serve' | 'cli';

export interface AppInfo {
  appName: string;
  appVersion: string;
  mode: RunMode;
  /** Electron's version, or null outside Electron (serve mode, CLI). */
  electronVersion: string | null;
  nodeVersion: string;
  onnxruntimeVersion: string;
  sqliteVersion: string;
  platform: string;
  arch: string;
  cpuCount: number;
  totalMemoryBytes: number;
  dataDir: string;
  schemaVersion: number;
}

export interface LibraryCounts {
  subjects: number;
  photos: number;
  generations: number;
  models: number;
}


export type DeviceChoice = 'auto' | 'cpu' | 'webgpu' | 'cuda' | 'dml' | 'coreml';
export const DEVICE_CHOICES = ['auto', 'cpu', 'webgpu', 'cuda', 'dml', 'coreml'] as const satisfies readonly DeviceChoice[];

export type ThemePreference = 'system' | 'light' | 'dark';
export const THEME_PREFERENCES = ['system', 'light', 'dark'] as const satisfies readonly ThemePreference[];

export type SchedulerName = 'pndm' | 'ddim' | 'euler' | 'dpmpp2m' | 'dpmpp2m-karras';
export const SCHEDULER_NAMES = ['pndm', 'ddim', 'euler', 'dpmpp2m', 'dpmpp2m-karras'] as const satisfies readonly SchedulerName[];

export interface Settings {
  theme: ThemePreference;
  device: DeviceChoice;
  /** Intra-op threads for ONNX Runtime; 0 means "one per core". */
  threads: number;
  defaultSteps: number;
  defaultGuidance: number;
  defaultScheduler: SchedulerName;
  /** Hugging Face hub (or a mirror serving its layout) that model downloads come from; http(s) URL. */
  hubUrl: string;
}

export type SettingsPatch = Partial<Settings>;

export interface SubjectSummary {
  id: number;
  name: string;
  category: string;
  note: string;
  /** Path of the cover thumbnail relative to the data folder, or null. */
  coverPath: string | null;
  photoCount: number;
  createdAt: string;
  updatedAt: string;
}

/** One photo of a subject; paths are relative to the data folder. */
export interface SubjectPhoto {
  id: number;
  sha256: string;
  filePath: string;
  thumbPath: string | null;
  /** Size as displayed (EXIF orientation applied). */
  width: number;
  height: number;
  bytes: number;
  /** Share of this photo in the subject's mean embedding (relative to the others; default 1). */
  weight: number;
  originalName: string;
  orientation: number;
  createdAt: string;
}

export interface SubjectDetail extends SubjectSummary {
  coverPhotoId: number | null;
  photos: SubjectPhoto[];
}

export interface SubjectRef {
  id: number;
}

export interface NewSubject {
  name: string;
  category: string;
  note?: string;
}

export interface SubjectUpdate {
  id: number;
  name?: string;
  category?: string;
  note?: string;
  coverPhotoId?: number;
}

export interface PhotoWeightsUpdate {
  subjectId: number;
  weights: { photoId: number; weight: number }[];
}

export interface PhotoRemoval {
  subjectId: number;
  photoIds: number[];
}

/** A photo that was not imported, and why (written for the user). */
export interface RejectedPhoto {
  name: string;
  reason: string;
}

export interface SubjectDeletion {
  id: number;
  /** Until then `undoDeleteSubject` brings it back; afterwards its rows and files are gone. */
  undoUntil: string;
}

export interface GenerationDeletion {
  id: number;
  /** Until then `undoDeleteGeneration` brings it back; afterwards its row and file are gone. */
  undoUntil: string;
}

export interface EmbeddingsRequest {
  subjectId: number;
  /** The model folder (diffusers layout) whose Q-Former computes the embeddings. */
  model: string;
}

export type SubjectSort = 'recent' | 'name';

export interface SubjectQuery {
  search?: string;
  sort?: SubjectSort;
}

export interface GenerationSummary {
  id: number;
  subjectId: number | null;
  prompt: string;
  /** Decimal string: seeds go up to 2^64 − 1, beyond JSON's safe integers. */
  seed: string;
  width: number;
  height: number;
  /** Path of the PNG relative to the data folder. */
  imagePath: string;
  createdAt: string;
}

export interface GenerationQuery {
  subjectId?: number;
  /** ISO 8601: only generations made at or after this time (the gallery's date filter). */
  since?: string;
  /** ISO 8601: only generations made before this time. */
  until?: string;
  limit?: number;
  /** Newest first; skip this many (the gallery's "Load more"). */
  offset?: number;
}

/** A PNG the user dropped or picked, bytes as base64 (no data: prefix). */
export interface PngUpload {
  name: string;
  dataBase64: string;
}

/** The recipe read from a PNG made by BLIP Studio, and what this library has of it. */
export interface RecipeReading {
  /** The file's name as given. */
  name: string;
  /** The full recipe (validated JSON). */
  recipe: Record<string, unknown>;
  /** The library subject holding the recipe's photos (for "Reuse settings"), or null. */
  subjectId: number | null;
  /** Likewise for the subject mixed in, or null (no mix, or not in the library). */
  mixSubjectId: number | null;
  /** Photo hashes of the recipe that are not in the library (reproducing needs every one). */
  missingPhotos: string[];
}

/** Run a recipe again: a gallery result's, or the one in a PNG the user dropped. */
export type ReproduceRequest = { generationId: number } | { png: PngUpload };

/** How a reproduction came out against the original image. */
export interface Reproduction {
  jobId: string;
  /** The new image, recorded in the gallery, and its path relative to the data folder. */
  generationId: number;
  imagePath: string;
  /** The gallery result that was reproduced, or null for a dropped PNG. */
  originalId: number | null;
  identical: boolean;
  sameSize: boolean;
  /** Largest channel difference 0-255 (null when the sizes differ). */
  maxDifference: number | null;
  differingPixels: number | null;
  /** The provider that ran now, and the one the recipe names. */
  device: string;
  recipeDevice: string;
  /** One sentence for the user. */
  summary: string;
}

export type ModelKind = 'blipdiffusion' | 'controlnet';
export type ModelStatus = 'ready' | 'downloading' | 'converting' | 'invalid';

export interface ModelSummary {
  id: number;
  name: string;
  kind: ModelKind;
  folder: string;
  status: ModelStatus;
  hash: string | null;
  /** The bundled tiny random-weight model: every flow works, images look like noise. */
  isDemo: boolean;
  /** Whether it has a ControlNet (edge/depth conditioning). */
  hasControlNet: boolean;
}

/** The hub repositories the app downloads (into `<data>/models/<owner>--<name>`): two pipelines, then two control models. */
export type HubRepo = 'Salesforce/blipdiffusion' | 'Salesforce/blipdiffusion-controlnet' | 'depth-anything/Depth-Anything-V2-Small-hf' | 'lllyasviel/sd-controlnet-depth';
export const HUB_REPOS = [
  'Salesforce/blipdiffusion',
  'Salesforce/blipdiffusion-controlnet',
  'depth-anything/Depth-Anything-V2-Small-hf',
  'lllyasviel/sd-controlnet-depth',
] as const satisfies readonly HubRepo[];

/** A control model: a ControlNet on its own (used beside a BLIP-Diffusion model) or a depth estimator. */
export type ControlModelKind = 'controlnet' | 'depth-estimator';
/** What a ControlNet was trained on (from its name; a depth estimator makes depth maps). */
export type ControlConditioning = 'canny' | 'depth' | 'other';

export interface ControlModelSummary {
  id: number;
  name: string;
  kind: ControlModelKind;
  conditioning: ControlConditioning;
  folder: string;
  /** Fingerprint over its files: recipes name a ControlNet by it. */
  hash: string;
  createdAt: string;
}

/**
 * A model folder the user already has, to check and add. `folder` is an absolute path typed by the
 * user or chosen in the desktop app's folder dialog (`pickModelFolder`); main only ever reads it as a
 * model folder (configs and weights through the strict readers) and never serves files from it.
 */
export interface ModelFolderRequest {
  folder: string;
}

/** The folder chosen in a native dialog, or null when the user cancelled it. */
export interface FolderChoice {
  folder: string | null;
}

export interface ModelDownloadRequest {
  repo: HubRepo;
}

/**
 * Where a hub download into the data folder stands: `none` (nothing on disk), `downloading` (a job is
 * queued or running), `paused` (partial files kept: downloading again resumes), `failed` (the last
 * attempt failed: `error` says why and which file), `complete` (every file verified).
 */
export type ModelDownloadState = 'none' | 'downloading' | 'paused' | 'failed' | 'complete';

export interface ModelDownloadInfo {
  repo: HubRepo;
  /** Absolute path of the download folder. */
  folder: string;
  state: ModelDownloadState;
  /** Bytes on disk so far and in all (0 when the file list has not been fetched yet). */
  bytesDone: number;
  bytesTotal: number;
  /** The queued or running job, or null. */
  jobId: string | null;
  /** Why the last attempt failed, and the repository-relative file it failed on (when there is one). */
  error: { message: string; file: string | null } | null;
  /** The library model made from this download, once it is checked and registered. */
  modelId: number | null;
  /** The control model made from it (the ControlNet and depth-estimator repositories), once registered. */
  controlModelId: number | null;
}

export interface ModelRemoval {
  id: number;
  /** Also delete the files; only allowed for a model downloaded into the data folder. */
  deleteFiles: boolean;
}

export interface DataFolderInfo {
  path: string;
  sizeBytes: number;
  databaseBytes: number;
  /** Space left on the folder's disk for this user (models are gigabytes). */
  freeBytes: number;
}

export interface RuntimeCheckRequest {
  backend: string;
}


export type JobState = 'queued' | 'running' | 'done' | 'failed' | 'cancelled';
export type JobProgressUnit = 'steps' | 'bytes';

export interface JobSummary {
  id: string;
  kind: string;
  label: string;
  state: JobState;
  step: number;
  totalSteps: number;
  /** What `step`/`totalSteps` count: steps (the default) or bytes (downloads). */
  progressUnit: JobProgressUnit;
  startedAt: string | null;
  finishedAt: string | null;
  /** Estimated milliseconds left, or null when unknown. */
  etaMs: number | null;
  /** Last message: what is happening, or why it failed. */
  message: string;
  /** A small live preview (a `data:image/png` URL) for generation jobs, or null. */
  preview: string | null;
  /** What the job produced when done, e.g. the generation's id. */
  resultId: number | null;
  /** A value per step for a live plot (a fine-tune's loss), or null for jobs without one. */
  series: number[] | null;
  /** The library subject the job works on (generations, embeddings, fine-tunes), or null. */
  subjectId: number | null;
}

export interface JobRef {
  id: string;
}

/** One photo sent by the UI (drag-and-drop or file picker), bytes as base64: one photo per call. */
export interface PhotoUpload {
  subjectId: number;
  name: string;
  dataBase64: string;
}

export interface PhotoUploadResult {
  subject: SubjectDetail;
  /** Empty when the photo was accepted; otherwise why it was refused. */
  rejected: RejectedPhoto[];
}

/** What the Generate view asks for; everything left out takes the model's/settings' defaults. */
export interface GenerationRequest {
  subjectId: number;
  /** The category word in the prompt (default: the subject's category). */
  targetSubject?: string;
  prompt: string;
  negativePrompt?: string;
  steps?: number;
  guidanceScale?: number;
  scheduler?: SchedulerName;
  width?: number;
  height?: number;
  /** Decimal seed (0 … 2^64 − 1); random when absent. */
  seed?: string;
  /** Default: the first ready model. */
  modelId?: number;
  /** How many images (1–8; default 1): seeds `seed`, `seed`+1, … (random ones without a seed). */
  batchCount?: number;
  /** A second subject mixed in (LAVIS' ratio): embedding = ratio·subject + (1 − ratio)·second. */
  mix?: SubjectMix;
  /**
   * The subject's fine-tune for this model at a strength (0 … 1.5): the LoRA at that scale and the
   * subject embedding moved by strength × what the fine-tune learned; strength 0 is the zero-shot image.
   */
  finetune?: AdapterUse;
  /** Imported style LoRAs, each at its own strength (−1.5 … 1.5). */
  styles?: AdapterUse[];
  /** A ControlNet map (made by `makeControlMap` or drawn) steering the layout. */
  control?: ControlUse;
}

// ---------------------------------------------------------------------------------------------
// Control (edge and depth maps)
// ---------------------------------------------------------------------------------------------

/** How a map is made from the source: OpenCV's Canny edges, a depth estimate, or the image as it is. */
export type ControlMode = 'canny' | 'depth' | 'image';
export const CONTROL_MODES = ['canny', 'depth', 'image'] as const satisfies readonly ControlMode[];

/** The reference's example thresholds (dense edges), scale 1 and control over every step. */
export const CONTROL_DEFAULTS = Object.freeze({ low: 30, high: 70, scale: 1, start: 0, end: 1 });
export const CONTROL_LIMITS = Object.freeze({ threshold: 1000, scale: 2 });

/** A picture to make a control map from: a file the user picked or dropped, a gallery result, or a stored control image (a recipe's source or map). */
export type ControlSourceRequest = { name: string; dataBase64: string } | { generationId: number } | { storedId: string };

/** A stored control image (source or map), by content hash. */
export interface ControlImage {
  /** SHA-256 of the stored PNG: the recipe names it. */
  id: string;
  /** Data-folder-relative path (the file route serves it). */
  path: string;
  width: number;
  height: number;
}

export interface ControlMapRequest {
  sourceId: string;
  mode: ControlMode;
  /** The output size: the source is fitted to it first (stretched, bicubic, as the reference resizes a control image). */
  width: number;
  height: number;
  /** Canny hysteresis thresholds (default 30/70) and OpenCV's L2 gradient. */
  low?: number;
  high?: number;
  l2?: boolean;
}

export interface ControlMap extends ControlImage {
  /** The map as a `data:image/png` URL, so the draw canvas can paint over it without a file route. */
  dataUrl: string;
  mode: ControlMode;
  /** Edge pixels of a Canny map (null for other modes). */
  edgePixels: number | null;
  /** Whether the source's aspect ratio differs from the output's (so it was stretched). */
  stretched: boolean;
  ms: number;
}

/** A map painted or corrected in the app (PNG at the output size). */
export interface DrawnControlMap {
  dataBase64: string;
  width: number;
  height: number;
}

/** What a controlled generation uses: the map, its scale and the part of the steps it steers. */
export interface ControlUse {
  mapId: string;
  scale: number;
  /** Fractions of the steps, 0 ≤ start < end ≤ 1 (diffusers' control_guidance_start/end). */
  start: number;
  end: number;
  /** How the map was made, for the recipe and for "Reuse settings". */
  mode: ControlMode;
  sourceId?: string;
  low?: number;
  high?: number;
  /** Painted over in the draw mode. */
  drawn?: boolean;
  /** A ControlNet from the control models (e.g. a depth ControlNet) instead of the model's own. */
  controlnetId?: number;
}

export interface AdapterUse {
  adapterId: number;
  scale: number;
}

// ---------------------------------------------------------------------------------------------
// Fine-tunes and adapters
// ---------------------------------------------------------------------------------------------

export type FinetunePreset = 'quick' | 'standard' | 'custom';
export const FINETUNE_PRESETS = ['quick', 'standard', 'custom'] as const satisfies readonly FinetunePreset[];

/** Bounds the app accepts for a fine-tune and for adapter strengths (a 1024² step needs tens of GB on the CPU). */
export const FINETUNE_LIMITS = Object.freeze({ steps: 2000, resolution: 1024, rank: 128, strength: 1.5 });

export interface FinetuneSettings {
  steps: number;
  /** Training resolution in pixels (square), a multiple of the VAE factor. */
  resolution: number;
  rank: number;
  lrLora: number;
  lrEmbedding: number;
}

export interface FinetuneOptionsRequest {
  subjectId: number;
  modelId?: number;
}

/** What the fine-tune dialog offers for a subject and model on this machine. */
export interface FinetuneOptions {
  modelId: number;
  modelName: string;
  /** The provider a fine-tune would run on now ('cpu', 'webgpu', …). */
  device: string;
  photoCount: number;
  presets: Record<Exclude<FinetunePreset, 'custom'>, FinetuneSettings>;
  /** Seconds per step measured by the last fine-tune on this device at each resolution (per photo), empty before the first. */
  measuredMsPerStepPerPhoto: { resolution: number; ms: number }[];
}

export interface FinetuneStartRequest {
  subjectId: number;
  modelId?: number;
  preset: FinetunePreset;
  /** For 'custom' (each field falls back to the standard preset's). */
  settings?: Partial<FinetuneSettings>;
  /** Decimal seed; random when absent. */
  seed?: string;
}

export type AdapterKind = 'finetune' | 'style';

export interface AdapterSummary {
  id: number;
  kind: AdapterKind;
  name: string;
  /** The subject a fine-tune belongs to (null for an imported style LoRA). */
  subjectId: number | null;
  modelName: string;
  /** A model in the library with the fingerprint it was made for, or null. */
  modelId: number | null;
  /** Set when no such model is in the library: "needs the model X". */
  needsModel: string | null;
  rank: number;
  /** The training settings of a fine-tune (null for an import). */
  settings: (FinetuneSettings & { photos: number; seed: string; device: string; durationMs: number }) | null;
  losses: number[];
  finalLoss: number | null;
  sha256: string;
  bytes: number;
  createdAt: string;
}

export interface AdapterQuery {
  subjectId?: number;
  kind?: AdapterKind;
}

export interface AdapterDeletion {
  id: number;
  undoUntil: string;
}

/** A file handed to the renderer to save (export), bytes as base64. */
export interface FileDownload {
  name: string;
  dataBase64: string;
}

/** A LoRA file the user dropped or picked (diffusers or kohya SD-1.5 format), checked against a model. */
export interface AdapterImport {
  name: string;
  dataBase64: string;
  /** The model it must fit (default: the first ready model). */
  modelId?: number;
}

export interface SubjectMix {
  subjectId: number;
  /** The first subject's share, 0 … 1. */
  ratio: number;
}

export interface GenerationDetail extends GenerationSummary {
  /** The full recipe as embedded in the PNG (validated JSON). */
  recipe: Record<string, unknown>;
  /** The library subject of the recipe's mix (for "Reuse settings"), or null (no mix, or gone). */
  mixSubjectId: number | null;
  /** The control map the ControlNet got and the picture it was made from (data-folder paths), when they are in the library. */
  control: { mapPath: string | null; sourcePath: string | null } | null;
}

// ---------------------------------------------------------------------------------------------
// Methods and events
// ---------------------------------------------------------------------------------------------

/** Everything the renderer may ask of main. Every method takes at most one plain-object argument. */
export interface StudioApi {
  getAppInfo(): Promise<AppInfo>;
  getLibraryCounts(): Promise<LibraryCounts>;
  getDataFolder(): Promise<DataFolderInfo>;
  listBackends(): Promise<BackendInfo[]>;
  checkRuntime(request: RuntimeCheckRequest): Promise<JobRef>;
  getSettings(): Promise<Settings>;
  updateSettings(patch: SettingsPatch): Promise<Settings>;
  listSubjects(query: SubjectQuery): Promise<SubjectSummary[]>;
  getSubject(subject: SubjectRef): Promise<SubjectDetail>;
  createSubject(subject: NewSubject): Promise<SubjectDetail>;
  updateSubject(update: SubjectUpdate): Promise<SubjectDetail>;
  removePhotos(removal: PhotoRemoval): Promise<SubjectDetail>;
  setPhotoWeights(update: PhotoWeightsUpdate): Promise<SubjectDetail>;
  deleteSubject(subject: SubjectRef): Promise<SubjectDeletion>;
  undoDeleteSubject(subject: SubjectRef): Promise<SubjectDetail>;
  /** Computes the subject's missing per-photo embeddings for a model, as a job. */
  computeEmbeddings(request: EmbeddingsRequest): Promise<JobRef>;
  /** Adds one photo to a subject (refusals come back with their reason, nothing throws for a bad photo). */
  uploadPhoto(upload: PhotoUpload): Promise<PhotoUploadResult>;
  /** Queues a generation on the device's job queue; progress and previews arrive as jobChanged events. */
  startGeneration(request: GenerationRequest): Promise<JobRef>;
  listGenerations(query: GenerationQuery): Promise<GenerationSummary[]>;
  getGeneration(generation: { id: number }): Promise<GenerationDetail>;
  /** Hides the result at once; it is removed for good (with its file) after a few seconds unless undone. */
  deleteGeneration(generation: { id: number }): Promise<GenerationDeletion>;
  undoDeleteGeneration(generation: { id: number }): Promise<GenerationDetail>;
  /** Reads the recipe of a PNG made by BLIP Studio (dropped or picked); a foreign, forged or damaged PNG is refused with the reason. */
  readPngRecipe(png: PngUpload): Promise<RecipeReading>;
  /** Runs a recipe again as a job (photos from the library by hash); `getReproduction` then compares the pixels. */
  reproduce(request: ReproduceRequest): Promise<JobRef>;
  /** The comparison of a finished reproduce job with its original. */
  getReproduction(job: JobRef): Promise<Reproduction>;
  listModels(): Promise<ModelSummary[]>;
  /** Checks a model folder the user has (converting `.bin` weights once) and adds it, as a job. */
  addModelFolder(request: ModelFolderRequest): Promise<JobRef>;
  /** Opens the desktop app's native folder dialog (main shows it; the page never sees the file system). Refused in serve mode. */
  pickModelFolder(): Promise<FolderChoice>;
  /** Downloads (or resumes) a hub repository into the data folder, then checks and adds it, as a job; cancelling the job pauses. */
  downloadModel(request: ModelDownloadRequest): Promise<JobRef>;
  /** Every downloadable repository and where its download stands (incomplete ones can be resumed). */
  listModelDownloads(): Promise<ModelDownloadInfo[]>;
  /** Removes a model from the library (not the demo); its files stay unless `deleteFiles` and it was downloaded here. */
  removeModel(removal: ModelRemoval): Promise<void>;
  listJobs(): Promise<JobSummary[]>;
  cancelJob(job: JobRef): Promise<void>;
  /** Presets and time figures for the fine-tune dialog. */
  getFinetuneOptions(request: FinetuneOptionsRequest): Promise<FinetuneOptions>;
  /** Queues a quick fine-tune of a subject; the adapter is stored only when every step has run. */
  startFinetune(request: FinetuneStartRequest): Promise<JobRef>;
  listAdapters(query: AdapterQuery): Promise<AdapterSummary[]>;
  /** Hides the adapter at once; gone for good after a few seconds unless undone. */
  deleteAdapter(adapter: { id: number }): Promise<AdapterDeletion>;
  undoDeleteAdapter(adapter: { id: number }): Promise<AdapterSummary>;
  /** The adapter's LoRA as diffusers' pytorch_lora_weights.safetensors. */
  exportAdapter(adapter: { id: number }): Promise<FileDownload>;
  /** Adds a diffusers or kohya SD-1.5 LoRA file as a style adapter (refused, naming the keys, when it does not fit). */
  importAdapter(upload: AdapterImport): Promise<AdapterSummary>;
  /** Stores a picture to make control maps from (a picked or dropped file, or a gallery result). */
  addControlSource(request: ControlSourceRequest): Promise<ControlImage>;
  /** Makes (and stores) the map the ControlNet gets from a source: fitted to the output size, then Canny, depth or as is. */
  makeControlMap(request: ControlMapRequest): Promise<ControlMap>;
  /** Stores a map drawn or corrected in the app. */
  saveDrawnControlMap(map: DrawnControlMap): Promise<ControlMap>;
  /** ControlNets on their own and depth estimators (downloaded or added as folders with addModelFolder). */
  listControlModels(): Promise<ControlModelSummary[]>;
  /** Removes a control model from the library; its files too when `deleteFiles` and it was downloaded here. */
  removeControlModel(removal: ModelRemoval): Promise<void>;
}

/** Everything main may announce to the renderer. */
export interface StudioEvents {
  jobChanged: JobSummary;
  settingsChanged: Settings;
  libraryChanged: { what: 'subjects' | 'photos' | 'generations' | 'models' | 'adapters' };
}

export type StudioMethod = keyof StudioApi;
export type StudioEvent = keyof StudioEvents;
export type StudioArgs<M extends StudioMethod> = Parameters<StudioApi[M]>;
export type StudioResult<M extends StudioMethod> = Awaited<ReturnType<StudioApi[M]>>;

/** The method names, for building proxies; `Exhaustive` below fails to compile if one is missing. */
export const STUDIO_METHODS = [
  'getAppInfo',
  'getLibraryCounts',
  'getDataFolder',
  'listBackends',
  'checkRuntime',
  'getSettings',
  'updateSettings',
  'listSubjects',
  'getSubject',
  'createSubject',
  'updateSubject',
  'removePhotos',
  'setPhotoWeights',
  'deleteSubject',
  'undoDeleteSubject',
  'computeEmbeddings',
  'uploadPhoto',
  'startGeneration',
  'listGenerations',
  'getGeneration',
  'deleteGeneration',
  'undoDeleteGeneration',
  'readPngRecipe',
  'reproduce',
  'getReproduction',
  'listModels',
  'addModelFolder',
  'pickModelFolder',
  'downloadModel',
  'listModelDownloads',
  'removeModel',
  'listJobs',
  'cancelJob',
  'getFinetuneOptions',
  'startFinetune',
  'listAdapters',
  'deleteAdapter',
  'undoDeleteAdapter',
  'exportAdapter',
  'importAdapter',
  'addControlSource',
  'makeControlMap',
  'saveDrawnControlMap',
  'listControlModels',
  'removeControlModel',
] as const satisfies readonly StudioMethod[];

export const STUDIO_EVENTS = ['jobChanged', 'settingsChanged', 'libraryChanged'] as const satisfies readonly StudioEvent[];

type Exhaustive<All, Listed> = [Exclude<All, Listed>] extends [never] ? true : ['missing from the list:', Exclude<All, Listed>];
export const METHODS_ARE_EXHAUSTIVE: Exhaustive<StudioMethod, (typeof STUDIO_METHODS)[number]> = true;
export const EVENTS_ARE_EXHAUSTIVE: Exhaustive<StudioEvent, (typeof STUDIO_EVENTS)[number]> = true;

export type StudioEventListener<E extends StudioEvent> = (payload: StudioEvents[E]) => void;

/** What the renderer sees: the API plus event subscription. Same shape in Electron and serve mode. */
export interface StudioBridge extends StudioApi {
  on<E extends StudioEvent>(event: E, listener: StudioEventListener<E>): () => void;
}

// ---------------------------------------------------------------------------------------------
// Errors and wire names
// ---------------------------------------------------------------------------------------------

export type StudioErrorCode = 'invalid-request' | 'unknown-method' | 'not-found' | 'conflict' | 'unavailable' | 'cancelled' | 'internal';

/** The error shape that crosses every transport. `message` is written for the user. */
export interface StudioErrorPayload {
  code: StudioErrorCode;
  message: string;
}

/** Wire envelope for a call result, identical in IPC and HTTP. */
export type StudioCallOutcome = { ok: true; value: unknown } | { ok: false; error: StudioErrorPayload };

/** Electron IPC channel names: the only two channels the preload bridge uses. */
export const IPC_CHANNELS = { call: 'studio:call', event: 'studio:event' } as const;

/** Serve-mode routes (HTTP + WebSocket on 127.0.0.1). */
export const SERVE_ROUTES = {
  call: '/api/call/',
  events: '/api/events',
  files: '/files/',
} as const;

/** Electron's custom scheme for images in the data folder: `studio-file://data/<relative path>`. */
export const FILE_PROTOCOL = { scheme: 'studio-file', host: 'data' } as const;
