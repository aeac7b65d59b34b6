/**
 * Installing models through the real studio and `dispatchCall`: downloads from a local hub (the demo
 * model served as Salesforce/blipdiffusion) with progress, a cut transfer, pause and resume across a
 * restart, 404 and checksum failures naming the file; adopting folders (safetensors, `.bin` converted
 * with progress, a broken one listing every problem); removing models; payloads zod refuses.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cpSync, existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { JobSummary, ModelDownloadInfo, ModelSummary } from '../../main/api/contract';
import { dispatchCall } from '../../main/api/dispatch';
import { openStudio, type Studio } from '../../main/api/studio';
import { downloadFolderOf } from '../../main/api/model-jobs';
import { REPO_ROOT } from '../helpers/built-app';
import { filesOfFolder, startFakeHub, type FakeHub } from '../helpers/fake-hub';
import { makeTempDir } from '../helpers/temp-dir';
import { callStudio, refusal, whenJobFinished } from '../helpers/studio-calls';

const REPO = 'Salesforce/blipdiffusion';
const DEMO = join(REPO_ROOT, 'resources/demo-model/tiny-blipdiffusion-controlnet');
const BERT = join(REPO_ROOT, 'resources/demo-model/bert-tiny-uncased');
const BIN_MODEL = join(REPO_ROOT, 'test/fixtures/parity/models/tiny-blipdiffusion-bin');
const UNET = 'unet/diffusion_pytorch_model.safetensors';

let hub: FakeHub;
let data: ReturnType<typeof makeTempDir>;
let studio: Studio;
let jobEvents: JobSummary[];

async function open(): Promise<void> {
  studio = await openStudio({ dataDir: data.path, mode: 'cli' });
  jobEvents = [];
  studio.onEvent((event, payload) => {
    if (event === 'jobChanged') jobEvents.push(payload as JobSummary);
  });
}

beforeEach(async () => {
  // The demo model in the hub's layout, with its Q-Former tokenizer folder inside it.
  hub = await startFakeHub([...filesOfFolder(DEMO), ...filesOfFolder(BERT, 'bert-tiny-uncased/')], REPO);
  data = makeTempDir('blip-model-jobs-');
  await open();
  await call('updateSettings', { hubUrl: hub.baseUrl });
});

afterEach(async () => {
  await studio?.close();
  await hub?.close();
  data?.remove();
});

const call = <T>(method: string, ...args: unknown[]): Promise<T> => callStudio<T>(studio, method, ...args);

const whenFinished = (jobId: string, timeoutMs = 60_000): Promise<JobSummary> => whenJobFinished(studio, jobEvents, jobId, timeoutMs);

async function download(): Promise<JobSummary> {
  const { id } = await call<{ id: string }>('downloadModel', { repo: REPO });
  return whenFinished(id);
}

async function downloadInfo(): Promise<ModelDownloadInfo> {
  const list = await call<ModelDownloadInfo[]>('listModelDownloads');
  expect(list.map((d) => d.repo)).toEqual(['Salesforce/blipdiffusion', 'Salesforce/blipdiffusion-controlnet', 'depth-anything/Depth-Anything-V2-Small-hf', 'lllyasviel/sd-controlnet-depth']);
  return list.find((d) => d.repo === REPO)!;
}

const servedBytes = (): number => hub.files.filter((f) => f.path !== '.gitattributes').reduce((sum, f) => sum + f.content.length, 0);
const target = (): string => downloadFolderOf(data.path, REPO);

describe('downloadModel', () => {
  it('downloads into <data>/models/Salesforce--blipdiffusion with byte progress, then checks and adds a ready model', async () => {
    expect((await downloadInfo()).state).toBe('none');
    const job = await download();
    expect(job.state, job.message).toBe('done');

    const progress = jobEvents.filter((e) => e.id === job.id && e.state === 'running' && e.message.startsWith('Downloading '));
    expect(progress.length).toBeGreaterThan(1);
    expect(progress.some((e) => e.message.includes(UNET))).toBe(true);
    expect(Math.max(...progress.map((e) => e.totalSteps))).toBe(servedBytes());

    expect(target()).toBe(join(data.path, 'models', 'Salesforce--blipdiffusion'));
    const models = await call<ModelSummary[]>('listModels');
    const model = models.find((m) => m.folder === target());
    expect(model).toMatchObject({ name: REPO, status: 'ready', isDemo: false, kind: 'controlnet' });
    expect(model?.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(await downloadInfo()).toMatchObject({ state: 'complete', bytesDone: servedBytes(), bytesTotal: servedBytes(), jobId: null, error: null, modelId: model!.id });
  });

  it('resumes a transfer cut halfway with a Range request', async () => {
    const unet = hub.files.find((f) => f.path === UNET)!;
    const half = unet.content.length >> 1;
    hub.cut = { path: UNET, afterBytes: half, times: 1 };
    const job = await download();
    expect(job.state, job.message).toBe('done');
    expect(hub.cdnRequests(UNET).map((r) => r.range)).toEqual([undefined, `bytes=${half}-`]);
  });

  it('pauses (keeping the partial file), lists the download as paused after a restart, and resumes from there', async () => {
    hub.chunkDelayMs = 15;
    const { id } = await call<{ id: string }>('downloadModel', { repo: REPO });
    // The same call while it runs is the same job, not a second download.
    expect(await call<{ id: string }>('downloadModel', { repo: REPO })).toEqual({ id });
    expect((await downloadInfo()).state).toBe('downloading');
    await expect.poll(() => jobEvents.some((e) => e.id === id && e.message.includes(UNET) && e.step > 0), { timeout: 30_000 }).toBe(true);
    // Pause once the UNet's transfer has written bytes (its first progress event can come before that).
    const partial = join(target(), `${UNET}.partial`);
    await expect.poll(() => existsSync(partial) && statSync(partial).size > 0, { timeout: 30_000 }).toBe(true);
    await call('cancelJob', { id });
    expect(await whenFinished(id)).toMatchObject({ state: 'cancelled', message: expect.stringMatching(/^Paused: the files so far are kept/) });

    const paused = await downloadInfo();
    expect(paused.state).toBe('paused');
    expect(paused.bytesDone).toBeGreaterThan(0);
    expect(paused.bytesDone).toBeLessThan(paused.bytesTotal);
    expect(existsSync(partial)).toBe(true);
    const kept = statSync(partial).size;

    await studio.close();
    await open();
    expect(await downloadInfo()).toMatchObject({ state: 'paused', bytesDone: paused.bytesDone, jobId: null });

    hub.chunkDelayMs = 0;
    const job = await download();
    expect(job.state, job.message).toBe('done');
    expect(hub.cdnRequests(UNET).at(-1)?.range).toBe(`bytes=${kept}-`);
    expect((await downloadInfo()).state).toBe('complete');
    expect(existsSync(partial)).toBe(false);
  });

  it('fails on a 404 with a message naming the file, and says so in the download list; nothing is registered', async () => {
    hub.failStatus.set(UNET, 404);
    const job = await download();
    expect(job.state).toBe('failed');
    expect(job.message).toContain(UNET);
    expect(job.message).toContain('404');
    const info = await downloadInfo();
    expect(info.state).toBe('failed');
    expect(info.error).toMatchObject({ file: UNET });
    expect(info.error?.message).toContain('404');
    expect((await call<ModelSummary[]>('listModels')).some((m) => m.folder === target())).toBe(false);

    // Retry once the server is fixed: the files already fetched are kept and the model is added.
    hub.failStatus.clear();
    expect((await download()).state).toBe('done');
  });

  it('fails on a checksum mismatch naming the file and deletes the damaged bytes', async () => {
    hub.corrupt.add(UNET);
    const job = await download();
    expect(job.state).toBe('failed');
    expect(job.message).toMatch(/checksum mismatch/);
    expect(job.message).toContain(UNET);
    expect((await downloadInfo()).error?.file).toBe(UNET);
    expect(existsSync(join(target(), UNET))).toBe(false);
    expect(existsSync(join(target(), `${UNET}.partial`))).toBe(false);
  });

  it('downloads from the hub URL in the settings', async () => {
    await call('updateSettings', { hubUrl: 'http://127.0.0.1:9/' });
    const job = await download();
    expect(job.state).toBe('failed');
    expect(job.message).toContain('http://127.0.0.1:9');
    expect(hub.requests).toHaveLength(0);
  });
});

describe('addModelFolder', () => {
  function copyDemo(name: string): string {
    const root = join(data.path, 'mine');
    cpSync(DEMO, join(root, name), { recursive: true });
    cpSync(BERT, join(root, 'bert-tiny-uncased'), { recursive: true });
    return join(root, name);
  }

  it('checks a folder the user has and adds it, without copying it', async () => {
    const folder = copyDemo('my-model');
    const { id } = await call<{ id: string }>('addModelFolder', { folder });
    const job = await whenFinished(id);
    expect(job.state, job.message).toBe('done');
    expect((await call<ModelSummary[]>('listModels')).find((m) => m.folder === folder)).toMatchObject({ name: 'my-model', status: 'ready' });
    expect(existsSync(join(data.path, 'models'))).toBe(false);
  });

  it('converts .bin weights once into the model cache, with progress', async () => {
    const { id } = await call<{ id: string }>('addModelFolder', { folder: BIN_MODEL });
    const job = await whenFinished(id);
    expect(job.state, job.message).toBe('done');
    expect(jobEvents.some((e) => e.id === id && /Converting unet\/ weights from \.bin/.test(e.message) && e.totalSteps > 1)).toBe(true);
    expect(readdirSync(join(data.path, 'cache', 'weights'), { recursive: true }).map(String).some((f) => f.endsWith('.safetensors'))).toBe(true);
  });

  it('refuses a broken folder listing every problem (no weights, mis-shaped tensors) and registers nothing', async () => {
    const folder = copyDemo('broken');
    rmSync(join(folder, 'vae', 'diffusion_pytorch_model.safetensors'));
    // A config that no longer matches its weights: the text encoder's MLP tensors are mis-shaped.
    const config = join(folder, 'text_encoder', 'config.json');
    const parsed = JSON.parse(readFileSync(config, 'utf8')) as Record<string, unknown>;
    writeFileSync(config, JSON.stringify({ ...parsed, intermediate_size: Number(parsed.intermediate_size) * 2 }));
    const { id } = await call<{ id: string }>('addModelFolder', { folder });
    const job = await whenFinished(id);
    expect(job.state).toBe('failed');
    expect(job.message).toMatch(/not a usable BLIP-Diffusion model folder/);
    expect(job.message).toMatch(/^- vae: .*holds no weights file/m);
    expect(job.message).toMatch(/^- text_encoder: \d+ mis-shaped: /m);
    expect((await call<ModelSummary[]>('listModels')).some((m) => m.folder === folder)).toBe(false);
  });

  it('answers a folder without model_index.json at once', async () => {
    const error = refusal(await dispatchCall(studio.api, 'addModelFolder', [{ folder: data.path }]));
    expect(error.code).toBe('invalid-request');
    expect(error.message).toMatch(/model_index\.json is missing/);
  });
});

describe('pickModelFolder', () => {
  it('is refused outside the desktop app, saying to type the path', async () => {
    const error = refusal(await dispatchCall(studio.api, 'pickModelFolder', []));
    expect(error).toMatchObject({ code: 'unavailable', message: expect.stringMatching(/desktop app.*type the full path/) });
    expect(refusal(await dispatchCall(studio.api, 'pickModelFolder', [{ folder: '/etc' }])).code).toBe('invalid-request');
  });

  it('gives back what the desktop app’s dialog chose, and null when it was cancelled', async () => {
    await studio.close();
    const answers: (string | null)[] = ['/models/blipdiffusion', null];
    const titles: string[] = [];
    studio = await openStudio({ dataDir: data.path, mode: 'electron', chooseFolder: async (title) => (titles.push(title), answers.shift() ?? null) });
    expect(await call('pickModelFolder')).toEqual({ folder: '/models/blipdiffusion' });
    expect(await call('pickModelFolder')).toEqual({ folder: null });
    expect(titles[0]).toMatch(/model_index\.json/);
  });
});
