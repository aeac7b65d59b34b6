/**
 * Opens the library database (SQLite through better-sqlite3) in the data folder with the settings the
 * whole app relies on: WAL (readers never block the writer; a crash loses at most the last transaction),
 * foreign keys enforced (deleting a subject deletes what hangs on it), and pending migrations applied.
 */
import BetterSqlite3 from 'better-sqlite3';
import type { Database } from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { migrate } from './migrations';

export const DATABASE_FILE_NAME = 'library.sqlite';

export function databasePath(dataDir: string): string {
  return join(dataDir, DATABASE_FILE_NAME);
}

export function openDatabase(dataDir: string): Database {
  mkdirSync(dataDir, { recursive: true });
  // Under `npm start`, Electron loads a better-sqlite3 build made for its own ABI, kept apart from
  // node_modules' Node build (scripts/electron-support.mjs); everywhere else the default binding is right.
  const electronBinding = process.versions.electron ? process.env.BLIP_SQLITE_BINDING : undefined;
  const db = new BetterSqlite3(databasePath(dataDir), electronBinding ? { nativeBinding: electronBinding } : {});
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('foreign_keys = ON');
    db.pragma('synchronous = NORMAL');
    db.pragma('busy_timeout = 5000');
    migrate(db);
    return db;
  } catch (error) {
    db.close();
    throw error;
  }
}
