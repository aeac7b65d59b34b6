/**
 * Batches, two-subject mixes and subject editing through `dispatchCall` on a real studio (SQLite, the
 * ORT worker, the bundled demo model, DreamBench photos): N images with consecutive seeds, each in the
 * gallery as it lands; a cancel mid-batch keeps the finished images and writes nothing partial; a mix at
 * ratio 1 is subject A alone; a mixed recipe round-trips and reproduces to the same pixels; editing a
 * subject's category makes its embeddings compute again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { GenerationDetail, GenerationSummary, JobSummary, ModelSummary, PhotoUploadResult, StudioEvents, SubjectDetail } from '../../main/api/contract';
import { dispatchCall } from '../../main/api/dispatch';
import { batchSeeds } from '../../main/api/generation-job';
import { openStudio, type Studio } from '../../main/api/studio';
import { decodeRgb } from '../../main/engine/imaging/decode';
import { floatImageToRgb } from '../../main/engine/imaging/encode';
import { generateOnResolvedDevice, resolveDevice } from '../../main/engine/pipelines/resolved-device';
import { RuntimeClient } from '../../main/engine/runtime/runtime-client';
import { readRecipe } from '../../main/gallery/png-recipe';
import { recipeGenerateRequest } from '../../main/gallery/recipe-run';
import { openDatabase } from '../../main/library/database';
import { loadModelFolder } from '../../main/models/model-folder';
import { REPO_ROOT } from '../helpers/built-app';
import { listFilesUnder } from '../helpers/list-files';
import { makeTempDir } from '../helpers/temp-dir';
import { bundleWorkerForTest } from '../helpers/worker-bundle';
import { callStudio, refusal, whenJobFinished } from '../helpers/studio-calls';

let dir: ReturnType<typeof makeTempDir>;
let bundle: Awaited<ReturnType<typeof bundleWorkerForTest>>;
let studio: Studio;
let model: ModelSummary;
let dog: SubjectDetail;
let cat: SubjectDetail;
const jobEvents: JobSummary[] = [];
/** Every event in order, to see images land before their job ends. */
const timeline: string[] = [];

beforeAll(async () => {
  bundle = await bundleWorkerForTest();
  dir = makeTempDir();
  studio = await openStudio({ dataDir: dir.path, mode: 'cli', workerFile: bundle.file });
  studio.onEvent((event, payload) => {
    if (event === 'jobChanged') {
      const job = payload as JobSummary;
      jobEvents.push(job);
      timeline.push(`job:${job.id}:${job.state}`);
    }
    if (event === 'libraryChanged') timeline.push(`library:${(payload as StudioEvents['libraryChanged']).what}`);
  });
  const models = await call<ModelSummary[]>('listModels');
  expect(models).toHaveLength(1);
  model = models[0]!;
  dog = await subjectWith('Rex', 'dog', ['00.jpg', '01.jpg', '02.jpg']);
  cat = await subjectWith('Tom', 'cat', ['00.jpg', '01.jpg']);
}, 120_000);
afterAll(async () => {
  await studio?.close();
  dir?.remove();
  bundle?.remove();
});

const call = <T>(method: string, ...args: unknown[]): Promise<T> => callStudio<T>(studio, method, ...args);

async function subjectWith(name: string, category: string, files: string[]): Promise<SubjectDetail> {
  let subject = await call<SubjectDetail>('createSubject', { name, category });
  for (const file of files) {
    const dataBase64 = readFileSync(join(REPO_ROOT, 'test/fixtures/dreambench', category, file)).toString('base64');
    subject = (await call<PhotoUploadResult>('uploadPhoto', { subjectId: subject.id, name: file, dataBase64 })).subject;
  }
  expect(subject.photoCount).toBe(files.length);
  return subject;
}

const whenFinished = (jobId: string, timeoutMs = 120_000): Promise<JobSummary> => whenJobFinished(studio, jobEvents, jobId, timeoutMs);

async function generateDone(request: Record<string, unknown>): Promise<JobSummary> {
  const job = await call<{ id: string }>('startGeneration', { prompt: 'on the beach', steps: 2, width: 64, height: 64, ...request });
  const final = await whenFinished(job.id);
  expect(final.state, final.message).toBe('done');
  return final;
}

const generations = () => call<GenerationSummary[]>('listGenerations', {});
const pixelsOf = async (generation: GenerationSummary) => (await decodeRgb(readFileSync(join(dir.path, generation.imagePath)))).data;
const resultFiles = () => listFilesUnder(join(dir.path, 'results'));

describe('batch count', () => {
  it('makes N images with consecutive seeds, each in the gallery (and announced) before the job ends', async () => {
    timeline.length = 0;
    const final = await generateDone({ subjectId: dog.id, seed: '100', batchCount: 3 });
    expect(final.label).toMatch(/· 3 images$/);
    expect(final.message).toMatch(/Saved 3 64×64 images \(seeds 100, 101, 102\)/);
    const made = (await generations()).slice(0, 3);
    expect(made.map((g) => g.seed).sort()).toEqual(['100', '101', '102']);
    expect(final.resultId).toBe(Math.max(...made.map((g) => g.id)));
    // Three announcements, the first long before the job is done.
    const doneAt = timeline.indexOf(`job:${final.id}:done`);
    const announced = timeline.flatMap((entry, index) => (entry === 'library:generations' ? [index] : []));
    expect(announced).toHaveLength(3);
    expect(announced[0]).toBeLessThan(doneAt - 2);
    for (const generation of made) {
      const detail = await call<GenerationDetail>('getGeneration', { id: generation.id });
      expect(detail.recipe).toMatchObject({ seed: generation.seed, recipeVersion: 1 });
    }
    // Same settings, different seeds: different images.
    const [a, b] = await Promise.all(made.slice(0, 2).map(pixelsOf));
    expect(Buffer.from(a!).equals(Buffer.from(b!))).toBe(false);
  });

  it('draws N random seeds when none is given, and wraps after 2^64 − 1', async () => {
    const before = (await generations()).length;
    await generateDone({ subjectId: dog.id, batchCount: 2 });
    const made = (await generations()).slice(0, (await generations()).length - before);
    expect(made).toHaveLength(2);
    expect(made[0]!.seed).not.toBe(made[1]!.seed);
    expect(batchSeeds('18446744073709551615', 2)).toEqual(['18446744073709551615', '0']);
  });

  it('cancelled mid-batch: the finished images stay, the rest never start, no partial file', async () => {
    const before = await generations();
    const filesBefore = resultFiles();
    let target = '';
    const stop = studio.onEvent((event, payload) => {
      const job = payload as JobSummary;
      if (event === 'jobChanged' && job.id === target && job.state === 'running' && job.message.startsWith('Image 2 of 3 · Step 2')) {
        void dispatchCall(studio.api, 'cancelJob', [{ id: target }]);
      }
    });
    try {
      target = (await call<{ id: string }>('startGeneration', { subjectId: dog.id, prompt: 'in the snow', steps: 20, width: 64, height: 64, seed: '500', batchCount: 3 })).id;
      const final = await whenFinished(target);
      expect(final.state).toBe('cancelled');
    } finally {
      stop();
    }
    const after = await generations();
    expect(after.length).toBe(before.length + 1);
    expect(after[0]!.seed).toBe('500');
    expect(resultFiles().length).toBe(filesBefore.length + 1);
    expect(resultFiles()).toEqual(expect.arrayContaining(filesBefore));
  });

  it('refuses a batch count outside 1–8', async () => {
    for (const batchCount of [0, 9, 1.5]) {
      const error = refusal(await dispatchCall(studio.api, 'startGeneration', [{ subjectId: dog.id, prompt: 'x', batchCount }]));
      expect(error).toMatchObject({ code: 'invalid-request', message: expect.stringMatching(/batchCount: the batch count must be/) });
    }
  });
});

describe('two-subject mix', () => {
  let mixed: GenerationDetail;

  it('at ratio 1 is subject A alone, pixel for pixel; at 0.7 it is neither', async () => {
    const alone = await generateDone({ subjectId: dog.id, seed: '7' });
    const ratioOne = await generateDone({ subjectId: dog.id, seed: '7', mix: { subjectId: cat.id, ratio: 1 } });
    const seventy = await generateDone({ subjectId: dog.id, seed: '7', mix: { subjectId: cat.id, ratio: 0.7 } });
    const catAlone = await generateDone({ subjectId: cat.id, seed: '7', targetSubject: 'dog' });
    const [a, one, mix, c] = await Promise.all(
      [alone, ratioOne, seventy, catAlone].map(async (job) => pixelsOf(await call<GenerationDetail>('getGeneration', { id: job.resultId }))),
    );
    expect(Buffer.from(one!).equals(Buffer.from(a!))).toBe(true);
    expect(Buffer.from(mix!).equals(Buffer.from(a!))).toBe(false);
    expect(Buffer.from(mix!).equals(Buffer.from(c!))).toBe(false);
    expect(seventy.label).toContain('Rex + Tom');
    mixed = await call<GenerationDetail>('getGeneration', { id: seventy.resultId });
  });

  it('records the mix in the recipe (version 2), the same as the PNG carries', () => {
    expect(mixed.recipe).toMatchObject({
      recipeVersion: 2,
      targetSubject: 'dog',
      subject: { name: 'Rex', category: 'dog', photos: dog.photos.map((p) => ({ sha256: p.sha256, weight: 1 })) },
      mix: { ratio: 0.7, subject: { name: 'Tom', category: 'cat', photos: cat.photos.map((p) => ({ sha256: p.sha256, weight: 1 })) } },
    });
    expect(readRecipe(readFileSync(join(dir.path, mixed.imagePath)))).toEqual(mixed.recipe);
  });

  it('reproduces a mixed recipe to identical pixels through the reproduce code path', async () => {
    const png = readFileSync(join(dir.path, mixed.imagePath));
    const recipe = readRecipe(png);
    const runtime = RuntimeClient.start({ workerFile: bundle.file });
    const db = openDatabase(dir.path);
    try {
      const folder = loadModelFolder(model.folder);
      const context = { runtime, device: recipe.device, cacheDir: join(dir.path, 'cache') };
      const request = await recipeGenerateRequest({ ...context, device: await resolveDevice(context) }, folder, recipe, { db, dataDir: dir.path });
      const { result } = await generateOnResolvedDevice(context, request, () => undefined);
      const again = floatImageToRgb(result.image, result.width, result.height);
      expect(Buffer.from(again.data).equals(Buffer.from((await decodeRgb(png)).data))).toBe(true);
    } finally {
      db.close();
      await runtime.close();
    }
  });

  it('uses the photo weights in the mean: changing one changes the image', async () => {
    const before = await generateDone({ subjectId: dog.id, seed: '7', mix: { subjectId: cat.id, ratio: 0.7 } });
    await call('setPhotoWeights', { subjectId: dog.id, weights: [{ photoId: dog.photos[0]!.id, weight: 0.2 }] });
    const after = await generateDone({ subjectId: dog.id, seed: '7', mix: { subjectId: cat.id, ratio: 0.7 } });
    const detail = await call<GenerationDetail>('getGeneration', { id: after.resultId });
    expect((detail.recipe.subject as { photos: { weight: number }[] }).photos.map((p) => p.weight)).toEqual([0.2, 1, 1]);
    const [x, y] = await Promise.all([before, after].map(async (job) => pixelsOf(await call<GenerationDetail>('getGeneration', { id: job.resultId }))));
    expect(Buffer.from(x!).equals(Buffer.from(y!))).toBe(false);
    await call('setPhotoWeights', { subjectId: dog.id, weights: [{ photoId: dog.photos[0]!.id, weight: 1 }] });
  });

  it('refuses a mix with itself, with an unknown subject, or a ratio outside 0–1', async () => {
    expect(refusal(await dispatchCall(studio.api, 'startGeneration', [{ subjectId: dog.id, prompt: 'x', mix: { subjectId: dog.id, ratio: 0.5 } }])).message).toMatch(/pick a different second subject/);
    expect(refusal(await dispatchCall(studio.api, 'startGeneration', [{ subjectId: dog.id, prompt: 'x', mix: { subjectId: 999, ratio: 0.5 } }])).code).toBe('not-found');
    expect(refusal(await dispatchCall(studio.api, 'startGeneration', [{ subjectId: dog.id, prompt: 'x', mix: { subjectId: cat.id, ratio: 1.2 } }])).message).toMatch(/mix\.ratio: the mix ratio must be from 0 to 1/);
  });
});

describe('editing a subject', () => {
  it('renames, re-notes, re-covers and removes photos, refusing bad edits with clear messages', async () => {
    let edited = await call<SubjectDetail>('updateSubject', { id: cat.id, name: '  Tom the cat ', note: 'grey tabby' });
    expect(edited).toMatchObject({ name: 'Tom the cat', note: 'grey tabby', category: 'cat' });
    const second = edited.photos[1]!;
    edited = await call<SubjectDetail>('updateSubject', { id: cat.id, coverPhotoId: second.id });
    expect(edited.coverPhotoId).toBe(second.id);
    expect(edited.coverPath).toBe(second.thumbPath);
    expect(refusal(await dispatchCall(studio.api, 'updateSubject', [{ id: cat.id, name: '   ' }])).message).toMatch(/name: give the subject a name/);
    expect(refusal(await dispatchCall(studio.api, 'updateSubject', [{ id: cat.id, coverPhotoId: dog.photos[0]!.id }])).message).toMatch(/not a photo of this subject/);
    // Removing the cover photo moves the cover to a remaining one.
    edited = await call<SubjectDetail>('removePhotos', { subjectId: cat.id, photoIds: [second.id] });
    expect(edited.photos.map((p) => p.id)).not.toContain(second.id);
    expect(edited.coverPhotoId).toBe(edited.photos[0]!.id);
    cat = edited;
  });

  it('a new category word computes the embeddings again (they are keyed by it); the old word finds its cache again', async () => {
    const embed = async () => (await whenFinished((await call<{ id: string }>('computeEmbeddings', { subjectId: dog.id, model: model.folder })).id)).message;
    expect(await embed()).toBe('0 computed, 3 reused from the cache');
    await call('updateSubject', { id: dog.id, category: 'puppy' });
    expect(await embed()).toBe('3 computed, 0 reused from the cache');
    const final = await generateDone({ subjectId: dog.id, seed: '1' });
    const detail = await call<GenerationDetail>('getGeneration', { id: final.resultId });
    expect(detail.recipe).toMatchObject({ targetSubject: 'puppy', subject: { category: 'puppy' } });
    await call('updateSubject', { id: dog.id, category: 'dog' });
    expect(await embed()).toBe('0 computed, 3 reused from the cache');
  });
});
