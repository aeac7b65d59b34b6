/**
 * A model's identity for cache keys (the embeddings cache): SHA-256 over model_index.json, every file
 * of the pipeline's component folders (configs by content, weight files by their content hash) and the
 * Q-Former's WordPiece vocabulary, which sits outside the folder. Weight files are hashed through the
 * weights module's (path, size, mtime, inode) record, so an unchanged model is fingerprinted without
 * reading its gigabytes again; any edited or replaced file gives a new fingerprint.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { weightsFileSha256 } from '../engine/weights/convert-bin';
import { locateQformerVocab } from '../engine/pipelines/qformer-vocab';
import type { ModelFolder } from '../models/model-folder';

/** Bump when what goes into the fingerprint changes. */
export const MODEL_FINGERPRINT_VERSION = 1;

/** Files larger than this are hashed through the cached record instead of read every time. */
const READ_DIRECTLY_BELOW_BYTES = 4 * 1024 * 1024;
const WEIGHT_EXTENSIONS = /\.(safetensors|bin|pt|pth|ckpt|onnx|msgpack|h5)$/i;

export interface FingerprintOptions {
  /** The weights cache folder (`<data>/cache/weights`), where file-hash records are kept. */
  weightsCacheDir: string;
  signal?: AbortSignal;
}

export async function modelFingerprint(model: ModelFolder, options: FingerprintOptions): Promise<string> {
  const entries: [string, string][] = [['model_index.json', sha256(readFileSync(join(model.dir, 'model_index.json')))]];
  for (const component of [...model.components.values()].sort((a, b) => a.name.localeCompare(b.name))) {
    for (const file of filesUnder(component.dir)) {
      options.signal?.throwIfAborted();
      const size = statSync(file).size;
      const digest =
        WEIGHT_EXTENSIONS.test(file) || size >= READ_DIRECTLY_BELOW_BYTES
          ? await weightsFileSha256(file, { cacheDir: options.weightsCacheDir, ...(options.signal ? { signal: options.signal } : {}) })
          : sha256(readFileSync(file));
      entries.push([relative(model.dir, file).split(/[\\/]/).join('/'), digest]);
    }
  }
  const qformer = model.components.get('qformer');
  if (qformer?.config) {
    const vocab = locateQformerVocab({ modelDir: model.dir, qformerConfig: qformer.config });
    entries.push(['<qformer vocabulary>', sha256(readFileSync(vocab.path))]);
  }
  const hash = createHash('sha256').update(`blip-studio model fingerprint v${MODEL_FINGERPRINT_VERSION}\n`);
  for (const [path, digest] of entries) hash.update(`${path}\t${digest}\n`);
  return hash.digest('hex');
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && !entry.name.startsWith('.'))
    .map((entry) => join(entry.parentPath, entry.name))
    .sort();
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}
