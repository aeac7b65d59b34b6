/**
 * The engine's check of a model folder, shared by `inspect`, `models add` and the app: read the
 * folder's configs, open every weighted component (converting a PyTorch `.bin` once into the cache),
 * and compare the tensors with those the configs imply. Every problem of every component is collected,
 * so a user fixes a folder in one go instead of one error at a time.
 */
import { join, relative } from 'node:path';
import { openComponentWeights, type WeightsProgress } from '../engine/weights/component-weights';
import { WeightsFileError } from '../engine/weights/weights-error';
import { checkParameters, isCleanReport, type ParameterReport } from '../engine/nets/implied-parameters';
import { impliedComponentParameters, queryTokenCountOf } from '../engine/nets/component-checks';
import { parseBlipDiffusionIndex } from '../engine/nets/configs';
import { elementCount } from '../engine/io/npy';
import { loadModelFolder, requireComponent } from './model-folder';

export interface ComponentReport {
  name: string;
  className: string;
  weights: { source: string; files: string[]; tensors: number; parameters: number } | null;
  /** Null when no network of this release reads the component (the check arrives with its net). */
  check: ParameterReport | null;
  /** Why the component's weights could not be read at all (no weights file, a damaged file…). */
  problem?: string;
}

export interface InspectReport {
  model: string;
  pipeline: string;
  components: ComponentReport[];
  ok: boolean;
}

export interface InspectOptions {
  /** Converting a `.bin` component (hashing and writing), in bytes; not called for safetensors or a cached conversion. */
  onProgress?: (component: string, progress: WeightsProgress) => void;
  signal?: AbortSignal;
}

const WEIGHTED_COMPONENTS = ['qformer', 'text_encoder', 'unet', 'vae', 'controlnet'];

/** Throws ModelFolderError when the folder's structure or configs are unusable; weights problems land in the report. */
export async function inspectModel(dir: string, cacheDir: string, options: InspectOptions = {}): Promise<InspectReport> {
  const model = loadModelFolder(dir);
  const pipeline = {
    ctxBeginPos: parseBlipDiffusionIndex(model.index).ctxBeginPos,
    queryTokenCount: queryTokenCountOf(requireComponent(model, 'qformer').config),
  };
  const components: ComponentReport[] = [];
  for (const component of model.components.values()) {
    if (!WEIGHTED_COMPONENTS.includes(component.name)) {
      components.push({ name: component.name, className: component.className, weights: null, check: null });
      continue;
    }
    let weights;
    try {
      weights = await openComponentWeights(component.dir, {
        cacheDir: join(cacheDir, 'weights'),
        ...(options.signal ? { signal: options.signal } : {}),
        ...(options.onProgress ? { onProgress: (p: WeightsProgress) => options.onProgress?.(component.name, p) } : {}),
      });
    } catch (error) {
      if (!(error instanceof WeightsFileError)) throw error;
      // The message names the file relative to the model folder ("qformer/pytorch_model.bin").
      const where = relative(model.dir, error.file);
      const problem = where === '' ? error.problem : `${where}: ${error.problem}`;
      components.push({ name: component.name, className: component.className, weights: null, check: null, problem });
      continue;
    }
    const listing = [...weights.tensors.values()];
    const implied = impliedComponentParameters(component.name, component.config, pipeline);
    components.push({
      name: component.name,
      className: component.className,
      weights: {
        source: weights.source,
        files: weights.files,
        tensors: listing.length,
        parameters: listing.filter((t) => t.dtype !== 'I64').reduce((sum, t) => sum + elementCount(t.shape), 0),
      },
      check: implied ? checkParameters(implied, listing) : null,
    });
  }
  const ok = components.every((c) => c.problem === undefined && (c.check === null || isCleanReport(c.check)));
  return { model: model.dir, pipeline: model.pipelineClass, components, ok };
}

/** Every problem of a failed report, one line each: "unet: 2 missing: a, b". */
export function reportProblems(report: InspectReport): string[] {
  const lines: string[] = [];
  for (const c of report.components) {
    if (c.problem !== undefined) lines.push(`${c.name}: ${c.problem}`);
    if (!c.check) continue;
    const { missing, unused, misshaped } = c.check;
    if (missing.length > 0) lines.push(`${c.name}: ${missing.length} missing: ${missing.join(', ')}`);
    if (unused.length > 0) lines.push(`${c.name}: ${unused.length} unused: ${unused.join(', ')}`);
    if (misshaped.length > 0) lines.push(`${c.name}: ${misshaped.length} mis-shaped: ${misshaped.map((m) => `${m.name} (${m.problem})`).join(', ')}`);
  }
  return lines;
}
