import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import BetterSqlite3 from 'better-sqlite3';
import sharp from 'sharp';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { databasePath, openDatabase } from '../../main/library/database';
import { LATEST_SCHEMA_VERSION, MIGRATIONS, currentSchemaVersion, migrate } from '../../main/library/migrations';
import { LibraryStore } from '../../main/library/library-store';
import { SubjectService, UNDO_WINDOW_MS } from '../../main/library/subject-service';
import { absoluteDataPath, listFiles, sweepOrphanPhotoFiles } from '../../main/library/photo-files';
import { getJobRun, listJobRuns } from '../../main/library/job-journal';
import {
  computeSubjectEmbeddings,
  mixSubjects,
  recordModelFingerprint,
  subjectMeanEmbedding,
  type PhotoEmbedder,
} from '../../main/library/subject-embeddings';
import { modelFingerprint } from '../../main/library/model-fingerprint';
import { loadModelFolder } from '../../main/models/model-folder';
import { REPO_ROOT } from '../helpers/built-app';
import { makeTempDir } from '../helpers/temp-dir';

const DREAMBENCH = join(REPO_ROOT, 'test/fixtures/dreambench');
const DOG = [0, 1, 2, 3, 4].map((i) => join(DREAMBENCH, 'dog', `0${i}.jpg`));
const CAT = [0, 1, 2, 3, 4].map((i) => join(DREAMBENCH, 'cat', `0${i}.jpg`));
const DEMO_MODEL = join(REPO_ROOT, 'resources/demo-model');

let dir: ReturnType<typeof makeTempDir>;
let library: LibraryStore;
let service: SubjectService;
beforeEach(() => {
  dir = makeTempDir();
  library = LibraryStore.open(dir.path);
  service = new SubjectService(library.connection, dir.path);
});
afterEach(() => {
  library.close();
  dir.remove();
});

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');
const count = (sql: string): number => (library.connection.prepare(sql).get() as { n: number }).n;

/** Every file under photos/ and thumbs/ is named by a row, and every row's files exist. */
function expectNoOrphans(): void {
  const rows = library.connection.prepare('SELECT file_path, thumb_path FROM photos').all() as { file_path: string; thumb_path: string }[];
  const referenced = new Set(rows.flatMap((r) => [r.file_path, r.thumb_path]));
  expect(new Set([...listFiles(dir.path, 'photos'), ...listFiles(dir.path, 'thumbs')])).toEqual(referenced);
  expect(count('SELECT count(*) AS n FROM photo_embeddings WHERE photo_id NOT IN (SELECT id FROM photos)')).toBe(0);
  expect(count('SELECT count(*) AS n FROM photos WHERE subject_id NOT IN (SELECT id FROM subjects)')).toBe(0);
}

describe('migration 2', () => {
  it('upgrades a v1 database with data, keeping every row', () => {
    library.close();
    const other = makeTempDir();
    try {
      const db = new BetterSqlite3(databasePath(other.path));
      db.pragma('foreign_keys = ON');
      migrate(db, MIGRATIONS.filter((m) => m.version === 1));
      const subject = db.prepare("INSERT INTO subjects (name, category) VALUES ('Rex', 'dog')").run().lastInsertRowid;
      db.prepare('INSERT INTO photos (subject_id, sha256, file_path, width, height, bytes, weight) VALUES (?, ?, ?, 10, 20, 100, 0.5)').run(subject, 'a'.repeat(64), 'photos/aa/a.jpg');
      expect(currentSchemaVersion(db)).toBe(1);
      db.close();

      const upgraded = openDatabase(other.path);
      expect(currentSchemaVersion(upgraded)).toBe(LATEST_SCHEMA_VERSION);
      expect(upgraded.pragma('integrity_check', { simple: true })).toBe('ok');
      expect(upgraded.prepare('SELECT name, category, deleted_at, import_job_id FROM subjects').get()).toEqual({ name: 'Rex', category: 'dog', deleted_at: null, import_job_id: null });
      expect(upgraded.prepare('SELECT width, height, weight, orientation, original_name FROM photos').get()).toEqual({ width: 10, height: 20, weight: 0.5, orientation: 1, original_name: '' });
      // Embeddings hang on their photo: deleting the subject takes them along.
      upgraded
        .prepare("INSERT INTO photo_embeddings (photo_id, category, model_hash, preprocessing_version, dims_json, vector) VALUES (1, 'dog', ?, 1, '[1,1,1]', x'0000803f')")
        .run('b'.repeat(64));
      upgraded.prepare('DELETE FROM subjects').run();
      expect(upgraded.prepare('SELECT count(*) AS n FROM photo_embeddings').get()).toEqual({ n: 0 });
      upgraded.close();
    } finally {
      other.remove();
      library = LibraryStore.open(dir.path);
    }
  });
});

describe('photo import', () => {
  it('refuses corrupt, non-image, huge and duplicate files one by one, with reasons, and keeps the rest', async () => {
    const inputs = join(dir.path, 'inputs');
    mkdirSync(inputs);
    const dog = readFileSync(DOG[0]!);
    writeFileSync(join(inputs, 'truncated.jpg'), dog.subarray(0, dog.length / 2));
    writeFileSync(join(inputs, 'notes.jpg'), 'this is a text file, not a photo\n');
    // 7100 × 7100 = 50.4 MP: just above the limit (a flat PNG is small on disk).
    const huge = await sharp({ create: { width: 7100, height: 7100, channels: 3, background: '#808080' } }).png({ compressionLevel: 1 }).toBuffer();
    writeFileSync(join(inputs, 'huge.png'), huge);
    cpSync(DOG[0]!, join(inputs, 'copy-of-00.jpg'));

    const result = await service.importSubject({ name: 'Rex', category: 'dog' }, [
      { path: DOG[0]! },
      { path: join(inputs, 'truncated.jpg') },
      { path: join(inputs, 'notes.jpg') },
      { path: join(inputs, 'huge.png') },
      { path: join(inputs, 'copy-of-00.jpg') },
      { path: DOG[1]! },
      { path: join(inputs, 'missing.jpg') },
    ]);
    expect(result.added.map((p) => p.originalName)).toEqual(['00.jpg', '01.jpg']);
    const reasons = Object.fromEntries(result.rejected.map((r) => [r.name, r.reason]));
    expect(Object.keys(reasons)).toEqual(['truncated.jpg', 'notes.jpg', 'huge.png', 'copy-of-00.jpg', 'missing.jpg']);
    expect(reasons['truncated.jpg']).toMatch(/damaged or incomplete/);
    expect(reasons['notes.jpg']).toMatch(/not an image .*JPEG, PNG or WebP/);
    expect(reasons['huge.png']).toMatch(/50\.4 megapixels \(7100×7100\).*above 50 megapixels/);
    expect(reasons['copy-of-00.jpg']).toMatch(/same photo as 00\.jpg/);
    expect(reasons['missing.jpg']).toMatch(/does not exist/);
    expect(result.subject.photoCount).toBe(2);
    expect(result.subject.coverPhotoId).toBe(result.added[0]!.id);
    expect(library.listSubjects({}).map((s) => s.name)).toEqual(['Rex']);
    expect(getJobRun(library.connection, listJobRuns(library.connection)[0]!.id)?.state).toBe('done');
    expectNoOrphans();

    // Adding to the subject later: the same photo is still a duplicate.
    const again = await service.addPhotos(result.subject.id, [{ name: 'dup.jpg', bytes: dog }, { path: DOG[2]! }]);
    expect(again.added.map((p) => p.originalName)).toEqual(['02.jpg']);
    expect(again.rejected).toEqual([{ name: 'dup.jpg', reason: 'it is the same photo as 00.jpg, already in this subject' }]);
    // Journaled too, so another process's start-up sweep leaves the files alone while it runs.
    expect(listJobRuns(library.connection).find((run) => run.kind === 'photo-add')).toMatchObject({
      state: 'done',
      label: 'Add photos to Rex',
      message: 'Added 1 photos, refused 1',
    });
  });

  it('creates no subject when every photo is refused, and journals the failure', async () => {
    await expect(service.importSubject({ name: 'Nothing', category: 'dog' }, [{ name: 'a.jpg', bytes: new TextEncoder().encode('no') }])).rejects.toThrow(
      /None of the photos could be used, so no subject was created\. a\.jpg: it is not an image/,
    );
    expect(count('SELECT count(*) AS n FROM subjects')).toBe(0);
    expect(listJobRuns(library.connection)[0]).toMatchObject({ kind: 'subject-import', state: 'failed' });
    expectNoOrphans();
  });

  it('honours the EXIF orientation: size and thumbnail upright', async () => {
    // A 40 × 20 picture stored sideways (orientation 6: rotate 90° clockwise to display).
    const sideways = await sharp({ create: { width: 40, height: 20, channels: 3, background: '#c04020' } }).jpeg().withMetadata({ orientation: 6 }).toBuffer();
    const { subject, added } = await service.importSubject({ name: 'Phone', category: 'vase' }, [{ name: 'phone.jpg', bytes: sideways }]);
    expect(added[0]).toMatchObject({ width: 20, height: 40, orientation: 6, bytes: sideways.length });
    const thumb = await sharp(absoluteDataPath(dir.path, added[0]!.thumbPath!)).metadata();
    expect([thumb.format, thumb.width, thumb.height]).toEqual(['webp', 20, 40]);
    expect(subject.coverPath).toBe(added[0]!.thumbPath);
    // The original is kept byte for byte (its tag included); thumbnails of real photos are at most 384 px.
    expect(readFileSync(absoluteDataPath(dir.path, added[0]!.filePath))).toEqual(sideways);
    const { added: real } = await service.addPhotos(subject.id, [{ path: DOG[0]! }]);
    const realThumb = await sharp(absoluteDataPath(dir.path, real[0]!.thumbPath!)).metadata();
    expect(Math.max(realThumb.width, realThumb.height)).toBe(384);
  });

  it('stores originals content-addressed, shared between subjects until the last user goes', async () => {
    const a = await service.importSubject({ name: 'Rex', category: 'dog' }, [{ path: DOG[0]! }, { path: DOG[1]! }]);
    const b = await service.importSubject({ name: 'Rex again', category: 'dog' }, [{ path: DOG[0]! }]);
    const hash = sha256(readFileSync(DOG[0]!));
    expect(a.added[0]!.filePath).toBe(`photos/${hash.slice(0, 2)}/${hash}.jpg`);
    expect(b.added[0]!.filePath).toBe(a.added[0]!.filePath);
    expect(b.added[0]!.thumbPath).toBe(`thumbs/${hash}.webp`);
    for (const file of listFiles(dir.path, 'photos')) expect(file).toContain(sha256(readFileSync(absoluteDataPath(dir.path, file))));
    expect(listFiles(dir.path, 'photos')).toHaveLength(2);

    service.deleteSubjectNow(a.subject.id);
    expect(existsSync(absoluteDataPath(dir.path, b.added[0]!.filePath))).toBe(true);
    expect(listFiles(dir.path, 'photos')).toHaveLength(1);
    expectNoOrphans();
    service.removePhotos(b.subject.id, [b.added[0]!.id]);
    expect(service.getSubject(b.subject.id)).toMatchObject({ photoCount: 0, coverPhotoId: null, coverPath: null });
    expect(listFiles(dir.path, 'photos')).toEqual([]);
    expect(listFiles(dir.path, 'thumbs')).toEqual([]);
    expectNoOrphans();
  });
});

describe('editing, delete and undo', () => {
  it('edits name, category, note and cover; searches and sorts', async () => {
    const rex = await service.importSubject({ name: 'Rex', category: 'dog' }, [{ path: DOG[0]! }, { path: DOG[1]! }]);
    await service.importSubject({ name: 'Tom', category: 'cat', note: 'grey' }, [{ path: CAT[0]! }]);
    await new Promise((resolve) => setTimeout(resolve, 5)); // timestamps have millisecond resolution
    const edited = service.updateSubject({ id: rex.subject.id, name: ' Rex the dog ', note: 'corgi', coverPhotoId: rex.added[1]!.id });
    expect(edited).toMatchObject({ name: 'Rex the dog', category: 'dog', note: 'corgi', coverPhotoId: rex.added[1]!.id, coverPath: rex.added[1]!.thumbPath });
    expect(() => service.updateSubject({ id: rex.subject.id, category: '  ' })).toThrow(/category cannot be empty/);
    expect(() => service.updateSubject({ id: rex.subject.id, coverPhotoId: 9999 })).toThrow(/not a photo of this subject/);
    expect(library.listSubjects({ sort: 'name' }).map((s) => s.name)).toEqual(['Rex the dog', 'Tom']);
    expect(library.listSubjects({ sort: 'recent' }).map((s) => s.name)).toEqual(['Rex the dog', 'Tom']);
    expect(library.listSubjects({ search: 'CAT' }).map((s) => s.name)).toEqual(['Tom']);
    expect(service.resolveSubject('rex the dog').id).toBe(rex.subject.id);
    expect(service.resolveSubject(String(rex.subject.id)).name).toBe('Rex the dog');
    expect(() => service.resolveSubject('nobody')).toThrow(/No subject is called "nobody"/);
  });

  it('deletes with undo, then purges rows, embeddings and files for good', async () => {
    const rex = await service.importSubject({ name: 'Rex', category: 'dog' }, [{ path: DOG[0]! }, { path: DOG[1]! }]);
    await computeSubjectEmbeddings(library.connection, dir.path, { subjectId: rex.subject.id, modelHash: 'f'.repeat(64), embed: countingEmbedder().embed });
    const now = Date.now();
    const deletion = service.deleteSubject(rex.subject.id, now);
    expect(Date.parse(deletion.undoUntil) - now).toBe(UNDO_WINDOW_MS);
    expect(library.listSubjects({})).toEqual([]);
    expect(() => service.getSubject(rex.subject.id)).toThrow(/No subject with id/);
    expect(service.purgeDeletedSubjects(UNDO_WINDOW_MS, now + 1000)).toBe(0); // still within the undo window

    expect(service.undoDeleteSubject(rex.subject.id).photoCount).toBe(2);
    expect(library.listSubjects({}).map((s) => s.name)).toEqual(['Rex']);

    service.deleteSubject(rex.subject.id, now);
    expect(service.purgeDeletedSubjects(UNDO_WINDOW_MS, now + UNDO_WINDOW_MS + 1)).toBe(1);
    expect(() => service.undoDeleteSubject(rex.subject.id)).toThrow(/cannot be brought back/);
    expect([count('SELECT count(*) AS n FROM subjects'), count('SELECT count(*) AS n FROM photos'), count('SELECT count(*) AS n FROM photo_embeddings')]).toEqual([0, 0, 0]);
    expect(listFiles(dir.path, 'photos')).toEqual([]);
    expectNoOrphans();
  });

  it('sweeps a leftover written in the same millisecond as the sweep started, but not one written after it', () => {
    // Date.now() is whole milliseconds while mtimes are finer (CI failed once on exactly this).
    const startedAtMs = Date.now() - 10_000;
    const same = join(dir.path, 'thumbs', `${'a'.repeat(64)}.webp`);
    const later = join(dir.path, 'thumbs', `${'b'.repeat(64)}.webp`);
    mkdirSync(join(dir.path, 'thumbs'), { recursive: true });
    writeFileSync(same, 'left by a crash');
    writeFileSync(later, 'being written by another process');
    utimesSync(same, (startedAtMs + 0.6) / 1000, (startedAtMs + 0.6) / 1000);
    utimesSync(later, (startedAtMs + 1.2) / 1000, (startedAtMs + 1.2) / 1000);
    expect(sweepOrphanPhotoFiles(library.connection, dir.path, startedAtMs)).toEqual([`thumbs/${'a'.repeat(64)}.webp`]);
    expect(existsSync(later)).toBe(true);
  });

  it('after a crash marks the job failed, removes the half-imported subject and sweeps unreferenced files', async () => {
    const kept = await service.importSubject({ name: 'Kept', category: 'dog' }, [{ path: DOG[0]! }]);
    // What a process killed in the middle of an import leaves behind.
    const dead = spawnSync(process.execPath, ['-e', '']).pid!;
    const db = library.connection;
    db.prepare("INSERT INTO job_runs (id, kind, label, state, step, total_steps, pid) VALUES ('crashed', 'subject-import', 'Import photos of Half', 'running', 1, 3, ?)").run(dead);
    const half = db.prepare("INSERT INTO subjects (name, category, import_job_id) VALUES ('Half', 'cat', 'crashed')").run().lastInsertRowid;
    const catHash = sha256(readFileSync(CAT[0]!));
    mkdirSync(join(dir.path, 'photos', catHash.slice(0, 2)), { recursive: true });
    cpSync(CAT[0]!, join(dir.path, 'photos', catHash.slice(0, 2), `${catHash}.jpg`));
    db.prepare('INSERT INTO photos (subject_id, sha256, file_path, thumb_path, width, height, bytes) VALUES (?, ?, ?, NULL, 10, 10, 10)').run(half, catHash, `photos/${catHash.slice(0, 2)}/${catHash}.jpg`);
    writeFileSync(join(dir.path, 'photos', 'ab', 'stray.jpg.0a1b2c.partial').replace('/ab/', `/${catHash.slice(0, 2)}/`), 'half a file');
    writeFileSync(join(dir.path, 'thumbs', `${'c'.repeat(64)}.webp`), 'written, but its row never committed');
    expect(library.listSubjects({}).map((s) => s.name)).toEqual(['Kept']);

    const report = new SubjectService(db, dir.path).recoverInterruptedWork();
    expect(report.failedJobs.map((j) => j.id)).toEqual(['crashed']);
    expect(report.removedSubjects).toBe(1);
    expect(report.removedFiles).toHaveLength(2);
    expect(getJobRun(db, 'crashed')).toMatchObject({ state: 'failed', message: expect.stringMatching(/^Interrupted: .*Run it again.*\(1 of 3 steps were done\.\)$/) });
    expect(service.getSubject(kept.subject.id).photoCount).toBe(1);
    expect(count('SELECT count(*) AS n FROM subjects')).toBe(1);
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    expectNoOrphans();
  });
});

/** A stand-in for the engine that counts its runs and returns a vector derived from the photo. */
function countingEmbedder(): { embed: PhotoEmbedder; runs: string[] } {
  const runs: string[] = [];
  return {
    runs,
    embed: async (photo, category) => {
      runs.push(`${photo.sha256.slice(0, 8)}:${category}`);
      const seed = parseInt(photo.sha256.slice(0, 6), 16);
      return { dims: [1, 2, 3], data: Float32Array.from({ length: 6 }, (_, i) => ((seed >> i) % 7) + i + (category === 'dog' ? 0 : 100)) };
    },
  };
}

describe('subject embeddings', () => {
  const MODEL_A = 'a'.repeat(64);
  const MODEL_B = 'b'.repeat(64);

  it('computes each photo once, reuses the cache, and recomputes when the model or category changes', async () => {
    const rex = await service.importSubject({ name: 'Rex', category: 'dog' }, DOG.slice(0, 3).map((path) => ({ path })));
    const fake = countingEmbedder();
    const progress: string[] = [];
    const first = await computeSubjectEmbeddings(library.connection, dir.path, { subjectId: rex.subject.id, modelHash: MODEL_A, embed: fake.embed }, {
      onProgress: (p) => progress.push(`${p.done}/${p.total} ${p.message}`),
    });
    expect([first.computed, first.cached, fake.runs.length]).toEqual([3, 0, 3]);
    expect(progress).toEqual(['1/3 Photo 1 of 3', '2/3 Photo 2 of 3', '3/3 Photo 3 of 3']);

    const second = await computeSubjectEmbeddings(library.connection, dir.path, { subjectId: rex.subject.id, modelHash: MODEL_A, embed: fake.embed });
    expect([second.computed, second.cached, fake.runs.length]).toEqual([0, 3, 3]);
    expect(second.mean.data).toEqual(first.mean.data);

    // A photo added later is the only one computed.
    await service.addPhotos(rex.subject.id, [{ path: DOG[3]! }]);
    expect((await computeSubjectEmbeddings(library.connection, dir.path, { subjectId: rex.subject.id, modelHash: MODEL_A, embed: fake.embed })).computed).toBe(1);
    // Another model fingerprint: all recomputed.
    expect((await computeSubjectEmbeddings(library.connection, dir.path, { subjectId: rex.subject.id, modelHash: MODEL_B, embed: fake.embed })).computed).toBe(4);
    // The Q-Former reads the category word: a new category invalidates too.
    service.updateSubject({ id: rex.subject.id, category: 'puppy' });
    expect((await computeSubjectEmbeddings(library.connection, dir.path, { subjectId: rex.subject.id, modelHash: MODEL_A, embed: fake.embed })).computed).toBe(4);
    expect(fake.runs).toHaveLength(3 + 1 + 4 + 4);
    // A second subject with the same file and category shares the stored embedding.
    const twin = await service.importSubject({ name: 'Twin', category: 'puppy' }, [{ path: DOG[0]! }]);
    expect((await computeSubjectEmbeddings(library.connection, dir.path, { subjectId: twin.subject.id, modelHash: MODEL_A, embed: fake.embed })).cached).toBe(1);
    expect(fake.runs).toHaveLength(12);
  });

  it('journals an interrupted run and resumes it without recomputing finished photos', async () => {
    const rex = await service.importSubject({ name: 'Rex', category: 'dog' }, DOG.slice(0, 3).map((path) => ({ path })));
    const fake = countingEmbedder();
    const controller = new AbortController();
    const cancelling: PhotoEmbedder = async (photo, category) => {
      const result = await fake.embed(photo, category);
      if (fake.runs.length === 2) controller.abort();
      return result;
    };
    await expect(computeSubjectEmbeddings(library.connection, dir.path, { subjectId: rex.subject.id, modelHash: MODEL_A, embed: cancelling }, { signal: controller.signal })).rejects.toThrow();
    expect(listJobRuns(library.connection)[0]).toMatchObject({ kind: 'subject-embeddings', state: 'cancelled' });
    expect(count('SELECT count(*) AS n FROM photo_embeddings')).toBe(1);
    const resumed = await computeSubjectEmbeddings(library.connection, dir.path, { subjectId: rex.subject.id, modelHash: MODEL_A, embed: fake.embed });
    expect([resumed.cached, resumed.computed]).toEqual([1, 2]);
  });

  it('weights the mean by photo and mixes two subjects with a ratio', async () => {
    const rex = await service.importSubject({ name: 'Rex', category: 'dog' }, DOG.slice(0, 2).map((path) => ({ path })));
    const tom = await service.importSubject({ name: 'Tom', category: 'cat' }, CAT.slice(0, 1).map((path) => ({ path })));
    const fake = countingEmbedder();
    for (const id of [rex.subject.id, tom.subject.id]) await computeSubjectEmbeddings(library.connection, dir.path, { subjectId: id, modelHash: MODEL_A, embed: fake.embed });
    const [p0, p1] = rex.added;
    const e0 = await fake.embed({ path: '', sha256: p0!.sha256 }, 'dog');
    const e1 = await fake.embed({ path: '', sha256: p1!.sha256 }, 'dog');

    const equal = subjectMeanEmbedding(library.connection, rex.subject.id, MODEL_A);
    equal.data.forEach((v, i) => expect(v).toBeCloseTo((e0.data[i]! + e1.data[i]!) / 2, 5));
    service.setPhotoWeights({ subjectId: rex.subject.id, weights: [{ photoId: p0!.id, weight: 3 }] });
    const weighted = subjectMeanEmbedding(library.connection, rex.subject.id, MODEL_A);
    weighted.data.forEach((v, i) => expect(v).toBeCloseTo(0.75 * e0.data[i]! + 0.25 * e1.data[i]!, 5));
    expect(() => service.setPhotoWeights({ subjectId: rex.subject.id, weights: [{ photoId: p0!.id, weight: 0 }, { photoId: p1!.id, weight: 0 }] })).toThrow(/At least one photo/);

    const cat = subjectMeanEmbedding(library.connection, tom.subject.id, MODEL_A);
    const mix = mixSubjects(weighted, cat, 0.3);
    mix.data.forEach((v, i) => expect(v).toBeCloseTo(0.3 * weighted.data[i]! + 0.7 * cat.data[i]!, 5));
    expect(mix.dims).toEqual([1, 2, 3]);
    expect(() => mixSubjects(weighted, cat, 1.5)).toThrow(/between 0 and 1/);
    expect(() => subjectMeanEmbedding(library.connection, tom.subject.id, MODEL_B)).toThrow(/not computed for this model yet/);
  });

  it('fingerprints a model folder, changes with its content, and drops the old content’s embeddings', async () => {
    cpSync(DEMO_MODEL, join(dir.path, 'models'), { recursive: true });
    const folder = join(dir.path, 'models', 'tiny-blipdiffusion-controlnet');
    const weightsCacheDir = join(dir.path, 'cache', 'weights');
    const model = loadModelFolder(folder);
    const first = await modelFingerprint(model, { weightsCacheDir });
    expect(first).toMatch(/^[0-9a-f]{64}$/);
    expect(listFiles(dir.path, 'cache/weights/bin-sources').length).toBeGreaterThanOrEqual(5); // one hash record per weights file
    expect(await modelFingerprint(model, { weightsCacheDir })).toBe(first);

    const rex = await service.importSubject({ name: 'Rex', category: 'dog' }, [{ path: DOG[0]! }]);
    recordModelFingerprint(library.connection, model, first);
    await computeSubjectEmbeddings(library.connection, dir.path, { subjectId: rex.subject.id, modelHash: first, embed: countingEmbedder().embed });

    const weights = join(folder, 'qformer', 'model.safetensors');
    const bytes = readFileSync(weights);
    bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 1;
    writeFileSync(weights, bytes);
    const changed = await modelFingerprint(loadModelFolder(folder), { weightsCacheDir });
    expect(changed).not.toBe(first);
    recordModelFingerprint(library.connection, model, changed);
    expect(count('SELECT count(*) AS n FROM photo_embeddings')).toBe(0);
    expect(library.listModels()).toMatchObject([{ folder, hash: changed, kind: 'controlnet', status: 'ready' }]);

    const config = join(folder, 'scheduler', 'scheduler_config.json');
    writeFileSync(config, readFileSync(config, 'utf8').replace('"steps_offset": 0', '"steps_offset": 1'));
    expect(await modelFingerprint(loadModelFolder(folder), { weightsCacheDir })).not.toBe(changed);
  });
});

describe('subject API', () => {
  it('validates and serves the subject methods through dispatch', async () => {
    const { openStudio } = await import('../../main/api/studio');
    const { dispatchCall } = await import('../../main/api/dispatch');
    const studio = await openStudio({ dataDir: join(dir.path, 'studio'), mode: 'cli' });
    const events: string[] = [];
    studio.onEvent((event) => events.push(event));
    try {
      const created = await dispatchCall(studio.api, 'createSubject', [{ name: 'Rex', category: 'dog', note: 'corgi' }]);
      expect(created).toMatchObject({ ok: true, value: { name: 'Rex', photoCount: 0, photos: [] } });
      const id = (created as { value: { id: number } }).value.id;
      expect(await dispatchCall(studio.api, 'createSubject', [{ name: ' ', category: 'dog' }])).toMatchObject({ ok: false, error: { code: 'invalid-request', message: /give the subject a name/ } });
      expect(await dispatchCall(studio.api, 'setPhotoWeights', [{ subjectId: id, weights: [{ photoId: 1, weight: -1 }] }])).toMatchObject({ ok: false, error: { message: /0 or more/ } });
      expect(await dispatchCall(studio.api, 'updateSubject', [{ id, category: 'puppy' }])).toMatchObject({ ok: true, value: { category: 'puppy' } });
      expect(await dispatchCall(studio.api, 'deleteSubject', [{ id }])).toMatchObject({ ok: true, value: { id, undoUntil: expect.any(String) } });
      expect(await dispatchCall(studio.api, 'getSubject', [{ id }])).toMatchObject({ ok: false, error: { code: 'not-found' } });
      expect(await dispatchCall(studio.api, 'undoDeleteSubject', [{ id }])).toMatchObject({ ok: true, value: { id, name: 'Rex' } });
      expect(await dispatchCall(studio.api, 'computeEmbeddings', [{ subjectId: id, model: join(dir.path, 'no-model') }])).toMatchObject({ ok: false, error: { code: 'invalid-request', message: /does not exist/ } });
      expect(events.filter((e) => e === 'libraryChanged').length).toBe(4);
    } finally {
      await studio.close();
    }
  });
});
