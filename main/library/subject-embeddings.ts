/**
 * Per-photo subject embeddings, cached in SQLite by (photo, category word, model fingerprint,
 * preprocessing version) and never recomputed while that key holds; the subject's embedding is their
 * weighted mean (LAVIS' multi-image subject), and two subjects mix with a ratio (LAVIS' `ratio`).
 *
 * A changed model folder has a new fingerprint, so its embeddings are simply missing and get computed;
 * the rows of the folder's previous content are dropped then. The category word is in the key because
 * the Q-Former reads it: editing a subject's category invalidates its cached rows in the same way.
 */
import { basename, join } from 'node:path';
import type { Database } from 'better-sqlite3';
import { StudioError } from '../api/studio-error';
import { embedSubject, imageProcessorOf, meanEmbedding, type SubjectEmbedding } from '../engine/pipelines/subject-embedding';
import { preprocessReferenceImage } from '../engine/imaging/preprocess';
import type { EngineContext } from '../engine/pipelines/engine-context';
import type { ModelFolder } from '../models/model-folder';
import { updateJobRun, withJobRun } from './job-journal';
import { modelFingerprint } from './model-fingerprint';
import { absoluteDataPath } from './photo-files';

/**
 * What turns a photo into model input; part of the cache key, bump it when that changes.
 * 1: EXIF orientation applied (a phone photo must be upright; the reference pipeline, fed upright
 *    files, never rotates), alpha dropped, squashed to the image processor's size (bicubic, as
 *    diffusers), CLIP mean/std.
 */
export const PREPROCESSING_VERSION = 1;

/** Computes one photo's embedding; the engine in the app, a counting fake in tests. */
export type PhotoEmbedder = (photo: { path: string; sha256: string }, category: string) => Promise<SubjectEmbedding>;

export interface EmbeddingsProgress {
  done: number;
  total: number;
  message: string;
}

export interface ComputeEmbeddingsOptions {
  signal?: AbortSignal;
  onProgress?: (progress: EmbeddingsProgress) => void;
}

export interface SubjectEmbeddingsResult {
  /** Photos whose embedding was computed now. */
  computed: number;
  /** Photos whose embedding came from the cache. */
  cached: number;
  /** The weighted mean over the subject's photos. */
  mean: SubjectEmbedding;
}

interface PhotoKeyRow {
  id: number;
  sha256: string;
  file_path: string;
  weight: number;
}

interface EmbeddingRow {
  photo_id: number;
  dims_json: string;
  vector: Buffer;
}

/** The engine's embedder: the user's photo, upright, through the vision tower and Q-Former. */
export function engineEmbedder(context: EngineContext, model: ModelFolder): PhotoEmbedder {
  return async (photo, category) => {
    const pixels = await preprocessReferenceImage(photo.path, await imageProcessorOf(model), { honourExifOrientation: true });
    return embedSubject(context, { model, subject: category, image: { pixels } });
  };
}

/**
 * Computes the subject's missing per-photo embeddings (a journalled job: progress per photo, cancellable
 * between photos; each finished photo is committed at once, so an interrupted run resumes where it
 * stopped) and returns the weighted mean.
 */
export async function computeSubjectEmbeddings(
  db: Database,
  dataDir: string,
  request: { subjectId: number; modelHash: string; embed: PhotoEmbedder },
  options: ComputeEmbeddingsOptions = {},
): Promise<SubjectEmbeddingsResult> {
  const subject = requireSubject(db, request.subjectId);
  const photos = subjectPhotos(db, request.subjectId);
  if (photos.length === 0) throw new StudioError('invalid-request', `${subject.name} has no photos yet: add at least one.`);
  let computed = 0;
  let cached = 0;
  const run = { kind: 'subject-embeddings', label: `Subject embeddings of ${subject.name}`, subjectId: request.subjectId, totalSteps: photos.length };
  return withJobRun(db, run, async (jobId) => {
    for (const [index, photo] of photos.entries()) {
      options.signal?.throwIfAborted();
      const key = { category: subject.category, modelHash: request.modelHash };
      const wasCached = cachedEmbeddingFor(db, photo, key) !== null;
      if (wasCached) {
        cached++;
      } else {
        const embedding = await request.embed({ path: absoluteDataPath(dataDir, photo.file_path), sha256: photo.sha256 }, subject.category);
        options.signal?.throwIfAborted();
        storeEmbedding(db, photo.id, key, embedding);
        computed++;
      }
      const message = `Photo ${index + 1} of ${photos.length}${wasCached ? ' (cached)' : ''}`;
      updateJobRun(db, jobId, index + 1, photos.length, message);
      options.onProgress?.({ done: index + 1, total: photos.length, message });
    }
    return { computed, cached, mean: subjectMeanEmbedding(db, request.subjectId, request.modelHash) };
  }, () => `Computed ${computed}, reused ${cached}`, options.signal);
}

/** The subject's weighted mean from cached rows; fails, saying what to do, when some are missing. */
export function subjectMeanEmbedding(db: Database, subjectId: number, modelHash: string): SubjectEmbedding {
  const subject = requireSubject(db, subjectId);
  const photos = subjectPhotos(db, subjectId);
  const embeddings = photos.map((photo) => {
    const embedding = cachedEmbeddingFor(db, photo, { category: subject.category, modelHash }, false);
    if (!embedding) throw new StudioError('conflict', `The embeddings of ${subject.name} are not computed for this model yet: compute them first.`);
    return embedding;
  });
  if (embeddings.length === 0) throw new StudioError('invalid-request', `${subject.name} has no photos yet: add at least one.`);
  return meanEmbedding(embeddings, photos.map((p) => p.weight));
}

/** LAVIS' `ratio` between two subjects: ratio·a + (1 − ratio)·b, with ratio in [0, 1]. */
export function mixSubjects(a: SubjectEmbedding, b: SubjectEmbedding, ratio: number): SubjectEmbedding {
  if (!(ratio >= 0 && ratio <= 1)) throw new StudioError('invalid-request', `The mixing ratio must be between 0 and 1, got ${ratio}.`);
  return meanEmbedding([a, b], [ratio, 1 - ratio]);
}

/** A photo's cached embedding by content hash (any subject holding that file), or null when none is cached. */
export function cachedPhotoEmbedding(db: Database, sha256: string, key: { category: string; modelHash: string }): SubjectEmbedding | null {
  const row = db
    .prepare(
      `SELECT e.photo_id, e.dims_json, e.vector FROM photo_embeddings e JOIN photos p ON p.id = e.photo_id
       WHERE p.sha256 = ? AND e.category = ? AND e.model_hash = ? AND e.preprocessing_version = ? LIMIT 1`,
    )
    .get(sha256, key.category, key.modelHash, PREPROCESSING_VERSION) as EmbeddingRow | undefined;
  return row ? fromRow(row) : null;
}

/**
 * Records a model folder's current fingerprint; when the folder's content changed, the embeddings of
 * its previous content are dropped (unless another registered folder still has that content).
 */
export function recordModelFingerprint(db: Database, model: ModelFolder, hash: string, name: string = basename(model.dir)): void {
  const kind = model.components.has('controlnet') ? 'controlnet' : 'blipdiffusion';
  db.transaction(() => {
    const previous = db.prepare('SELECT hash FROM models WHERE folder = ?').get(model.dir) as { hash: string | null } | undefined;
    db.prepare(
      `INSERT INTO models (name, kind, folder, hash, status) VALUES (?, ?, ?, ?, 'ready')
       ON CONFLICT (folder) DO UPDATE SET hash = excluded.hash, kind = excluded.kind, status = 'ready'`,
    ).run(name, kind, model.dir, hash);
    const old = previous?.hash;
    if (old && old !== hash && !db.prepare('SELECT 1 FROM models WHERE hash = ?').get(old)) {
      db.prepare('DELETE FROM photo_embeddings WHERE model_hash = ?').run(old);
    }
  })();
}

function cachedEmbeddingFor(db: Database, photo: PhotoKeyRow, key: { category: string; modelHash: string }, adoptShared = true): SubjectEmbedding | null {
  const own = db
    .prepare('SELECT photo_id, dims_json, vector FROM photo_embeddings WHERE photo_id = ? AND category = ? AND model_hash = ? AND preprocessing_version = ?')
    .get(photo.id, key.category, key.modelHash, PREPROCESSING_VERSION) as EmbeddingRow | undefined;
  if (own) return fromRow(own);
  if (!adoptShared) return null;
  // The same file in another subject with the same category already has one: share it.
  const embedding = cachedPhotoEmbedding(db, photo.sha256, key);
  if (!embedding) return null;
  storeEmbedding(db, photo.id, key, embedding);
  return embedding;
}

function storeEmbedding(db: Database, photoId: number, key: { category: string; modelHash: string }, embedding: SubjectEmbedding): void {
  db.prepare(
    `INSERT INTO photo_embeddings (photo_id, category, model_hash, preprocessing_version, dims_json, vector) VALUES (?, ?, ?, ?, ?, ?)
     ON CONFLICT (photo_id, category, model_hash, preprocessing_version) DO UPDATE SET dims_json = excluded.dims_json, vector = excluded.vector`,
  ).run(photoId, key.category, key.modelHash, PREPROCESSING_VERSION, JSON.stringify(embedding.dims), float32LittleEndian(embedding.data));
}

function fromRow(row: EmbeddingRow): SubjectEmbedding {
  const dims = JSON.parse(row.dims_json) as [1, number, number];
  const view = new DataView(row.vector.buffer, row.vector.byteOffset, row.vector.byteLength);
  const data = new Float32Array(row.vector.byteLength / 4);
  for (let i = 0; i < data.length; i++) data[i] = view.getFloat32(i * 4, true);
  return { dims, data };
}

/** The blob format: float32 little-endian, whatever the machine's byte order. */
function float32LittleEndian(data: Float32Array): Buffer {
  const bytes = Buffer.alloc(data.length * 4);
  for (let i = 0; i < data.length; i++) bytes.writeFloatLE(data[i]!, i * 4);
  return bytes;
}

function requireSubject(db: Database, subjectId: number): { name: string; category: string } {
  const row = db.prepare('SELECT name, category FROM subjects WHERE id = ? AND deleted_at IS NULL').get(subjectId) as { name: string; category: string } | undefined;
  if (!row) throw new StudioError('not-found', `No subject with id ${subjectId}: it may have been deleted.`);
  return row;
}

function subjectPhotos(db: Database, subjectId: number): PhotoKeyRow[] {
  return db.prepare('SELECT id, sha256, file_path, weight FROM photos WHERE subject_id = ? ORDER BY id').all(subjectId) as PhotoKeyRow[];
}

/** The whole step as the app and the CLI run it: fingerprint the model, record it, compute what is missing. */
export async function computeSubjectEmbeddingsWithEngine(
  db: Database,
  dataDir: string,
  context: EngineContext,
  model: ModelFolder,
  subjectId: number,
  options: ComputeEmbeddingsOptions = {},
): Promise<SubjectEmbeddingsResult & { modelHash: string }> {
  const modelHash = await modelFingerprint(model, { weightsCacheDir: join(context.cacheDir, 'weights'), ...(options.signal ? { signal: options.signal } : {}) });
  recordModelFingerprint(db, model, modelHash);
  const result = await computeSubjectEmbeddings(db, dataDir, { subjectId, modelHash, embed: engineEmbedder(context, model) }, options);
  return { ...result, modelHash };
}
