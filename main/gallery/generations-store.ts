/**
 * The gallery's store: one row per generation in the v1 `generations` table (recipe JSON + the columns
 * the gallery filters on) and the PNG, recipe embedded, content-addressed at
 * `results/<sha[0:2]>/<sha>.png` in the data folder.
 *
 * The file is written (atomically) before its row and removed after its row, so a crash leaves at
 * worst an unreferenced complete file (`sweepOrphanFiles` removes those), never a row without its image.
 * The `seed` column holds the seed's 64 bits as SQLite's signed integer (seeds go up to 2^64 − 1); the
 * exact seed is the recipe's, which is what callers get.
 */
import type { Database } from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { writeFileAtomic } from '../files/atomic-write';
import { openDatabase } from '../library/database';
import type { GenerationSummary } from '../api/contract';
import { parseRecipe, type Recipe } from './recipe';

export const RESULTS_FOLDER = 'results';

export interface GenerationRecord {
  id: number;
  subjectId: number | null;
  modelId: number | null;
  parentId: number | null;
  prompt: string;
  /** Decimal, up to 2^64 − 1. */
  seed: string;
  width: number;
  height: number;
  /** The PNG, relative to the data folder, '/'-separated. */
  imagePath: string;
  createdAt: string;
  recipe: Recipe;
}

export interface NewGeneration {
  recipe: Recipe;
  /** The PNG bytes as they should be kept (recipe embedded). */
  png: Uint8Array;
  subjectId?: number | null;
  modelId?: number | null;
  /** The generation this one edits or re-runs. */
  parentId?: number | null;
}

export interface GenerationFilter {
  subjectId?: number;
  /** ISO 8601 bounds on the creation time: `since` inclusive, `until` exclusive. */
  since?: string;
  until?: string;
  limit?: number;
  offset?: number;
}

interface GenerationRow {
  id: number;
  subject_id: number | null;
  model_id: number | null;
  parent_id: number | null;
  recipe_json: string;
  prompt: string;
  width: number;
  height: number;
  image_path: string;
  created_at: string;
}

const COLUMNS = 'id, subject_id, model_id, parent_id, recipe_json, prompt, width, height, image_path, created_at';

interface SummaryRow {
  id: number;
  subject_id: number | null;
  prompt: string;
  seed: string | number;
  width: number;
  height: number;
  image_path: string;
  created_at: string;
}
const MAX_LIST = 1000;

/** Data-folder-relative path of a result PNG with these bytes. */
export function resultFilePath(png: Uint8Array): string {
  const sha256 = createHash('sha256').update(png).digest('hex');
  return `${RESULTS_FOLDER}/${sha256.slice(0, 2)}/${sha256}.png`;
}

/** Timestamps in one form (JavaScript's toISOString, as SQLite's strftime('%Y-%m-%dT%H:%M:%fZ')), so text order is time order. */
function normaliseTime(value: string, what: string): string {
  const time = new Date(value);
  if (Number.isNaN(time.getTime())) throw new Error(`${what} must be an ISO 8601 date and time (got '${value}')`);
  return time.toISOString();
}

/**
 * A listing's WHERE clause and its parameters: results not deleted, and only the filters given, so
 * SQLite picks the (subject_id, created_at) or (created_at) index. Stored times are toISOString()
 * text, so bounds in the same form compare as times.
 */
function listingWhere(filter: GenerationFilter): { where: string; params: Record<string, string | number> } {
  const conditions = ['deleted_at IS NULL'];
  const params: Record<string, string | number> = {};
  if (filter.subjectId !== undefined) {
    conditions.push('subject_id = :subjectId');
    params['subjectId'] = filter.subjectId;
  }
  if (filter.since !== undefined) {
    conditions.push('created_at >= :since');
    params['since'] = normaliseTime(filter.since, 'since');
  }
  if (filter.until !== undefined) {
    conditions.push('created_at < :until');
    params['until'] = normaliseTime(filter.until, 'until');
  }
  return { where: conditions.join(' AND '), params };
}

export class GenerationsStore {
  readonly #db: Database;
  readonly #dataDir: string;
  readonly #ownsDatabase: boolean;

  constructor(db: Database, dataDir: string, ownsDatabase = false) {
    this.#db = db;
    this.#dataDir = dataDir;
    this.#ownsDatabase = ownsDatabase;
  }

  /** Opens the data folder's library (migrating it if needed) for this store alone. */
  static open(dataDir: string): GenerationsStore {
    return new GenerationsStore(openDatabase(dataDir), dataDir, true);
  }

  /** Absolute path of a data-folder-relative image path. */
  absolutePath(imagePath: string): string {
    return join(this.#dataDir, ...imagePath.split('/'));
  }

  insert(generation: NewGeneration): GenerationRecord {
    const recipe = parseRecipe(generation.recipe);
    const imagePath = resultFilePath(generation.png);
    const file = this.absolutePath(imagePath);
    const existed = existsSync(file) && statSync(file).size === generation.png.length;
    if (!existed) {
      mkdirSync(dirname(file), { recursive: true });
      writeFileAtomic(file, generation.png);
    }
    try {
      const { lastInsertRowid } = this.#db
        .prepare(
          `INSERT INTO generations (subject_id, model_id, parent_id, recipe_json, prompt, seed, width, height, image_path, created_at)
           VALUES (:subjectId, :modelId, :parentId, :recipeJson, :prompt, :seed, :width, :height, :imagePath, :createdAt)`,
        )
        .run({
          subjectId: generation.subjectId ?? null,
          modelId: generation.modelId ?? null,
          parentId: generation.parentId ?? null,
          recipeJson: JSON.stringify(recipe),
          prompt: recipe.prompt,
          seed: BigInt.asIntN(64, BigInt(recipe.seed)),
          width: recipe.width,
          height: recipe.height,
          imagePath,
          createdAt: normaliseTime(recipe.createdAt, 'createdAt'),
        });
      return this.get(Number(lastInsertRowid))!;
    } catch (error) {
      // The row did not make it: take the file back unless another row already shared it.
      if (!existed) this.#removeFileIfUnused(imagePath);
      throw error;
    }
  }

  get(id: number): GenerationRecord | null {
    const row = this.#db.prepare(`SELECT ${COLUMNS} FROM generations WHERE id = ? AND deleted_at IS NULL`).get(id) as GenerationRow | undefined;
    return row ? toRecord(row) : null;
  }

  /** Newest first, with their recipes. */
  list(filter: GenerationFilter = {}): GenerationRecord[] {
    const limit = Math.min(Math.max(Math.trunc(filter.limit ?? 200), 0), MAX_LIST);
    const { where, params } = listingWhere(filter);
    const rows = this.#db
      .prepare(`SELECT ${COLUMNS} FROM generations WHERE ${where} ORDER BY created_at DESC, id DESC LIMIT :limit OFFSET :offset`)
      .all({ ...params, limit, offset: Math.max(Math.trunc(filter.offset ?? 0), 0) }) as GenerationRow[];
    return rows.map(toRecord);
  }

  /**
   * Newest first, as the gallery grid shows them: no recipe is parsed (the seed is read from its JSON),
   * so a page stays cheap and one damaged recipe does not break the grid.
   */
  listSummaries(filter: GenerationFilter = {}): GenerationSummary[] {
    const { where, params } = listingWhere(filter);
    const rows = this.#db
      .prepare(
        `SELECT id, subject_id, prompt, coalesce(json_extract(recipe_json, '$.seed'), CAST(seed AS TEXT)) AS seed, width, height, image_path, created_at
         FROM generations WHERE ${where} ORDER BY created_at DESC, id DESC LIMIT :limit OFFSET :offset`,
      )
      .all({ ...params, limit: filter.limit ?? 200, offset: filter.offset ?? 0 }) as SummaryRow[];
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

  /**
   * Deletes the row, then its image unless another row shares it. Returns what was deleted, or null.
   * With `undoable`, the result is only hidden (row and file kept) until `purgeDeleted` removes it.
   */
  delete(id: number, options: { undoable?: boolean; now?: number } = {}): GenerationRecord | null {
    const record = this.get(id);
    if (!record) return null;
    if (options.undoable) {
      this.#db.prepare('UPDATE generations SET deleted_at = ? WHERE id = ?').run(new Date(options.now ?? Date.now()).toISOString(), id);
      return record;
    }
    this.#db.prepare('DELETE FROM generations WHERE id = ?').run(id);
    this.#removeFileIfUnused(record.imagePath);
    return record;
  }

  /** Brings back a result deleted with `undoable` and not purged yet; null when there is none. */
  undoDelete(id: number): GenerationRecord | null {
    const changed = this.#db.prepare('UPDATE generations SET deleted_at = NULL WHERE id = ? AND deleted_at IS NOT NULL').run(id).changes;
    return changed > 0 ? this.get(id) : null;
  }

  /** Removes for good the results deleted before `now − olderThanMs`, with their files; returns how many. */
  purgeDeleted(olderThanMs: number, now = Date.now()): number {
    const cutoff = new Date(now - olderThanMs).toISOString();
    const rows = this.#db.prepare('SELECT id, image_path FROM generations WHERE deleted_at IS NOT NULL AND deleted_at <= ?').all(cutoff) as { id: number; image_path: string }[];
    for (const row of rows) {
      this.#db.prepare('DELETE FROM generations WHERE id = ?').run(row.id);
      this.#removeFileIfUnused(row.image_path);
    }
    return rows.length;
  }

  /**
   * Removes result files that no row names (a crash between writing a file and committing its row)
   * and leftover temporary files; only files older than `startedAtMs`, so a file another process is
   * about to commit is left alone.
   */
  sweepOrphanFiles(startedAtMs = Date.now()): string[] {
    const referenced = new Set((this.#db.prepare('SELECT image_path FROM generations').all() as { image_path: string }[]).map((r) => r.image_path));
    const root = this.absolutePath(RESULTS_FOLDER);
    if (!existsSync(root)) return [];
    const removed: string[] = [];
    for (const entry of readdirSync(root, { recursive: true, withFileTypes: true })) {
      if (!entry.isFile()) continue;
      const absolute = join(entry.parentPath, entry.name);
      const imagePath = relative(this.#dataDir, absolute).split(/[\\/]/).join('/');
      if (referenced.has(imagePath) || Math.floor(statSync(absolute).mtimeMs) > startedAtMs /* ms vs finer mtimes */) continue;
      rmSync(absolute, { force: true });
      removed.push(imagePath);
    }
    return removed;
  }

  close(): void {
    if (this.#ownsDatabase && this.#db.open) this.#db.close();
  }

  #removeFileIfUnused(imagePath: string): void {
    if (this.#db.prepare('SELECT 1 FROM generations WHERE image_path = ? LIMIT 1').get(imagePath)) return;
    rmSync(this.absolutePath(imagePath), { force: true });
  }
}

function toRecord(row: GenerationRow): GenerationRecord {
  let recipe: Recipe;
  try {
    recipe = parseRecipe(JSON.parse(row.recipe_json));
  } catch (error) {
    throw new Error(`generation ${row.id} has a damaged recipe in the library: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  return {
    id: row.id,
    subjectId: row.subject_id,
    modelId: row.model_id,
    parentId: row.parent_id,
    prompt: row.prompt,
    seed: recipe.seed,
    width: row.width,
    height: row.height,
    imagePath: row.image_path,
    createdAt: row.created_at,
    recipe,
  };
}
