/**
 * Read and write access to the library (subjects, photos, generations, models, settings) over one
 * SQLite connection. SQL lives here and nowhere else; callers get contract DTOs.
 */
import type { Database } from 'better-sqlite3';
import type {
  GenerationQuery,
  GenerationSummary,
  LibraryCounts,
  ModelSummary,
  Settings,
  SettingsPatch,
  SubjectQuery,
  SubjectSummary,
} from '../api/contract';
import { openDatabase } from './database';
import { currentSchemaVersion } from './migrations';
import { readSettings, writeSettings } from './settings-store';

interface SubjectRow {
  id: number;
  name: string;
  category: string;
  note: string;
  cover_path: string | null;
  photo_count: number;
  created_at: string;
  updated_at: string;
}

interface GenerationRow {
  id: number;
  subject_id: number | null;
  prompt: string;
  seed: string;
  width: number;
  height: number;
  image_path: string;
  created_at: string;
}

export class LibraryStore {
  readonly #db: Database;

  private constructor(db: Database) {
    this.#db = db;
  }

  static open(dataDir: string): LibraryStore {
    return new LibraryStore(openDatabase(dataDir));
  }

  get schemaVersion(): number {
    return currentSchemaVersion(this.#db);
  }

  get sqliteVersion(): string {
    return (this.#db.prepare('SELECT sqlite_version() AS v').get() as { v: string }).v;
  }

  /** The connection itself, for the other library modules (subjects, embeddings); never for callers outside library/. */
  get connection(): Database {
    return this.#db;
  }

  get databaseFile(): string {
    return this.#db.name;
  }

  counts(): LibraryCounts {
    const count = (table: string): number => (this.#db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
    return { subjects: count('subjects'), photos: count('photos'), generations: count('generations'), models: count('models') };
  }

  listSubjects(query: SubjectQuery): SubjectSummary[] {
    const search = query.search?.trim() ?? '';
    const order = query.sort === 'name' ? 's.name COLLATE NOCASE ASC' : 's.updated_at DESC, s.id DESC';
    const rows = this.#db
      .prepare(
        `SELECT s.id, s.name, s.category, s.note, s.created_at, s.updated_at,
                coalesce(cover.thumb_path, cover.file_path) AS cover_path,
                (SELECT count(*) FROM photos p WHERE p.subject_id = s.id) AS photo_count
         FROM subjects s LEFT JOIN photos cover ON cover.id = s.cover_photo_id
         WHERE s.deleted_at IS NULL AND s.import_job_id IS NULL
           AND (:search = '' OR s.name LIKE :pattern ESCAPE '\\' OR s.category LIKE :pattern ESCAPE '\\')
         ORDER BY ${order}`,
      )
      .all({ search, pattern: `%${search.replace(/[\\%_]/g, (c) => `\\${c}`)}%` }) as SubjectRow[];
    return rows.map((r) => ({
      id: r.id,
      name: r.name,
      category: r.category,
      note: r.note,
      coverPath: r.cover_path,
      photoCount: r.photo_count,
      createdAt: r.created_at,
      updatedAt: r.updated_at,
    }));
  }

  listGenerations(query: GenerationQuery): GenerationSummary[] {
    const rows = this.#db
      .prepare(
        `SELECT id, subject_id, prompt, coalesce(json_extract(recipe_json, '$.seed'), CAST(seed AS TEXT)) AS seed, width, height, image_path, created_at FROM generations
         WHERE (:subjectId IS NULL OR subject_id = :subjectId)
         ORDER BY created_at DESC, id DESC LIMIT :limit`,
      )
      .all({ subjectId: query.subjectId ?? null, limit: query.limit ?? 200 }) as GenerationRow[];
    return rows.map((r) => ({
      id: r.id,
      subjectId: r.subject_id,
      prompt: r.prompt,
      seed: String(r.seed),
      width: r.width,
      height: r.height,
      imagePath: r.image_path,
      createdAt: r.created_at,
    }));
  }

  listModels(): ModelSummary[] {
    return this.#db.prepare('SELECT id, name, kind, folder, status, hash FROM models ORDER BY name').all() as ModelSummary[];
  }

  getSettings(): Settings {
    return readSettings(this.#db);
  }

  updateSettings(patch: SettingsPatch): Settings {
    return writeSettings(this.#db, patch);
  }

  close(): void {
    if (this.#db.open) this.#db.close();
  }
}
