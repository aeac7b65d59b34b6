/**
 * Built ONNX graphs cached on disk, keyed by (component config, build options, builder version): the
 * graph builder supplies the key. Graphs hold only structure (weights stay in the model's safetensors
 * as external data), so entries are small; they are written atomically and re-validated by ORT on load.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../files/atomic-write';

const KEY_PATTERN = /^[a-z0-9-]{8,128}$/;

export class GraphCache {
  constructor(readonly dir: string) {}

  /** The cached bytes for `key`, or the result of `build()` stored under it. */
  getOrBuild(key: string, build: () => Uint8Array): Uint8Array {
    if (!KEY_PATTERN.test(key)) throw new Error(`graph cache key '${key}' is not a safe file name`);
    const file = join(this.dir, `${key}.onnx`);
    if (existsSync(file)) return readFileSync(file);
    const bytes = build();
    mkdirSync(this.dir, { recursive: true });
    writeFileAtomic(file, bytes);
    return bytes;
  }
}
