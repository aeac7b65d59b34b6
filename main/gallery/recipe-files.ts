/**
 * The files a recipe names by SHA-256 only (reference photos, control images): hashing a file the
 * user gives, and finding a photo the subject library already stores (`photos` rows point at
 * content-addressed files under the data folder).
 */
import type { Database } from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export function sha256OfFile(path: string): string {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    throw new Error(`cannot read ${path}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  return createHash('sha256').update(bytes).digest('hex');
}

/** The absolute path of a library photo with this content hash, or null when the library has none. */
export function findLibraryPhoto(db: Database, dataDir: string, sha256: string): string | null {
  const rows = db.prepare('SELECT file_path FROM photos WHERE sha256 = ?').all(sha256) as { file_path: string }[];
  for (const { file_path: filePath } of rows) {
    const absolute = join(dataDir, ...filePath.split('/'));
    if (existsSync(absolute) && sha256OfFile(absolute) === sha256) return absolute;
  }
  return null;
}
