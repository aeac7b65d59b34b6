/**
 * The gallery's API through `dispatchCall` on a real studio (SQLite, the ORT worker, the bundled demo
 * model): the date filter and paging of listGenerations, reading recipes from PNG bytes (good, foreign,
 * forged, damaged, huge) and reproducing a result as a job with a pixel comparison.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import type { GenerationDetail, GenerationSummary, JobSummary, RecipeReading, Reproduction, SubjectDetail } from '../../main/api/contract';
import { dispatchCall } from '../../main/api/dispatch';
import { openStudio, type Studio } from '../../main/api/studio';
import { GenerationsStore } from '../../main/gallery/generations-store';
import { assemblePng, encodeInternationalTextChunk, parsePngChunks } from '../../main/gallery/png-chunks';
import { embedRecipe, MAX_RECIPE_CHUNK_BYTES, RECIPE_KEYWORD } from '../../main/gallery/png-recipe';
import type { Recipe } from '../../main/gallery/recipe';
import { REPO_ROOT } from '../helpers/built-app';
import { makeTempDir } from '../helpers/temp-dir';
import { bundleWorkerForTest } from '../helpers/worker-bundle';
import { callStudio, refusal, whenJobFinished } from '../helpers/studio-calls';

let dir: ReturnType<typeof makeTempDir>;
let bundle: Awaited<ReturnType<typeof bundleWorkerForTest>>;
let studio: Studio;
let subject: SubjectDetail;
let original: GenerationDetail;
const jobEvents: JobSummary[] = [];

const call = <T>(method: string, ...args: unknown[]): Promise<T> => callStudio<T>(studio, method, ...args);

const whenFinished = (jobId: string, timeoutMs = 120_000): Promise<JobSummary> => whenJobFinished(studio, jobEvents, jobId, timeoutMs);

const photo = (file: string) => readFileSync(join(REPO_ROOT, 'test/fixtures/dreambench/dog', file)).toString('base64');
const pngOf = (detail: { imagePath: string }) => readFileSync(join(dir.path, detail.imagePath));
const rawPixels = async (png: Uint8Array) => sharp(png).removeAlpha().raw().toBuffer();

beforeAll(async () => {
  bundle = await bundleWorkerForTest();
  dir = makeTempDir();
  studio = await openStudio({ dataDir: dir.path, mode: 'cli', workerFile: bundle.file });
  studio.onEvent((event, payload) => {
    if (event === 'jobChanged') jobEvents.push(payload as JobSummary);
  });
  subject = await call<SubjectDetail>('createSubject', { name: 'Rex', category: 'dog' });
  for (const file of ['00.jpg', '01.jpg']) subject = (await call<{ subject: SubjectDetail }>('uploadPhoto', { subjectId: subject.id, name: file, dataBase64: photo(file) })).subject;
  const job = await call<{ id: string }>('startGeneration', { subjectId: subject.id, prompt: 'on a red sofa', steps: 3, width: 64, height: 64, seed: '1234' });
  const final = await whenFinished(job.id);
  expect(final.state, final.message).toBe('done');
  original = await call<GenerationDetail>('getGeneration', { id: final.resultId });
}, 240_000);

afterAll(async () => {
  await studio?.close();
  dir?.remove();
  bundle?.remove();
});

describe('listGenerations: date filter and paging', () => {
  const DAY = 24 * 3600 * 1000;
  const iso = (msAgo: number) => new Date(Date.now() - msAgo).toISOString();

  beforeAll(() => {
    // Older results, as if made 3, 10 and 40 days ago (the recipe's time is the row's time).
    const store = GenerationsStore.open(dir.path);
    try {
      const png = pngOf(original);
      for (const days of [3, 10, 40]) {
        const recipe = { ...(original.recipe as Recipe), createdAt: iso(days * DAY), seed: String(days) };
        store.insert({ recipe, png: embedRecipe(png, recipe), subjectId: subject.id });
      }
    } finally {
      store.close();
    }
  });

  it('keeps what was made since a time, newest first, combined with the subject filter', async () => {
    const seeds = async (query: object) => (await call<GenerationSummary[]>('listGenerations', query)).map((g) => g.seed);
    expect(await seeds({})).toEqual(['1234', '3', '10', '40']);
    expect(await seeds({ since: iso(DAY) })).toEqual(['1234']);
    expect(await seeds({ since: iso(7 * DAY) })).toEqual(['1234', '3']);
    expect(await seeds({ since: iso(30 * DAY), subjectId: subject.id })).toEqual(['1234', '3', '10']);
    expect(await seeds({ since: iso(30 * DAY), subjectId: subject.id + 1 })).toEqual([]);
    expect(await seeds({ until: iso(7 * DAY) })).toEqual(['10', '40']);
  });

  it('pages with limit and offset', async () => {
    const page = async (offset: number) => (await call<GenerationSummary[]>('listGenerations', { limit: 3, offset })).map((g) => g.seed);
    expect(await page(0)).toEqual(['1234', '3', '10']);
    expect(await page(3)).toEqual(['40']);
    expect(await page(6)).toEqual([]);
  });

  it('refuses a date that is not ISO 8601', async () => {
    const error = refusal(await dispatchCall(studio.api, 'listGenerations', [{ since: 'last week' }]));
    expect(error).toMatchObject({ code: 'invalid-request', message: expect.stringMatching(/since must be an ISO 8601 date and time/) });
  });

  it('answers a filtered page of a 1,000-row gallery: the newest 60 of the week, of that subject', async () => {
    const store = GenerationsStore.open(dir.path);
    try {
      const png = pngOf(original);
      for (let i = 0; i < 1000; i++) {
        const recipe = { ...(original.recipe as Recipe), createdAt: iso((i % 60) * DAY + 1000), seed: String(100_000 + i) };
        store.insert({ recipe, png: i % 10 === 0 ? embedRecipe(png, recipe) : png, subjectId: subject.id });
      }
    } finally {
      store.close();
    }
    // How fast is for `npm run bench` (gallery first paint with 1,000 generations), not for a unit test.
    const week = await studio.api.listGenerations({ since: iso(7 * DAY), subjectId: subject.id, limit: 60 });
    expect(week).toHaveLength(60);
    expect(week.every((g) => g.subjectId === subject.id && Date.parse(g.createdAt) >= Date.parse(iso(7 * DAY)) - 60_000)).toBe(true);
    expect(week.map((g) => g.createdAt)).toEqual([...week.map((g) => g.createdAt)].sort().reverse());
  });
});

describe('readPngRecipe', () => {
  const upload = (bytes: Uint8Array, name = 'dropped.png') => ({ name, dataBase64: Buffer.from(bytes).toString('base64') });

  it('reads the recipe of a PNG made here, with the subject it belongs to', async () => {
    const reading = await call<RecipeReading>('readPngRecipe', upload(pngOf(original)));
    expect(reading).toMatchObject({ name: 'dropped.png', subjectId: subject.id, missingPhotos: [] });
    expect(reading.recipe).toMatchObject({ prompt: 'on a red sofa', seed: '1234', steps: 3, width: 64, height: 64 });
    expect((reading.recipe.subject as { photos: { sha256: string }[] }).photos.map((p) => p.sha256)).toEqual(subject.photos.map((p) => p.sha256));
  });

  it('says plainly that a foreign PNG carries no recipe', async () => {
    const plain = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#336699' } }).png().toBuffer();
    const error = refusal(await dispatchCall(studio.api, 'readPngRecipe', [upload(plain, 'holiday.png')]));
    expect(error).toMatchObject({ code: 'invalid-request', message: expect.stringMatching(/holiday\.png was not made by BLIP Studio/) });
  });

  it('refuses a forged recipe, naming the bad field', async () => {
    const forged = embedRecipe(pngOf(original), { ...(original.recipe as Recipe), steps: 1e9 });
    const error = refusal(await dispatchCall(studio.api, 'readPngRecipe', [upload(forged)]));
    expect(error.code).toBe('invalid-request');
    expect(error.message).toMatch(/forged, damaged or from a newer version/);
    expect(error.message).toMatch(/steps/);
  });

  it('refuses a recipe chunk too large to be ours without reading it', async () => {
    const plain = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#fff' } }).png().toBuffer();
    const chunk = encodeInternationalTextChunk(RECIPE_KEYWORD, JSON.stringify({ ...original.recipe, prompt: 'x'.repeat(MAX_RECIPE_CHUNK_BYTES) }));
    const huge = assemblePng(parsePngChunks(plain), [chunk]);
    const error = refusal(await dispatchCall(studio.api, 'readPngRecipe', [upload(huge)]));
    expect(error.message).toMatch(/carries a recipe of \d+ bytes \(the limit is 65536\)/);
  });

  it('refuses a damaged PNG and a file that is not a PNG', async () => {
    const png = pngOf(original);
    expect(refusal(await dispatchCall(studio.api, 'readPngRecipe', [upload(png.subarray(0, png.length - 40))])).message).toMatch(/dropped\.png cannot be read/);
    expect(refusal(await dispatchCall(studio.api, 'readPngRecipe', [upload(readFileSync(join(REPO_ROOT, 'test/fixtures/dreambench/dog/00.jpg')))])).message).toMatch(/cannot be read/);
  });

  it('refuses a PNG over the size bound before decoding it', async () => {
    const error = refusal(await dispatchCall(studio.api, 'readPngRecipe', [{ name: 'big.png', dataBase64: 'A'.repeat(41 * 1024 * 1024) }]));
    expect(error).toMatchObject({ code: 'invalid-request', message: expect.stringMatching(/larger than 30 MB/) });
  });
});

describe('reproduce', () => {
  it('runs a gallery result again as a job with progress and gets identical pixels', async () => {
    const job = await call<{ id: string }>('reproduce', { generationId: original.id });
    const final = await whenFinished(job.id);
    expect(final, final.message).toMatchObject({ state: 'done', kind: 'reproduce', resultId: expect.any(Number) });
    expect(final.message).toMatch(/^Identical pixels/);
    expect(jobEvents.some((e) => e.id === job.id && e.message.startsWith('Step '))).toBe(true);

    const reproduction = await call<Reproduction>('getReproduction', { id: job.id });
    expect(reproduction).toMatchObject({ jobId: job.id, originalId: original.id, generationId: final.resultId, identical: true, maxDifference: 0, device: 'cpu', recipeDevice: 'cpu' });
    const rerun = await call<GenerationDetail>('getGeneration', { id: reproduction.generationId });
    expect(rerun.recipe).toMatchObject({ seed: '1234', prompt: 'on a red sofa' });
    // Checked here with sharp, not with the comparison under test.
    expect(Buffer.compare(await rawPixels(pngOf(rerun)), await rawPixels(pngOf(original)))).toBe(0);
    const store = GenerationsStore.open(dir.path);
    try {
      expect(store.get(rerun.id)?.parentId).toBe(original.id);
    } finally {
      store.close();
    }
  });

  it('reproduces a dropped PNG from its bytes', async () => {
    const job = await call<{ id: string }>('reproduce', { png: { name: 'dropped.png', dataBase64: pngOf(original).toString('base64') } });
    const final = await whenFinished(job.id);
    expect(final.state, final.message).toBe('done');
    expect(await call<Reproduction>('getReproduction', { id: job.id })).toMatchObject({ identical: true, originalId: null });
  });

  it('refuses a foreign PNG, an unknown result and an unknown job with clear errors', async () => {
    const plain = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#000' } }).png().toBuffer();
    expect(refusal(await dispatchCall(studio.api, 'reproduce', [{ png: { name: 'x.png', dataBase64: plain.toString('base64') } }])).message).toMatch(/not made by BLIP Studio/);
    expect(refusal(await dispatchCall(studio.api, 'reproduce', [{ generationId: 99_999 }])).code).toBe('not-found');
    expect(refusal(await dispatchCall(studio.api, 'reproduce', [{ generationId: original.id, png: {} }])).code).toBe('invalid-request');
    expect(refusal(await dispatchCall(studio.api, 'getReproduction', [{ id: 'nope' }])).code).toBe('not-found');
  });

  it('refuses a LoRA or given-embedding recipe, naming the files only the CLI can be given', async () => {
    const lora = { sha256: 'f'.repeat(64), scale: 0.5 };
    const recipe: Recipe = { ...(original.recipe as Recipe), recipeVersion: 4, lora, subject: { category: 'dog', embedding: { sha256: 'e'.repeat(64) } } };
    const png = embedRecipe(pngOf(original), recipe);
    const error = refusal(await dispatchCall(studio.api, 'reproduce', [{ png: { name: 'lora.png', dataBase64: Buffer.from(png).toString('base64') } }]));
    expect(error).toMatchObject({
      code: 'not-found',
      message: "This image was made with a LoRA file (sha256 ffffffffffff…) and a subject embedding file (sha256 eeeeeeeeeeee…) that the library does not keep; reproduce it with the CLI's --lora and --embedding.",
    });
  });

  it('says which photo is missing when the library no longer has it', async () => {
    const second = subject.photos[1]!;
    await call('removePhotos', { subjectId: subject.id, photoIds: [second.id] });
    const error = refusal(await dispatchCall(studio.api, 'reproduce', [{ generationId: original.id }]));
    expect(error.code).toBe('not-found');
    expect(error.message).toContain(`photo 2 of 2 of Rex (sha256 ${second.sha256.slice(0, 12)}…) is no longer in the library`);
    const reading = await call<RecipeReading>('readPngRecipe', { name: 'a.png', dataBase64: pngOf(original).toString('base64') });
    expect(reading.missingPhotos).toEqual([second.sha256]);
  });
});
