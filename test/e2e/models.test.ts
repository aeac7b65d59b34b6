/**
 * Models & Settings in Chromium against the built serve mode, downloading from a local hub (the demo
 * model served as Salesforce/blipdiffusion over a slow link): set the hub URL in the UI, download with
 * live progress, pause, resume, see the model ready; add a folder the user has; see a broken folder's
 * problems listed; remove a downloaded model with its files.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Locator, Page } from 'playwright-core';
import { cpSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../helpers/built-app';
import { filesOfFolder, startFakeHub, type FakeHub } from '../helpers/fake-hub';
import { makeTempDir } from '../helpers/temp-dir';
import { startStudioSession, type StudioSession } from './support/studio-session';

const DEMO = join(REPO_ROOT, 'resources/demo-model/tiny-blipdiffusion-controlnet');
const BERT = join(REPO_ROOT, 'resources/demo-model/bert-tiny-uncased');
const TIMEOUT = 60_000;

let hub: FakeHub;
let session: StudioSession;
let page: Page;
let folders: ReturnType<typeof makeTempDir>;

beforeAll(async () => {
  hub = await startFakeHub([...filesOfFolder(DEMO), ...filesOfFolder(BERT, 'bert-tiny-uncased/')], 'Salesforce/blipdiffusion');
  // About 170 chunks of 16 KiB: slow enough to watch the progress and pause.
  hub.chunkDelayMs = 25;
  folders = makeTempDir('blip-e2e-model-folders-');
  session = await startStudioSession({ tempPrefix: 'blip-e2e-models-', viewport: { width: 1280, height: 1000 }, shotPrefix: 'models-' });
  page = session.page;
  await page.getByTestId('nav-settings').click();
  await page.getByTestId('models-card').waitFor();
}, TIMEOUT);

afterAll(async () => {
  await session?.close();
  await hub?.close();
  folders?.remove();
});

const row = (): Locator => page.getByTestId('download-Salesforce--blipdiffusion');
const rowState = (): Promise<string | null> => row().getAttribute('data-state');

describe('Models & Settings', () => {
  it('marks the bundled demo model as random-weight, noise-like, and offers the real download', async () => {
    const card = page.getByTestId('models-card');
    await expect.poll(() => card.getByTestId('model-demo-badge').count()).toBe(1);
    expect(await card.getByTestId('demo-explainer').innerText()).toMatch(/random.*noise.*download the real model/s);
    expect(await row().getByTestId('download-start').isVisible()).toBe(true);
    expect(await page.getByTestId('download-Salesforce--blipdiffusion-controlnet').getByTestId('download-start').isVisible()).toBe(true);
    // The demo cannot be removed.
    expect(await card.locator('[data-testid^="model-"]', { has: page.getByTestId('model-demo-badge') }).getByTestId('model-remove').count()).toBe(0);
  });

  it('refuses a hub address that is not http(s), then saves the local hub’s', async () => {
    const field = page.getByTestId('hub-url');
    expect(await field.inputValue()).toBe('https://huggingface.co');
    await field.fill('ftp://mirror.example');
    await page.getByTestId('hub-url-save').click();
    await expect.poll(() => page.locator('form.hub').innerText()).toMatch(/Enter an http:\/\/ or https:\/\/ address/);
    await field.fill(hub.baseUrl);
    await page.getByTestId('hub-url-save').click();
    await expect.poll(() => page.getByTestId('hub-url-save').isDisabled()).toBe(true);
    await page.reload();
    await page.getByTestId('nav-settings').click();
    await expect.poll(() => page.getByTestId('hub-url').inputValue()).toBe(hub.baseUrl);
  });

  it('downloads with live progress (bytes, file, ETA), pauses keeping the bytes, resumes, and ends Ready', async () => {
    await row().getByTestId('download-start').click();
    await expect.poll(rowState, { timeout: TIMEOUT }).toBe('downloading');
    // Bytes move and name the file being fetched.
    await expect.poll(() => row().getByTestId('download-bytes').innerText(), { timeout: TIMEOUT }).toMatch(/^[\d.]+ (KB|MB) of [\d.]+ MB$/);
    await expect.poll(() => row().getByTestId('download-file').innerText(), { timeout: TIMEOUT }).toMatch(/^Downloading [\w./-]+\.(json|safetensors|txt)$/);
    await expect.poll(() => row().getByTestId('download-eta').count(), { timeout: TIMEOUT }).toBe(1);
    // The status bar counts the same job in bytes too, not in raw steps.
    await expect.poll(() => page.getByTestId('status-area').innerText(), { timeout: TIMEOUT }).toMatch(/[\d.]+ (KB|MB) of [\d.]+ MB/);
    await session.shoot('downloading');

    await row().getByTestId('download-pause').click();
    await expect.poll(rowState, { timeout: TIMEOUT }).toBe('paused');
    const pausedAt = await row().getByTestId('download-bytes').innerText();
    expect(pausedAt).toMatch(/^[\d.]+ (KB|MB) of [\d.]+ MB$/);
    expect(await row().getByRole('progressbar').getAttribute('aria-valuenow')).not.toBe('0');
    await session.shoot('paused');

    const requestsBefore = hub.requests.length;
    hub.chunkDelayMs = 2;
    await row().getByTestId('download-resume').click();
    await expect.poll(rowState, { timeout: TIMEOUT }).toBe('complete');
    await expect.poll(() => row().getByTestId('download-ready').count(), { timeout: TIMEOUT }).toBe(1);
    // Resuming asked for the rest of a file, not for everything again.
    expect(hub.requests.slice(requestsBefore).some((r) => r.range !== undefined && /^bytes=[1-9]\d*-$/.test(r.range))).toBe(true);

    const model = page.getByTestId('models-list').locator('li', { hasText: 'Salesforce/blipdiffusion' });
    await expect.poll(() => model.getAttribute('data-status'), { timeout: TIMEOUT }).toBe('ready');
    await session.shoot('downloaded');
  });

  it('adds a folder the user has, after checking it', async () => {
    const folder = join(folders.path, 'my-blip');
    cpSync(DEMO, folder, { recursive: true });
    cpSync(BERT, join(folders.path, 'bert-tiny-uncased'), { recursive: true });
    await page.getByTestId('add-folder-path').fill(folder);
    await page.getByTestId('add-folder-submit').click();
    const result = page.getByTestId('add-folder-result');
    await expect.poll(() => result.getAttribute('data-outcome'), { timeout: TIMEOUT }).toBe('added');
    await expect.poll(() => page.getByTestId('models-list').innerText()).toContain(folder);
  });

  it('lists every problem of a broken folder and adds nothing', async () => {
    const folder = join(folders.path, 'broken');
    cpSync(DEMO, folder, { recursive: true });
    rmSync(join(folder, 'vae', 'diffusion_pytorch_model.safetensors'));
    const config = join(folder, 'text_encoder', 'config.json');
    const parsed = JSON.parse(readFileSync(config, 'utf8')) as { intermediate_size: number };
    writeFileSync(config, JSON.stringify({ ...parsed, intermediate_size: parsed.intermediate_size * 2 }));

    await page.getByTestId('add-folder-path').fill(folder);
    await page.getByTestId('add-folder-submit').click();
    const result = page.getByTestId('add-folder-result');
    await expect.poll(() => result.getAttribute('data-outcome'), { timeout: TIMEOUT }).toBe('refused');
    const problems = await page.getByTestId('add-folder-problems').locator('li').allInnerTexts();
    expect(problems.some((p) => /^vae: .*holds no weights file/.test(p))).toBe(true);
    expect(problems.some((p) => /^text_encoder: \d+ mis-shaped: /.test(p))).toBe(true);
    expect(await page.getByTestId('models-list').innerText()).not.toContain(folder);
    await page.getByTestId('add-folder').scrollIntoViewIfNeeded();
    await session.shoot('broken-folder');

    // A path that is no model folder at all is answered at once.
    await page.getByTestId('add-folder-path').fill(folders.path);
    await page.getByTestId('add-folder-submit').click();
    await expect.poll(() => page.getByTestId('add-folder-problems').innerText()).toMatch(/model_index\.json is missing/);
  });

  it('removes the downloaded model with its files after confirmation', async () => {
    const model = page.getByTestId('models-list').locator('li', { hasText: 'Salesforce/blipdiffusion' });
    const folder = join(session.data.path, 'models', 'Salesforce--blipdiffusion');
    expect(existsSync(folder)).toBe(true);
    await model.getByTestId('model-remove').click();
    const confirm = model.getByTestId('model-remove-confirm');
    expect(await confirm.innerText()).toMatch(/Also delete the downloaded files/);
    expect(await confirm.getByTestId('model-remove-files').isChecked()).toBe(true);
    await session.shoot('remove-confirm');
    await confirm.getByTestId('model-remove-confirm-button').click();
    await expect.poll(() => model.count(), { timeout: TIMEOUT }).toBe(0);
    expect(existsSync(folder)).toBe(false);
    await expect.poll(rowState).toBe('none');
    expect(session.problems).toEqual([]);
  });
});
