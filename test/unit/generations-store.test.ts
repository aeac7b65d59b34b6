import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openDatabase } from '../../main/library/database';
import { GenerationsStore, RESULTS_FOLDER, resultFilePath } from '../../main/gallery/generations-store';
import { listFilesUnder } from '../helpers/list-files';
import { sampleRecipe } from '../helpers/recipe-fixtures';
import { makeTempDir } from '../helpers/temp-dir';

let dir: ReturnType<typeof makeTempDir>;
let store: GenerationsStore;
beforeEach(() => {
  dir = makeTempDir();
  store = GenerationsStore.open(dir.path);
});
afterEach(() => {
  store.close();
  dir.remove();
});

/** Distinct bytes per generation stand in for PNGs: the store keeps bytes, it does not decode them. */
const bytes = (text: string) => new TextEncoder().encode(text);
const resultFiles = () => listFilesUnder(join(dir.path, RESULTS_FOLDER));

describe('generations store', () => {
  it('inserts a generation: the image content-addressed under results/, the recipe in the row', () => {
    const recipe = sampleRecipe({ seed: (2n ** 64n - 1n).toString() });
    const record = store.insert({ recipe, png: bytes('png one') });
    expect(record).toMatchObject({ subjectId: null, modelId: null, parentId: null, prompt: recipe.prompt, seed: '18446744073709551615', width: 128, height: 96, createdAt: recipe.createdAt, recipe });
    expect(record.imagePath).toBe(resultFilePath(bytes('png one')));
    expect(record.imagePath).toMatch(/^results\/([0-9a-f]{2})\/\1[0-9a-f]{62}\.png$/);
    expect(readFileSync(store.absolutePath(record.imagePath), 'utf8')).toBe('png one');
    expect(store.get(record.id)).toEqual(record);
    expect(store.get(record.id + 1)).toBeNull();
  });

  it('lists newest first, filtered by subject and by date', () => {
    const db = openDatabase(dir.path);
    const subjectId = Number(db.prepare("INSERT INTO subjects (name, category) VALUES ('Rex', 'dog')").run().lastInsertRowid);
    db.close();
    const a = store.insert({ recipe: sampleRecipe({ createdAt: '2025-01-01T10:00:00.000Z' }), png: bytes('a'), subjectId });
    const b = store.insert({ recipe: sampleRecipe({ createdAt: '2025-01-02T10:00:00Z' }), png: bytes('b') });
    const c = store.insert({ recipe: sampleRecipe({ createdAt: '2025-01-03T10:00:00.000Z' }), png: bytes('c'), subjectId, parentId: a.id });
    expect(store.list().map((g) => g.id)).toEqual([c.id, b.id, a.id]);
    expect(store.list({ subjectId }).map((g) => g.id)).toEqual([c.id, a.id]);
    expect(store.list({ since: '2025-01-02T00:00:00Z' }).map((g) => g.id)).toEqual([c.id, b.id]);
    expect(store.list({ since: '2025-01-02T00:00:00Z', until: '2025-01-03T10:00:00.000Z' }).map((g) => g.id)).toEqual([b.id]);
    expect(store.list({ limit: 1, offset: 1 }).map((g) => g.id)).toEqual([b.id]);
    expect(b.createdAt).toBe('2025-01-02T10:00:00.000Z'); // one time format, so text order is time order
    expect(c.parentId).toBe(a.id);
    expect(() => store.list({ since: 'last week' })).toThrow(/since must be an ISO 8601/);
  });

  it('deletes the row and its file, keeping a file another row still shares', () => {
    const first = store.insert({ recipe: sampleRecipe(), png: bytes('same') });
    const second = store.insert({ recipe: sampleRecipe(), png: bytes('same') });
    const other = store.insert({ recipe: sampleRecipe(), png: bytes('other') });
    expect(first.imagePath).toBe(second.imagePath);
    expect(store.delete(first.id)?.id).toBe(first.id);
    expect(existsSync(store.absolutePath(second.imagePath))).toBe(true);
    expect(store.delete(second.id)).not.toBeNull();
    expect(existsSync(store.absolutePath(second.imagePath))).toBe(false);
    expect(store.delete(second.id)).toBeNull();
    expect(resultFiles()).toEqual([other.imagePath]);
  });

  it('deletes undoably: hidden at once, brought back by undo, purged with its file once the window has passed', () => {
    const kept = store.insert({ recipe: sampleRecipe(), png: bytes('kept') });
    const gone = store.insert({ recipe: sampleRecipe(), png: bytes('gone') });
    const t0 = Date.parse('2026-06-01T12:00:00.000Z');
    expect(store.delete(gone.id, { undoable: true, now: t0 })?.id).toBe(gone.id);
    expect(store.get(gone.id)).toBeNull();
    expect(store.list().map((g) => g.id)).toEqual([kept.id]);
    expect(existsSync(store.absolutePath(gone.imagePath))).toBe(true);
    // A crash sweep leaves its file alone: the row still names it.
    expect(store.sweepOrphanFiles(Date.now() + 60_000)).toEqual([]);

    expect(store.undoDelete(gone.id)?.id).toBe(gone.id);
    expect(store.list().map((g) => g.id).sort()).toEqual([kept.id, gone.id].sort());
    expect(store.undoDelete(gone.id)).toBeNull(); // not deleted any more

    store.delete(gone.id, { undoable: true, now: t0 });
    expect(store.purgeDeleted(8_000, t0 + 7_000)).toBe(0); // still undoable
    expect(store.purgeDeleted(8_000, t0 + 8_000)).toBe(1);
    expect(existsSync(store.absolutePath(gone.imagePath))).toBe(false);
    expect(store.undoDelete(gone.id)).toBeNull();
    expect(resultFiles()).toEqual([kept.imagePath]);
  });

  it('leaves no file behind when the row cannot be written, and refuses an invalid recipe before writing', () => {
    expect(() => store.insert({ recipe: sampleRecipe(), png: bytes('orphan?'), subjectId: 999 })).toThrow(/FOREIGN KEY/);
    expect(() => store.insert({ recipe: { ...sampleRecipe(), steps: 0 }, png: bytes('bad') })).toThrow(/steps/);
    expect(resultFiles()).toEqual([]);
    expect(store.list()).toEqual([]);
  });

  it('sweeps result files no row names (a crash between file and row), not newer ones', () => {
    const kept = store.insert({ recipe: sampleRecipe(), png: bytes('kept') });
    const stray = join(dir.path, RESULTS_FOLDER, 'ab', 'abandoned.png');
    mkdirSync(join(stray, '..'), { recursive: true });
    writeFileSync(stray, 'x');
    const fresh = join(dir.path, RESULTS_FOLDER, 'ab', 'being-written.png.partial');
    writeFileSync(fresh, 'y');
    for (const old of [stray, store.absolutePath(kept.imagePath)]) utimesSync(old, new Date(1_000_000), new Date(1_000_000));
    expect(store.sweepOrphanFiles(2_000_000)).toEqual([`${RESULTS_FOLDER}/ab/abandoned.png`]);
    expect(resultFiles().sort()).toEqual([kept.imagePath, `${RESULTS_FOLDER}/ab/being-written.png.partial`].sort());
  });
});
