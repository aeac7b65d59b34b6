/**
 * Control models: a ControlNet on its own (diffusers `ControlNetModel`, e.g. lllyasviel/sd-controlnet-depth,
 * used beside any BLIP-Diffusion model whose UNet it fits) and a depth estimator (transformers
 * `DepthAnythingForDepthEstimation`, e.g. depth-anything/Depth-Anything-V2-Small-hf). Each is one
 * folder with a config.json and weights; this module recognises one, checks its weights against what
 * the config implies (the same strict readers and implied-parameter check as the pipelines') and
 * fingerprints it, collecting every problem for the user.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join, relative, resolve } from 'node:path';
import type { ControlConditioning, ControlModelKind, ControlModelSummary } from '../api/contract';
import { openComponentWeights } from '../engine/weights/component-weights';
import { WeightsFileError } from '../engine/weights/weights-error';
import { weightsFileSha256 } from '../engine/weights/convert-bin';
import { checkParameters, isCleanReport, impliedParameters } from '../engine/nets/implied-parameters';
import { COMPONENT_BUILDS } from '../engine/nets/component-checks';
import { buildDepthAnythingGraph } from '../engine/nets/depth-anything';
import { DepthModelError, loadDepthModel } from '../engine/pipelines/depth-map';
import type { WeightCatalog } from '../engine/nets/weight-catalog';
import type { ModelComponent } from './model-folder';

export const CONTROLNET_CLASS = 'ControlNetModel';
export const DEPTH_ANYTHING_MODEL_TYPE = 'depth_anything';
/** Any patch-grid size reads the same tensors; 2 patches a side keeps the check cheap. */
const DEPTH_CHECK_PATCHES = 2;

export class ControlModelError extends Error {
  constructor(
    readonly folder: string,
    readonly problems: readonly string[],
  ) {
    super(`${folder} is not a usable ControlNet or depth estimator folder:\n${problems.map((p) => `- ${p}`).join('\n')}`);
    this.name = 'ControlModelError';
  }
}

export interface ControlModelFolder {
  dir: string;
  kind: ControlModelKind;
  config: Record<string, unknown>;
}

function readConfig(dir: string): Record<string, unknown> | null {
  const path = join(dir, 'config.json');
  if (!existsSync(path)) return null;
  try {
    const value: unknown = JSON.parse(readFileSync(path, 'utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** The folder as a control model, or null when it is not one (no config.json naming a ControlNet or Depth Anything). */
export function detectControlModelFolder(folder: string): ControlModelFolder | null {
  const dir = resolve(folder);
  if (existsSync(join(dir, 'model_index.json'))) return null;
  const config = readConfig(dir);
  if (config === null) return null;
  if (config['_class_name'] === CONTROLNET_CLASS) return { dir, kind: 'controlnet', config };
  if (config['model_type'] === DEPTH_ANYTHING_MODEL_TYPE) return { dir, kind: 'depth-estimator', config };
  return null;
}

/** What a ControlNet was trained on, from its name (the config does not say): depth, canny (edges) or other. */
export function conditioningOf(kind: ControlModelKind, name: string): ControlConditioning {
  if (kind === 'depth-estimator') return 'depth';
  if (/depth/i.test(name)) return 'depth';
  if (/canny|edge/i.test(name)) return 'canny';
  return 'other';
}

/** The ControlNet folder as the generate pipeline's `controlnet` component. */
export function controlNetComponent(folder: ControlModelFolder): ModelComponent {
  return { name: 'controlnet', library: 'diffusers', className: CONTROLNET_CLASS, dir: folder.dir, config: folder.config };
}

/** Checks the weights against the config; throws ControlModelError listing every problem. */
export async function checkControlModelFolder(folder: ControlModelFolder, cacheDir: string, signal?: AbortSignal): Promise<void> {
  const problems: string[] = [];
  let build: (catalog: WeightCatalog) => unknown;
  if (folder.kind === 'depth-estimator') {
    let depth;
    try {
      depth = loadDepthModel(folder.dir);
    } catch (error) {
      if (error instanceof DepthModelError) throw new ControlModelError(folder.dir, error.problems);
      throw error;
    }
    const side = DEPTH_CHECK_PATCHES * depth.config.backbone.patchSize;
    build = (catalog) => buildDepthAnythingGraph(depth.rawConfig, catalog, { height: side, width: side });
  } else {
    const builds = COMPONENT_BUILDS['controlnet']!;
    build = (catalog) => builds.forEach((b) => b(folder.config, catalog, { ctxBeginPos: 0, queryTokenCount: 0 }));
  }
  let implied;
  try {
    implied = impliedParameters(build);
  } catch (error) {
    throw new ControlModelError(folder.dir, [`config.json: ${error instanceof Error ? error.message : String(error)}`]);
  }
  let weights;
  try {
    weights = await openComponentWeights(folder.dir, { cacheDir: join(cacheDir, 'weights'), ...(signal ? { signal } : {}) });
  } catch (error) {
    if (!(error instanceof WeightsFileError)) throw error;
    const where = relative(folder.dir, error.file);
    throw new ControlModelError(folder.dir, [where === '' ? error.problem : `${where}: ${error.problem}`]);
  }
  const report = checkParameters(implied, [...weights.tensors.values()]);
  if (!isCleanReport(report)) {
    if (report.missing.length > 0) problems.push(`${report.missing.length} missing: ${report.missing.slice(0, 10).join(', ')}`);
    if (report.unused.length > 0) problems.push(`${report.unused.length} unused: ${report.unused.slice(0, 10).join(', ')}`);
    if (report.misshaped.length > 0) problems.push(`${report.misshaped.length} mis-shaped: ${report.misshaped.slice(0, 10).map((m) => `${m.name} (${m.problem})`).join(', ')}`);
    throw new ControlModelError(folder.dir, problems);
  }
}

/** SHA-256 over the folder's files (configs by content, weights by their cached content hash): recipes name a ControlNet by it. */
export async function controlModelFingerprint(folder: ControlModelFolder, weightsCacheDir: string, signal?: AbortSignal): Promise<string> {
  const hash = createHash('sha256').update(`blip-studio control model fingerprint v1\n${folder.kind}\n`);
  const files = readdirSync(folder.dir, { withFileTypes: true })
    .filter((entry) => entry.isFile() && !entry.name.startsWith('.') && /\.(json|safetensors|bin)$/i.test(entry.name))
    .map((entry) => entry.name)
    .sort();
  for (const name of files) {
    signal?.throwIfAborted();
    const path = join(folder.dir, name);
    const digest = /\.(safetensors|bin)$/i.test(name) || statSync(path).size > 4 * 1024 * 1024 ? await weightsFileSha256(path, { cacheDir: weightsCacheDir, ...(signal ? { signal } : {}) }) : createHash('sha256').update(readFileSync(path)).digest('hex');
    hash.update(`${name}\t${digest}\n`);
  }
  return hash.digest('hex');
}

export const controlModelName = (dir: string): string => basename(resolve(dir));

/** Checks, fingerprints and registers a control model folder (the CLI's `models add` and the app share it). */
export async function installControlModelFolder(
  store: { upsert(model: { name: string; kind: ControlModelKind; conditioning: ControlConditioning; folder: string; hash: string }): ControlModelSummary },
  folder: ControlModelFolder,
  options: { dataDir: string; name?: string; signal?: AbortSignal },
): Promise<ControlModelSummary> {
  const cacheDir = join(options.dataDir, 'cache');
  await checkControlModelFolder(folder, cacheDir, options.signal);
  const hash = await controlModelFingerprint(folder, join(cacheDir, 'weights'), options.signal);
  const name = options.name ?? controlModelName(folder.dir);
  return store.upsert({ name, kind: folder.kind, conditioning: conditioningOf(folder.kind, name), folder: folder.dir, hash });
}
