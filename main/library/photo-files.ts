/**
 * Where subject photos live in the data folder: originals content-addressed by SHA-256 at
 * `photos/<sha[0:2]>/<sha>.<ext>`, thumbnails at `thumbs/<sha>.webp`. Identical files are stored once
 * and shared by every photo row that names them; a file goes when no row names it any more.
 *
 * Files are always written before the row that points at them, and atomically (temporary file +
 * rename), so a crash can leave at worst an unreferenced complete file, which `sweepOrphanPhotoFiles`
 * removes, never a row pointing at nothing or a half-written file under a final name.
 */
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { Database } from 'better-sqlite3';
import { writeFileAtomic } from '../files/atomic-write';

export const PHOTOS_FOLDER = 'photos';
export const THUMBS_FOLDER = 'thumbs';

/** Data-folder-relative, '/'-separated (the form the UI's file routes take). */
export function photoFilePath(sha256: string, extension: string): string {
  return `${PHOTOS_FOLDER}/${sha256.slice(0, 2)}/${sha256}.${extension}`;
}

export function thumbFilePath(sha256: string): string {
  return `${THUMBS_FOLDER}/${sha256}.webp`;
}

export function absoluteDataPath(dataDir: string, relativePath: string): string {
  return join(dataDir, ...relativePath.split('/'));
}

/** Writes a content-addressed file unless a complete copy is already there (it is shared then). */
export function storeContentFile(dataDir: string, relativePath: string, bytes: Uint8Array): void {
  const target = absoluteDataPath(dataDir, relativePath);
  if (existsSync(target) && statSync(target).size === bytes.length) return;
  mkdirSync(join(target, '..'), { recursive: true });
  writeFileAtomic(target, bytes);
}

/** Removes the original and thumbnail of each hash that no photo row uses any more. */
export function removeUnreferencedPhotoFiles(db: Database, dataDir: string, candidates: Iterable<{ sha256: string; filePath: string; thumbPath: string | null }>): number {
  const stillUsed = db.prepare('SELECT 1 FROM photos WHERE sha256 = ? LIMIT 1');
  let removed = 0;
  for (const file of candidates) {
    if (stillUsed.get(file.sha256)) continue;
    for (const path of [file.filePath, file.thumbPath]) {
      if (path === null) continue;
      rmSync(absoluteDataPath(dataDir, path), { force: true });
      removed++;
    }
  }
  return removed;
}

/**
 * Removes files under photos/ and thumbs/ that no row names (left by a crash between writing a file
 * and committing its row) and leftover temporary files. Only files older than `startedAtMs` go, so a
 * file another process is about to commit is never taken from under it.
 */
export function sweepOrphanPhotoFiles(db: Database, dataDir: string, startedAtMs = Date.now()): string[] {
  const referenced = new Set<string>();
  for (const row of db.prepare('SELECT file_path, thumb_path FROM photos').all() as { file_path: string; thumb_path: string | null }[]) {
    referenced.add(row.file_path);
    if (row.thumb_path !== null) referenced.add(row.thumb_path);
  }
  const removed: string[] = [];
  for (const folder of [PHOTOS_FOLDER, THUMBS_FOLDER]) {
    for (const relativePath of listFiles(dataDir, folder)) {
      if (referenced.has(relativePath)) continue;
      const absolute = absoluteDataPath(dataDir, relativePath);
      // Date.now() is whole milliseconds, mtimes are finer: floor, or a file written in the same
      // millisecond as the start would count as newer and never be swept.
      if (Math.floor(statSync(absolute).mtimeMs) > startedAtMs) continue;
      rmSync(absolute, { force: true });
      removed.push(relativePath);
    }
  }
  return removed;
}

/** Every file under `folder` (recursively), as data-folder-relative '/'-separated paths. */
export function listFiles(dataDir: string, folder: string): string[] {
  const root = absoluteDataPath(dataDir, folder);
  if (!existsSync(root)) return [];
  return readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => {
      return relative(dataDir, join(entry.parentPath, entry.name)).split(/[\\/]/).join('/');
    });
}
