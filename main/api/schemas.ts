/**
 * Run-time validation of everything that arrives from the renderer (or a serve-mode client): one zod
 * schema per method's argument list. The compile-time checks below tie each schema to the contract, so
 * the contract and the validation cannot drift apart.
 */
import { z } from 'zod';
import {
  DEVICE_CHOICES,
  SCHEDULER_NAMES,
  THEME_PREFERENCES,
  type EmbeddingsRequest,
  type GenerationQuery,
  type JobRef,
  type NewSubject,
  type PhotoRemoval,
  type PhotoWeightsUpdate,
  type SubjectRef,
  type SubjectUpdate,
  type RuntimeCheckRequest,
  type Settings,
  type StudioArgs,
  type StudioMethod,
  type SubjectQuery,
} from './contract';

export const settingsSchema = z.strictObject({
  theme: z.enum(THEME_PREFERENCES),
  device: z.enum(DEVICE_CHOICES),
  threads: z.number().int().min(0, 'threads must be 0 (automatic) or more').max(256),
  defaultSteps: z.number().int().min(1, 'steps must be at least 1').max(1000, 'steps must be at most 1000'),
  defaultGuidance: z.number().finite().min(1, 'guidance must be at least 1').max(30, 'guidance must be at most 30'),
  defaultScheduler: z.enum(SCHEDULER_NAMES),
}) satisfies z.ZodType<Settings>;

const subjectQuerySchema = z.strictObject({
  search: z.string().max(200).optional(),
  sort: z.enum(['recent', 'name']).optional(),
}) satisfies z.ZodType<SubjectQuery>;

const generationQuerySchema = z.strictObject({
  subjectId: z.number().int().positive().optional(),
  limit: z.number().int().min(1).max(10_000).optional(),
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
  listGenerations: z.tuple([generationQuerySchema]),
  listModels: none,
  listJobs: none,
  cancelJob: z.tuple([jobRefSchema]),
};
