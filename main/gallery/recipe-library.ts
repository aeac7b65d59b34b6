/**
 * What the library has of a recipe: the subject whose photos it names (for "Reuse settings") and the
 * photos it no longer has (a reproduction needs every one). Recipes name photos by content hash only.
 */
import type { Database } from 'better-sqlite3';
import { findLibraryPhoto } from './recipe-files';
import { subjectPhotoHashes, type Recipe, type RecipeSubject } from './recipe';

/** One photo a recipe needs, with words to name it to the user. */
export interface RecipePhotoNeed {
  sha256: string;
  /** e.g. "photo 2 of 3 of Rex". */
  label: string;
}

/** Every photo the recipe needs (its subject's, then a mixed-in subject's), in order. */
export function recipePhotoNeeds(recipe: Recipe): RecipePhotoNeed[] {
  const parts = [recipe.subject, ...(recipe.mix ? [recipe.mix.subject] : [])];
  return parts.flatMap((subject) => {
    const hashes = subjectPhotoHashes(subject);
    const owner = subject.name ?? `the ${subject.category}`;
    if ('reference' in subject) return [{ sha256: hashes[0]!, label: `the reference photo of ${owner}` }];
    return hashes.map((sha256, i) => ({ sha256, label: `photo ${i + 1} of ${hashes.length} of ${owner}` }));
  });
}

/** The needed photos whose file the library does not have (checked by content, not just by row). */
export function missingRecipePhotos(db: Database, dataDir: string, recipe: Recipe): RecipePhotoNeed[] {
  return recipePhotoNeeds(recipe).filter((need) => findLibraryPhoto(db, dataDir, need.sha256) === null);
}

/**
 * The live library subject that best matches the recipe's subject: one holding all its photos (the
 * same set first, then the same name), or failing that the only subject of that name. Null when none.
 */
export function recipeLibrarySubject(db: Database, recipe: Recipe): number | null {
  return librarySubjectOf(db, recipe.subject);
}

/** The same for the subject the recipe mixes in; null when it mixes none. */
export function recipeMixLibrarySubject(db: Database, recipe: Recipe): number | null {
  return recipe.mix ? librarySubjectOf(db, recipe.mix.subject) : null;
}

function librarySubjectOf(db: Database, subject: RecipeSubject): number | null {
  const wanted = new Set(subjectPhotoHashes(subject));
  // A given embedding names no photos: every subject would "hold" them all, so only the name can match.
  const rows = db
    .prepare(
      `SELECT s.id, s.name, p.sha256 FROM subjects s JOIN photos p ON p.subject_id = s.id
       WHERE s.deleted_at IS NULL AND s.import_job_id IS NULL ORDER BY s.id`,
    )
    .all() as { id: number; name: string; sha256: string }[];
  const subjects = new Map<number, { name: string; hashes: Set<string> }>();
  for (const row of rows) {
    const entry = subjects.get(row.id) ?? { name: row.name, hashes: new Set<string>() };
    entry.hashes.add(row.sha256);
    subjects.set(row.id, entry);
  }
  const holding = [...subjects.entries()].filter(([, s]) => [...wanted].every((hash) => s.hashes.has(hash)));
  const score = ([, s]: [number, { name: string; hashes: Set<string> }]) => (s.hashes.size === wanted.size ? 2 : 0) + (s.name === subject.name ? 1 : 0);
  const best = wanted.size > 0 ? holding.sort((a, b) => score(b) - score(a))[0] : undefined;
  if (best) return best[0];
  const named = db
    .prepare('SELECT id FROM subjects WHERE name = ? COLLATE NOCASE AND deleted_at IS NULL AND import_job_id IS NULL')
    .all(subject.name ?? '') as { id: number }[];
  return named.length === 1 ? named[0]!.id : null;
}
