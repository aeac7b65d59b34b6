/**
 * Run-time validation of everything that arrives from the renderer (or a serve-mode client): one zod
 * schema per method's argument list. The compile-time checks below tie each schema to the contract, so
 * the contract and the validation cannot drift apart.
 */
import { z } from 'zod';
import {
  DEVICE_CHOICES,
  FINETUNE_LIMITS,
  FINETUNE_PRESETS,
  HUB_REPOS,
  type AdapterImport,
  CONTROL_LIMITS,
  CONTROL_MODES,
  type ControlMapRequest,
  type ControlSourceRequest,
  type ControlUse,
  type DrawnControlMap,
  type AdapterQuery,
  type FinetuneOptionsRequest,
  type FinetuneSettings,
  type FinetuneStartRequest,
  SCHEDULER_NAMES,
  THEME_PREFERENCES,
  type EmbeddingsRequest,
  type GenerationQuery,
  type GenerationRequest,
  type JobRef,
  type ModelDownloadRequest,
  type ModelFolderRequest,
  type ModelRemoval,
  type NewSubject,
  type PhotoRemoval,
  type PhotoUpload,
  type PhotoWeightsUpdate,
  type PngUpload,
  type ReproduceRequest,
  type SubjectRef,
  type SubjectUpdate,
  type RuntimeCheckRequest,
  type Settings,
  type StudioArgs,
  type StudioMethod,
  type SubjectQuery,
} from './contract';
import { RECIPE_LIMITS } from '../gallery/recipe';

const { steps: MAX_FINETUNE_STEPS, resolution: MAX_FINETUNE_RESOLUTION, rank: MAX_FINETUNE_RANK, strength: MAX_FINETUNE_STRENGTH } = FINETUNE_LIMITS;

function isHttpUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '' && url.username === '' && url.password === '';
  } catch {
    return false;
  }
}

export const settingsSchema = z.strictObject({
  theme: z.enum(THEME_PREFERENCES),
  device: z.enum(DEVICE_CHOICES),
  threads: z.number().int().min(0, 'threads must be 0 (automatic) or more').max(256),
  defaultSteps: z.number().int().min(1, 'steps must be at least 1').max(1000, 'steps must be at most 1000'),
  defaultGuidance: z.number().finite().min(1, 'guidance must be at least 1').max(30, 'guidance must be at most 30'),
  defaultScheduler: z.enum(SCHEDULER_NAMES),
  hubUrl: z
    .string()
    .max(2048, 'the hub address must be at most 2048 characters')
    .refine(isHttpUrl, 'the hub address must be an http:// or https:// URL, e.g. https://huggingface.co'),
}) satisfies z.ZodType<Settings>;

const subjectQuerySchema = z.strictObject({
  search: z.string().max(200).optional(),
  sort: z.enum(['recent', 'name']).optional(),
}) satisfies z.ZodType<SubjectQuery>;

const generationQuerySchema = z.strictObject({
  subjectId: z.number().int().positive().optional(),
  since: z.iso.datetime({ offset: true, message: 'since must be an ISO 8601 date and time' }).optional(),
  until: z.iso.datetime({ offset: true, message: 'until must be an ISO 8601 date and time' }).optional(),
  limit: z.number().int().min(1).max(10_000).optional(),
  offset: z.number().int().min(0).max(10_000_000).optional(),
}) satisfies z.ZodType<GenerationQuery>;

const runtimeCheckSchema = z.strictObject({
  backend: z.string().regex(/^[a-z0-9-]{1,32}$/, 'backend must be a short lower-case name such as "cpu" or "webgpu"'),
}) satisfies z.ZodType<RuntimeCheckRequest>;

const jobRefSchema = z.strictObject({ id: z.string().min(1).max(64) }) satisfies z.ZodType<JobRef>;

const id = z.number().int().positive();
const subjectRefSchema = z.strictObject({ id }) satisfies z.ZodType<SubjectRef>;
const subjectName = z.string().trim().min(1, 'give the subject a name').max(200);
const categoryWord = z.string().trim().min(1, 'give a category word such as "dog"').max(100);
const note = z.string().max(10_000);

const newSubjectSchema = z.strictObject({ name: subjectName, category: categoryWord, note: note.optional() }) satisfies z.ZodType<NewSubject>;

const subjectUpdateSchema = z.strictObject({
  id,
  name: subjectName.optional(),
  category: categoryWord.optional(),
  note: note.optional(),
  coverPhotoId: id.optional(),
}) satisfies z.ZodType<SubjectUpdate>;

const photoRemovalSchema = z.strictObject({ subjectId: id, photoIds: z.array(id).min(1).max(100) }) satisfies z.ZodType<PhotoRemoval>;

const photoWeightsSchema = z.strictObject({
  subjectId: id,
  weights: z
    .array(z.strictObject({ photoId: id, weight: z.number().finite().min(0, 'photo weights must be 0 or more').max(1000) }))
    .min(1)
    .max(100),
}) satisfies z.ZodType<PhotoWeightsUpdate>;

const embeddingsRequestSchema = z.strictObject({
  subjectId: id,
  model: z.string().min(1, 'choose a model folder').max(4096).refine((path) => !path.includes('\0'), 'the model path contains a NUL character'),
}) satisfies z.ZodType<EmbeddingsRequest>;

/** Largest photo the UI may upload in one call (drag-and-drop of a camera photo fits easily). */
export const MAX_UPLOAD_PHOTO_BYTES = 30 * 1024 * 1024;
/** Its size in base64: 4 characters per 3 bytes, padded. */
export const MAX_UPLOAD_BASE64_CHARS = 4 * Math.ceil(MAX_UPLOAD_PHOTO_BYTES / 3);

const photoUploadSchema = z.strictObject({
  subjectId: id,
  name: z.string().trim().min(1, 'give the photo its file name').max(255, 'the file name must be at most 255 characters'),
  dataBase64: z
    .string()
    // `abort`: an oversized string is refused before the pattern runs over it.
    .max(MAX_UPLOAD_BASE64_CHARS, { message: `the photo is larger than ${MAX_UPLOAD_PHOTO_BYTES / 1024 / 1024} MB`, abort: true })
    .regex(/^[A-Za-z0-9+/]*={0,2}$/, { message: 'the photo must be base64 (A–Z, a–z, 0–9, +, / and = padding), without a data: prefix', abort: true })
    .refine((data) => data.length % 4 === 0, 'the base64 text is cut short (its length is not a multiple of 4)'),
}) satisfies z.ZodType<PhotoUpload>;

const MAX_SEED = 2n ** 64n - 1n;
const seedText = z
  .string()
  .regex(/^(0|[1-9]\d{0,19})$/, { message: 'the seed must be a whole number from 0 to 2^64 − 1, written in decimal', abort: true })
  .refine((seed) => BigInt(seed) <= MAX_SEED, 'the seed must be at most 2^64 − 1');
const promptText = z.string().max(RECIPE_LIMITS.promptChars, `prompts must be at most ${RECIPE_LIMITS.promptChars} characters`);
const imageSide = (name: string) =>
  z.number().int(`${name} must be a whole number of pixels`).min(16, `${name} must be at least 16 pixels`).max(2048, `${name} must be at most 2048 pixels`);

const base64File = (what: string, maxBytes: number) =>
  z
    .string()
    .max(4 * Math.ceil(maxBytes / 3), { message: `the ${what} is larger than ${maxBytes / 1024 / 1024} MB`, abort: true })
    .regex(/^[A-Za-z0-9+/]*={0,2}$/, { message: `the ${what} must be base64 (A–Z, a–z, 0–9, +, / and = padding), without a data: prefix`, abort: true })
    .refine((data) => data.length % 4 === 0, 'the base64 text is cut short (its length is not a multiple of 4)');

const controlImageId = z.string().regex(/^[0-9a-f]{64}$/, 'a control image is named by its SHA-256 (64 lowercase hex digits)');
const threshold = (name: string) => z.number().finite().min(0, `the ${name} threshold must be 0 or more`).max(CONTROL_LIMITS.threshold, `the ${name} threshold must be at most ${CONTROL_LIMITS.threshold}`);

const controlSourceSchema = z.union([
  z.strictObject({ name: z.string().trim().min(1, 'give the file name').max(255, 'the file name must be at most 255 characters'), dataBase64: base64File('image', MAX_UPLOAD_PHOTO_BYTES) }),
  z.strictObject({ generationId: id }),
  z.strictObject({ storedId: controlImageId }),
]) satisfies z.ZodType<ControlSourceRequest>;

const controlMapRequestSchema = z.strictObject({
  sourceId: controlImageId,
  mode: z.enum(CONTROL_MODES, { error: `the control mode must be one of ${CONTROL_MODES.join(', ')}` }),
  width: imageSide('width'),
  height: imageSide('height'),
  low: threshold('low').optional(),
  high: threshold('high').optional(),
  l2: z.boolean().optional(),
}) satisfies z.ZodType<ControlMapRequest>;

const drawnControlMapSchema = z.strictObject({
  dataBase64: base64File('drawn map', MAX_UPLOAD_PHOTO_BYTES),
  width: imageSide('width'),
  height: imageSide('height'),
}) satisfies z.ZodType<DrawnControlMap>;

const controlUseSchema = z
  .strictObject({
    mapId: controlImageId,
    scale: z.number().finite().min(0, 'the control scale must be from 0 to 2').max(CONTROL_LIMITS.scale, 'the control scale must be from 0 to 2'),
    start: z.number().finite().min(0, 'control starts at 0 … 1 of the steps').max(1, 'control starts at 0 … 1 of the steps'),
    end: z.number().finite().min(0, 'control ends at 0 … 1 of the steps').max(1, 'control ends at 0 … 1 of the steps'),
    mode: z.enum(CONTROL_MODES),
    sourceId: controlImageId.optional(),
    low: threshold('low').optional(),
    high: threshold('high').optional(),
    drawn: z.boolean().optional(),
    controlnetId: id.optional(),
  })
  .refine((control) => control.start < control.end, { message: 'control must start before it ends', path: ['end'] }) satisfies z.ZodType<ControlUse>;

const generationRequestSchema = z.strictObject({
  subjectId: id,
  targetSubject: categoryWord.optional(),
  prompt: promptText.trim().min(1, 'describe the scene in the prompt'),
  negativePrompt: promptText.optional(),
  steps: settingsSchema.shape.defaultSteps.optional(),
  guidanceScale: settingsSchema.shape.defaultGuidance.optional(),
  scheduler: z.enum(SCHEDULER_NAMES).optional(),
  width: imageSide('width').optional(),
  height: imageSide('height').optional(),
  seed: seedText.optional(),
  modelId: id.optional(),
  batchCount: z.number().int('the batch count must be a whole number').min(1, 'the batch count must be at least 1').max(8, 'the batch count must be at most 8').optional(),
  mix: z
    .strictObject({ subjectId: id, ratio: z.number().finite().min(0, 'the mix ratio must be from 0 to 1').max(1, 'the mix ratio must be from 0 to 1') })
    .optional(),
  finetune: z
    .strictObject({ adapterId: id, scale: z.number().finite().min(0, 'the fine-tune strength must be from 0 to 1.5').max(MAX_FINETUNE_STRENGTH, 'the fine-tune strength must be from 0 to 1.5') })
    .optional(),
  styles: z
    .array(z.strictObject({ adapterId: id, scale: z.number().finite().min(-MAX_FINETUNE_STRENGTH, 'a style strength must be from −1.5 to 1.5').max(MAX_FINETUNE_STRENGTH, 'a style strength must be from −1.5 to 1.5') }))
    .max(RECIPE_LIMITS.styles, `at most ${RECIPE_LIMITS.styles} style adapters at once`)
    .refine((styles) => new Set(styles.map((s) => s.adapterId)).size === styles.length, 'each style adapter may be used once')
    .optional(),
  control: controlUseSchema.optional(),
}) satisfies z.ZodType<GenerationRequest>;

const finetuneOptionsRequestSchema = z.strictObject({ subjectId: id, modelId: id.optional() }) satisfies z.ZodType<FinetuneOptionsRequest>;

const finetuneSettingsSchema = z.strictObject({
  steps: z.number().int('steps must be a whole number').min(1, 'the fine-tune needs at least 1 step').max(MAX_FINETUNE_STEPS, `at most ${MAX_FINETUNE_STEPS} steps`),
  resolution: z.number().int('the resolution must be a whole number of pixels').min(8, 'the resolution must be at least 8 pixels').max(MAX_FINETUNE_RESOLUTION, `the resolution must be at most ${MAX_FINETUNE_RESOLUTION} pixels`),
  rank: z.number().int('the rank must be a whole number').min(1, 'the rank must be at least 1').max(MAX_FINETUNE_RANK, `the rank must be at most ${MAX_FINETUNE_RANK}`),
  lrLora: z.number().finite().min(0, 'learning rates must be 0 or more').max(1, 'a learning rate above 1 diverges'),
  lrEmbedding: z.number().finite().min(0, 'learning rates must be 0 or more').max(1, 'a learning rate above 1 diverges'),
}) satisfies z.ZodType<FinetuneSettings>;

const finetuneStartSchema = z.strictObject({
  subjectId: id,
  modelId: id.optional(),
  preset: z.enum(FINETUNE_PRESETS),
  settings: finetuneSettingsSchema.partial().optional(),
  seed: seedText.optional(),
}) satisfies z.ZodType<FinetuneStartRequest>;

const adapterQuerySchema = z.strictObject({ subjectId: id.optional(), kind: z.enum(['finetune', 'style']).optional() }) satisfies z.ZodType<AdapterQuery>;
const adapterRefSchema = z.strictObject({ id });

/** Largest LoRA file accepted for import (SD-1.5 LoRAs of rank 128 are ~150 MB; the usual ones a few MB). */
export const MAX_ADAPTER_IMPORT_BYTES = 200 * 1024 * 1024;

const generationRefSchema = z.strictObject({ id });

/** Largest PNG accepted for reading its recipe (bigger than any image BLIP Studio writes; fits one serve-mode request). */
export const MAX_RECIPE_PNG_BYTES = MAX_UPLOAD_PHOTO_BYTES;

const pngUploadSchema = z.strictObject({
  name: z.string().trim().min(1, 'give the file name').max(255, 'the file name must be at most 255 characters'),
  dataBase64: z
    .string()
    .max(4 * Math.ceil(MAX_RECIPE_PNG_BYTES / 3), { message: `the PNG is larger than ${MAX_RECIPE_PNG_BYTES / 1024 / 1024} MB, more than any image BLIP Studio writes`, abort: true })
    .regex(/^[A-Za-z0-9+/]*={0,2}$/, { message: 'the PNG must be base64 (A–Z, a–z, 0–9, +, / and = padding), without a data: prefix', abort: true })
    .refine((data) => data.length % 4 === 0, 'the base64 text is cut short (its length is not a multiple of 4)'),
}) satisfies z.ZodType<PngUpload>;

const reproduceRequestSchema = z.union([
  z.strictObject({ generationId: id }),
  z.strictObject({ png: pngUploadSchema }),
]) satisfies z.ZodType<ReproduceRequest>;

const adapterImportSchema = z.strictObject({
  name: z.string().trim().min(1, 'give the file name').max(255, 'the file name must be at most 255 characters'),
  dataBase64: z
    .string()
    .max(4 * Math.ceil(MAX_ADAPTER_IMPORT_BYTES / 3), { message: `the LoRA file is larger than ${MAX_ADAPTER_IMPORT_BYTES / 1024 / 1024} MB`, abort: true })
    .regex(/^[A-Za-z0-9+/]*={0,2}$/, { message: 'the file must be base64 (A–Z, a–z, 0–9, +, / and = padding), without a data: prefix', abort: true })
    .refine((data) => data.length % 4 === 0, 'the base64 text is cut short (its length is not a multiple of 4)'),
  modelId: id.optional(),
}) satisfies z.ZodType<AdapterImport>;

const modelFolderRequestSchema = z.strictObject({
  folder: z
    .string()
    .trim()
    .min(1, 'type the path of the model folder (the one with model_index.json)')
    .max(4096, 'the folder path must be at most 4096 characters')
    .refine((path) => !path.includes('\0'), 'the folder path contains a NUL character')
    // Relative paths would depend on main's working directory, which the user cannot see.
    .refine((path) => path.startsWith('/') || /^[A-Za-z]:[\\/]/.test(path) || path.startsWith('\\\\'), 'give the full path of the folder (starting with / or a drive letter)'),
}) satisfies z.ZodType<ModelFolderRequest>;

const modelDownloadRequestSchema = z.strictObject({
  repo: z.enum(HUB_REPOS, { error: `choose one of ${HUB_REPOS.join(', ')}` }),
}) satisfies z.ZodType<ModelDownloadRequest>;

const modelRemovalSchema = z.strictObject({ id, deleteFiles: z.boolean() }) satisfies z.ZodType<ModelRemoval>;

const none = z.tuple([]);

/** Argument-list schema per method. The mapped type makes a missing or mistyped entry a compile error. */
export const argumentSchemas: { [M in StudioMethod]: z.ZodType<StudioArgs<M>> } = {
  getAppInfo: none,
  getLibraryCounts: none,
  getDataFolder: none,
  listBackends: none,
  checkRuntime: z.tuple([runtimeCheckSchema]),
  getSettings: none,
  updateSettings: z.tuple([settingsSchema.partial()]),
  listSubjects: z.tuple([subjectQuerySchema]),
  getSubject: z.tuple([subjectRefSchema]),
  createSubject: z.tuple([newSubjectSchema]),
  updateSubject: z.tuple([subjectUpdateSchema]),
  removePhotos: z.tuple([photoRemovalSchema]),
  setPhotoWeights: z.tuple([photoWeightsSchema]),
  deleteSubject: z.tuple([subjectRefSchema]),
  undoDeleteSubject: z.tuple([subjectRefSchema]),
  computeEmbeddings: z.tuple([embeddingsRequestSchema]),
  uploadPhoto: z.tuple([photoUploadSchema]),
  startGeneration: z.tuple([generationRequestSchema]),
  listGenerations: z.tuple([generationQuerySchema]),
  getGeneration: z.tuple([generationRefSchema]),
  deleteGeneration: z.tuple([generationRefSchema]),
  undoDeleteGeneration: z.tuple([generationRefSchema]),
  readPngRecipe: z.tuple([pngUploadSchema]),
  reproduce: z.tuple([reproduceRequestSchema]),
  getReproduction: z.tuple([jobRefSchema]),
  listModels: none,
  addModelFolder: z.tuple([modelFolderRequestSchema]),
  pickModelFolder: none,
  downloadModel: z.tuple([modelDownloadRequestSchema]),
  listModelDownloads: none,
  removeModel: z.tuple([modelRemovalSchema]),
  listJobs: none,
  cancelJob: z.tuple([jobRefSchema]),
  getFinetuneOptions: z.tuple([finetuneOptionsRequestSchema]),
  startFinetune: z.tuple([finetuneStartSchema]),
  listAdapters: z.tuple([adapterQuerySchema]),
  deleteAdapter: z.tuple([adapterRefSchema]),
  undoDeleteAdapter: z.tuple([adapterRefSchema]),
  exportAdapter: z.tuple([adapterRefSchema]),
  importAdapter: z.tuple([adapterImportSchema]),
  addControlSource: z.tuple([controlSourceSchema]),
  makeControlMap: z.tuple([controlMapRequestSchema]),
  saveDrawnControlMap: z.tuple([drawnControlMapSchema]),
  listControlModels: none,
  removeControlModel: z.tuple([modelRemovalSchema]),
};
