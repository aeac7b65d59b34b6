import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import BetterSqlite3 from 'better-sqlite3';
import { statSync } from 'node:fs';
import { openDatabase, databasePath } from '../../main/library/database';
import { DatabaseTooNewError, LATEST_SCHEMA_VERSION, migrate, currentSchemaVersion } from '../../main/library/migrations';
import { GenerationsStore } from '../../main/gallery/generations-store';
import { LibraryStore } from '../../main/library/library-store';
import { DEFAULT_SETTINGS } from '../../main/library/settings-store';
import { makeTempDir } from '../helpers/temp-dir';

let dir: ReturnType<typeof makeTempDir>;
beforeEach(() => {
  dir = makeTempDir();
});
afterEach(() => dir.remove());

/** A second, independent connection to the same file, as another process would see it. */
function rawConnection(): BetterSqlite3.Database {
  const db = new BetterSqlite3(databasePath(dir.path));
  db.pragma('foreign_keys = ON');
  return db;
}

describe('library database', () => {
  it('opens in WAL mode with foreign keys on and every migration applied', () => {
    const db = openDatabase(dir.path);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('foreign_keys', { simple: true })).toBe(1);
    expect(currentSchemaVersion(db)).toBe(LATEST_SCHEMA_VERSION);
    const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((t) => t.name);
    expect(tables).toEqual(expect.arrayContaining(['subjects', 'photos', 'generations', 'models', 'settings', 'schema_version']));
    db.close();
    // Reopening applies nothing new.
    const again = openDatabase(dir.path);
    expect(migrate(again)).toEqual([]);
    again.close();
  });

  it('refuses a database written by a newer app version and leaves it untouched', () => {
    openDatabase(dir.path).close();
    const raw = rawConnection();
    raw.prepare('INSERT INTO schema_version (version, name) VALUES (?, ?)').run(LATEST_SCHEMA_VERSION + 7, 'from the future');
    raw.pragma('wal_checkpoint(TRUNCATE)');
    raw.close();
    const before = statSync(databasePath(dir.path)).mtimeMs;

    expect(() => openDatabase(dir.path)).toThrow(DatabaseTooNewError);
    expect(() => openDatabase(dir.path)).toThrow(/newer BLIP Studio .*schema version \d+; this version knows up to \d+/);
    expect(statSync(databasePath(dir.path)).mtimeMs).toBe(before);
  });

  it('runs each migration in one transaction: a failing migration leaves the previous schema', () => {
    const db = new BetterSqlite3(databasePath(dir.path));
    const migrations = [
      { version: 1, name: 'first', sql: 'CREATE TABLE a (x INTEGER);' },
      { version: 2, name: 'broken', sql: 'CREATE TABLE b (y INTEGER); INSERT INTO no_such_table VALUES (1);' },
    ];
    expect(() => migrate(db, migrations)).toThrow(/no_such_table/);
    expect(currentSchemaVersion(db)).toBe(1);
    const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((t) => t.name);
    expect(tables).toContain('a');
    expect(tables).not.toContain('b');
    db.close();
  });

  it('deletes a subject’s photos with it and keeps its generations without the link', () => {
    const store = LibraryStore.open(dir.path);
    const raw = rawConnection();
    const subject = raw.prepare("INSERT INTO subjects (name, category) VALUES ('Rex', 'dog')").run().lastInsertRowid;
    raw
      .prepare('INSERT INTO photos (subject_id, sha256, file_path, width, height, bytes) VALUES (?, ?, ?, 10, 10, 100)')
      .run(subject, 'a'.repeat(64), 'photos/aa/a.png');
    raw
      .prepare("INSERT INTO generations (subject_id, recipe_json, prompt, seed, width, height, image_path) VALUES (?, '{}', 'p', 1, 8, 8, 'g.png')")
      .run(subject);
    expect(store.counts()).toEqual({ subjects: 1, photos: 1, generations: 1, models: 0 });

    raw.prepare('DELETE FROM subjects WHERE id = ?').run(subject);
    expect(store.counts()).toEqual({ subjects: 0, photos: 0, generations: 1, models: 0 });
    expect(new GenerationsStore(store.connection, dir.path).listSummaries({})[0]?.subjectId).toBeNull();
    raw.close();
    store.close();
  });

  it('rejects rows that break the schema’s checks', () => {
    openDatabase(dir.path).close();
    const raw = rawConnection();
    expect(() => raw.prepare("INSERT INTO subjects (name, category) VALUES ('  ', 'dog')").run()).toThrow(/CHECK/);
    expect(() => raw.prepare("INSERT INTO photos (subject_id, sha256, file_path, width, height, bytes) VALUES (999, 'x', 'p', 1, 1, 1)").run()).toThrow();
    expect(() => raw.prepare("INSERT INTO settings (key, value_json) VALUES ('k', 'not json')").run()).toThrow(/CHECK/);
    raw.close();
  });
});

describe('library store', () => {
  it('searches and sorts subjects', () => {
    const store = LibraryStore.open(dir.path);
    const raw = rawConnection();
    const insert = raw.prepare('INSERT INTO subjects (name, category, updated_at) VALUES (?, ?, ?)');
    insert.run('Rex', 'dog', '2026-01-01T00:00:00.000Z');
    insert.run('Anna’s bag', 'backpack', '2026-03-01T00:00:00.000Z');
    insert.run('100%_teapot', 'teapot', '2026-02-01T00:00:00.000Z');
    expect(store.listSubjects({ sort: 'name' }).map((s) => s.name)).toEqual(['100%_teapot', 'Anna’s bag', 'Rex']);
    expect(store.listSubjects({ sort: 'recent' }).map((s) => s.name)).toEqual(['Anna’s bag', '100%_teapot', 'Rex']);
    expect(store.listSubjects({ search: 'DOG' }).map((s) => s.name)).toEqual(['Rex']);
    // LIKE wildcards in the search text are literal characters.
    expect(store.listSubjects({ search: '%_' }).map((s) => s.name)).toEqual(['100%_teapot']);
    expect(store.listSubjects({ search: '_' }).map((s) => s.name)).toEqual(['100%_teapot']);
    raw.close();
    store.close();
  });

  it('returns default settings, persists changes across reopen and ignores corrupt stored values', () => {
    const store = LibraryStore.open(dir.path);
    expect(store.getSettings()).toEqual(DEFAULT_SETTINGS);
    expect(store.updateSettings({ theme: 'dark', defaultSteps: 25 })).toMatchObject({ theme: 'dark', defaultSteps: 25, device: 'auto' });
    store.close();

    const raw = rawConnection();
    raw.prepare("INSERT INTO settings (key, value_json) VALUES ('device', '\"quantum\"')").run();
    raw.close();

    const reopened = LibraryStore.open(dir.path);
    expect(reopened.getSettings()).toEqual({ ...DEFAULT_SETTINGS, theme: 'dark', defaultSteps: 25 });
    reopened.close();
  });
});
