/**
 * Where a CLI generation ends up: the PNG at --out (recipe embedded when there is one, written
 * atomically) and, unless told not to, a copy recorded in the data folder's gallery. Shared by
 * `generate` and `reproduce`.
 */
import { mkdirSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { writeFileAtomic } from '../files/atomic-write';
import type { RgbImage } from '../engine/imaging/decode';
import { GenerationsStore, type GenerationRecord } from '../gallery/generations-store';
import { generationPng } from '../gallery/generation-png';
import { openDatabase } from '../library/database';
import { withJobRun } from '../library/job-journal';
import type { Recipe } from '../gallery/recipe';

export interface GenerationOutput {
  image: RgbImage;
  recipe: Recipe | null;
  out: string;
  /** The data folder to record the generation in, or null to skip recording. */
  libraryDir: string | null;
}

/** Writes --out, then records it; a failure to record says the image itself is safe. */
export async function writeGenerationOutput(output: GenerationOutput): Promise<GenerationRecord | null> {
  const png = await generationPng(output.image, output.recipe);
  mkdirSync(dirname(output.out), { recursive: true });
  writeFileAtomic(output.out, png);
  if (!output.recipe || output.libraryDir === null) return null;
  try {
    const db = openDatabase(output.libraryDir);
    try {
      // Journaled while the file and its row are written, so a studio starting in that instant does
      // not take the file for a crash's leftover and sweep it.
      const { recipe, libraryDir } = output;
      return await withJobRun(
        db,
        { kind: 'cli-record', label: `Record ${basename(output.out)} in the gallery`, totalSteps: 1 },
        async () => new GenerationsStore(db, libraryDir).insert({ recipe, png }),
        (record) => `Recorded generation ${record.id}`,
      );
    } finally {
      db.close();
    }
  } catch (error) {
    throw new Error(`${output.out} was written, but recording it in the library failed (${error instanceof Error ? error.message : String(error)}); use --no-library to skip recording.`, { cause: error });
  }
}
