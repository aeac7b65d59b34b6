/**
 * User settings, one row per key in the `settings` table (JSON values). Unknown or invalid stored values
 * fall back to the defaults instead of breaking start-up; writes are validated by the API schemas first.
 */
import type { Database } from 'better-sqlite3';
import type { Settings, SettingsPatch } from '../api/contract';
import { settingsSchema } from '../api/schemas';

export const DEFAULT_SETTINGS: Readonly<Settings> = Object.freeze({
  theme: 'system',
  device: 'auto',
  threads: 0,
  // The reference pipeline's defaults: 50 PNDM steps, guidance 7.5.
  defaultSteps: 50,
  defaultGuidance: 7.5,
  defaultScheduler: 'pndm',
});

export function readSettings(db: Database): Settings {
  const rows = db.prepare('SELECT key, value_json FROM settings').all() as { key: string; value_json: string }[];
  const settings: Settings = { ...DEFAULT_SETTINGS };
  for (const { key, value_json } of rows) {
    if (!(key in settings)) continue;
    const field = settingsSchema.shape[key as keyof Settings];
    const parsed = field.safeParse(JSON.parse(value_json));
    if (parsed.success) (settings as Record<string, unknown>)[key] = parsed.data;
  }
  return settings;
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
