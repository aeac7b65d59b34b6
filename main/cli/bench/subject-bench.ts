/**
 * "Create a subject with 3 photos → embeddings cached" at the real size, through the code the app runs:
 * `SubjectService.importSubject` (content-addressed photos, thumbnails, rows) and
 * `computeSubjectEmbeddingsWithEngine` (fingerprint, per-photo vision tower + Q-Former on the CPU, cached
 * in SQLite), on a fresh data folder. A second embeddings run shows the cache hit.
 *
 * The model folder is the real BLIP-Diffusion layout with the real Q-Former (random weights at the real
 * shapes, the embedding benchmark's file, hard-linked) and config-only text encoder, UNet and VAE: the
 * embedding step reads nothing else, and it keeps the one-time fingerprint to the Q-Former's 1.9 GB.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { RuntimeClient } from '../../engine/runtime/runtime-client';
import { LibraryStore } from '../../library/library-store';
import { SubjectService } from '../../library/subject-service';
import { computeSubjectEmbeddingsWithEngine } from '../../library/subject-embeddings';
import { modelFingerprint } from '../../library/model-fingerprint';
import { loadModelFolder } from '../../models/model-folder';
import { ensureRandomComponent } from './random-weights';
import { copyInto, defaultTokenizerDir, EMBEDDING_QFORMER, linkComponent, writeTokenizer } from './real-model-folder';

export const SUBJECT_BENCH_MODEL = 'blipdiffusion-embedding-real';
const PHOTOS = 3;

export interface SubjectBenchResult {
  model: string;
  photos: string[];
  /** One-time per model: SHA-256 of its weights for the embeddings cache key (remembered afterwards). */
  fingerprintFirstMs: number;
  /** Photos stored (sha256, thumbnails, EXIF) and rows committed. */
  importMs: number;
  /** All missing embeddings computed and cached (a fresh data folder: the graph is built for the first photo). */
  embeddingMs: number;
  /** Time of each photo's embedding, in order (each opens an ORT session, as the app does). */
  perPhotoMs: number[];
  /** importMs + embeddingMs: what the user waits from "create" to a subject ready to generate. */
  createToCachedMs: number;
  /** The same call again: every embedding comes from the cache. */
  cachedRun: { ms: number; computed: number; cached: number };
}

/** Makes (once) the model folder described above; returns its path. */
export async function ensureEmbeddingModelFolder(realShapesDir: string, cacheDir: string): Promise<string> {
  const configs = join(realShapesDir, 'configs', 'blipdiffusion');
  const dir = join(cacheDir, SUBJECT_BENCH_MODEL);
  linkComponent(await ensureRandomComponent(realShapesDir, cacheDir, EMBEDDING_QFORMER), join(dir, 'qformer'));
  for (const folder of ['text_encoder', 'unet', 'vae', 'scheduler', 'image_processor']) {
    for (const file of readdirSync(join(configs, folder))) copyInto(join(configs, folder, file), join(dir, folder));
  }
  writeTokenizer(defaultTokenizerDir(realShapesDir), join(dir, 'tokenizer'));
  copyInto(join(configs, 'model_index.json'), dir);
  return dir;
}

export async function benchSubjectCreation(
  runtime: RuntimeClient,
  options: { realShapesDir: string; cacheDir: string; photosDir: string; onProgress?: (message: string) => void },
): Promise<SubjectBenchResult> {
  const say = options.onProgress ?? (() => undefined);
  say('subject creation: preparing the real-size Q-Former (random weights, written once)…');
  const folder = loadModelFolder(await ensureEmbeddingModelFolder(options.realShapesDir, options.cacheDir));
  const photos = readdirSync(options.photosDir).filter((name) => /\.(jpe?g|png|webp)$/i.test(name)).sort().slice(0, PHOTOS);
  if (photos.length < PHOTOS) throw new Error(`${options.photosDir} has fewer than ${PHOTOS} photos`);

  const dataDir = mkdtempSync(join(tmpdir(), 'blip-bench-subject-'));
  const library = LibraryStore.open(dataDir);
  try {
    const engine = { runtime, device: 'cpu', cacheDir: join(dataDir, 'cache') };
    say('subject creation: fingerprinting the model (once per model)…');
    let started = performance.now();
    await modelFingerprint(folder, { weightsCacheDir: join(engine.cacheDir, 'weights') });
    const fingerprintFirstMs = performance.now() - started;

    say('subject creation: importing 3 photos and computing their embeddings…');
    const service = new SubjectService(library.connection, dataDir);
    started = performance.now();
    const imported = await service.importSubject({ name: 'Bench dog', category: 'dog' }, photos.map((name) => ({ path: join(options.photosDir, name) })));
    const importMs = performance.now() - started;
    if (imported.added.length !== PHOTOS) throw new Error(`only ${imported.added.length} of ${PHOTOS} photos were imported: ${imported.rejected.map((r) => r.reason).join('; ')}`);

    const marks: number[] = [];
    started = performance.now();
    const first = await computeSubjectEmbeddingsWithEngine(library.connection, dataDir, engine, folder, imported.subject.id, { onProgress: () => marks.push(performance.now()) });
    const embeddingMs = performance.now() - started;
    if (first.computed !== PHOTOS) throw new Error(`expected ${PHOTOS} embeddings computed, got ${first.computed}`);
    const perPhotoMs = marks.map((mark, i) => mark - (i === 0 ? started : marks[i - 1]!));

    started = performance.now();
    const again = await computeSubjectEmbeddingsWithEngine(library.connection, dataDir, engine, folder, imported.subject.id);
    const cachedRun = { ms: performance.now() - started, computed: again.computed, cached: again.cached };

    return {
      model: 'BLIP-Diffusion layout, real-size vision tower + Q-Former (random weights), CPU',
      photos,
      fingerprintFirstMs,
      importMs,
      embeddingMs,
      perPhotoMs,
      createToCachedMs: importMs + embeddingMs,
      cachedRun,
    };
  } finally {
    library.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}
