/** Free space on the volume a folder is (or will be) on, so a multi-gigabyte download can be refused up front. */
import { statfs } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

/** Bytes available to this user on `path`'s volume; walks up to the nearest existing folder when `path` does not exist yet. */
export async function freeBytesAt(path: string): Promise<number> {
  let current = resolve(path);
  for (;;) {
    try {
      const stats = await statfs(current);
      return stats.bavail * stats.bsize;
    } catch (error) {
      const parent = dirname(current);
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || parent === current) throw error;
      current = parent;
    }
  }
}

/** Headroom on top of the download itself: the manifest, temporary files, and the rest of the system. */
export function spaceMargin(neededBytes: number): number {
  return Math.max(32 * 1024 * 1024, Math.ceil(neededBytes * 0.01));
}
