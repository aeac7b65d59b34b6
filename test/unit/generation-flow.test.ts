/**
 * The Generate flow end to end through `dispatchCall`, on a real studio (SQLite, the ORT worker, the
 * bundled demo model): upload photos, generate with live progress and previews, read the recipe back,
 * cancel a generation midway, delete one, and refuse bad payloads with messages that name the problem.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { GenerationDetail, JobSummary, ModelSummary, PhotoUploadResult, StudioEvents, SubjectDetail } from '../../main/api/contract';
import { dispatchCall } from '../../main/api/dispatch';
import { openStudio, type Studio } from '../../main/api/studio';
import { UNDO_WINDOW_MS } from '../../main/library/subject-service';
import { REPO_ROOT } from '../helpers/built-app';
import { listFilesUnder } from '../helpers/list-files';
import { makeTempDir } from '../helpers/temp-dir';
import { bundleWorkerForTest } from '../helpers/worker-bundle';
import { callStudio, refusal, whenJobFinished } from '../helpers/studio-calls';

let dir: ReturnType<typeof makeTempDir>;
let bundle: Awaited<ReturnType<typeof bundleWorkerForTest>>;
let studio: Studio;
const jobEvents: JobSummary[] = [];
const libraryEvents: StudioEvents['libraryChanged'][] = [];
let subject: SubjectDetail;

beforeAll(async () => {
  bundle = await bundleWorkerForTest();
  dir = makeTempDir();
  studio = await openStudio({ dataDir: dir.path, mode: 'cli', workerFile: bundle.file });
  studio.onEvent((event, payload) => {
    if (event === 'jobChanged') jobEvents.push(payload as JobSummary);
    if (event === 'libraryChanged') libraryEvents.push(payload as StudioEvents['libraryChanged']);
  });
}, 120_000);
afterAll(async () => {
  await studio?.close();
  dir?.remove();
  bundle?.remove();
});

const call = <T>(method: string, ...args: unknown[]): Promise<T> => callStudio<T>(studio, method, ...args);

const whenFinished = (jobId: string, timeoutMs = 120_000): Promise<JobSummary> => whenJobFinished(studio, jobEvents, jobId, timeoutMs);

const photo = (file: string) => readFileSync(join(REPO_ROOT, 'test/fixtures/dreambench/dog', file)).toString('base64');
const resultFiles = () => listFilesUnder(join(dir.path, 'results'));

describe('models', () => {
  it('lists the bundled demo model, ready, with its ControlNet', async () => {
    const models = await call<ModelSummary[]>('listModels');
    expect(models).toHaveLength(1);
    expect(models[0]).toMatchObject({ kind: 'controlnet', status: 'ready', isDemo: true, hasControlNet: true });
    expect(existsSync(join(models[0]!.folder, 'model_index.json'))).toBe(true);
  });
});

describe('uploadPhoto', () => {
  it('adds photos one per call and returns refusals instead of throwing', async () => {
    subject = await call<SubjectDetail>('createSubject', { name: 'Rex', category: 'dog' });
    libraryEvents.length = 0;
    for (const file of ['00.jpg', '01.jpg', '02.jpg']) {
      const result = await call<PhotoUploadResult>('uploadPhoto', { subjectId: subject.id, name: file, dataBase64: photo(file) });
      expect(result.rejected).toEqual([]);
      subject = result.subject;
    }
    expect(subject.photoCount).toBe(3);
    expect(libraryEvents).toContainEqual({ what: 'photos' });

    const text = await call<PhotoUploadResult>('uploadPhoto', { subjectId: subject.id, name: 'notes.txt', dataBase64: Buffer.from('not a photo').toString('base64') });
    expect(text.rejected).toEqual([{ name: 'notes.txt', reason: expect.stringMatching(/not an image/) }]);
    expect(text.subject.photoCount).toBe(3);
  });

  it.each([
    ['text that is not base64', { name: 'a.jpg', dataBase64: 'not base64!' }, /dataBase64: the photo must be base64/],
    ['a data: URL', { name: 'a.jpg', dataBase64: 'data:image/png;base64,AAAA' }, /without a data: prefix/],
    ['cut-short base64', { name: 'a.jpg', dataBase64: 'AAAAA' }, /cut short/],
    ['an empty name', { name: '  ', dataBase64: 'AAAA' }, /name: give the photo its file name/],
  ])('rejects %s', async (_label, upload, message) => {
    const error = refusal(await dispatchCall(studio.api, 'uploadPhoto', [{ subjectId: subject.id, ...upload }]));
    expect(error.code).toBe('invalid-request');
    expect(error.message).toMatch(message);
  });
});

describe('startGeneration', () => {
  let generation: GenerationDetail;

  it('runs a job with step progress, previews and a result, then records the PNG with its recipe', async () => {
    libraryEvents.length = 0;
    const job = await call<{ id: string }>('startGeneration', { subjectId: subject.id, prompt: 'swimming underwater', steps: 4, width: 64, height: 64, seed: '42' });
    const final = await whenFinished(job.id);
    expect(final).toMatchObject({ state: 'done', kind: 'generation', label: '“swimming underwater” · Rex', resultId: expect.any(Number) });

    const events = jobEvents.filter((e) => e.id === job.id);
    expect(events.some((e) => e.message.startsWith('Embedding photos'))).toBe(true);
    // PNDM (the default scheduler) runs a warm-up step more than asked: the job counts model steps.
    const steps = events.filter((e) => e.state === 'running' && e.message.startsWith('Step '));
    expect(steps.map((e) => e.step)).toEqual(expect.arrayContaining([1, 2, 3]));
    expect(steps.some((e) => typeof e.etaMs === 'number')).toBe(true);
    expect(events.find((e) => e.preview !== null)?.preview).toMatch(/^data:image\/png;base64,[A-Za-z0-9+/]+=*$/);
    expect(libraryEvents).toContainEqual({ what: 'generations' });

    generation = await call<GenerationDetail>('getGeneration', { id: final.resultId });
    expect(generation).toMatchObject({ id: final.resultId, subjectId: subject.id, prompt: 'swimming underwater', seed: '42', width: 64, height: 64 });
    expect(generation.recipe).toMatchObject({ app: 'BLIP Studio', seed: '42', steps: 4, width: 64, height: 64, targetSubject: 'dog', device: 'cpu' });
    expect((generation.recipe.subject as { photos: unknown[] }).photos).toHaveLength(3);
    expect(generation.imagePath).toMatch(/^results\/[0-9a-f]{2}\/[0-9a-f]{64}\.png$/);
    const png = readFileSync(join(dir.path, generation.imagePath));
    expect([...png.subarray(1, 4)]).toEqual([0x50, 0x4e, 0x47]);
    expect((await call<{ id: number }[]>('listGenerations', {})).map((g) => g.id)).toEqual([generation.id]);
  });

  it('cancels a generation midway, leaving no row and no file', async () => {
    const filesBefore = resultFiles();
    let target = '';
    const stop = studio.onEvent((event, payload) => {
      const job = payload as JobSummary;
      if (event === 'jobChanged' && job.id === target && job.state === 'running' && job.message.startsWith('Step ') && job.step >= 2) {
        void dispatchCall(studio.api, 'cancelJob', [{ id: target }]);
      }
    });
    try {
      target = (await call<{ id: string }>('startGeneration', { subjectId: subject.id, prompt: 'on the beach', steps: 200, width: 64, height: 64 })).id;
      const final = await whenFinished(target);
      expect(final).toMatchObject({ state: 'cancelled', resultId: null });
      expect(final.step).toBeLessThan(10);
    } finally {
      stop();
    }
    expect((await call<unknown[]>('listGenerations', {})).length).toBe(1);
    expect(resultFiles()).toEqual(filesBefore);
  });

  it('keeps a model that a generation is using: removing it is refused until the job has ended', async () => {
    // A second copy of the demo model, added as a folder the user has (the demo itself cannot be removed).
    const copy = join(dir.path, 'my-models', 'tiny');
    cpSync(join(REPO_ROOT, 'resources/demo-model'), join(dir.path, 'my-models'), { recursive: true });
    cpSync(join(dir.path, 'my-models', 'tiny-blipdiffusion-controlnet'), copy, { recursive: true });
    expect((await whenFinished((await call<{ id: string }>('addModelFolder', { folder: copy })).id)).state).toBe('done');
    const model = (await call<ModelSummary[]>('listModels')).find((m) => m.folder === copy)!;
    const running = await call<{ id: string }>('startGeneration', { subjectId: subject.id, prompt: 'in the rain', steps: 300, width: 64, height: 64, modelId: model.id });
    const refused = refusal(await dispatchCall(studio.api, 'removeModel', [{ id: model.id, deleteFiles: false }]));
    expect(refused).toMatchObject({ code: 'conflict', message: expect.stringMatching(/in use by “.*in the rain.*”: let it finish or cancel it/) });
    await call('cancelJob', { id: running.id });
    expect((await whenFinished(running.id)).state).toBe('cancelled');
    await call('removeModel', { id: model.id, deleteFiles: false });
    expect((await call<ModelSummary[]>('listModels')).some((m) => m.id === model.id)).toBe(false);
    expect(existsSync(copy)).toBe(true); // a folder the user added is never deleted
  });

  it('refuses at once what the user can fix: a size the model cannot make, a negative prompt too long for its tokenizer', async () => {
    const size = refusal(await dispatchCall(studio.api, 'startGeneration', [{ subjectId: subject.id, prompt: 'in the snow', steps: 2, width: 63, height: 64 }]));
    expect(size).toMatchObject({ code: 'invalid-request', message: expect.stringMatching(/width must be a positive multiple of 2/) });
    const negative = refusal(await dispatchCall(studio.api, 'startGeneration', [{ subjectId: subject.id, prompt: 'x', steps: 2, negativePrompt: 'lowres '.repeat(80) }]));
    expect(negative).toMatchObject({ code: 'invalid-request', message: expect.stringMatching(/Shorten the negative prompt/) });
    expect((await call<{ state: string }[]>('listJobs')).filter((j) => j.state === 'queued')).toEqual([]);
  });

  it('deletes a generation undoably: hidden at once, back with undo, gone with its file after the window', async () => {
    libraryEvents.length = 0;
    const file = join(dir.path, generation.imagePath);
    const started = Date.now();
    const deletion = await call<{ id: number; undoUntil: string }>('deleteGeneration', { id: generation.id });
    expect(deletion.id).toBe(generation.id);
    expect(Date.parse(deletion.undoUntil) - started).toBeGreaterThanOrEqual(UNDO_WINDOW_MS - 1000);
    expect(await call<unknown[]>('listGenerations', {})).toEqual([]);
    expect((await call<{ generations: number }>('getLibraryCounts')).generations).toBe(0);
    expect(libraryEvents).toContainEqual({ what: 'generations' });
    expect(refusal(await dispatchCall(studio.api, 'getGeneration', [{ id: generation.id }])).code).toBe('not-found');
    expect(refusal(await dispatchCall(studio.api, 'deleteGeneration', [{ id: generation.id }])).code).toBe('not-found');
    expect(existsSync(file)).toBe(true);

    expect(await call<GenerationDetail>('undoDeleteGeneration', { id: generation.id })).toMatchObject({ id: generation.id, seed: '42' });
    expect((await call<{ id: number }[]>('listGenerations', {})).map((g) => g.id)).toEqual([generation.id]);
    expect(refusal(await dispatchCall(studio.api, 'undoDeleteGeneration', [{ id: generation.id }])).code).toBe('not-found');

    await call('deleteGeneration', { id: generation.id });
    await expect.poll(() => existsSync(file), { timeout: UNDO_WINDOW_MS + 5000, interval: 250 }).toBe(false);
    expect(refusal(await dispatchCall(studio.api, 'undoDeleteGeneration', [{ id: generation.id }])).message).toMatch(/gone for good/);
  }, UNDO_WINDOW_MS + 20_000);

  it.each([
    ['a missing prompt', { prompt: '   ' }, /prompt: describe the scene/],
    ['a negative seed', { prompt: 'x', seed: '-1' }, /seed: the seed must be a whole number/],
    ['a seed of 2^64', { prompt: 'x', seed: '18446744073709551616' }, /seed: the seed must be at most 2\^64 − 1/],
    ['a number as seed', { prompt: 'x', seed: 42 }, /seed/],
    ['zero steps', { prompt: 'x', steps: 0 }, /steps: steps must be at least 1/],
    ['a huge width', { prompt: 'x', width: 100_000 }, /width: width must be at most 2048 pixels/],
    ['an unknown scheduler', { prompt: 'x', scheduler: 'magic' }, /scheduler/],
    ['an unknown key', { prompt: 'x', strength: 2 }, /strength/],
  ])('rejects %s', async (_label, fields, message) => {
    const error = refusal(await dispatchCall(studio.api, 'startGeneration', [{ subjectId: subject.id, ...fields }]));
    expect(error.code).toBe('invalid-request');
    expect(error.message).toMatch(message);
  });

  it('says what is missing for an unknown subject or model', async () => {
    expect(refusal(await dispatchCall(studio.api, 'startGeneration', [{ subjectId: 9999, prompt: 'x' }])).code).toBe('not-found');
    expect(refusal(await dispatchCall(studio.api, 'startGeneration', [{ subjectId: subject.id, prompt: 'x', modelId: 9999 }])).message).toBe('No model with id 9999.');
    expect(refusal(await dispatchCall(studio.api, 'getGeneration', [{ id: 'one' }])).message).toMatch(/Invalid request to getGeneration: 0\.id: .*expected number/);
  });
});
