/**
 * Control models through the real studio and `dispatchCall`: a ControlNet on its own downloaded from a
 * local hub as lllyasviel/sd-controlnet-depth (only the files it needs) and a tiny Depth Anything folder
 * added; a depth map made with it; a generation that uses the chosen ControlNet (the demo's own ControlNet
 * weights in a folder of their own give the same pixels as the model's), its recipe naming it, reproduce,
 * and the refusals once it is gone or broken.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpSync, existsSync, readdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import type { ControlImage, ControlMap, ControlModelSummary, GenerationDetail, JobSummary, ModelDownloadInfo, Reproduction, SubjectDetail } from '../../main/api/contract';
import { dispatchCall } from '../../main/api/dispatch';
import { openStudio, type Studio } from '../../main/api/studio';
import { downloadFolderOf } from '../../main/api/model-jobs';
import { REPO_ROOT } from '../helpers/built-app';
import { readNpyFile as readNpy } from '../../main/engine/io/npy-file';
import { filesOfFolder, startFakeHub, type FakeHub } from '../helpers/fake-hub';
import { makeTempDir } from '../helpers/temp-dir';
import { bundleWorkerForTest } from '../helpers/worker-bundle';
import { callStudio, refusal, whenJobFinished } from '../helpers/studio-calls';

const DEPTH_REPO = 'lllyasviel/sd-controlnet-depth';
const DEMO_CONTROLNET = join(REPO_ROOT, 'resources/demo-model/tiny-blipdiffusion-controlnet/controlnet');
const TINY_DEPTH = join(REPO_ROOT, 'test/fixtures/depth/tiny-depth-anything');
const DOG = join(REPO_ROOT, 'test/fixtures/dreambench/dog');

let hub: FakeHub;
let data: ReturnType<typeof makeTempDir>;
let bundle: Awaited<ReturnType<typeof bundleWorkerForTest>>;
let studio: Studio;
let subject: SubjectDetail;
const jobEvents: JobSummary[] = [];

const call = <T>(method: string, ...args: unknown[]): Promise<T> => callStudio<T>(studio, method, ...args);
const whenFinished = (jobId: string): Promise<JobSummary> => whenJobFinished(studio, jobEvents, jobId, 120_000);
const pixelsOf = async (detail: { imagePath: string }) => sharp(readFileSync(join(data.path, detail.imagePath))).removeAlpha().raw().toBuffer();

async function generate(control: object): Promise<GenerationDetail> {
  const job = await call<{ id: string }>('startGeneration', { subjectId: subject.id, prompt: 'by the sea', steps: 2, width: 64, height: 64, seed: '12', control });
  const final = await whenFinished(job.id);
  expect(final.state, final.message).toBe('done');
  return call<GenerationDetail>('getGeneration', { id: final.resultId });
}

beforeAll(async () => {
  // The hub's repository also holds a .bin copy and sample images: only config + safetensors are fetched.
  hub = await startFakeHub(
    [...filesOfFolder(DEMO_CONTROLNET), { path: 'diffusion_pytorch_model.bin', content: Buffer.alloc(4096), lfs: true }, { path: 'images/sample.png', content: Buffer.alloc(16), lfs: false }],
    DEPTH_REPO,
  );
  bundle = await bundleWorkerForTest();
  data = makeTempDir('blip-control-models-');
  studio = await openStudio({ dataDir: data.path, mode: 'cli', workerFile: bundle.file });
  studio.onEvent((event, payload) => {
    if (event === 'jobChanged') jobEvents.push(payload as JobSummary);
  });
  await call('updateSettings', { hubUrl: hub.baseUrl });
  subject = await call<SubjectDetail>('createSubject', { name: 'Rex', category: 'dog' });
  subject = (await call<{ subject: SubjectDetail }>('uploadPhoto', { subjectId: subject.id, name: '00.jpg', dataBase64: readFileSync(join(DOG, '00.jpg')).toString('base64') })).subject;
}, 120_000);

afterAll(async () => {
  await studio?.close();
  await hub?.close();
  data?.remove();
  bundle?.remove();
});

describe('control models', () => {
  let controlnet: ControlModelSummary;

  it('downloads a ControlNet on its own (only the files it needs), checks it and lists it as a depth ControlNet', async () => {
    const { id } = await call<{ id: string }>('downloadModel', { repo: DEPTH_REPO });
    const job = await whenFinished(id);
    expect(job.state, job.message).toBe('done');
    expect(readdirSync(downloadFolderOf(data.path, DEPTH_REPO)).filter((f) => !f.startsWith('.')).sort()).toEqual(['config.json', 'diffusion_pytorch_model.safetensors']);
    const list = await call<ControlModelSummary[]>('listControlModels');
    expect(list).toEqual([expect.objectContaining({ name: DEPTH_REPO, kind: 'controlnet', conditioning: 'depth', hash: expect.stringMatching(/^[0-9a-f]{64}$/) })]);
    controlnet = list[0]!;
    const info = (await call<ModelDownloadInfo[]>('listModelDownloads')).find((d) => d.repo === DEPTH_REPO)!;
    expect(info).toMatchObject({ state: 'complete', modelId: null, controlModelId: controlnet.id });
  });

  it('adds a Depth Anything folder and makes a depth map with it: min-max 0 … 255, three equal channels, at the output size', async () => {
    const depthFolder = join(data.path, 'my-depth');
    cpSync(TINY_DEPTH, depthFolder, { recursive: true });
    const job = await whenFinished((await call<{ id: string }>('addModelFolder', { folder: depthFolder })).id);
    expect(job.state, job.message).toBe('done');
    expect((await call<ControlModelSummary[]>('listControlModels')).map((m) => [m.kind, m.conditioning])).toEqual([['controlnet', 'depth'], ['depth-estimator', 'depth']]);
    const source = await call<ControlImage>('addControlSource', { name: '01.jpg', dataBase64: readFileSync(join(DOG, '01.jpg')).toString('base64') });
    const map = await call<ControlMap>('makeControlMap', { sourceId: source.id, mode: 'depth', width: 64, height: 48 });
    const raw = await sharp(join(data.path, map.path)).raw().toBuffer({ resolveWithObject: true });
    expect(raw.info).toMatchObject({ width: 64, height: 48, channels: 3 });
    let min = 255;
    let max = 0;
    for (let i = 0; i < raw.data.length; i += 3) {
      expect(raw.data[i + 1]).toBe(raw.data[i]);
      expect(raw.data[i + 2]).toBe(raw.data[i]);
      min = Math.min(min, raw.data[i]!);
      max = Math.max(max, raw.data[i]!);
    }
    expect([min, max]).toEqual([0, 255]);

    // At the photo's own size the fit is the identity: the map is the reference's (transformers 4.57.6) within the kit's bound.
    const dog = await call<ControlImage>('addControlSource', { name: '00.jpg', dataBase64: readFileSync(join(DOG, '00.jpg')).toString('base64') });
    const full = await call<ControlMap>('makeControlMap', { sourceId: dog.id, mode: 'depth', width: 512, height: 512 });
    const ours = await sharp(join(data.path, full.path)).extractChannel(0).raw().toBuffer();
    const reference = readNpy(join(REPO_ROOT, 'test/fixtures/depth/cases/tiny-depth-anything/dog-00/depth_map.npy'));
    expect(reference.data.length).toBe(ours.length);
    let offByOne = 0;
    for (let i = 0; i < ours.length; i++) {
      const gap = Math.abs(ours[i]! - Number(reference.data[i]));
      expect(gap).toBeLessThanOrEqual(1);
      if (gap === 1) offByOne++;
    }
    expect(offByOne / ours.length).toBeLessThanOrEqual(0.005);
  });

  it('generates with the chosen ControlNet (the same weights give the same pixels as the model’s own), records it, and reproduces', async () => {
    const source = await call<ControlImage>('addControlSource', { name: '02.jpg', dataBase64: readFileSync(join(DOG, '02.jpg')).toString('base64') });
    const map = await call<ControlMap>('makeControlMap', { sourceId: source.id, mode: 'canny', width: 64, height: 64 });
    const use = { mapId: map.id, scale: 1, start: 0, end: 1, mode: 'canny', sourceId: source.id };
    const own = await generate(use);
    const chosen = await generate({ ...use, controlnetId: controlnet.id });
    expect(chosen.recipe).toMatchObject({ control: { controlnet: { name: DEPTH_REPO, hash: controlnet.hash } } });
    expect(own.recipe['control']).not.toHaveProperty('controlnet');
    expect((await pixelsOf(chosen)).equals(await pixelsOf(own))).toBe(true);

    const job = await call<{ id: string }>('reproduce', { generationId: chosen.id });
    expect((await whenFinished(job.id)).state).toBe('done');
    expect((await call<Reproduction>('getReproduction', { id: job.id })).identical).toBe(true);

    expect(refusal(await dispatchCall(studio.api, 'startGeneration', [{ subjectId: subject.id, prompt: 'x', control: { ...use, controlnetId: 999 } }])).message).toMatch(/No ControlNet with id 999/);
    await call('removeControlModel', { id: controlnet.id, deleteFiles: true });
    expect(existsSync(downloadFolderOf(data.path, DEPTH_REPO))).toBe(false);
    expect(refusal(await dispatchCall(studio.api, 'reproduce', [{ generationId: chosen.id }])).message).toMatch(new RegExp(`used the ControlNet “${DEPTH_REPO}” .*not in the library`));
  });

  it('refuses a ControlNet folder whose weights are broken or do not fit, naming the problem, and registers nothing', async () => {
    const broken = join(data.path, 'broken-controlnet');
    cpSync(DEMO_CONTROLNET, broken, { recursive: true });
    truncateSync(join(broken, 'diffusion_pytorch_model.safetensors'), 200);
    const cut = await whenFinished((await call<{ id: string }>('addModelFolder', { folder: broken })).id);
    expect(cut.state).toBe('failed');
    expect(cut.message).toMatch(/diffusion_pytorch_model\.safetensors/);

    const misfit = join(data.path, 'misfit-controlnet');
    cpSync(DEMO_CONTROLNET, misfit, { recursive: true });
    const config = JSON.parse(readFileSync(join(misfit, 'config.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(misfit, 'config.json'), JSON.stringify({ ...config, layers_per_block: 3 }));
    const wrong = await whenFinished((await call<{ id: string }>('addModelFolder', { folder: misfit })).id);
    expect(wrong.state).toBe('failed');
    expect(wrong.message).toMatch(/missing: /);
    expect((await call<ControlModelSummary[]>('listControlModels')).map((m) => m.kind)).toEqual(['depth-estimator']);
  });
});
