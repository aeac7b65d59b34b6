/**
 * Versioned schema migrations for the library database. Each migration runs in its own transaction
 * together with the row that records it in `schema_version`, so a crash leaves either the old or the
 * new schema, never half of one. A database written by a newer app version is refused, not touched.
 */
import type { Database } from 'better-sqlite3';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** Append-only: never edit a released migration, add the next one. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'subjects, photos, generations, models, settings',
    sql: `
      CREATE TABLE subjects (
        id          INTEGER PRIMARY KEY,
        name        TEXT NOT NULL CHECK (length(trim(name)) > 0),
        category    TEXT NOT NULL CHECK (length(trim(category)) > 0),
        note        TEXT NOT NULL DEFAULT '',
        cover_photo_id INTEGER REFERENCES photos(id) ON DELETE SET NULL,
        created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
        updated_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
      );
      CREATE INDEX subjects_name ON subjects (name COLLATE NOCASE);

      -- The image file itself lives content-addressed in the data folder (photos/<sha256[0:2]>/<sha256>.<ext>).
      CREATE TABLE photos (
        id          INTEGER PRIMARY KEY,
        subject_id  INTEGER NOT NULL REFERENCES subjects(id) ON DELETE CASCADE,
        sha256      TEXT NOT NULL CHECK (length(sha256) = 64),
        file_path   TEXT NOT NULL,
        thumb_path  TEXT,
        width       INTEGER NOT NULL CHECK (width > 0),
        height      INTEGER NOT NULL CHECK (height > 0),
        bytes       INTEGER NOT NULL CHECK (bytes > 0),
        weight      REAL NOT NULL DEFAULT 1.0 CHECK (weight >= 0),
        created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
        UNIQUE (subject_id, sha256)
      );
      CREATE INDEX photos_subject ON photos (subject_id);

      CREATE TABLE models (
        id          INTEGER PRIMARY KEY,
        name        TEXT NOT NULL,
        kind        TEXT NOT NULL CHECK (kind IN ('blipdiffusion', 'controlnet')),
        folder      TEXT NOT NULL UNIQUE,
        hash        TEXT,
        status      TEXT NOT NULL CHECK (status IN ('ready', 'downloading', 'converting', 'invalid')),
        created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
      );

      CREATE TABLE generations (
        id          INTEGER PRIMARY KEY,
        subject_id  INTEGER REFERENCES subjects(id) ON DELETE SET NULL,
        model_id    INTEGER REFERENCES models(id) ON DELETE SET NULL,
        parent_id   INTEGER REFERENCES generations(id) ON DELETE SET NULL,
        recipe_json TEXT NOT NULL CHECK (json_valid(recipe_json)),
        prompt      TEXT NOT NULL,
        seed        INTEGER NOT NULL,
        width       INTEGER NOT NULL CHECK (width > 0),
        height      INTEGER NOT NULL CHECK (height > 0),
        image_path  TEXT NOT NULL,
        created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
      );
      CREATE INDEX generations_subject ON generations (subject_id, created_at);
      CREATE INDEX generations_created ON generations (created_at);

      CREATE TABLE settings (
        key         TEXT PRIMARY KEY,
        value_json  TEXT NOT NULL CHECK (json_valid(value_json))
      );
    `,
  },
  {
    version: 2,
    name: 'subject library: undoable delete, photo details, embeddings cache, job journal',
    sql: `
      -- Soft delete (undo for a few seconds); purged rows and files go for good afterwards.
      ALTER TABLE subjects ADD COLUMN deleted_at TEXT;
      -- Set while the photos of a new subject are being imported: the subject stays hidden, and an
      -- import interrupted by a crash is rolled back at the next start instead of leaving half a subject.
      ALTER TABLE subjects ADD COLUMN import_job_id TEXT;
      CREATE INDEX subjects_visible ON subjects (deleted_at, import_job_id);

      ALTER TABLE photos ADD COLUMN original_name TEXT NOT NULL DEFAULT '';
      -- The EXIF orientation of the stored original (1-8); width/height are after applying it.
      ALTER TABLE photos ADD COLUMN orientation INTEGER NOT NULL DEFAULT 1 CHECK (orientation BETWEEN 1 AND 8);
      CREATE INDEX photos_sha256 ON photos (sha256);

      -- One subject embedding per photo, model and preprocessing. The Q-Former reads the category word
      -- too, so it is part of the key: renaming the category invalidates the cached rows.
      CREATE TABLE photo_embeddings (
        id                    INTEGER PRIMARY KEY,
        photo_id              INTEGER NOT NULL REFERENCES photos(id) ON DELETE CASCADE,
        category              TEXT NOT NULL,
        model_hash            TEXT NOT NULL CHECK (length(model_hash) = 64),
        preprocessing_version INTEGER NOT NULL,
        dims_json             TEXT NOT NULL CHECK (json_valid(dims_json)),
        vector                BLOB NOT NULL,
        created_at            TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
        UNIQUE (photo_id, category, model_hash, preprocessing_version)
      );
      CREATE INDEX photo_embeddings_model ON photo_embeddings (model_hash);

      -- Long library work (imports, embeddings) is journalled, so a job cut short by a crash is found at
      -- the next start and marked failed instead of silently vanishing.
      CREATE TABLE job_runs (
        id          TEXT PRIMARY KEY,
        kind        TEXT NOT NULL,
        label       TEXT NOT NULL,
        subject_id  INTEGER REFERENCES subjects(id) ON DELETE SET NULL,
        state       TEXT NOT NULL CHECK (state IN ('running', 'done', 'failed', 'cancelled')),
        step        INTEGER NOT NULL DEFAULT 0,
        total_steps INTEGER NOT NULL DEFAULT 0,
        message     TEXT NOT NULL DEFAULT '',
        pid         INTEGER NOT NULL,
        started_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
        finished_at TEXT
      );
      CREATE INDEX job_runs_state ON job_runs (state);
    `,
  },
  {
    version: 3,
    name: 'models: the bundled demo model',
    sql: `
      -- The bundled tiny model moves with the app (its folder changes on update), so it is found by this flag, not by path.
      ALTER TABLE models ADD COLUMN is_demo INTEGER NOT NULL DEFAULT 0 CHECK (is_demo IN (0, 1));
    `,
  },
  {
    version: 4,
    name: 'generations: deletion with undo',
    sql: `
      -- A deleted result stays (row and file) for the undo window, then is purged for good.
      ALTER TABLE generations ADD COLUMN deleted_at TEXT;
      CREATE INDEX generations_deleted ON generations (deleted_at);
    `,
  },
  {
    version: 5,
    name: 'adapters: quick fine-tunes and imported style LoRAs',
    sql: `
      -- A fine-tune (kind 'finetune': its subject, the trained embedding and the photos' mean it started
      -- from) or an imported LoRA (kind 'style': no subject, no embedding). The LoRA is kept as the
      -- diffusers pytorch_lora_weights.safetensors bytes, so export hands out exactly this blob.
      -- sha256 is over the blobs' content (adapter-content.ts): recipes name an adapter by it.
      -- A row is written once, whole, when its job completes; deletion is undoable for a few seconds.
      CREATE TABLE adapters (
        id                INTEGER PRIMARY KEY,
        kind              TEXT NOT NULL CHECK (kind IN ('finetune', 'style')),
        subject_id        INTEGER REFERENCES subjects(id) ON DELETE CASCADE,
        name              TEXT NOT NULL CHECK (length(trim(name)) > 0),
        model_hash        TEXT NOT NULL CHECK (length(model_hash) = 64),
        model_name        TEXT NOT NULL,
        sha256            TEXT NOT NULL CHECK (length(sha256) = 64),
        rank              INTEGER NOT NULL CHECK (rank > 0),
        settings_json     TEXT NOT NULL CHECK (json_valid(settings_json)),
        losses_json       TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(losses_json)),
        final_loss        REAL,
        lora              BLOB NOT NULL,
        embedding         BLOB,
        initial_embedding BLOB,
        embedding_dims_json TEXT CHECK (embedding_dims_json IS NULL OR json_valid(embedding_dims_json)),
        created_at        TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
        deleted_at        TEXT,
        CHECK ((kind = 'finetune') = (subject_id IS NOT NULL AND embedding IS NOT NULL AND initial_embedding IS NOT NULL))
      );
      CREATE INDEX adapters_subject ON adapters (subject_id, created_at);
      CREATE INDEX adapters_sha256 ON adapters (sha256);
    `,
  },
  {
    version: 6,
    name: 'control models: ControlNets on their own and depth estimators',
    sql: `
      -- A folder checked and fingerprinted when added (control-model-folder.ts); recipes name a
      -- ControlNet by hash. conditioning says what a ControlNet was trained on (from its name).
      CREATE TABLE control_models (
        id           INTEGER PRIMARY KEY,
        name         TEXT NOT NULL CHECK (length(trim(name)) > 0),
        kind         TEXT NOT NULL CHECK (kind IN ('controlnet', 'depth-estimator')),
        conditioning TEXT NOT NULL CHECK (conditioning IN ('canny', 'depth', 'other')),
        folder       TEXT NOT NULL UNIQUE,
        hash         TEXT NOT NULL CHECK (length(hash) = 64),
        created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
      );
    `,
  },
];

export const LATEST_SCHEMA_VERSION = Math.max(...MIGRATIONS.map((m) => m.version));

export class DatabaseTooNewError extends Error {
  constructor(readonly found: number, readonly known: number, file: string) {
    super(
      `The library at ${file} was written by a newer BLIP Studio (schema version ${found}; this version knows up to ${known}). ` +
        'Update BLIP Studio, or choose another data folder. Nothing was changed.',
    );
    this.name = 'DatabaseTooNewError';
  }
}

/** The highest applied version, 0 for a new database. */
export function currentSchemaVersion(db: Database): number {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_version (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
  )`);
  const row = db.prepare('SELECT max(version) AS version FROM schema_version').get() as { version: number | null };
  return row.version ?? 0;
}

/** Applies every pending migration in order; returns the versions applied. */
export function migrate(db: Database, migrations: readonly Migration[] = MIGRATIONS): number[] {
  const known = Math.max(0, ...migrations.map((m) => m.version));
  const current = currentSchemaVersion(db);
  if (current > known) throw new DatabaseTooNewError(current, known, db.name);
  const applied: number[] = [];
  for (const migration of [...migrations].sort((a, b) => a.version - b.version)) {
    if (migration.version <= current) continue;
    db.transaction(() => {
      db.exec(migration.sql);
      db.prepare('INSERT INTO schema_version (version, name) VALUES (?, ?)').run(migration.version, migration.name);
    }).immediate();
    applied.push(migration.version);
  }
  return applied;
}
