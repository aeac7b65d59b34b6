/**
 * User settings, one row per key in the `settings` table (JSON values). Unknown or invalid stored values
 * fall back to the defaults instead of breaking start-up; writes are validated by the API schemas first.
 */
import type { Database } from 'better-sqlite3';
import type { Settings, SettingsPatch } from '../api/contract';
import { settingsSchema } from '../api/schemas';
import { DEFAULT_HUB_URL } from '../models/hub-api';

export const DEFAULT_SETTINGS: Readonly<Settings> = Object.freeze({
  theme: 'system',
  device: 'auto',
  threads: 0,
  // The reference pipeline's defaults: 50 PNDM steps, guidance 7.5.
  defaultSteps: 50,
  defaultGuidance: 7.5,
  defaultScheduler: 'pndm',
  hubUrl: DEFAULT_HUB_URL,
});

export function readSettings(db: Database): Settings {
  const rows = db.prepare('SELECT key, value_json FROM settings').all() as { key: string; value_json: string }[];
  const stored: Record<string, unknown> = {};
  for (const { key, value_json } of rows) {
    if (!Object.hasOwn(DEFAULT_SETTINGS, key)) continue;
    const parsed = settingsSchema.shape[key as keyof Settings].safeParse(JSON.parse(value_json));
    if (parsed.success) stored[key] = parsed.data;
  }
  // Every stored value was validated field by field above; the merge keeps defaults for the rest.
  return settingsSchema.parse({ ...DEFAULT_SETTINGS, ...stored });
}

export function writeSettings(db: Database, patch: SettingsPatch): Settings {
  const upsert = db.prepare(
    'INSERT INTO settings (key, value_json) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value_json = excluded.value_json',
  );
  db.transaction(() => {
    for (const [key, value] of Object.entries(patch)) {
      if (value !== undefined) upsert.run(key, JSON.stringify(value));
    }
  })();
  return readSettings(db);
}
