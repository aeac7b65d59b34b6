import { existsSync, readdirSync } from 'node:fs';
import { join, relative, sep } from 'node:path';

/** Files under `root`, recursively, as paths relative to root's parent, '/'-separated (data-folder form when root is a data-folder child). */
export function listFilesUnder(root: string): string[] {
  if (!existsSync(root)) return [];
  return readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(join(root, '..'), join(entry.parentPath, entry.name)).split(sep).join('/'));
}
