/**
 * The quick fine-tune through the studio API on a real studio (SQLite, the ORT worker, the bundled demo
 * model, three DreamBench dog photos): the job's per-step loss series, the adapter row it stores, a
 * cancel that stores nothing (a diverging run is the engine's test: the API's learning rates stop at 1), generation at strength 0 (the
 * zero-shot pixels exactly) and 1 (different), reproduce with identical pixels and with the adapter
 * gone, delete with undo, export in diffusers' format and import (diffusers, kohya, a misfit refused).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import BetterSqlite3 from 'better-sqlite3';
import { databasePath } from '../../main/library/database';
import type { AdapterSummary, FileDownload, FinetuneOptions, GenerationDetail, JobSummary, Reproduction, SubjectDetail } from '../../main/api/contract';
import { dispatchCall } from '../../main/api/dispatch';
import { openStudio, type Studio } from '../../main/api/studio';
import { kohyaName, loraTargets, readLoraFile, writeDiffusersLora } from '../../main/engine/weights/lora-weights';
import { serializeSafetensors } from '../../main/engine/weights/safetensors-writer';
import { loadModelFolder, requireComponent } from '../../main/models/model-folder';
import { demoModelFolder } from '../../main/models/demo-model';
import { REPO_ROOT } from '../helpers/built-app';
import { makeTempDir } from '../helpers/temp-dir';
import { bundleWorkerForTest } from '../helpers/worker-bundle';
import { callStudio, refusal, whenJobFinished } from '../helpers/studio-calls';

let dir: ReturnType<typeof makeTempDir>;
let bundle: Awaited<ReturnType<typeof bundleWorkerForTest>>;
let studio: Studio;
let subject: SubjectDetail;
let tuned: AdapterSummary;
let finished: JobSummary;
const jobEvents: JobSummary[] = [];
const STEPS = 4;

const call = <T>(method: string, ...args: unknown[]): Promise<T> => callStudio<T>(studio, method, ...args);
const whenFinished = (jobId: string, timeoutMs = 180_000): Promise<JobSummary> => whenJobFinished(studio, jobEvents, jobId, timeoutMs);
const photo = (file: string) => readFileSync(join(REPO_ROOT, 'test/fixtures/dreambench/dog', file)).toString('base64');
const pixelsOf = async (detail: { imagePath: string }) => sharp(readFileSync(join(dir.path, detail.imagePath))).removeAlpha().raw().toBuffer();
const demoTargets = () => loraTargets(requireComponent(loadModelFolder(demoModelFolder()), 'unet').config);

async function generate(request: object): Promise<GenerationDetail> {
  const job = await call<{ id: string }>('startGeneration', { subjectId: subject.id, prompt: 'on a red sofa', steps: 3, width: 64, height: 64, seed: '77', ...request });
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
  for (const file of ['00.jpg', '01.jpg', '02.jpg']) subject = (await call<{ subject: SubjectDetail }>('uploadPhoto', { subjectId: subject.id, name: file, dataBase64: photo(file) })).subject;
  const job = await call<{ id: string }>('startFinetune', { subjectId: subject.id, preset: 'custom', settings: { steps: STEPS, lrLora: 1e-2, lrEmbedding: 1e-2 }, seed: '5' });
  finished = await whenFinished(job.id);
  expect(finished.state, finished.message).toBe('done');
  tuned = (await call<AdapterSummary[]>('listAdapters', { subjectId: subject.id }))[0]!;
}, 300_000);

afterAll(async () => {
  await studio?.close();
  dir?.remove();
  bundle?.remove();
});

describe('a fine-tune as a job', () => {
  it('reports every step with its loss as a series, and stores one adapter for the subject and model', async () => {
    const running = jobEvents.filter((e) => e.id === finished.id && e.state === 'running' && e.series !== null);
    expect(running.map((e) => e.series?.length)).toEqual(expect.arrayContaining([1, 2, 3, 4]));
    expect(finished.series).toHaveLength(STEPS);
    for (const loss of finished.series ?? []) expect(Number.isFinite(loss) && loss > 0).toBe(true);
    expect(finished.message).toMatch(/Stored the fine-tune \(final loss \d/);
    expect(tuned).toMatchObject({ kind: 'finetune', subjectId: subject.id, rank: 4, needsModel: null, losses: finished.series, finalLoss: finished.series?.at(-1) });
    expect(tuned.settings).toMatchObject({ steps: STEPS, rank: 4, photos: 3, seed: '5', device: 'cpu' });
    expect(tuned.modelId).not.toBeNull();
    expect(tuned.sha256).toMatch(/^[0-9a-f]{64}$/);
    const options = await call<FinetuneOptions>('getFinetuneOptions', { subjectId: subject.id });
    expect(options).toMatchObject({ device: 'cpu', photoCount: 3 });
    expect(options.presets.quick.steps).toBeLessThan(options.presets.standard.steps);
    // The dialog's estimate comes from the step time this run measured.
    expect(options.measuredMsPerStepPerPhoto).toEqual([{ resolution: tuned.settings!.resolution, ms: expect.any(Number) }]);
  });

  it('trains the same adapter again from the same seed (content hash equal)', async () => {
    const job = await call<{ id: string }>('startFinetune', { subjectId: subject.id, preset: 'custom', settings: { steps: STEPS, lrLora: 1e-2, lrEmbedding: 1e-2 }, seed: '5' });
    expect((await whenFinished(job.id)).state).toBe('done');
    const adapters = await call<AdapterSummary[]>('listAdapters', { subjectId: subject.id });
    expect(adapters).toHaveLength(2);
    expect(adapters[0]?.sha256).toBe(tuned.sha256);
    await call('deleteAdapter', { id: adapters[0]!.id });
  });

  it('stores nothing when cancelled midway', async () => {
    const cancelled = await call<{ id: string }>('startFinetune', { subjectId: subject.id, preset: 'custom', settings: { steps: 2000 } });
    await new Promise<void>((resolve) => {
      const stop = studio.onEvent((event, payload) => {
        const job = payload as JobSummary;
        if (event === 'jobChanged' && job.id === cancelled.id && (job.series?.length ?? 0) >= 2) {
          stop();
          resolve();
        }
      });
    });
    // A generation is not held up by the running fine-tune (they are on different queues), and a second
    // fine-tune queues behind the first.
    const queued = await call<{ id: string }>('startFinetune', { subjectId: subject.id, preset: 'custom', settings: { steps: 2 } });
    const generation = await call<{ id: string }>('startGeneration', { subjectId: subject.id, prompt: 'in the snow', steps: 2, width: 64, height: 64, seed: '9' });
    expect((await whenFinished(generation.id)).state).toBe('done');
    expect((await call<JobSummary[]>('listJobs')).find((j) => j.id === cancelled.id)?.state).toBe('running');
    expect((await call<JobSummary[]>('listJobs')).find((j) => j.id === queued.id)?.state).toBe('queued');
    await call('cancelJob', { id: queued.id });
    await call('cancelJob', { id: cancelled.id });
    const final = await whenFinished(cancelled.id);
    expect(final.state).toBe('cancelled');
    expect(final.series!.length).toBeLessThan(2000);
    expect((await call<AdapterSummary[]>('listAdapters', { subjectId: subject.id })).map((a) => a.id)).toEqual([tuned.id]);
  });

  it('says which model a fine-tune needs once its model is gone or changed', async () => {
    const db = new BetterSqlite3(databasePath(dir.path));
    try {
      const { model_hash: hash } = db.prepare('SELECT model_hash FROM adapters WHERE id = ?').get(tuned.id) as { model_hash: string };
      db.prepare('UPDATE adapters SET model_hash = ? WHERE id = ?').run('f'.repeat(64), tuned.id);
      const [changed] = await call<AdapterSummary[]>('listAdapters', { subjectId: subject.id });
      expect(changed).toMatchObject({ id: tuned.id, modelId: null, needsModel: tuned.modelName });
      db.prepare('UPDATE adapters SET model_hash = ? WHERE id = ?').run(hash, tuned.id);
    } finally {
      db.close();
    }
    expect((await call<AdapterSummary[]>('listAdapters', { subjectId: subject.id }))[0]?.needsModel).toBeNull();
  });

  it('refuses what the user can fix before queueing', async () => {
    const empty = await call<SubjectDetail>('createSubject', { name: 'Nobody', category: 'cat' });
    expect(refusal(await dispatchCall(studio.api, 'startFinetune', [{ subjectId: empty.id, preset: 'quick' }])).message).toMatch(/no photos/);
    expect(refusal(await dispatchCall(studio.api, 'startFinetune', [{ subjectId: subject.id, preset: 'custom', settings: { resolution: 37 } }])).message).toMatch(/must be a multiple of \d+ from/);
    expect(refusal(await dispatchCall(studio.api, 'startFinetune', [{ subjectId: subject.id, preset: 'custom', settings: { steps: 0 } }])).code).toBe('invalid-request');
    expect(refusal(await dispatchCall(studio.api, 'startFinetune', [{ subjectId: subject.id, preset: 'fast' }])).code).toBe('invalid-request');
  });
});

describe('generating with the fine-tune', () => {
  let zeroShot: GenerationDetail;
  let full: GenerationDetail;

  beforeAll(async () => {
    zeroShot = await generate({});
    full = await generate({ finetune: { adapterId: tuned.id, scale: 1 } });
  }, 240_000);

  it('gives the zero-shot pixels exactly at strength 0, and other pixels at strength 1', async () => {
    const atZero = await generate({ finetune: { adapterId: tuned.id, scale: 0 } });
    expect((await pixelsOf(atZero)).equals(await pixelsOf(zeroShot))).toBe(true);
    expect((await pixelsOf(full)).equals(await pixelsOf(zeroShot))).toBe(false);
    expect(full.recipe).toMatchObject({ recipeVersion: 5, finetune: { sha256: tuned.sha256, scale: 1, name: tuned.name } });
    expect(zeroShot.recipe['recipeVersion']).toBeLessThan(5);
  });

  it('reproduces the fine-tuned image with identical pixels, and says which adapter is missing once it is gone', async () => {
    const job = await call<{ id: string }>('reproduce', { generationId: full.id });
    expect((await whenFinished(job.id)).state).toBe('done');
    expect((await call<Reproduction>('getReproduction', { id: job.id })).identical).toBe(true);

    const deletion = await call<{ undoUntil: string }>('deleteAdapter', { id: tuned.id });
    expect(Date.parse(deletion.undoUntil)).toBeGreaterThan(Date.now());
    expect(await call<AdapterSummary[]>('listAdapters', { subjectId: subject.id })).toEqual([]);
    const refused = refusal(await dispatchCall(studio.api, 'reproduce', [{ generationId: full.id }]));
    expect(refused.message).toContain(`the fine-tune “${tuned.name}” (sha256 ${tuned.sha256.slice(0, 12)}…)`);
    expect(refusal(await dispatchCall(studio.api, 'startGeneration', [{ subjectId: subject.id, prompt: 'x', finetune: { adapterId: tuned.id, scale: 1 } }])).code).toBe('not-found');
    expect((await call<AdapterSummary>('undoDeleteAdapter', { id: tuned.id })).id).toBe(tuned.id);
    expect((await call<AdapterSummary[]>('listAdapters', { subjectId: subject.id })).map((a) => a.id)).toEqual([tuned.id]);
  });

  it('refuses a strength outside 0 … 1.5 and another subject’s fine-tune', async () => {
    expect(refusal(await dispatchCall(studio.api, 'startGeneration', [{ subjectId: subject.id, prompt: 'x', finetune: { adapterId: tuned.id, scale: 2 } }])).message).toMatch(/from 0 to 1\.5/);
    const other = await call<SubjectDetail>('createSubject', { name: 'Other', category: 'dog' });
    await call('uploadPhoto', { subjectId: other.id, name: '00.jpg', dataBase64: photo('00.jpg') });
    expect(refusal(await dispatchCall(studio.api, 'startGeneration', [{ subjectId: other.id, prompt: 'x', finetune: { adapterId: tuned.id, scale: 1 } }])).message).toMatch(/another subject/);
  });
});

describe('export and import', () => {
  it('exports the LoRA as diffusers’ pytorch_lora_weights.safetensors with the reference key names', async () => {
    const file = await call<FileDownload>('exportAdapter', { id: tuned.id });
    expect(file.name).toBe('pytorch_lora_weights.safetensors');
    const bytes = new Uint8Array(Buffer.from(file.dataBase64, 'base64'));
    const read = readLoraFile(bytes, demoTargets());
    expect(read.format).toBe('diffusers');
    expect(read.lora.rank).toBe(4);
    expect([...read.lora.modules.keys()].sort()).toEqual(demoTargets().map((t) => t.module).sort());
  });

  it('imports a diffusers and a kohya file as style adapters, applies one, and refuses a misfit naming its keys', async () => {
    const targets = demoTargets();
    const random = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 1000 + i) * 0.05);
    const modules = new Map(targets.map((t, i) => [t.module, { down: random(2 * t.inFeatures, i), up: random(t.outFeatures * 2, i + 99) }]));
    const diffusers = writeDiffusersLora({ rank: 2, alpha: 2, modules });
    const imported = await call<AdapterSummary>('importAdapter', { name: 'ink.safetensors', dataBase64: Buffer.from(diffusers).toString('base64') });
    expect(imported).toMatchObject({ kind: 'style', name: 'ink', subjectId: null, rank: 2, needsModel: null });

    const kohya = serializeSafetensors(
      targets.flatMap((t) => {
        const name = `lora_unet_${kohyaName(t.module)}`;
        const m = modules.get(t.module)!;
        const bytesOf = (a: Float32Array) => new Uint8Array(a.buffer.slice(0));
        return [
          { name: `${name}.lora_down.weight`, dtype: 'F32' as const, shape: [2, t.inFeatures], data: bytesOf(m.down) },
          { name: `${name}.lora_up.weight`, dtype: 'F32' as const, shape: [t.outFeatures, 2], data: bytesOf(m.up) },
          { name: `${name}.alpha`, dtype: 'F32' as const, shape: [], data: bytesOf(Float32Array.of(2)) },
        ];
      }),
    );
    expect((await call<AdapterSummary>('importAdapter', { name: 'ink-kohya.safetensors', dataBase64: Buffer.from(kohya).toString('base64') })).kind).toBe('style');

    const misfit = writeDiffusersLora({ rank: 2, alpha: 2, modules: new Map([[targets[0]!.module, { down: new Float32Array(2 * (targets[0]!.inFeatures + 1)), up: new Float32Array(targets[0]!.outFeatures * 2) }]]) });
    const refused = refusal(await dispatchCall(studio.api, 'importAdapter', [{ name: 'bad.safetensors', dataBase64: Buffer.from(misfit).toString('base64') }]));
    expect(refused.code).toBe('invalid-request');
    expect(refused.message).toContain(targets[0]!.module);
    expect(refusal(await dispatchCall(studio.api, 'importAdapter', [{ name: 'junk.safetensors', dataBase64: Buffer.from('not a safetensors file').toString('base64') }])).code).toBe('invalid-request');

    const styled = await generate({ finetune: { adapterId: tuned.id, scale: 1 }, styles: [{ adapterId: imported.id, scale: 0.5 }] });
    expect(styled.recipe).toMatchObject({ styles: [{ sha256: imported.sha256, scale: 0.5, name: 'ink' }] });
    const job = await call<{ id: string }>('reproduce', { generationId: styled.id });
    expect((await whenFinished(job.id)).state).toBe('done');
    expect((await call<Reproduction>('getReproduction', { id: job.id })).identical).toBe(true);
  });
});
