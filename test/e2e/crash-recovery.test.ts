/**
 * The store survives `kill -9` of a serve process: during a generation's embeddings, mid-denoise,
 * around the PNG write, and during photo uploads. After each kill, serve is restarted on the same data
 * folder and must show the interrupted job as failed (never silently lost); then, with serve stopped,
 * the database passes `PRAGMA integrity_check` and files and rows match one for one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import BetterSqlite3 from 'better-sqlite3';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { JobSummary, SubjectDetail } from '../../main/api/contract';
import { databasePath } from '../../main/library/database';
import { REPO_ROOT, requireBuild, startServe, type ServeProcess } from '../helpers/built-app';
import { listFilesUnder } from '../helpers/list-files';
import { serveApi, serveEvents, type ServeApi } from '../helpers/serve-api';
import { makeTempDir } from '../helpers/temp-dir';

const DREAMBENCH = join(REPO_ROOT, 'test/fixtures/dreambench');
const photo = (kind: 'dog' | 'cat', index: number) => ({ name: `${kind}-0${index}.jpg`, path: join(DREAMBENCH, kind, `0${index}.jpg`) });
const INTERRUPTED = /^Interrupted: BLIP Studio stopped while this job ran/;

let dir: ReturnType<typeof makeTempDir>;
let dataDir: string;
beforeAll(() => {
  requireBuild();
  dir = makeTempDir('blip-crash-');
  dataDir = join(dir.path, 'data');
});
afterAll(() => dir.remove());

async function uploadPhotos(api: ServeApi, subject: SubjectDetail, photos: { name: string; path: string }[]): Promise<void> {
  for (const p of photos) {
    const result = await api.uploadPhoto({ subjectId: subject.id, name: p.name, dataBase64: readFileSync(p.path).toString('base64') });
    expect(result.rejected).toEqual([]);
  }
}

/** Kills serve with SIGKILL (no shutdown code runs) and waits for it to be gone. */
async function killHard(serve: ServeProcess): Promise<void> {
  const exited = new Promise<NodeJS.Signals | null>((resolve) => serve.child.once('exit', (_code, signal) => resolve(signal)));
  serve.child.kill('SIGKILL');
  expect(await exited).toBe('SIGKILL');
}

interface JobRunRow {
  id: string;
  kind: string;
  state: string;
  message: string;
  step: number;
}

/**
 * With serve stopped: the database is intact, no job is left 'running', every file under results/,
 * photos/ and thumbs/ is named by a row and every row's file exists, and no temporary file is left.
 */
function expectConsistentStore(): JobRunRow[] {
  const db = new BetterSqlite3(databasePath(dataDir), { readonly: true, fileMustExist: true });
  try {
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    expect(db.pragma('foreign_key_check')).toEqual([]);
    const runs = db.prepare('SELECT id, kind, state, message, step FROM job_runs ORDER BY started_at').all() as JobRunRow[];
    expect(runs.filter((r) => r.state === 'running')).toEqual([]);
    expect(db.prepare('SELECT count(*) AS n FROM subjects WHERE import_job_id IS NOT NULL').get()).toEqual({ n: 0 });

    const photoRows = db.prepare('SELECT file_path, thumb_path FROM photos').all() as { file_path: string; thumb_path: string | null }[];
    const photoFiles = new Set(photoRows.flatMap((r) => [r.file_path, ...(r.thumb_path === null ? [] : [r.thumb_path])]));
    const resultFiles = new Set((db.prepare('SELECT image_path FROM generations').all() as { image_path: string }[]).map((r) => r.image_path));
    const onDisk = ['photos', 'thumbs', 'results'].flatMap((folder) => listFilesUnder(join(dataDir, folder)));
    expect(onDisk.filter((f) => f.endsWith('.partial'))).toEqual([]);
    expect(new Set(onDisk)).toEqual(new Set([...photoFiles, ...resultFiles]));
    return runs;
  } finally {
    db.close();
  }
}

/** The generation jobs in the API's job list (live ones, and those a crash interrupted). */
function generationJobs(jobs: readonly JobSummary[]): JobSummary[] {
  return jobs.filter((j) => j.kind === 'generation');
}

describe('kill -9 of serve, then a restart on the same data folder', () => {
  it('during a generation (embeddings, mid-denoise, around the PNG write): the job is marked failed and visible, the store stays consistent', async () => {
    let serve = await startServe(dataDir);
    let api = serveApi(serve);
    const generationsBefore: number[] = [];

    const rounds = [
      // A new subject each time, so the generation has embeddings to compute first.
      { name: 'during the embeddings', photos: [photo('dog', 0), photo('dog', 1), photo('dog', 2)], steps: 300, size: 64, killWhen: (j: JobSummary) => /^Embedding photos/.test(j.message) },
      { name: 'mid-denoise', photos: [photo('cat', 0), photo('cat', 1)], steps: 300, size: 64, killWhen: (j: JobSummary) => j.step >= 20 && /^Step \d+ of/.test(j.message) },
      { name: 'around the PNG write', photos: [photo('dog', 3)], steps: 4, size: 256, killWhen: (j: JobSummary) => /^Saving the image/.test(j.message) },
    ];
    for (const [round, plan] of rounds.entries()) {
      const subject = await api.createSubject({ name: `Round ${round}`, category: round === 1 ? 'cat' : 'dog' });
      await uploadPhotos(api, subject, plan.photos);
      const events = await serveEvents(serve);
      generationsBefore.push((await api.listGenerations({})).length);
      const { id } = await api.startGeneration({ subjectId: subject.id, prompt: 'on a sunny beach', steps: plan.steps, width: plan.size, height: plan.size, seed: String(round + 1) });
      const seen = await events.next('jobChanged', (j) => j.id === id && (plan.killWhen(j) || j.state !== 'running' && j.state !== 'queued'), 120_000);
      await killHard(serve);
      events.close();
      expect(seen.state, `${plan.name}: the job ended before the kill: ${seen.message}`).toBe('running');

      serve = await startServe(dataDir);
      api = serveApi(serve);
      const generations = await api.listGenerations({});
      const jobs = generationJobs(await api.listJobs());
      if (generations.length > generationsBefore[round]!) {
        // Killed just after the result was committed: it is in the gallery, and nothing was lost.
        expect(plan.name).toBe('around the PNG write');
        expect(generations[0]).toMatchObject({ subjectId: subject.id, width: plan.size, height: plan.size });
      } else {
        // The interrupted generation is listed as failed, saying what happened and what to do.
        expect(jobs, `${plan.name}: the interrupted generation is not listed`).toHaveLength(1);
        expect(jobs[0]).toMatchObject({ state: 'failed', message: expect.stringMatching(INTERRUPTED) });
        expect(jobs[0]!.label).toContain(`Round ${round}`);
        expect(jobs[0]!.message).toMatch(/Run it again/);
      }
      await serve.stop();

      const runs = expectConsistentStore();
      const last = runs.filter((r) => r.kind === 'generation').at(-1)!;
      // Killed after the result was committed, the journal may or may not have recorded the end yet
      // (a kill can land between the two writes); otherwise the run must read failed.
      if (generations.length > generationsBefore[round]!) expect(['done', 'failed']).toContain(last.state);
      else expect(last.state).toBe('failed');
      if (round === 1) expect(last.step, 'killed mid-denoise').toBeGreaterThanOrEqual(20);

      serve = await startServe(dataDir);
      api = serveApi(serve);
      // After a clean restart the interrupted job is history (in the journal), no longer listed as news.
      expect(generationJobs(await api.listJobs())).toEqual([]);
    }

    // The library still works: the subject killed during its embeddings generates now, reusing what was finished.
    const events = await serveEvents(serve);
    const subject = (await api.listSubjects({})).find((s) => s.name === 'Round 0')!;
    const { id } = await api.startGeneration({ subjectId: subject.id, prompt: 'on a sunny beach', steps: 2, width: 64, height: 64, seed: '9' });
    const done = await events.next('jobChanged', (j) => j.id === id && j.state !== 'running' && j.state !== 'queued', 120_000);
    events.close();
    expect(done, done.message).toMatchObject({ state: 'done' });
    await serve.stop();
    expectConsistentStore();
  }, 300_000);

  it('during a fine-tune: the job is listed as failed, no adapter row is left, and the next fine-tune stores one', async () => {
    let serve = await startServe(dataDir);
    let api = serveApi(serve);
    const subject = await api.createSubject({ name: 'Tuned', category: 'dog' });
    await uploadPhotos(api, subject, [photo('dog', 0), photo('dog', 1)]);
    const events = await serveEvents(serve);
    const { id } = await api.startFinetune({ subjectId: subject.id, preset: 'custom', settings: { steps: 500 } });
    const seen = await events.next('jobChanged', (j) => j.id === id && ((j.series?.length ?? 0) >= 2 || (j.state !== 'running' && j.state !== 'queued')), 120_000);
    await killHard(serve);
    events.close();
    expect(seen.state, seen.message).toBe('running');

    serve = await startServe(dataDir);
    api = serveApi(serve);
    const jobs = (await api.listJobs()).filter((j) => j.kind === 'finetune');
    expect(jobs).toHaveLength(1);
    expect(jobs[0]).toMatchObject({ state: 'failed', message: expect.stringMatching(INTERRUPTED) });
    expect(await api.listAdapters({})).toEqual([]);
    const again = await serveEvents(serve);
    const next = await api.startFinetune({ subjectId: subject.id, preset: 'custom', settings: { steps: 2 } });
    const done = await again.next('jobChanged', (j) => j.id === next.id && j.state !== 'running' && j.state !== 'queued', 120_000);
    again.close();
    expect(done, done.message).toMatchObject({ state: 'done' });
    expect(await api.listAdapters({ subjectId: subject.id })).toHaveLength(1);
    await serve.stop();
    const runs = expectConsistentStore();
    expect(runs.filter((r) => r.kind === 'finetune').map((r) => r.state)).toEqual(['failed', 'done']);
  }, 240_000);

  it('during photo uploads: photos are either fully in (row and files) or not at all', async () => {
    const uploads = [0, 1, 2, 3, 4].flatMap((i) => [photo('cat', i), photo('dog', i)]);
    for (const round of [0, 1, 2]) {
      let serve = await startServe(dataDir);
      let api = serveApi(serve);
      const subject = await api.createSubject({ name: `Upload ${round}`, category: 'cat' });
      const events = await serveEvents(serve);
      // All at once, as a drop of several files: the kill lands while the later ones are being stored.
      const pending = uploads.map((p) => api.uploadPhoto({ subjectId: subject.id, name: p.name, dataBase64: readFileSync(p.path).toString('base64') }).then(() => 'added' as const, () => 'lost' as const));
      await events.next('libraryChanged', (change) => change.what === 'photos', 60_000);
      if (round > 0) await new Promise((resolve) => setTimeout(resolve, round * 10));
      await killHard(serve);
      events.close();
      const outcomes = await Promise.all(pending);
      // Uploads the client saw fail are the ones it must retry; none it saw succeed may be missing.
      expect(outcomes).toContain('lost');

      serve = await startServe(dataDir);
      api = serveApi(serve);
      const after = await api.getSubject({ id: subject.id });
      expect(after.photoCount).toBeGreaterThanOrEqual(outcomes.filter((o) => o === 'added').length);
      expect(after.photoCount).toBeGreaterThanOrEqual(1);
      await serve.stop();
      expectConsistentStore();
    }
  }, 180_000);
});
