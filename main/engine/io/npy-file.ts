import { readFileSync } from 'node:fs';
import { parseNpy, serializeNpy, type NpyArray } from './npy';
import { writeFileAtomic } from '../../files/atomic-write';

export function readNpyFile(path: string): NpyArray {
  try {
    return parseNpy(readFileSync(path));
  } catch (error) {
    throw new Error(`${path}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}

/** Writes atomically: a failed or interrupted write never leaves a partial .npy behind. */
export function writeNpyFile(path: string, array: NpyArray): void {
  writeFileAtomic(path, serializeNpy(array));
}
