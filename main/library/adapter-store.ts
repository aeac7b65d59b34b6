/**
 * The adapters of the library (`adapters` table, migration 5): quick fine-tunes of a subject (the LoRA
 * as diffusers' file bytes, the trained subject embedding and the photos' mean it started from) and
 * imported style LoRAs. A row is inserted whole in one statement when its job has finished, so a crash
 * never leaves half an adapter. Content hashes name adapters in recipes; SQL for adapters lives here.
 */
import { createHash } from 'node:crypto';
import type { Database } from 'better-sqlite3';
import type { AdapterKind, AdapterQuery, AdapterSummary, FinetuneSettings, ModelSummary } from '../api/contract';

/** A fine-tune's settings as recorded with it. */
export type FinetuneRecordSettings = NonNullable<AdapterSummary['settings']>;

export interface AdapterRecord {
  id: number;
  kind: AdapterKind;
  subjectId: number | null;
  name: string;
  modelHash: string;
  modelName: string;
  sha256: string;
  rank: number;
  settings: FinetuneRecordSettings | null;
  losses: number[];
  finalLoss: number | null;
  /** diffusers' pytorch_lora_weights.safetensors bytes. */
  lora: Uint8Array;
  /** Fine-tunes only: the trained embedding, and the photos' mean embedding it started from, [1, Q, D]. */
  embedding: { dims: [1, number, number]; trained: Float32Array; initial: Float32Array } | null;
  createdAt: string;
}

export interface NewFinetuneAdapter {
  subjectId: number;
  name: string;
  modelHash: string;
  modelName: string;
  rank: number;
  settings: FinetuneRecordSettings;
  losses: readonly number[];
  lora: Uint8Array;
  embedding: { dims: [1, number, number]; trained: Float32Array; initial: Float32Array };
}

export interface NewStyleAdapter {
  name: string;
  modelHash: string;
  modelName: string;
  rank: number;
  lora: Uint8Array;
}

interface AdapterRow {
  id: number;
  kind: AdapterKind;
  subject_id: number | null;
  name: string;
  model_hash: string;
  model_name: string;
  sha256: string;
  rank: number;
  settings_json: string;
  losses_json: string;
  final_loss: number | null;
  lora: Buffer;
  embedding: Buffer | null;
  initial_embedding: Buffer | null;
  embedding_dims_json: string | null;
  created_at: string;
}

/**
 * An adapter's content hash: SHA-256 over its parts, each length-prefixed (the LoRA file bytes, then for
 * a fine-tune the trained and the initial embedding as float32 little-endian). A style adapter's hash
 * is therefore the plain sha256 of its file, as `reproduce --lora` checks it.
 */
export function adapterContentHash(lora: Uint8Array, embedding?: { trained: Float32Array; initial: Float32Array }): string {
  if (!embedding) return createHash('sha256').update(lora).digest('hex');
  const hash = createHash('sha256');
  for (const part of [lora, float32Bytes(embedding.trained), float32Bytes(embedding.initial)]) {
    const length = Buffer.alloc(8);
    length.writeBigUInt64LE(BigInt(part.byteLength));
    hash.update(length).update(part);
  }
  return hash.digest('hex');
}

/** Visible rows: not deleted, and not hanging on a deleted (undo window) or importing subject. */
const VISIBLE = `a.deleted_at IS NULL AND (a.subject_id IS NULL OR EXISTS (
  SELECT 1 FROM subjects s WHERE s.id = a.subject_id AND s.deleted_at IS NULL AND s.import_job_id IS NULL))`;

export class AdapterStore {
  constructor(private readonly db: Database) {}

  insertFinetune(adapter: NewFinetuneAdapter): number {
    const { trained, initial, dims } = adapter.embedding;
    const expected = dims.reduce((a, b) => a * b, 1);
    if (trained.length !== expected || initial.length !== expected) throw new Error(`the fine-tune's embeddings must be [${dims.join(', ')}]`);
    const sha256 = adapterContentHash(adapter.lora, adapter.embedding);
    const info = this.db
      .prepare(
        `INSERT INTO adapters (kind, subject_id, name, model_hash, model_name, sha256, rank, settings_json, losses_json, final_loss, lora, embedding, initial_embedding, embedding_dims_json)
         VALUES ('finetune', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        adapter.subjectId,
        adapter.name,
        adapter.modelHash,
        adapter.modelName,
        sha256,
        adapter.rank,
        JSON.stringify(adapter.settings),
        JSON.stringify(adapter.losses),
        adapter.losses.at(-1) ?? null,
        Buffer.from(adapter.lora),
        float32Bytes(trained),
        float32Bytes(initial),
        JSON.stringify(dims),
      );
    return Number(info.lastInsertRowid);
  }

  insertStyle(adapter: NewStyleAdapter): number {
    const info = this.db
      .prepare(
        `INSERT INTO adapters (kind, subject_id, name, model_hash, model_name, sha256, rank, settings_json, lora)
         VALUES ('style', NULL, ?, ?, ?, ?, ?, 'null', ?)`,
      )
      .run(adapter.name, adapter.modelHash, adapter.modelName, adapterContentHash(adapter.lora), adapter.rank, Buffer.from(adapter.lora));
    return Number(info.lastInsertRowid);
  }

  get(id: number): AdapterRecord | null {
    const row = this.db.prepare(`SELECT a.* FROM adapters a WHERE a.id = ? AND ${VISIBLE}`).get(id) as AdapterRow | undefined;
    return row ? fromRow(row) : null;
  }

  /** The newest visible adapter with this content hash (a recipe names adapters by it). */
  findBySha256(sha256: string): AdapterRecord | null {
    const row = this.db.prepare(`SELECT a.* FROM adapters a WHERE a.sha256 = ? AND ${VISIBLE} ORDER BY a.id DESC LIMIT 1`).get(sha256) as AdapterRow | undefined;
    return row ? fromRow(row) : null;
  }

  list(query: AdapterQuery): AdapterRecord[] {
    const where = [VISIBLE];
    const params: (number | string)[] = [];
    if (query.subjectId !== undefined) {
      where.push('a.subject_id = ?');
      params.push(query.subjectId);
    }
    if (query.kind !== undefined) {
      where.push('a.kind = ?');
      params.push(query.kind);
    }
    const rows = this.db.prepare(`SELECT a.* FROM adapters a WHERE ${where.join(' AND ')} ORDER BY a.created_at DESC, a.id DESC`).all(...params) as AdapterRow[];
    return rows.map(fromRow);
  }

  /** Hides the adapter (undo until purged); false when there is none. */
  delete(id: number, now = Date.now()): boolean {
    if (!this.get(id)) return false;
    this.db.prepare('UPDATE adapters SET deleted_at = ? WHERE id = ?').run(new Date(now).toISOString(), id);
    return true;
  }

  undoDelete(id: number): boolean {
    return this.db.prepare('UPDATE adapters SET deleted_at = NULL WHERE id = ? AND deleted_at IS NOT NULL').run(id).changes > 0;
  }

  purgeDeleted(olderThanMs: number, now = Date.now()): number {
    return this.db.prepare('DELETE FROM adapters WHERE deleted_at IS NOT NULL AND deleted_at <= ?').run(new Date(now - olderThanMs).toISOString()).changes;
  }
}

/** The contract's view of an adapter, with the model it needs looked up among the library's ready models. */
export function adapterSummary(record: AdapterRecord, models: readonly ModelSummary[]): AdapterSummary {
  const model = models.find((m) => m.status === 'ready' && m.hash === record.modelHash) ?? null;
  return {
    id: record.id,
    kind: record.kind,
    name: record.name,
    subjectId: record.subjectId,
    modelName: record.modelName,
    modelId: model?.id ?? null,
    needsModel: model ? null : record.modelName,
    rank: record.rank,
    settings: record.settings,
    losses: record.losses,
    finalLoss: record.finalLoss,
    sha256: record.sha256,
    bytes: record.lora.byteLength + (record.embedding ? 2 * 4 * record.embedding.trained.length : 0),
    createdAt: record.createdAt,
  };
}

function fromRow(row: AdapterRow): AdapterRecord {
  const embedding =
    row.embedding && row.initial_embedding && row.embedding_dims_json
      ? { dims: JSON.parse(row.embedding_dims_json) as [1, number, number], trained: float32FromBytes(row.embedding), initial: float32FromBytes(row.initial_embedding) }
      : null;
  return {
    id: row.id,
    kind: row.kind,
    subjectId: row.subject_id,
    name: row.name,
    modelHash: row.model_hash,
    modelName: row.model_name,
    sha256: row.sha256,
    rank: row.rank,
    settings: JSON.parse(row.settings_json) as FinetuneRecordSettings | null,
    losses: JSON.parse(row.losses_json) as number[],
    finalLoss: row.final_loss,
    lora: new Uint8Array(row.lora.buffer, row.lora.byteOffset, row.lora.byteLength),
    embedding,
    createdAt: row.created_at,
  };
}

function float32Bytes(data: Float32Array): Buffer {
  const bytes = Buffer.alloc(data.length * 4);
  for (let i = 0; i < data.length; i++) bytes.writeFloatLE(data[i] as number, i * 4);
  return bytes;
}

function float32FromBytes(bytes: Buffer): Float32Array {
  const data = new Float32Array(bytes.byteLength / 4);
  for (let i = 0; i < data.length; i++) data[i] = bytes.readFloatLE(i * 4);
  return data;
}

export type { FinetuneSettings };
