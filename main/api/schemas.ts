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
  type GenerationQuery,
  type JobRef,
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
  listGenerations: z.tuple([generationQuerySchema]),
  listModels: none,
  listJobs: none,
  cancelJob: z.tuple([jobRefSchema]),
};
