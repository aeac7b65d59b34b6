/**
 * Read and write access to the library (subjects, photos, generations, models, settings) over one
 * SQLite connection. SQL lives here and nowhere else; callers get contract DTOs.
 */
import type { Database } from 'better-sqlite3';
import type {
  LibraryCounts,
  ModelKind,
  ModelStatus,
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

interface ModelRow {
  id: number;
  name: string;
  kind: ModelKind;
  folder: string;
  status: ModelStatus;
  hash: string | null;
  is_demo: number;
}

/** A model to register: the folder's pipeline decides the kind. */
export interface ModelRegistration {
  name: string;
  kind: ModelKind;
  folder: string;
}

const MODEL_COLUMNS = 'id, name, kind, folder, status, hash, is_demo';

function toModelSummary(row: ModelRow): ModelSummary {
  return {
    id: row.id,
    name: row.name,
    kind: row.kind,
    folder: row.folder,
    status: row.status,
    hash: row.hash,
    isDemo: row.is_demo === 1,
    hasControlNet: row.kind === 'controlnet',
  };
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
    const count = (sql: string): number => (this.#db.prepare(`SELECT count(*) AS n FROM ${sql}`).get() as { n: number }).n;
    // What the user sees: nothing deleted (still undoable) or half-imported.
    const visibleSubjects = 'subjects WHERE deleted_at IS NULL AND import_job_id IS NULL';
    return {
      subjects: count(visibleSubjects),
      photos: count(`photos WHERE subject_id IN (SELECT id FROM ${visibleSubjects})`),
      generations: count('generations WHERE deleted_at IS NULL'),
      models: count('models'),
    };
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

  listModels(): ModelSummary[] {
    return (this.#db.prepare(`SELECT ${MODEL_COLUMNS} FROM models ORDER BY is_demo ASC, name COLLATE NOCASE`).all() as ModelRow[]).map(toModelSummary);
  }

  getModel(id: number): ModelSummary | null {
    const row = this.#db.prepare(`SELECT ${MODEL_COLUMNS} FROM models WHERE id = ?`).get(id) as ModelRow | undefined;
    return row ? toModelSummary(row) : null;
  }

  /** Drops a model's row (generations keep their recipe; their model_id becomes NULL). Returns false when unknown. */
  removeModel(id: number): boolean {
    return this.#db.prepare('DELETE FROM models WHERE id = ? AND is_demo = 0').run(id).changes > 0;
  }

  /** The model a generation uses when none is chosen: the first ready real model, else the demo. */
  defaultModel(): ModelSummary | null {
    const row = this.#db.prepare(`SELECT ${MODEL_COLUMNS} FROM models WHERE status = 'ready' ORDER BY is_demo ASC, id ASC LIMIT 1`).get() as ModelRow | undefined;
    return row ? toModelSummary(row) : null;
  }

  /**
   * Registers the bundled demo model once; when the app moved (an update, another install folder) the
   * existing row follows the new folder, keeping its id so generations still point at it.
   * Returns true when a row was added or changed.
   */
  registerDemoModel(model: ModelRegistration): boolean {
    return this.#db.transaction(() => {
      const existing = this.#db.prepare('SELECT id, folder FROM models WHERE is_demo = 1 ORDER BY id LIMIT 1').get() as { id: number; folder: string } | undefined;
      if (existing?.folder === model.folder) return false;
      // A row for the same folder may exist already (the CLI's embed command records the folders it used).
      const sameFolder = this.#db.prepare('SELECT id FROM models WHERE folder = ?').get(model.folder) as { id: number } | undefined;
      if (existing && !sameFolder) {
        this.#db.prepare("UPDATE models SET folder = ?, kind = ?, hash = NULL, status = 'ready' WHERE id = ?").run(model.folder, model.kind, existing.id);
      } else if (sameFolder) {
        this.#db.prepare("UPDATE models SET is_demo = 1, name = ?, kind = ?, status = 'ready' WHERE id = ?").run(model.name, model.kind, sameFolder.id);
        if (existing) this.#db.prepare('UPDATE models SET is_demo = 0 WHERE id = ?').run(existing.id);
      } else {
        this.#db.prepare("INSERT INTO models (name, kind, folder, status, is_demo) VALUES (?, ?, ?, 'ready', 1)").run(model.name, model.kind, model.folder);
      }
      return true;
    })();
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
