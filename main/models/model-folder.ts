/**
 * A diffusers model folder as published: `model_index.json` names the pipeline and its components,
 * each component folder carries its config. This module reads and checks that structure (no weights);
 * every problem is reported with the file it concerns, all at once, so a user can fix a folder in one go.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ModelFolderError, type ModelComponent, type ModelFolder } from '../engine/pipelines/model-folder';

// The folder's in-memory form is the engine's (its pipelines take it); this module reads it from disk.
export { ModelFolderError, requireComponent, type ModelComponent, type ModelFolder } from '../engine/pipelines/model-folder';

/** The pipelines BLIP Studio runs, with the components each needs. */
export const PIPELINE_COMPONENTS: Readonly<Record<string, readonly string[]>> = {
  BlipDiffusionPipeline: ['text_encoder', 'vae', 'unet', 'tokenizer', 'scheduler', 'qformer', 'image_processor'],
  BlipDiffusionControlNetPipeline: ['text_encoder', 'vae', 'unet', 'tokenizer', 'scheduler', 'qformer', 'controlnet', 'image_processor'],
};

/** Which file holds a component's configuration (diffusers/transformers naming). */
const CONFIG_FILE: Readonly<Record<string, string>> = {
  scheduler: 'scheduler_config.json',
  image_processor: 'preprocessor_config.json',
  tokenizer: 'tokenizer_config.json',
};

function readJson(path: string, problems: string[]): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(readFileSync(path, 'utf8'));
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      problems.push(`${path}: expected a JSON object`);
      return null;
    }
    return value as Record<string, unknown>;
  } catch (error) {
    problems.push(`${path}: ${error instanceof SyntaxError ? `invalid JSON (${error.message})` : 'cannot be read'}`);
    return null;
  }
}

/** Reads model_index.json and every component's config; throws ModelFolderError listing every problem. */
export function loadModelFolder(folder: string): ModelFolder {
  const dir = resolve(folder);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new ModelFolderError(dir, ['the folder does not exist']);
  const indexPath = join(dir, 'model_index.json');
  if (!existsSync(indexPath)) throw new ModelFolderError(dir, ['model_index.json is missing: choose the folder that contains it (a diffusers pipeline folder)']);
  const problems: string[] = [];
  const index = readJson(indexPath, problems);
  if (!index) throw new ModelFolderError(dir, problems);

  const pipelineClass = typeof index._class_name === 'string' ? index._class_name : '';
  const required = PIPELINE_COMPONENTS[pipelineClass];
  if (!required) {
    problems.push(`model_index.json: pipeline '${pipelineClass || '(none)'}' is not one BLIP Studio runs (${Object.keys(PIPELINE_COMPONENTS).join(', ')})`);
    throw new ModelFolderError(dir, problems);
  }

  const components = new Map<string, ModelComponent>();
  for (const name of required) {
    const entry = index[name];
    if (!Array.isArray(entry) || entry.length !== 2 || typeof entry[0] !== 'string' || typeof entry[1] !== 'string') {
      problems.push(`model_index.json: component '${name}' is missing or not a [library, class] pair`);
      continue;
    }
    const componentDir = join(dir, name);
    if (!existsSync(componentDir) || !statSync(componentDir).isDirectory()) {
      problems.push(`${name}/: the component folder is missing`);
      continue;
    }
    const configPath = join(componentDir, CONFIG_FILE[name] ?? 'config.json');
    let config: Record<string, unknown> | null = null;
    if (existsSync(configPath)) config = readJson(configPath, problems);
    else if (name !== 'tokenizer') problems.push(`${name}/${CONFIG_FILE[name] ?? 'config.json'}: missing`);
    components.set(name, { name, library: entry[0], className: entry[1], dir: componentDir, config });
  }
  if (problems.length > 0) throw new ModelFolderError(dir, problems);
  return { dir, pipelineClass, index, components };
}
