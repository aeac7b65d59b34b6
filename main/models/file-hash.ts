/** Incremental sha256 of files on disk, for verifying downloads and resuming a hash over a partial file. */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';

/** Feeds a file's current content into `hash` (used to resume hashing where a partial download stopped). */
export async function hashFileInto(hash: Hash, path: string, signal?: AbortSignal): Promise<void> {
  for await (const chunk of createReadStream(path, { signal, highWaterMark: 1 << 20 })) {
    hash.update(chunk as Buffer);
  }
}

export async function sha256File(path: string, signal?: AbortSignal): Promise<string> {
  const hash = createHash('sha256');
  await hashFileInto(hash, path, signal);
  return hash.digest('hex');
}
