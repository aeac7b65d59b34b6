/**
 * A generation's recipe: everything needed to run it again and get the same pixels on the same device
 * (model + hash, subject photo hashes, prompt, seed, steps, scheduler, guidance, size, control, device),
 * plus what a detail view shows (app version, duration, time). Recipes are embedded in PNGs, so a
 * recipe read back is untrusted input: `parseRecipe` bounds every string and number before anything
 * uses it. Versioned: a recipe carries the lowest version that can express it (1; 2 when it mixes two
 * subjects; 3 with device notes; 4 with a LoRA or a given subject embedding; 5 with library adapters; 6
 * with control details), so older apps still read what they can run; this one reads all of them and
 * refuses later ones.
 */
import { z } from 'zod';
import { SCHEDULER_NAMES } from '../api/contract';
import type { GenerateRequest, ImageInput } from '../engine/pipelines/generate';
import type { LoraWeights } from '../engine/weights/lora-weights';
import type { ModelFolder } from '../models/model-folder';
import { placementNotes } from '../engine/providers/kernel-routing';
import type { NetPlacement } from '../engine/providers/provider-types';

export const RECIPE_APP = 'BLIP Studio';
/** The newest version this app writes (for recipes that need it) and reads. */
export const RECIPE_VERSION = 6;
/** Version 2 added `mix` (two subjects with a ratio); everything else reads as in version 1. */
const MIX_RECIPE_VERSION = 2;
/** Version 3 added `deviceNotes` (what ran differently on the device, and why). */
const DEVICE_NOTES_RECIPE_VERSION = 3;
/** Version 4 added `lora` (a LoRA file by hash, at a strength) and a subject given as an embedding file (by hash). */
const ADAPTER_RECIPE_VERSION = 4;
/** Version 5 added `finetune` (the subject's fine-tune from the library, by content hash, at a strength) and `styles`. */
const LIBRARY_ADAPTERS_RECIPE_VERSION = 5;
/** Version 6 added to `control` how the map was made (mode, source, thresholds, drawn) and the part of the steps it steers. */
const CONTROL_DETAILS_RECIPE_VERSION = 6;
const RECIPE_VERSIONS = [1, 2, 3, 4, 5, 6] as const;

/** Bounds for untrusted recipes; generous for real use, small enough that nothing downstream chokes. */
export const RECIPE_LIMITS = Object.freeze({
  promptChars: 4000,
  nameChars: 200,
  categoryChars: 100,
  folderChars: 4096,
  photos: 10,
  styles: 8,
  steps: 1000,
  guidance: 100,
  size: 4096,
  scale: 100,
  promptReps: 1000,
  durationMs: 7 * 24 * 3600 * 1000,
  deviceNotes: 10,
  deviceNoteChars: 500,
});

const MAX_SEED = 2n ** 64n - 1n;
const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'expected a SHA-256 in lowercase hex');
// `abort`: a failed bound stops the checks after it (no refinement runs on a string it already refused).
const boundedText = (max: number) => z.string().max(max, { message: `at most ${max} characters`, abort: true });
const nonEmptyText = (max: number) => boundedText(max).refine((s) => s.trim().length > 0, 'must not be empty');
const finiteIn = (min: number, max: number) => z.number().finite().min(min).max(max);
const integerIn = (min: number, max: number) => z.number().int().min(min).max(max);

const seedSchema = z
  .string()
  .regex(/^(0|[1-9]\d{0,19})$/, { message: 'expected a decimal integer (as a string)', abort: true })
  .refine((s) => BigInt(s) <= MAX_SEED, 'must be below 2^64');

const subjectBase = { name: nonEmptyText(RECIPE_LIMITS.nameChars).optional(), category: nonEmptyText(RECIPE_LIMITS.categoryChars) };

const librarySubjectSchema = z.strictObject({
  ...subjectBase,
  photos: z
    .array(z.strictObject({ sha256: sha256Hex, weight: finiteIn(0, RECIPE_LIMITS.scale) }))
    .min(1)
    .max(RECIPE_LIMITS.photos)
    .refine((photos) => photos.some((p) => p.weight > 0), 'at least one photo needs a weight above 0'),
});

/**
 * One reference photo (zero-shot), a library subject's photos with their weights in the mean embedding,
 * or a subject embedding file given as it is (e.g. `finetune`'s subject_embedding.npy).
 */
const subjectSchema = z.union([
  z.strictObject({ ...subjectBase, reference: z.strictObject({ sha256: sha256Hex }) }),
  librarySubjectSchema,
  z.strictObject({ ...subjectBase, embedding: z.strictObject({ sha256: sha256Hex }) }),
]);

/** A second library subject mixed in (LAVIS' `ratio`): embedding = ratio·subject + (1 − ratio)·mix.subject. */
const mixSchema = z.strictObject({ subject: librarySubjectSchema, ratio: finiteIn(0, 1) });

const recipeObjectSchema = z.strictObject({
  app: z.literal(RECIPE_APP),
  recipeVersion: z.union(RECIPE_VERSIONS.map((v) => z.literal(v))),
  appVersion: z.string().regex(/^\d+\.\d+\.\d+[0-9A-Za-z.+-]{0,40}$/, 'expected a version like 1.2.3'),
  model: z.strictObject({
    name: nonEmptyText(RECIPE_LIMITS.nameChars),
    folder: boundedText(RECIPE_LIMITS.folderChars).optional(),
    hash: sha256Hex,
  }),
  subject: subjectSchema,
  mix: mixSchema.optional(),
  targetSubject: nonEmptyText(RECIPE_LIMITS.categoryChars),
  prompt: boundedText(RECIPE_LIMITS.promptChars),
  negativePrompt: boundedText(RECIPE_LIMITS.promptChars),
  seed: seedSchema,
  steps: integerIn(1, RECIPE_LIMITS.steps),
  guidanceScale: finiteIn(0, RECIPE_LIMITS.guidance),
  scheduler: z.enum(SCHEDULER_NAMES),
  width: integerIn(1, RECIPE_LIMITS.size),
  height: integerIn(1, RECIPE_LIMITS.size),
  /**
   * The ControlNet map (by the sha256 of the PNG the network got) and its scale; from version 6 also
   * the fractions of the steps it steers and how it was made (mode, source picture, Canny thresholds).
   */
  control: z
    .strictObject({
      sha256: sha256Hex,
      scale: finiteIn(0, RECIPE_LIMITS.scale),
      start: finiteIn(0, 1).optional(),
      end: finiteIn(0, 1).optional(),
      mode: z.enum(['canny', 'depth', 'image']).optional(),
      source: z.strictObject({ sha256: sha256Hex }).optional(),
      low: finiteIn(0, 1000).optional(),
      high: finiteIn(0, 1000).optional(),
      drawn: z.boolean().optional(),
      /** A ControlNet of its own (a control model, by its fingerprint) instead of the model's. */
      controlnet: z.strictObject({ name: nonEmptyText(RECIPE_LIMITS.nameChars), hash: sha256Hex }).optional(),
    })
    .optional(),
  /** A LoRA file (diffusers or kohya) and its strength, diffusers' cross_attention_kwargs={"scale": s}. */
  lora: z.strictObject({ sha256: sha256Hex, scale: finiteIn(-RECIPE_LIMITS.scale, RECIPE_LIMITS.scale) }).optional(),
  /**
   * The subject's fine-tune (a library adapter, by content hash) at a strength: its LoRA at that scale,
   * and the subject embedding moved by strength × (trained − initial embedding).
   */
  finetune: z.strictObject({ sha256: sha256Hex, scale: finiteIn(0, RECIPE_LIMITS.scale), name: nonEmptyText(RECIPE_LIMITS.nameChars) }).optional(),
  /** Imported style LoRAs from the library (by the sha256 of their file), each at a strength. */
  styles: z
    .array(z.strictObject({ sha256: sha256Hex, scale: finiteIn(-RECIPE_LIMITS.scale, RECIPE_LIMITS.scale), name: nonEmptyText(RECIPE_LIMITS.nameChars) }))
    .min(1)
    .max(RECIPE_LIMITS.styles)
    .optional(),
  promptStrength: finiteIn(0, RECIPE_LIMITS.scale),
  promptReps: integerIn(1, RECIPE_LIMITS.promptReps),
  device: z.string().regex(/^[a-z][a-z0-9-]{0,31}$/, 'expected an execution provider name such as cpu or cuda'),
  /** Where nets ran differently from the device's plain fused graphs, and why (e.g. WebGPU's attention lowering). */
  deviceNotes: z.array(nonEmptyText(RECIPE_LIMITS.deviceNoteChars)).min(1).max(RECIPE_LIMITS.deviceNotes).optional(),
  durationMs: finiteIn(0, RECIPE_LIMITS.durationMs),
  createdAt: z.iso.datetime(),
});

export const recipeSchema = recipeObjectSchema.superRefine((recipe, ctx) => {
  if (recipe.deviceNotes !== undefined && recipe.recipeVersion < DEVICE_NOTES_RECIPE_VERSION) {
    ctx.addIssue({ code: 'custom', path: ['deviceNotes'], message: `device notes need recipe version ${DEVICE_NOTES_RECIPE_VERSION} or later` });
  }
  if (recipe.lora !== undefined && recipe.recipeVersion < ADAPTER_RECIPE_VERSION) {
    ctx.addIssue({ code: 'custom', path: ['lora'], message: `a LoRA needs recipe version ${ADAPTER_RECIPE_VERSION} or later` });
  }
  for (const field of ['finetune', 'styles'] as const) {
    if (recipe[field] !== undefined && recipe.recipeVersion < LIBRARY_ADAPTERS_RECIPE_VERSION) {
      ctx.addIssue({ code: 'custom', path: [field], message: `library adapters need recipe version ${LIBRARY_ADAPTERS_RECIPE_VERSION} or later` });
    }
  }
  if (recipe.control !== undefined && controlHasDetails(recipe.control) && recipe.recipeVersion < CONTROL_DETAILS_RECIPE_VERSION) {
    ctx.addIssue({ code: 'custom', path: ['control'], message: `control details need recipe version ${CONTROL_DETAILS_RECIPE_VERSION} or later` });
  }
  if (recipe.control !== undefined && (recipe.control.start ?? 0) >= (recipe.control.end ?? 1)) {
    ctx.addIssue({ code: 'custom', path: ['control', 'end'], message: 'control must start before it ends' });
  }
  if (recipe.finetune !== undefined && !('photos' in recipe.subject)) {
    ctx.addIssue({ code: 'custom', path: ['finetune'], message: 'a fine-tune applies to a library subject (photos with weights)' });
  }
  if ('embedding' in recipe.subject && recipe.recipeVersion < ADAPTER_RECIPE_VERSION) {
    ctx.addIssue({ code: 'custom', path: ['subject', 'embedding'], message: `a given subject embedding needs recipe version ${ADAPTER_RECIPE_VERSION} or later` });
  }
  if (recipe.mix === undefined) return;
  if (recipe.recipeVersion < MIX_RECIPE_VERSION) ctx.addIssue({ code: 'custom', path: ['mix'], message: `mixing subjects needs recipe version ${MIX_RECIPE_VERSION} or later` });
  if (!('photos' in recipe.subject)) ctx.addIssue({ code: 'custom', path: ['mix'], message: 'only a library subject (photos with weights) can be mixed with another' });
});

export type Recipe = z.infer<typeof recipeObjectSchema>;
export type RecipeControl = NonNullable<Recipe['control']>;

function controlHasDetails(control: RecipeControl): boolean {
  return Object.keys(control).some((key) => key !== 'sha256' && key !== 'scale');
}
export type RecipeSubject = Recipe['subject'];

export class InvalidRecipeError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`The recipe is not valid:\n  - ${problems.join('\n  - ')}`);
    this.name = 'InvalidRecipeError';
  }
}

/** Validates an untrusted value as a recipe; throws InvalidRecipeError listing every problem. */
export function parseRecipe(value: unknown): Recipe {
  const result = recipeSchema.safeParse(value);
  if (result.success) return result.data;
  const problems = result.error.issues.slice(0, 20).map((issue) => `${issue.path.length > 0 ? issue.path.join('.') : '(recipe)'}: ${issue.message}`);
  throw new InvalidRecipeError(problems);
}

/** The files a recipe needs besides its numbers: looked up by hash, so a recipe never carries paths to trust. */
export interface RecipeInputs {
  model: ModelFolder;
  /** The subject: the reference photo, or an embedding (computed from the recipe's photos, or its embedding file). */
  subject: GenerateRequest['subject'];
  control?: ImageInput;
  /** The recipe's LoRA file, read (needed when the recipe applies one at a strength other than 0). */
  lora?: LoraWeights;
}

/** What `generate` needs to run a recipe again. */
export function recipeToGenerateRequest(recipe: Recipe, inputs: RecipeInputs): GenerateRequest {
  if (recipe.control && !inputs.control) throw new Error('this recipe used a control image: give it (its sha256 is in the recipe)');
  if (recipe.lora && recipe.lora.scale !== 0 && !inputs.lora) throw new Error('this recipe applied a LoRA: give it (its sha256 is in the recipe)');
  return {
    model: inputs.model,
    subject: inputs.subject,
    targetSubject: recipe.targetSubject,
    prompt: recipe.prompt,
    negativePrompt: recipe.negativePrompt,
    steps: recipe.steps,
    guidanceScale: recipe.guidanceScale,
    height: recipe.height,
    width: recipe.width,
    noise: { seed: BigInt(recipe.seed) },
    scheduler: recipe.scheduler,
    ...(recipe.control && inputs.control
      ? {
          control: inputs.control,
          controlScale: recipe.control.scale,
          ...(recipe.control.start !== undefined ? { controlStart: recipe.control.start } : {}),
          ...(recipe.control.end !== undefined ? { controlEnd: recipe.control.end } : {}),
        }
      : {}),
    promptStrength: recipe.promptStrength,
    promptReps: recipe.promptReps,
    ...(recipe.lora && inputs.lora ? { lora: { weights: inputs.lora, scale: recipe.lora.scale } } : {}),
  };
}

export type LibraryRecipeSubject = z.infer<typeof librarySubjectSchema>;
export type RecipeMix = z.infer<typeof mixSchema>;

/** The photo hashes a recipe's subject needs, in order (none for a given embedding). */
export function subjectPhotoHashes(subject: RecipeSubject): string[] {
  if ('embedding' in subject) return [];
  return 'reference' in subject ? [subject.reference.sha256] : subject.photos.map((p) => p.sha256);
}

/** Sampler names as AUTOMATIC1111 writes them, so other tools' readers show something familiar. */
const A1111_SAMPLERS: Readonly<Record<(typeof SCHEDULER_NAMES)[number], string>> = {
  pndm: 'PLMS',
  ddim: 'DDIM',
  euler: 'Euler',
  dpmpp2m: 'DPM++ 2M',
  'dpmpp2m-karras': 'DPM++ 2M Karras',
};

/** A1111 lists short model hashes: the first 10 hex digits. */
export const A1111_MODEL_HASH_DIGITS = 10;

/** A1111 separates fields with ", " and ": ", so values containing those are quoted as JSON strings (as A1111 does). */
function a1111Value(value: string): string {
  return /[,:"\n]/.test(value) ? JSON.stringify(value) : value;
}

/**
 * The AUTOMATIC1111 `parameters` text: prompt, `Negative prompt:` line (only when there is one), then
 * one line of `Key: value` fields. Other tools (A1111, ComfyUI, Civitai, image viewers) read this.
 */
export function a1111Parameters(recipe: Recipe): string {
  const fields: [string, string | number][] = [
    ['Steps', recipe.steps],
    ['Sampler', A1111_SAMPLERS[recipe.scheduler]],
    ['CFG scale', recipe.guidanceScale],
    ['Seed', recipe.seed],
    ['Size', `${recipe.width}x${recipe.height}`],
    ['Model hash', recipe.model.hash.slice(0, A1111_MODEL_HASH_DIGITS)],
    ['Model', a1111Value(recipe.model.name)],
    ['Subject', a1111Value(recipe.subject.category)],
    ...(recipe.mix ? ([['Mixed with', a1111Value(recipe.mix.subject.category)], ['Mix ratio', recipe.mix.ratio]] as [string, string | number][]) : []),
    ...(recipe.control ? ([['ControlNet scale', recipe.control.scale]] as [string, number][]) : []),
    ...(recipe.control?.mode ? ([['ControlNet module', recipe.control.drawn ? `${recipe.control.mode} (drawn)` : recipe.control.mode]] as [string, string][]) : []),
    ...(recipe.control?.mode === 'canny' && recipe.control.low !== undefined && recipe.control.high !== undefined
      ? ([['Canny thresholds', `${recipe.control.low}/${recipe.control.high}`]] as [string, string][])
      : []),
    ...(recipe.control && (recipe.control.start !== undefined || recipe.control.end !== undefined)
      ? ([['ControlNet guidance start', recipe.control.start ?? 0], ['ControlNet guidance end', recipe.control.end ?? 1]] as [string, number][])
      : []),
    ...('embedding' in recipe.subject ? ([['Subject embedding hash', recipe.subject.embedding.sha256.slice(0, A1111_MODEL_HASH_DIGITS)]] as [string, string][]) : []),
    ...(recipe.lora ? ([['LoRA hash', recipe.lora.sha256.slice(0, A1111_MODEL_HASH_DIGITS)], ['LoRA scale', recipe.lora.scale]] as [string, string | number][]) : []),
    ...(recipe.finetune ? ([['Fine-tune hash', recipe.finetune.sha256.slice(0, A1111_MODEL_HASH_DIGITS)], ['Fine-tune strength', recipe.finetune.scale]] as [string, string | number][]) : []),
    ...(recipe.styles ?? []).map((style) => [`Lora ${a1111Value(style.name)}`, style.scale] as [string, number]),
    ['Version', `${RECIPE_APP} ${recipe.appVersion}`],
  ];
  const lines = [recipe.prompt];
  if (recipe.negativePrompt.length > 0) lines.push(`Negative prompt: ${recipe.negativePrompt}`);
  lines.push(fields.map(([key, value]) => `${key}: ${value}`).join(', '));
  return lines.join('\n');
}

/** A new recipe from what was run: the fixed fields are filled in and the whole is checked as an untrusted one would be. */
export function createRecipe(fields: Omit<Recipe, 'app' | 'recipeVersion'>): Recipe {
  const needs = [
    1,
    fields.mix ? MIX_RECIPE_VERSION : 1,
    fields.deviceNotes !== undefined ? DEVICE_NOTES_RECIPE_VERSION : 1,
    fields.lora || 'embedding' in fields.subject ? ADAPTER_RECIPE_VERSION : 1,
    fields.finetune || fields.styles ? LIBRARY_ADAPTERS_RECIPE_VERSION : 1,
    fields.control && controlHasDetails(fields.control) ? CONTROL_DETAILS_RECIPE_VERSION : 1,
  ];
  const recipeVersion = Math.max(...needs);
  return parseRecipe({ app: RECIPE_APP, recipeVersion, ...fields });
}

/** The recipe field for what a run's placements say (nothing when every net ran plainly on the device). */
export function deviceNotesField(placements: readonly NetPlacement[]): Pick<Recipe, 'deviceNotes'> {
  const notes = placementNotes(placements);
  return notes.length > 0 ? { deviceNotes: notes } : {};
}

/** A recipe run again: its fields, with the new run's device, device notes, duration and date. */
export function rerunRecipe(recipe: Recipe, run: { appVersion: string; device: string; placements: readonly NetPlacement[]; durationMs: number }): Recipe {
  const { app: _app, recipeVersion: _version, deviceNotes: _notes, ...fields } = recipe;
  return createRecipe({ ...fields, appVersion: run.appVersion, device: run.device, ...deviceNotesField(run.placements), durationMs: run.durationMs, createdAt: new Date().toISOString() });
}
