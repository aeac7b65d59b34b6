/**
 * Reading a recipe for display and reuse: labelled rows for the recipe panels, the Generate form's
 * values, an export file name. Pure functions; the recipe is untrusted JSON (from a PNG), so every field
 * is checked before use.
 */
import { SCHEDULER_NAMES, type SchedulerName } from '../contract';
import { SCHEDULER_LABELS } from './settings.svelte';

/** One line of the recipe panel. */
export interface RecipeRow {
  readonly key: string;
  readonly label: string;
  readonly value: string;
  /** Shown in monospace (hashes, seeds). */
  readonly mono?: boolean;
  /** Several entries, one a line (`value` joins them with line breaks). */
  readonly lines?: boolean;
}

function text(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return null;
}

function record(value: unknown): Record<string, unknown> | null {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
}

function schedulerLabel(value: unknown): string | null {
  if (typeof value !== 'string') return null;
  return Object.hasOwn(SCHEDULER_LABELS, value) ? SCHEDULER_LABELS[value as keyof typeof SCHEDULER_LABELS] : value;
}

function formatMs(value: unknown): string | null {
  if (typeof value !== 'number' || !Number.isFinite(value)) return null;
  return value < 1000 ? `${Math.round(value)} ms` : `${(value / 1000).toFixed(1)} s`;
}

/** The recipe as labelled rows; fields the recipe lacks are left out. The recipe is untrusted JSON. */
export function recipeRows(recipe: Record<string, unknown>, subjectName: string | null): RecipeRow[] {
  const model = record(recipe['model']);
  const subject = record(recipe['subject']);
  const photos = subject?.['photos'];
  const subjectLabel = [text(subject?.['name']) ?? subjectName, text(recipe['targetSubject']) ?? text(subject?.['category'])]
    .filter((part): part is string => part !== null && part !== '')
    .join(' · ');
  const rows: (RecipeRow | null)[] = [
    row('prompt', 'Prompt', text(recipe['prompt'])),
    row('negative', 'Negative prompt', text(recipe['negativePrompt']) || '—'),
    row('seed', 'Seed', text(recipe['seed']), true),
    row('steps', 'Steps', text(recipe['steps'])),
    row('scheduler', 'Scheduler', schedulerLabel(recipe['scheduler'])),
    row('guidance', 'Guidance', text(recipe['guidanceScale'])),
    row('size', 'Size', `${text(recipe['width']) ?? '?'} × ${text(recipe['height']) ?? '?'}`),
    row('model', 'Model', text(model?.['name'])),
    row('hash', 'Model hash', text(model?.['hash']), true),
    row(
      'subject',
      'Subject',
      subjectLabel === '' ? null : Array.isArray(photos) ? `${subjectLabel} (${photos.length} photos)` : subjectLabel,
    ),
    row('photos', 'Photos', photoList(subject), true),
    row('mix', 'Mixed with', mixLabel(record(recipe['mix']))),
    row('mixPhotos', 'Its photos', photoList(record(record(recipe['mix'])?.['subject'])), true),
    row('finetune', 'Fine-tune', adapterLabel(record(recipe['finetune']))),
    row('control', 'Control', controlLabel(record(recipe['control']))),
    row('controlMap', 'Control map', shortHash(record(recipe['control'])?.['sha256']), true),
    lines('styles', 'Style LoRAs', Array.isArray(recipe['styles']) ? recipe['styles'].map((style) => adapterLabel(record(style)) ?? '?') : null),
    row('device', 'Device', text(recipe['device'])),
    lines('deviceNotes', 'Device notes', deviceNotes(recipe['deviceNotes'])),
    row('app', 'App version', text(recipe['appVersion'])),
    row('duration', 'Duration', formatMs(recipe['durationMs'])),
  ];
  return rows.filter((entry): entry is RecipeRow => entry !== null);
}

/** "3f2a91c0… ×1, 9bc1d2e3… ×0.5": each photo's hash (short) and its weight; or the reference photo's hash. */
function photoList(subject: Record<string, unknown> | null): string | null {
  const reference = text(record(subject?.['reference'])?.['sha256']);
  if (reference !== null) return `${reference.slice(0, 12)}… (reference photo)`;
  const photos = subject?.['photos'];
  if (!Array.isArray(photos) || photos.length === 0) return null;
  return photos
    .map((photo: unknown) => {
      const entry = record(photo);
      return `${(text(entry?.['sha256']) ?? '?').slice(0, 12)}… ×${text(entry?.['weight']) ?? '?'}`;
    })
    .join(', ');
}

/** "Standard · 80 steps at 256², strength 0.8": an adapter of the recipe by name and strength. */
function adapterLabel(adapter: Record<string, unknown> | null): string | null {
  if (adapter === null) return null;
  const scale = adapter['scale'];
  return `${text(adapter['name']) ?? 'unnamed'}, strength ${typeof scale === 'number' && Number.isFinite(scale) ? scale : '?'}`;
}

const CONTROL_MODE_LABELS: Readonly<Record<string, string>> = { canny: 'Edges (Canny)', depth: 'Depth', image: 'Map as is' };

/** "Edges (Canny 30/70), drawn over · scale 1 · steps 0–50 %": how the map was made and how it steered. */
function controlLabel(control: Record<string, unknown> | null): string | null {
  if (control === null) return null;
  const mode = text(control['mode']);
  const low = text(control['low']);
  const high = text(control['high']);
  const made = mode === null ? 'A control image' : `${CONTROL_MODE_LABELS[mode] ?? mode}${mode === 'canny' && low !== null && high !== null ? ` ${low}/${high}` : ''}`;
  const start = numberField(control['start'], 0);
  const end = numberField(control['end'], 1);
  const window = start !== 0 || end !== 1 ? ` · steps ${Math.round(start * 100)}–${Math.round(end * 100)} %` : '';
  return `${made}${control['drawn'] === true ? ', drawn over' : ''} · scale ${text(control['scale']) ?? '?'}${window}`;
}

function shortHash(value: unknown): string | null {
  const hash = text(value);
  return hash === null ? null : `${hash.slice(0, 12)}…`;
}

/** "Mittens · cat, 30 %": the subject mixed in and its share (1 − ratio). */
function mixLabel(mix: Record<string, unknown> | null): string | null {
  if (mix === null) return null;
  const subject = record(mix['subject']);
  const ratio = mix['ratio'];
  const name = [text(subject?.['name']), text(subject?.['category'])].filter((part) => part !== null).join(' · ');
  const share = typeof ratio === 'number' && Number.isFinite(ratio) ? `, ${Math.round((1 - ratio) * 100)} %` : '';
  return `${name || 'another subject'}${share}`;
}

/** What ran differently on the device, one note a line; null when the recipe has no (string) notes. */
function deviceNotes(value: unknown): string[] | null {
  if (!Array.isArray(value)) return null;
  const notes = value.filter((note): note is string => typeof note === 'string' && note.trim() !== '').map((note) => note.replace(/\s+/g, ' ').trim());
  return notes.length > 0 ? notes : null;
}

function row(key: string, label: string, value: string | null, mono = false): RecipeRow | null {
  return value === null ? null : { key, label, value, mono };
}

function lines(key: string, label: string, values: readonly string[] | null): RecipeRow | null {
  return values === null ? null : { key, label, value: values.join('\n'), lines: true };
}

/** A recipe's control, as the control panel restores it. */
export interface RecipeControlValues {
  mapId: string;
  sourceId: string | null;
  mode: 'canny' | 'depth' | 'image';
  low: number | null;
  high: number | null;
  drawn: boolean;
  scale: number;
  start: number;
  end: number;
}

const SHA256 = /^[0-9a-f]{64}$/;

function controlValues(value: unknown): RecipeControlValues | null {
  const control = record(value);
  const mapId = text(control?.['sha256']);
  if (control === null || mapId === null || !SHA256.test(mapId)) return null;
  const sourceId = text(record(control['source'])?.['sha256']);
  const mode = text(control['mode']);
  const low = numberField(control['low'], NaN);
  const high = numberField(control['high'], NaN);
  return {
    mapId,
    sourceId: sourceId !== null && SHA256.test(sourceId) ? sourceId : null,
    mode: mode === 'canny' || mode === 'depth' ? mode : 'image',
    low: Number.isFinite(low) ? low : null,
    high: Number.isFinite(high) ? high : null,
    drawn: control['drawn'] === true,
    scale: numberField(control['scale'], 1),
    start: numberField(control['start'], 0),
    end: numberField(control['end'], 1),
  };
}

/** What "Reuse settings" puts into the Generate form. */
export interface RecipeFormValues {
  /** The library subject, or null when the recipe's subject is no longer there. */
  subjectId: number | null;
  /** The word the prompt named the subject by. */
  targetSubject: string | null;
  /** The subject mixed in and its ratio, when the recipe mixes one that is still in the library. */
  mix: { subjectId: number; ratio: number } | null;
  /** The fine-tune's strength when the recipe used one (Generate picks the subject's fine-tune), else null. */
  finetuneStrength: number | null;
  /** The recipe's control map and settings, when it used one. */
  control: RecipeControlValues | null;
  prompt: string;
  negativePrompt: string;
  seed: string;
  steps: number;
  guidance: number;
  scheduler: SchedulerName;
  width: number;
  height: number;
}

function numberField(value: unknown, fallback: number): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : fallback;
}

/** The Generate form's values from an (untrusted) recipe; `subjectId` only if that subject still exists. */
export function recipeFormValues(
  recipe: Record<string, unknown>,
  subjects: { subjectId: number | null; mixSubjectId: number | null },
  knownSubjects: readonly { id: number }[],
): RecipeFormValues {
  const scheduler = recipe['scheduler'];
  const known = (id: number | null): number | null => (id !== null && knownSubjects.some((subject) => subject.id === id) ? id : null);
  const mix = recipe['mix'];
  const ratio = typeof mix === 'object' && mix !== null && 'ratio' in mix ? numberField(mix.ratio, NaN) : NaN;
  const mixSubjectId = known(subjects.mixSubjectId);
  return {
    subjectId: known(subjects.subjectId),
    targetSubject: text(recipe['targetSubject']) ?? null,
    mix: mixSubjectId !== null && ratio >= 0 && ratio <= 1 ? { subjectId: mixSubjectId, ratio } : null,
    finetuneStrength: finetuneStrengthOf(recipe['finetune']),
    control: controlValues(recipe['control']),
    prompt: text(recipe['prompt']) ?? '',
    negativePrompt: text(recipe['negativePrompt']) ?? '',
    seed: text(recipe['seed']) ?? '',
    steps: numberField(recipe['steps'], 50),
    guidance: numberField(recipe['guidanceScale'], 7.5),
    scheduler: (SCHEDULER_NAMES as readonly string[]).includes(scheduler as string) ? (scheduler as SchedulerName) : 'pndm',
    width: numberField(recipe['width'], 512),
    height: numberField(recipe['height'], 512),
  };
}

function finetuneStrengthOf(finetune: unknown): number | null {
  const scale = typeof finetune === 'object' && finetune !== null && 'scale' in finetune ? numberField(finetune.scale, NaN) : NaN;
  return scale >= 0 && scale <= 1.5 ? scale : null;
}

/** A file name that says what the image is: blip-<subject>-<seed>.png. */
export function exportFileName(subjectName: string | null, seed: string): string {
  const slug = (subjectName ?? 'image')
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40);
  return `blip-${slug || 'image'}-${seed}.png`;
}
