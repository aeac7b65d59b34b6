/**
 * Adds a model folder to the library, the one way the CLI (`models add`, `models download`) and the app
 * (adopt a folder, a finished download) do it: the engine's check of every component (`.bin` weights
 * converted once into the cache), the model's fingerprint, then its row in `models`. A folder that fails
 * the check is never registered, and the error lists every problem.
 */
import { basename, join } from 'node:path';
import type { Database } from 'better-sqlite3';
import type { WeightsProgress } from '../engine/weights/component-weights';
import { QformerVocabMissingError } from '../engine/pipelines/qformer-vocab';
import { modelFingerprint } from '../library/model-fingerprint';
import { recordModelFingerprint } from '../library/subject-embeddings';
import { inspectModel, reportProblems } from './model-check';
import { loadModelFolder, ModelFolderError, type ModelFolder } from './model-folder';

/** The folder cannot be used; `problems` holds one line per problem, written for the user. */
export class ModelCheckError extends Error {
  constructor(
    readonly folder: string,
    readonly problems: readonly string[],
  ) {
    super(`${folder} is not a usable BLIP-Diffusion model folder:\n${problems.map((p) => `- ${p}`).join('\n')}`);
    this.name = 'ModelCheckError';
  }
}

export type InstallStage = 'checking' | 'converting' | 'fingerprinting';

export interface InstallProgress {
  stage: InstallStage;
  /** The component being converted, for `converting`. */
  component?: string;
  conversion?: WeightsProgress;
}

export interface InstallOptions {
  /** The data folder: its `cache/` holds converted `.bin` weights and file-hash records. */
  dataDir: string;
  /** The library name; the folder's name when left out. */
  name?: string;
  signal?: AbortSignal;
  onProgress?: (progress: InstallProgress) => void;
}

export interface InstalledModel {
  folder: ModelFolder;
  hash: string;
}

/** Checks, fingerprints and registers `dir`; throws ModelCheckError (every problem) when it cannot be used. */
export async function installModelFolder(db: Database, dir: string, options: InstallOptions): Promise<InstalledModel> {
  const cacheDir = join(options.dataDir, 'cache');
  options.onProgress?.({ stage: 'checking' });
  let report;
  try {
    report = await inspectModel(dir, cacheDir, {
      ...(options.signal ? { signal: options.signal } : {}),
      onProgress: (component, conversion) => options.onProgress?.({ stage: 'converting', component, conversion }),
    });
  } catch (error) {
    if (error instanceof ModelFolderError) throw new ModelCheckError(error.dir, error.problems);
    throw error;
  }
  if (!report.ok) throw new ModelCheckError(report.model, reportProblems(report));

  options.signal?.throwIfAborted();
  options.onProgress?.({ stage: 'fingerprinting' });
  const folder = loadModelFolder(dir);
  let hash: string;
  try {
    hash = await modelFingerprint(folder, { weightsCacheDir: join(cacheDir, 'weights'), ...(options.signal ? { signal: options.signal } : {}) });
  } catch (error) {
    // The Q-Former vocabulary is part of the model's identity; without it nothing can run.
    if (error instanceof QformerVocabMissingError) throw new ModelCheckError(folder.dir, [error.message]);
    throw error;
  }
  recordModelFingerprint(db, folder, hash, options.name ?? basename(folder.dir));
  return { folder, hash };
}
