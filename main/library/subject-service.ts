/**
 * The subject library: create a subject from photos, edit it, weight its photos, delete it with a few
 * seconds of undo, and purge what is gone for good (rows and the files no row uses any more).
 *
 * Crash safety: photo files are written (atomically) before their rows; a new subject stays hidden
 * while its photos are imported and its import is journalled, so after a crash `recoverInterruptedWork`
 * marks the job failed, removes the half-imported subject and sweeps files no row names.
 */
import type { Database } from 'better-sqlite3';
import type { NewSubject, PhotoWeightsUpdate, RejectedPhoto, SubjectDeletion, SubjectDetail, SubjectPhoto, SubjectUpdate } from '../api/contract';
import { StudioError } from '../api/studio-error';
import { failInterruptedJobRuns, hasLiveJobRuns, updateJobRun, withJobRun, type JobRun } from './job-journal';
import { photoFilePath, removeUnreferencedPhotoFiles, storeContentFile, sweepOrphanPhotoFiles, thumbFilePath } from './photo-files';
import { preparePhoto, sourceName, type PhotoSource } from './photo-import';

/** The "1-10 photos": more adds little to a mean embedding and slows every recomputation. */
export const MAX_PHOTOS_PER_SUBJECT = 10;
/** How long a deleted subject can be brought back. */
export const UNDO_WINDOW_MS = 8_000;

export interface ImportProgress {
  done: number;
  total: number;
  name: string;
}

export interface ImportOptions {
  signal?: AbortSignal;
  onProgress?: (progress: ImportProgress) => void;
}

export interface PhotoImportResult {
  added: SubjectPhoto[];
  rejected: RejectedPhoto[];
}

export interface NewSubjectResult extends PhotoImportResult {
  subject: SubjectDetail;
}

export interface RecoveryReport {
  failedJobs: JobRun[];
  removedSubjects: number;
  removedFiles: string[];
}

interface SubjectRow {
  id: number;
  name: string;
  category: string;
  note: string;
  cover_photo_id: number | null;
  created_at: string;
  updated_at: string;
  deleted_at: string | null;
  import_job_id: string | null;
}

interface PhotoRow {
  id: number;
  subject_id: number;
  sha256: string;
  file_path: string;
  thumb_path: string | null;
  width: number;
  height: number;
  bytes: number;
  weight: number;
  original_name: string;
  orientation: number;
  created_at: string;
}

const NOW = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";

export class SubjectService {
  constructor(
    private readonly db: Database,
    private readonly dataDir: string,
  ) {}

  /** Creates an empty subject, visible at once (the UI adds photos next). */
  createSubject(subject: NewSubject): SubjectDetail {
    const id = this.#insertSubject(subject, null);
    return this.getSubject(id);
  }

  /**
   * Creates a subject from photo files in one journalled job: each photo is accepted or refused with a
   * reason; the subject appears only once its photos are in, and not at all when none is usable.
   */
  async importSubject(subject: NewSubject, sources: readonly PhotoSource[], options: ImportOptions = {}): Promise<NewSubjectResult> {
    return withJobRun(
      this.db,
      { kind: 'subject-import', label: `Import photos of ${subject.name.trim()}`, totalSteps: sources.length },
      async (jobId) => {
        let subjectId: number | null = null;
        try {
          subjectId = this.#insertSubject(subject, jobId);
          this.db.prepare('UPDATE job_runs SET subject_id = ? WHERE id = ?').run(subjectId, jobId);
          const result = await this.#importPhotos(subjectId, sources, {
            ...options,
            onProgress: (progress) => {
              updateJobRun(this.db, jobId, progress.done, progress.total, `Imported ${progress.name}`);
              options.onProgress?.(progress);
            },
          });
          if (result.added.length === 0) {
            const reasons = result.rejected.map((r) => `${r.name}: ${r.reason}`).join('; ');
            throw new StudioError('invalid-request', `None of the photos could be used, so no subject was created. ${reasons || 'No photos were given.'}`);
          }
          this.db.prepare(`UPDATE subjects SET import_job_id = NULL, updated_at = ${NOW} WHERE id = ?`).run(subjectId);
          return { ...result, subject: this.getSubject(subjectId) };
        } catch (error) {
          if (subjectId !== null) this.#purgeSubjects([subjectId]);
          throw error;
        }
      },
      (result) => `Imported ${result.added.length} photos, refused ${result.rejected.length}`,
      options.signal,
    );
  }

  /** Adds photos to an existing subject; duplicates and unreadable files are refused one by one. */
  async addPhotos(subjectId: number, sources: readonly PhotoSource[], options: ImportOptions = {}): Promise<PhotoImportResult> {
    const subject = this.#requireSubject(subjectId);
    // Journaled like an import: while it runs, another process's start-up sweep leaves its files alone,
    // and a crash shows up as an interrupted job (whatever photos were committed stay, whole).
    return withJobRun(
      this.db,
      { kind: 'photo-add', label: `Add photos to ${subject.name}`, subjectId, totalSteps: sources.length },
      async () => {
        const result = await this.#importPhotos(subjectId, sources, options);
        if (result.added.length > 0) this.#touch(subjectId);
        return result;
      },
      (result) => `Added ${result.added.length} photos, refused ${result.rejected.length}`,
      options.signal,
    );
  }

  getSubject(id: number): SubjectDetail {
    const row = this.#requireSubject(id);
    return this.#detail(row);
  }

  /** A subject by id, or by its name (case-insensitive) when that names exactly one. */
  resolveSubject(nameOrId: string): SubjectDetail {
    const visible = 'deleted_at IS NULL AND import_job_id IS NULL';
    if (/^\d+$/.test(nameOrId)) {
      const byId = this.db.prepare(`SELECT * FROM subjects WHERE id = ? AND ${visible}`).get(Number(nameOrId)) as SubjectRow | undefined;
      if (byId) return this.#detail(byId);
    }
    const rows = this.db.prepare(`SELECT * FROM subjects WHERE name = ? COLLATE NOCASE AND ${visible} ORDER BY id`).all(nameOrId.trim()) as SubjectRow[];
    if (rows.length === 1) return this.#detail(rows[0]!);
    if (rows.length === 0) throw new StudioError('not-found', `No subject is called "${nameOrId}": list them with \`subjects list\`.`);
    throw new StudioError('conflict', `${rows.length} subjects are called "${nameOrId}" (ids ${rows.map((r) => r.id).join(', ')}): give the id instead.`);
  }

  updateSubject(update: SubjectUpdate): SubjectDetail {
    this.#requireSubject(update.id);
    const changes: string[] = [];
    const values: (string | number)[] = [];
    const text = (field: 'name' | 'category', value: string | undefined): void => {
      if (value === undefined) return;
      if (value.trim() === '') throw new StudioError('invalid-request', `The subject's ${field} cannot be empty.`);
      changes.push(`${field} = ?`);
      values.push(value.trim());
    };
    text('name', update.name);
    text('category', update.category);
    if (update.note !== undefined) {
      changes.push('note = ?');
      values.push(update.note.trim());
    }
    if (update.coverPhotoId !== undefined) {
      const photo = this.db.prepare('SELECT 1 FROM photos WHERE id = ? AND subject_id = ?').get(update.coverPhotoId, update.id);
      if (!photo) throw new StudioError('not-found', `Photo ${update.coverPhotoId} is not a photo of this subject, so it cannot be its cover.`);
      changes.push('cover_photo_id = ?');
      values.push(update.coverPhotoId);
    }
    if (changes.length > 0) this.db.prepare(`UPDATE subjects SET ${changes.join(', ')}, updated_at = ${NOW} WHERE id = ?`).run(...values, update.id);
    return this.getSubject(update.id);
  }

  removePhotos(subjectId: number, photoIds: readonly number[]): SubjectDetail {
    this.#requireSubject(subjectId);
    const rows = photoIds.map((photoId) => {
      const row = this.db.prepare('SELECT * FROM photos WHERE id = ? AND subject_id = ?').get(photoId, subjectId) as PhotoRow | undefined;
      if (!row) throw new StudioError('not-found', `Photo ${photoId} is not a photo of this subject.`);
      return row;
    });
    this.db.transaction(() => {
      const remove = this.db.prepare('DELETE FROM photos WHERE id = ?');
      for (const row of rows) remove.run(row.id);
      this.#repairCover(subjectId);
      this.#touch(subjectId);
    })();
    removeUnreferencedPhotoFiles(this.db, this.dataDir, rows.map(toFileRef));
    return this.getSubject(subjectId);
  }

  setPhotoWeights(update: PhotoWeightsUpdate): SubjectDetail {
    this.#requireSubject(update.subjectId);
    for (const { photoId, weight } of update.weights) {
      if (!(weight >= 0) || !Number.isFinite(weight)) throw new StudioError('invalid-request', `Photo weights must be 0 or more, got ${weight} for photo ${photoId}.`);
    }
    const current = this.#photos(update.subjectId);
    const next = new Map(current.map((p) => [p.id, p.weight]));
    for (const { photoId, weight } of update.weights) {
      if (!next.has(photoId)) throw new StudioError('not-found', `Photo ${photoId} is not a photo of this subject.`);
      next.set(photoId, weight);
    }
    if (next.size > 0 && [...next.values()].every((w) => w === 0)) {
      throw new StudioError('invalid-request', 'At least one photo needs a weight above 0: the subject is their weighted mean.');
    }
    this.db.transaction(() => {
      const set = this.db.prepare('UPDATE photos SET weight = ? WHERE id = ? AND subject_id = ?');
      for (const { photoId, weight } of update.weights) set.run(weight, photoId, update.subjectId);
      this.#touch(update.subjectId);
    })();
    return this.getSubject(update.subjectId);
  }

  /** Hides the subject; it can be brought back for UNDO_WINDOW_MS, then `purgeDeletedSubjects` removes it. */
  deleteSubject(id: number, now = Date.now()): SubjectDeletion {
    this.#requireSubject(id);
    const deletedAt = new Date(now).toISOString();
    this.db.prepare('UPDATE subjects SET deleted_at = ? WHERE id = ?').run(deletedAt, id);
    return { id, undoUntil: new Date(now + UNDO_WINDOW_MS).toISOString() };
  }

  /** Deletes a subject for good at once, without the undo window (the CLI has no undo). */
  deleteSubjectNow(id: number): void {
    this.#requireSubject(id);
    this.#purgeSubjects([id]);
  }

  undoDeleteSubject(id: number): SubjectDetail {
    const restored = this.db.prepare('UPDATE subjects SET deleted_at = NULL WHERE id = ? AND deleted_at IS NOT NULL AND import_job_id IS NULL').run(id);
    if (restored.changes === 0) {
      throw new StudioError('not-found', `Subject ${id} cannot be brought back: it was not deleted, or the few seconds to undo have passed.`);
    }
    return this.getSubject(id);
  }

  /** Removes for good the subjects deleted before `now − olderThanMs` (0: all deleted ones). */
  purgeDeletedSubjects(olderThanMs = UNDO_WINDOW_MS, now = Date.now()): number {
    const cutoff = new Date(now - olderThanMs).toISOString();
    const ids = (this.db.prepare('SELECT id FROM subjects WHERE deleted_at IS NOT NULL AND deleted_at <= ?').all(cutoff) as { id: number }[]).map((r) => r.id);
    this.#purgeSubjects(ids);
    return ids.length;
  }

  /**
   * After a crash: jobs whose process is gone are marked failed, subjects they were importing are
   * removed, expired deletions purged, and (when no other process is working) unreferenced files swept.
   */
  recoverInterruptedWork(): RecoveryReport {
    const startedAtMs = Date.now();
    const failedJobs = failInterruptedJobRuns(this.db);
    const orphans = (
      this.db
        .prepare(
          `SELECT s.id FROM subjects s LEFT JOIN job_runs j ON j.id = s.import_job_id
           WHERE s.import_job_id IS NOT NULL AND (j.id IS NULL OR j.state != 'running')`,
        )
        .all() as { id: number }[]
    ).map((r) => r.id);
    this.#purgeSubjects(orphans);
    this.purgeDeletedSubjects();
    const removedFiles = hasLiveJobRuns(this.db) ? [] : sweepOrphanPhotoFiles(this.db, this.dataDir, startedAtMs);
    return { failedJobs, removedSubjects: orphans.length, removedFiles };
  }

  #insertSubject(subject: NewSubject, importJobId: string | null): number {
    const name = subject.name.trim();
    const category = subject.category.trim();
    if (name === '') throw new StudioError('invalid-request', 'Give the subject a name.');
    if (category === '') throw new StudioError('invalid-request', 'Give the subject a category word, such as "dog" or "backpack".');
    const result = this.db
      .prepare('INSERT INTO subjects (name, category, note, import_job_id) VALUES (?, ?, ?, ?)')
      .run(name, category, (subject.note ?? '').trim(), importJobId);
    return Number(result.lastInsertRowid);
  }

  async #importPhotos(subjectId: number, sources: readonly PhotoSource[], options: ImportOptions): Promise<PhotoImportResult> {
    const added: SubjectPhoto[] = [];
    const rejected: RejectedPhoto[] = [];
    const namesBySha = new Map(this.#photos(subjectId).map((p) => [p.sha256, p.originalName || `photo ${p.id}`]));
    const insert = this.db.prepare(
      `INSERT INTO photos (subject_id, sha256, file_path, thumb_path, width, height, bytes, original_name, orientation)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    for (const [index, source] of sources.entries()) {
      options.signal?.throwIfAborted();
      const prepared = await preparePhoto(source);
      options.signal?.throwIfAborted();
      if (!prepared.ok) {
        rejected.push(prepared.rejected);
      } else {
        const photo = prepared.photo;
        const earlier = namesBySha.get(photo.sha256);
        if (earlier !== undefined) {
          rejected.push({ name: photo.name, reason: `it is the same photo as ${earlier}, already in this subject` });
        } else if (namesBySha.size >= MAX_PHOTOS_PER_SUBJECT) {
          rejected.push({ name: photo.name, reason: `a subject holds at most ${MAX_PHOTOS_PER_SUBJECT} photos` });
        } else {
          const filePath = photoFilePath(photo.sha256, photo.extension);
          const thumbPath = thumbFilePath(photo.sha256);
          // Files first, row second: a crash in between leaves only an unreferenced file to sweep.
          storeContentFile(this.dataDir, filePath, photo.bytes);
          storeContentFile(this.dataDir, thumbPath, photo.thumbnail);
          const id = this.db.transaction(() => {
            const row = insert.run(subjectId, photo.sha256, filePath, thumbPath, photo.width, photo.height, photo.bytes.length, photo.name, photo.orientation);
            this.db.prepare('UPDATE subjects SET cover_photo_id = coalesce(cover_photo_id, ?) WHERE id = ?').run(row.lastInsertRowid, subjectId);
            return Number(row.lastInsertRowid);
          })();
          namesBySha.set(photo.sha256, photo.name);
          added.push(this.#photo(id));
        }
      }
      options.onProgress?.({ done: index + 1, total: sources.length, name: sourceName(source) });
    }
    return { added, rejected };
  }

  /** Deletes subjects with everything that hangs on them (cascade), then the files nothing uses now. */
  #purgeSubjects(ids: readonly number[]): void {
    if (ids.length === 0) return;
    const files = ids.flatMap((id) => (this.db.prepare('SELECT * FROM photos WHERE subject_id = ?').all(id) as PhotoRow[]).map(toFileRef));
    this.db.transaction(() => {
      const remove = this.db.prepare('DELETE FROM subjects WHERE id = ?');
      for (const id of ids) remove.run(id);
    })();
    removeUnreferencedPhotoFiles(this.db, this.dataDir, files);
  }

  #requireSubject(id: number): SubjectRow {
    const row = this.db.prepare('SELECT * FROM subjects WHERE id = ? AND deleted_at IS NULL AND import_job_id IS NULL').get(id) as SubjectRow | undefined;
    if (!row) throw new StudioError('not-found', `No subject with id ${id}: it may have been deleted.`);
    return row;
  }

  #repairCover(subjectId: number): void {
    this.db
      .prepare(
        `UPDATE subjects SET cover_photo_id = (SELECT id FROM photos WHERE subject_id = :id ORDER BY id LIMIT 1)
         WHERE id = :id AND (cover_photo_id IS NULL OR cover_photo_id NOT IN (SELECT id FROM photos WHERE subject_id = :id))`,
      )
      .run({ id: subjectId });
  }

  #touch(subjectId: number): void {
    this.db.prepare(`UPDATE subjects SET updated_at = ${NOW} WHERE id = ?`).run(subjectId);
  }

  #photos(subjectId: number): SubjectPhoto[] {
    return (this.db.prepare('SELECT * FROM photos WHERE subject_id = ? ORDER BY id').all(subjectId) as PhotoRow[]).map(toPhoto);
  }

  #photo(id: number): SubjectPhoto {
    return toPhoto(this.db.prepare('SELECT * FROM photos WHERE id = ?').get(id) as PhotoRow);
  }

  #detail(row: SubjectRow): SubjectDetail {
    const photos = this.#photos(row.id);
    const cover = photos.find((p) => p.id === row.cover_photo_id);
    return {
      id: row.id,
      name: row.name,
      category: row.category,
      note: row.note,
      coverPath: cover ? (cover.thumbPath ?? cover.filePath) : null,
      photoCount: photos.length,
      createdAt: row.created_at,
      updatedAt: row.updated_at,
      coverPhotoId: row.cover_photo_id,
      photos,
    };
  }
}

function toPhoto(row: PhotoRow): SubjectPhoto {
  return {
    id: row.id,
    sha256: row.sha256,
    filePath: row.file_path,
    thumbPath: row.thumb_path,
    width: row.width,
    height: row.height,
    bytes: row.bytes,
    weight: row.weight,
    originalName: row.original_name,
    orientation: row.orientation,
    createdAt: row.created_at,
  };
}

function toFileRef(row: PhotoRow): { sha256: string; filePath: string; thumbPath: string | null } {
  return { sha256: row.sha256, filePath: row.file_path, thumbPath: row.thumb_path };
}
