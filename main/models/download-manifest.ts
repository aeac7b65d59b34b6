/**
 * `.blip-download.json` in the target folder: which repository and revision the folder is being filled
 * from, each file's expected size and hash, and, for finished files, the size/mtime at which their
 * hash was verified. A restart reads it to resume, and a re-check skips hashing files whose size and
 * mtime have not changed since they were verified (hashing gigabytes again would take minutes).
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';

export const MANIFEST_NAME = '.blip-download.json';

const ManifestFile = z.object({
  path: z.string(),
  size: z.number(),
  sha256: z.string().nullable(),
  state: z.enum(['pending', 'complete']),
  /** Set when complete: what the file looked like when its content was verified. */
  verified: z.object({ size: z.number(), mtimeMs: z.number(), sha256: z.string() }).optional(),
});

const Manifest = z.object({
  version: z.literal(1),
  repo: z.string(),
  revision: z.string(),
  baseUrl: z.string(),
  state: z.enum(['downloading', 'complete']),
  updatedAt: z.string(),
  files: z.array(ManifestFile),
});

export type ManifestFile = z.infer<typeof ManifestFile>;
export type DownloadManifest = z.infer<typeof Manifest>;

/** The folder's manifest, or null when it has none or it is unreadable (then everything is re-checked). */
export async function readManifest(targetDir: string): Promise<DownloadManifest | null> {
  try {
    const parsed = Manifest.safeParse(JSON.parse(await readFile(join(targetDir, MANIFEST_NAME), 'utf8')));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

/** Written through a temporary file and a rename, so a crash never leaves half a manifest. */
export async function writeManifest(targetDir: string, manifest: DownloadManifest): Promise<void> {
  const path = join(targetDir, MANIFEST_NAME);
  const temporary = `${path}.tmp`;
  await writeFile(temporary, `${JSON.stringify({ ...manifest, updatedAt: new Date().toISOString() }, null, 2)}\n`);
  await rename(temporary, path);
}
