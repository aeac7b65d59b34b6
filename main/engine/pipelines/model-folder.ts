/**
 * A model folder as the pipelines take it: the pipeline class, model_index.json's settings and each
 * component's folder and parsed config. main/models/ reads it from disk (and checks it); the engine
 * only uses it, so this type lives here and imports run downward.
 */

export interface ModelComponent {
  name: string;
  library: string;
  className: string;
  dir: string;
  /** Parsed config, or null when the component has none we read (e.g. a tokenizer without its config). */
  config: Record<string, unknown> | null;
}

export interface ModelFolder {
  dir: string;
  pipelineClass: string;
  /** Top-level pipeline settings from model_index.json, e.g. `ctx_begin_pos`. */
  index: Record<string, unknown>;
  components: ReadonlyMap<string, ModelComponent>;
}

export class ModelFolderError extends Error {
  constructor(
    readonly dir: string,
    readonly problems: readonly string[],
  ) {
    super(`${dir} is not a usable BLIP-Diffusion model folder:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ModelFolderError';
  }
}

/** The component `name` with its config, or a ModelFolderError naming what is missing. */
export function requireComponent(model: ModelFolder, name: string): ModelComponent & { config: Record<string, unknown> } {
  const component = model.components.get(name);
  if (!component) throw new ModelFolderError(model.dir, [`the ${model.pipelineClass} has no '${name}' component`]);
  if (!component.config) throw new ModelFolderError(model.dir, [`${name}: no configuration file`]);
  return component as ModelComponent & { config: Record<string, unknown> };
}
