/**
 * Control maps through the studio API on a real studio (SQLite, the ORT worker, the bundled demo model
 * with its ControlNet): a source stored by content hash, the Canny map equal to OpenCV's on the control
 * kit (so the map the panel shows is OpenCV's), thresholds that change it, a stretched source said so,
 * refusals that name the problem, a drawn map, and a controlled generation whose recipe (version 6) holds
 * the map and its settings and which reproduces with identical pixels.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { createHash } from 'node:crypto';
import type { ControlImage, ControlMap, GenerationDetail, JobSummary, Reproduction, SubjectDetail } from '../../main/api/contract';
import { dispatchCall } from '../../main/api/dispatch';
import { openStudio, type Studio } from '../../main/api/studio';
import { REPO_ROOT } from '../helpers/built-app';
import { makeTempDir } from '../helpers/temp-dir';
import { bundleWorkerForTest } from '../helpers/worker-bundle';
import { callStudio, refusal, whenJobFinished } from '../helpers/studio-calls';

const CANNY_KIT = join(REPO_ROOT, 'test/fixtures/control/canny');
let dir: ReturnType<typeof makeTempDir>;
let bundle: Awaited<ReturnType<typeof bundleWorkerForTest>>;
let studio: Studio;
let subject: SubjectDetail;
const jobEvents: JobSummary[] = [];

const call = <T>(method: string, ...args: unknown[]): Promise<T> => callStudio<T>(studio, method, ...args);
const whenFinished = (jobId: string): Promise<JobSummary> => whenJobFinished(studio, jobEvents, jobId, 180_000);
const base64Of = (path: string) => readFileSync(path).toString('base64');
const rawOf = async (path: string) => sharp(readFileSync(path)).raw().toBuffer({ resolveWithObject: true });
const pixelsOf = async (detail: { imagePath: string }) => sharp(readFileSync(join(dir.path, detail.imagePath))).removeAlpha().raw().toBuffer();

async function generate(request: object): Promise<GenerationDetail> {
  const job = await call<{ id: string }>('startGeneration', { subjectId: subject.id, prompt: 'on a beach', steps: 3, width: 64, height: 64, seed: '21', ...request });
  const final = await whenFinished(job.id);
  expect(final.state, final.message).toBe('done');
  return call<GenerationDetail>('getGeneration', { id: final.resultId });
}

beforeAll(async () => {
  bundle = await bundleWorkerForTest();
  dir = makeTempDir();
  studio = await openStudio({ dataDir: dir.path, mode: 'cli', workerFile: bundle.file });
  studio.onEvent((event, payload) => {
    if (event === 'jobChanged') jobEvents.push(payload as JobSummary);
  });
  subject = await call<SubjectDetail>('createSubject', { name: 'Rex', category: 'dog' });
  const photo = join(REPO_ROOT, 'test/fixtures/dreambench/dog/00.jpg');
  subject = (await call<{ subject: SubjectDetail }>('uploadPhoto', { subjectId: subject.id, name: '00.jpg', dataBase64: base64Of(photo) })).subject;
}, 120_000);

afterAll(async () => {
  await studio?.close();
  dir?.remove();
  bundle?.remove();
});

describe('control maps', () => {
  let source: ControlImage;

  it('stores a source by the hash of its file, and makes OpenCV’s Canny map of it (kit, 30/70 and 100/200)', async () => {
    source = await call<ControlImage>('addControlSource', { name: 'dog.png', dataBase64: base64Of(join(CANNY_KIT, 'dog_512_30_70.input.png')) });
    expect(source).toMatchObject({ width: 512, height: 512 });
    expect(createHash('sha256').update(readFileSync(join(dir.path, source.path))).digest('hex')).toBe(source.id);
    for (const [low, high, name, edgePixels] of [[30, 70, 'dog_512_30_70', 37166], [100, 200, 'dog_512_100_200', 6547]] as const) {
      const map = await call<ControlMap>('makeControlMap', { sourceId: source.id, mode: 'canny', width: 512, height: 512, low, high });
      expect(map).toMatchObject({ mode: 'canny', width: 512, height: 512, edgePixels, stretched: false });
      const made = await rawOf(join(dir.path, map.path));
      const golden = await sharp(join(CANNY_KIT, `${name}.edges.png`)).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
      expect(made.info.channels).toBe(3);
      let mismatches = 0;
      for (let i = 0; i < golden.data.length; i++) if (made.data[i * 3] !== golden.data[i] || made.data[i * 3 + 1] !== golden.data[i] || made.data[i * 3 + 2] !== golden.data[i]) mismatches++;
      expect(mismatches).toBe(0);
    }
  });

  it('fits a source of another aspect ratio to the output size and says it was stretched', async () => {
    const cat = await call<ControlImage>('addControlSource', { name: 'cat.png', dataBase64: base64Of(join(CANNY_KIT, 'cat_333x217_30_70.input.png')) });
    const map = await call<ControlMap>('makeControlMap', { sourceId: cat.id, mode: 'image', width: 64, height: 64 });
    expect(map).toMatchObject({ width: 64, height: 64, stretched: true, edgePixels: null });
    expect((await rawOf(join(dir.path, map.path))).info).toMatchObject({ width: 64, height: 64 });
  });

  it('refuses what it cannot use, naming it', async () => {
    const corrupt = refusal(await dispatchCall(studio.api, 'addControlSource', [{ name: 'broken.png', dataBase64: Buffer.from('not an image at all').toString('base64') }]));
    expect(corrupt).toMatchObject({ code: 'invalid-request' });
    expect(corrupt.message).toContain('broken.png cannot be read as an image');
    const tiny = await sharp({ create: { width: 4, height: 4, channels: 3, background: '#fff' } }).png().toBuffer();
    expect(refusal(await dispatchCall(studio.api, 'addControlSource', [{ name: 'tiny.png', dataBase64: tiny.toString('base64') }])).message).toMatch(/only 4×4 pixels/);
    const huge = await sharp({ create: { width: 6400, height: 6400, channels: 3, background: '#808080' } }).png({ compressionLevel: 1 }).toBuffer();
    expect(refusal(await dispatchCall(studio.api, 'addControlSource', [{ name: 'huge.png', dataBase64: huge.toString('base64') }])).message).toMatch(/huge\.png is 6400×6400, more than 40 megapixels: scale it down/);
    expect(refusal(await dispatchCall(studio.api, 'makeControlMap', [{ sourceId: 'a'.repeat(64), mode: 'canny', width: 64, height: 64 }])).code).toBe('not-found');
    expect(refusal(await dispatchCall(studio.api, 'makeControlMap', [{ sourceId: source.id, mode: 'depth', width: 64, height: 64 }])).message).toMatch(/Depth Anything V2 .*download it/);
    expect(refusal(await dispatchCall(studio.api, 'makeControlMap', [{ sourceId: source.id, mode: 'canny', width: 64, height: 64, low: -1 }])).message).toMatch(/low threshold must be 0 or more/);
    expect(refusal(await dispatchCall(studio.api, 'startGeneration', [{ subjectId: subject.id, prompt: 'x', control: { mapId: source.id, scale: 1, start: 0.5, end: 0.5, mode: 'canny' } }])).message).toMatch(/start before it ends/);
    expect(refusal(await dispatchCall(studio.api, 'startGeneration', [{ subjectId: subject.id, prompt: 'x', control: { mapId: 'b'.repeat(64), scale: 1, start: 0, end: 1, mode: 'canny' } }])).message).toMatch(/control map .* is not in the library/);
  });

  it('stores a drawn map at its size and refuses one whose size is not what it says', async () => {
    const drawn = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#000' } }).composite([{ input: Buffer.from('<svg width="64" height="64"><line x1="0" y1="0" x2="64" y2="64" stroke="white" stroke-width="3"/></svg>') }]).png().toBuffer();
    const map = await call<ControlMap>('saveDrawnControlMap', { dataBase64: drawn.toString('base64'), width: 64, height: 64 });
    expect(map).toMatchObject({ mode: 'image', width: 64, height: 64 });
    expect(refusal(await dispatchCall(studio.api, 'saveDrawnControlMap', [{ dataBase64: drawn.toString('base64'), width: 32, height: 64 }])).message).toMatch(/is 64×64, not the 32×64/);
  });

  it('generates with a map (recipe version 6 with every setting), which steers the image and reproduces identically', async () => {
    const dog = await call<ControlImage>('addControlSource', { name: '01.jpg', dataBase64: base64Of(join(REPO_ROOT, 'test/fixtures/dreambench/dog/01.jpg')) });
    const edges = await call<ControlMap>('makeControlMap', { sourceId: dog.id, mode: 'canny', width: 64, height: 64, low: 30, high: 70 });
    expect(edges.edgePixels).toBeGreaterThan(0);
    const use = { mapId: edges.id, scale: 1, start: 0, end: 1, mode: 'canny', sourceId: dog.id, low: 30, high: 70 };
    const controlled = await generate({ control: use });
    expect(controlled.recipe).toMatchObject({ recipeVersion: 6, control: { sha256: edges.id, scale: 1, mode: 'canny', source: { sha256: dog.id }, low: 30, high: 70 } });
    expect(controlled.control).toEqual({ mapPath: edges.path, sourcePath: dog.path });

    const windowed = await generate({ control: { ...use, end: 0.5 } });
    expect(windowed.recipe).toMatchObject({ control: { end: 0.5 } });
    const off = await generate({ control: { ...use, scale: 0 } });
    const [a, b, c] = await Promise.all([pixelsOf(controlled), pixelsOf(windowed), pixelsOf(off)]);
    expect(a.equals(b)).toBe(false);
    expect(a.equals(c)).toBe(false);
    expect(b.equals(c)).toBe(false);

    for (const original of [controlled, windowed]) {
      const job = await call<{ id: string }>('reproduce', { generationId: original.id });
      expect((await whenFinished(job.id)).state).toBe('done');
      expect((await call<Reproduction>('getReproduction', { id: job.id })).identical).toBe(true);
    }
  });

  it('takes a gallery result as a source', async () => {
    const [first] = await call<{ id: number }[]>('listGenerations', {});
    const fromGallery = await call<ControlImage>('addControlSource', { generationId: first!.id });
    expect(fromGallery).toMatchObject({ width: 64, height: 64 });
    expect(refusal(await dispatchCall(studio.api, 'addControlSource', [{ generationId: 99999 }])).code).toBe('not-found');
  });
});
