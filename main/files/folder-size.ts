import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';

/** Total bytes of regular files under `path` (symlinks are not followed); 0 when it does not exist. */
export async function folderSize(path: string): Promise<number> {
  let info;
  try {
    info = await lstat(path);
  } catch {
    return 0;
  }
  if (info.isFile()) return info.size;
  if (!info.isDirectory()) return 0;
  const entries = await readdir(path);
  const sizes = await Promise.all(entries.map((entry) => folderSize(join(path, entry))));
  return sizes.reduce((a, b) => a + b, 0);
}
