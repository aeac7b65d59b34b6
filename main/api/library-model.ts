/** Opening a library model's folder for a job, with the problem said to the user when it cannot be used. */
import type { ModelSummary } from './contract';
import { StudioError } from './studio-error';
import { loadModelFolder, ModelFolderError, type ModelFolder } from '../models/model-folder';

/** The model's folder, read now; a folder that changed or vanished since it was added is 'unavailable', naming the model. */
export function openLibraryModel(model: ModelSummary): ModelFolder {
  try {
    return loadModelFolder(model.folder);
  } catch (error) {
    if (error instanceof ModelFolderError) throw new StudioError('unavailable', `${model.name} cannot be used: ${error.message}`);
    throw error;
  }
}
