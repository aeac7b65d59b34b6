/**
 * The `control_models` rows: ControlNets on their own and depth estimators the user added or downloaded.
 * SQL for that table lives here; callers get contract DTOs.
 */
import type { Database } from 'better-sqlite3';
import type { ControlConditioning, ControlModelKind, ControlModelSummary } from '../api/contract';

interface ControlModelRow {
  id: number;
  name: string;
  kind: ControlModelKind;
  conditioning: ControlConditioning;
  folder: string;
  hash: string;
  created_at: string;
}

const COLUMNS = 'id, name, kind, conditioning, folder, hash, created_at';

function toSummary(row: ControlModelRow): ControlModelSummary {
  return { id: row.id, name: row.name, kind: row.kind, conditioning: row.conditioning, folder: row.folder, hash: row.hash, createdAt: row.created_at };
}

export class ControlModelStore {
  constructor(private readonly db: Database) {}

  list(): ControlModelSummary[] {
    return (this.db.prepare(`SELECT ${COLUMNS} FROM control_models ORDER BY kind, id`).all() as ControlModelRow[]).map(toSummary);
  }

  get(id: number): ControlModelSummary | null {
    const row = this.db.prepare(`SELECT ${COLUMNS} FROM control_models WHERE id = ?`).get(id) as ControlModelRow | undefined;
    return row ? toSummary(row) : null;
  }

  byHash(hash: string): ControlModelSummary | null {
    const row = this.db.prepare(`SELECT ${COLUMNS} FROM control_models WHERE hash = ? ORDER BY id LIMIT 1`).get(hash) as ControlModelRow | undefined;
    return row ? toSummary(row) : null;
  }

  /** The first depth estimator (the one depth maps use). */
  depthEstimator(): ControlModelSummary | null {
    const row = this.db.prepare(`SELECT ${COLUMNS} FROM control_models WHERE kind = 'depth-estimator' ORDER BY id LIMIT 1`).get() as ControlModelRow | undefined;
    return row ? toSummary(row) : null;
  }

  /** Adds the folder, or updates its row (a re-added or re-downloaded folder keeps its id). */
  upsert(model: { name: string; kind: ControlModelKind; conditioning: ControlConditioning; folder: string; hash: string }): ControlModelSummary {
    this.db
      .prepare(
        `INSERT INTO control_models (name, kind, conditioning, folder, hash) VALUES (@name, @kind, @conditioning, @folder, @hash)
         ON CONFLICT (folder) DO UPDATE SET name = excluded.name, kind = excluded.kind, conditioning = excluded.conditioning, hash = excluded.hash`,
      )
      .run(model);
    return toSummary(this.db.prepare(`SELECT ${COLUMNS} FROM control_models WHERE folder = ?`).get(model.folder) as ControlModelRow);
  }

  remove(id: number): boolean {
    return this.db.prepare('DELETE FROM control_models WHERE id = ?').run(id).changes > 0;
  }
}
