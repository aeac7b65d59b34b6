/** Positioned reads that either fill the whole buffer or fail (a short read means a truncated file). */
import type { FileHandle } from 'node:fs/promises';

export async function readExactly(handle: FileHandle, target: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < target.length) {
    const { bytesRead } = await handle.read(target, done, target.length - done, position + done);
    if (bytesRead === 0) throw new Error(`the file ends at byte ${position + done}, before the ${target.length} bytes expected at ${position}: it is truncated`);
    done += bytesRead;
  }
}

export async function readRange(handle: FileHandle, position: number, length: number): Promise<Uint8Array> {
  const bytes = new Uint8Array(length);
  await readExactly(handle, bytes, position);
  return bytes;
}
