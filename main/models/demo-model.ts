/**
 * The tiny random-weight BLIP-Diffusion + ControlNet model shipped in the app's resources: every flow
 * (embeddings, generation, ControlNet) works with it before a real model is installed; its images
 * look like noise.
 */
import { join } from 'node:path';
import type { ModelKind } from '../api/contract';
import { findResourcesDir } from '../engine/pipelines/qformer-vocab';

export const DEMO_MODEL_NAME = 'Demo model (tiny, random weights)';
export const DEMO_MODEL_FOLDER_NAME = 'tiny-blipdiffusion-controlnet';
/** The bundled folder has a controlnet/ component. */
export const DEMO_MODEL_KIND: ModelKind = 'controlnet';

/** The demo model's folder in this installation. */
export function demoModelFolder(resourcesDir: string = findResourcesDir()): string {
  return join(resourcesDir, 'demo-model', DEMO_MODEL_FOLDER_NAME);
}
