/**
 * Reading the recipe of a PNG the user dropped or picked (bytes over the API, already bounded by the
 * schema): the same strict reader as the CLI's `recipe`, with every refusal turned into a message the
 * UI shows as it is.
 */
import type { Database } from 'better-sqlite3';
import type { PngUpload, RecipeReading } from './contract';
import { StudioError } from './studio-error';
import { readRecipe, RecipeReadError } from '../gallery/png-recipe';
import type { Recipe } from '../gallery/recipe';
import { missingRecipePhotos, recipeLibrarySubject, recipeMixLibrarySubject } from '../gallery/recipe-library';

/** The bytes of an upload (the schema has checked the base64 and its size). */
export function uploadBytes(upload: PngUpload): Uint8Array {
  const buffer = Buffer.from(upload.dataBase64, 'base64');
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}

/** The validated recipe of an uploaded PNG; a foreign, damaged, forged or oversized one is refused with the reader's reason. */
export function uploadedRecipe(upload: PngUpload): { recipe: Recipe; bytes: Uint8Array } {
  const bytes = uploadBytes(upload);
  try {
    return { recipe: readRecipe(bytes, upload.name), bytes };
  } catch (error) {
    if (error instanceof RecipeReadError) throw new StudioError('invalid-request', error.message);
    throw error;
  }
}

export function readUploadedRecipe(db: Database, dataDir: string, upload: PngUpload): RecipeReading {
  const { recipe } = uploadedRecipe(upload);
  return {
    name: upload.name,
    recipe,
    subjectId: recipeLibrarySubject(db, recipe),
    mixSubjectId: recipeMixLibrarySubject(db, recipe),
    missingPhotos: missingRecipePhotos(db, dataDir, recipe).map((need) => need.sha256),
  };
}
