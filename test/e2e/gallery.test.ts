/**
 * The Gallery in Chromium against the built serve mode: results filtered by date and subject, the
 * recipe detail, "Reuse settings" filling the Generate form, "Reproduce" giving identical pixels, Export
 * downloading a PNG whose recipe reads back (with the CLI), dropping that PNG onto the app to restore its
 * recipe (and a foreign one refused), and "Open in Edit".
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { GenerationsStore } from '../../main/gallery/generations-store';
import { embedRecipe } from '../../main/gallery/png-recipe';
import { createRecipe } from '../../main/gallery/recipe';
import { REPO_ROOT, runCli } from '../helpers/built-app';
import { makeTempDir } from '../helpers/temp-dir';
import { startStudioSession, type StudioSession } from './support/studio-session';

const DOG = join(REPO_ROOT, 'test/fixtures/dreambench/dog');
const SEED = '8675309';
const JOB_TIMEOUT = 90_000;
const OLD_PROMPT = 'an old result from last month';

let session: StudioSession;
let page: Page;
const downloads = makeTempDir('blip-gallery-downloads-');
let exported = '';

/** A result made 40 days ago (no subject), written into the data folder before serve starts. */
async function addOldResult(dataDir: string): Promise<void> {
  const image = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#8a6d3b' } }).png().toBuffer();
  const recipe = createRecipe({
    appVersion: '0.1.0',
    model: { name: 'Demo model', hash: 'a'.repeat(64) },
    subject: { name: 'Gone', category: 'cat', photos: [{ sha256: 'b'.repeat(64), weight: 1 }] },
    targetSubject: 'cat',
    prompt: OLD_PROMPT,
    negativePrompt: '',
    seed: '5',
    steps: 2,
    guidanceScale: 7.5,
    scheduler: 'pndm',
    width: 64,
    height: 64,
    promptStrength: 1,
    promptReps: 20,
    device: 'cpu',
    durationMs: 1000,
    createdAt: new Date(Date.now() - 40 * 24 * 3600 * 1000).toISOString(),
  });
  const store = GenerationsStore.open(dataDir);
  try {
    store.insert({ recipe, png: embedRecipe(image, recipe) });
  } finally {
    store.close();
  }
}

beforeAll(async () => {
  session = await startStudioSession({ tempPrefix: 'blip-gallery-', viewport: { width: 1320, height: 900 }, shotPrefix: 'gallery-', prepare: addOldResult });
  page = session.page;
}, 60_000);

afterAll(async () => {
  await session?.close();
  downloads.remove();
});

const tiles = () => page.locator('[data-testid^="gallery-item-"]');

/** Drops a file on the gallery the way a file manager does: a DataTransfer holding a File. */
async function dropFile(bytes: Buffer, name: string, target = 'gallery-drop'): Promise<void> {
  await page.getByTestId(target).evaluate(
    (zone, { base64, fileName }) => {
      const data = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
      const transfer = new DataTransfer();
      transfer.items.add(new File([data], fileName, { type: 'image/png' }));
      for (const type of ['dragenter', 'dragover', 'drop']) zone.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: transfer }));
    },
    { base64: bytes.toString('base64'), fileName: name },
  );
}

async function openNewest(): Promise<void> {
  await tiles().first().click();
  await expect.poll(() => page.getByTestId('gallery-detail').isVisible(), { timeout: 30_000 }).toBe(true);
}

describe('the gallery', () => {
  it('makes a result: a subject from two photos, then 3 steps at 64×64', async () => {
    await expect.poll(() => page.getByTestId('view-subjects').isVisible(), { timeout: 30_000 }).toBe(true);
    await page.getByTestId('new-subject').click();
    await page.getByTestId('subject-name-input').fill('Biscuit');
    await page.getByTestId('subject-category-input').fill('dog');
    await page.getByTestId('subject-create').click();
    await expect.poll(() => page.getByTestId('photo-drop').isVisible()).toBe(true);
    await page.getByTestId('photo-input').setInputFiles(
      ['00.jpg', '01.jpg'].map((name) => ({ name, mimeType: 'image/jpeg', buffer: readFileSync(join(DOG, name)) })),
    );
    await expect.poll(() => page.locator('li[data-testid^="photo-"]').count(), { timeout: 30_000 }).toBe(2);

    await page.getByTestId('nav-generate').click();
    await page.getByTestId('generate-prompt').fill('on the beach at sunset');
    await page.getByTestId('generate-steps').fill('3');
    await page.getByTestId('generate-size-64').click();
    await page.getByTestId('generate-seed').fill(SEED);
    await page.getByTestId('generate-start').click();
    const panel = page.getByTestId('generate-progress');
    await expect.poll(() => panel.getAttribute('data-state'), { timeout: JOB_TIMEOUT }).toMatch(/^(done|failed|cancelled)$/);
    expect(await panel.getAttribute('data-state'), await panel.innerText()).toBe('done');
  });

  it('filters by date and subject', async () => {
    await page.getByTestId('nav-gallery').click();
    await expect.poll(() => tiles().count(), { timeout: 30_000 }).toBe(2);
    await page.getByTestId('gallery-date').selectOption('week');
    await expect.poll(() => tiles().count()).toBe(1);
    expect(await tiles().first().innerText()).toContain('on the beach at sunset');
    await page.getByTestId('gallery-date').selectOption('all');
    await expect.poll(() => tiles().count()).toBe(2);
    const biscuit = await page.getByTestId('gallery-filter').locator('option', { hasText: 'Biscuit' }).getAttribute('value');
    await page.getByTestId('gallery-filter').selectOption(biscuit ?? '');
    await expect.poll(() => tiles().count()).toBe(1);
    await page.getByTestId('gallery-date').selectOption('today');
    await expect.poll(() => tiles().count()).toBe(1);
    await session.shoot('filtered');
    await page.getByTestId('gallery-filter').selectOption('');
    await page.getByTestId('gallery-date').selectOption('month');
    await expect.poll(() => tiles().count()).toBe(1);
    await page.getByTestId('gallery-date').selectOption('all');
    await expect.poll(() => tiles().count()).toBe(2);
  });

  it('reuses a result’s settings in the Generate form', async () => {
    await openNewest();
    expect(await page.getByTestId('recipe-seed').innerText()).toContain(SEED);
    await session.shoot('detail');
    await page.getByTestId('gallery-reuse').click();
    await expect.poll(() => page.getByTestId('view-generate').isVisible()).toBe(true);
    expect(await page.getByTestId('generate-prompt').inputValue()).toBe('on the beach at sunset');
    expect(await page.getByTestId('generate-seed').inputValue()).toBe(SEED);
    expect(await page.getByTestId('generate-steps').inputValue()).toBe('3');
    expect(await page.getByTestId('generate-subject').innerText()).toContain('Biscuit');
  });

  it('reproduces a result and finds identical pixels', async () => {
    await page.getByTestId('nav-gallery').click();
    await openNewest();
    await page.getByTestId('gallery-reproduce').click();
    const result = page.getByTestId('reproduce-result');
    await expect.poll(() => result.isVisible(), { timeout: JOB_TIMEOUT }).toBe(true);
    expect(await result.innerText()).toContain('Identical pixels');
    await expect.poll(() => page.getByTestId('reproduce-image').evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth), { timeout: 10_000 }).toBe(64);
    await session.shoot('reproduced');
  });

  it('exports the PNG with a good name, and its recipe reads back', async () => {
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('gallery-export').click()]);
    expect(download.suggestedFilename()).toBe(`blip-biscuit-${SEED}.png`);
    exported = join(downloads.path, download.suggestedFilename());
    await download.saveAs(exported);
    const cli = runCli(['recipe', exported, '--json']);
    expect(cli.status, cli.stderr).toBe(0);
    expect(JSON.parse(cli.stdout)).toMatchObject({ app: 'BLIP Studio', seed: SEED, prompt: 'on the beach at sunset', steps: 3, width: 64, height: 64 });
  });

  it('restores the recipe of a PNG dropped onto the app, and refuses a foreign one', async () => {
    const foreign = await sharp({ create: { width: 16, height: 16, channels: 3, background: '#123456' } }).png().toBuffer();
    await dropFile(foreign, 'holiday.png');
    const error = page.getByTestId('gallery-drop-error');
    await expect.poll(() => error.isVisible(), { timeout: 30_000 }).toBe(true);
    expect(await error.innerText()).toMatch(/holiday\.png was not made by BLIP Studio/);

    await dropFile(readFileSync(exported), 'from-a-friend.png');
    const panel = page.getByTestId('dropped-recipe');
    await expect.poll(() => panel.isVisible(), { timeout: 30_000 }).toBe(true);
    expect(await page.getByTestId('dropped-seed').innerText()).toContain(SEED);
    expect(await panel.innerText()).toContain('on the beach at sunset');
    await session.shoot('dropped');

    // A fresh panel: the earlier reproduction's result is not shown for this PNG.
    expect(await page.getByTestId('reproduce-result').count()).toBe(0);
    await page.getByTestId('dropped-reproduce').click();
    await expect.poll(() => page.getByTestId('reproduce-result').isVisible(), { timeout: JOB_TIMEOUT }).toBe(true);
    expect(await page.getByTestId('reproduce-result').innerText()).toContain('Identical pixels');

    await page.getByTestId('dropped-reuse').click();
    await expect.poll(() => page.getByTestId('view-generate').isVisible()).toBe(true);
    expect(await page.getByTestId('generate-seed').inputValue()).toBe(SEED);
    expect(await page.getByTestId('generate-prompt').inputValue()).toBe('on the beach at sunset');
  });

  it('takes a PNG dropped anywhere in the app (here on Generate) to the Gallery with its recipe', async () => {
    await page.getByTestId('nav-generate').click();
    await expect.poll(() => page.getByTestId('view-generate').isVisible()).toBe(true);
    await dropFile(readFileSync(exported), 'dropped-on-generate.png', 'view-generate');
    await expect.poll(() => page.getByTestId('view-gallery').isVisible(), { timeout: 30_000 }).toBe(true);
    await expect.poll(() => page.getByTestId('dropped-recipe').isVisible(), { timeout: 30_000 }).toBe(true);
    expect(await page.getByTestId('dropped-seed').innerText()).toContain(SEED);
  });

  it('opens a result in Edit, with the note that brushing comes with masked editing', async () => {
    await page.getByTestId('nav-gallery').click();
    await page.getByTestId('gallery-date').selectOption('all');
    await tiles().last().click();
    await expect.poll(() => page.getByTestId('gallery-detail').isVisible(), { timeout: 30_000 }).toBe(true);
    await page.getByTestId('gallery-edit').click();
    await expect.poll(() => page.getByTestId('edit-image').isVisible()).toBe(true);
    expect(await page.getByTestId('edit-image').innerText()).toContain(OLD_PROMPT);
    expect(await page.getByTestId('edit-note').innerText()).toMatch(/masked editing/);
    await session.shoot('edit');
  });

  it('deletes a result with Undo: the tile comes back, and goes for good once the toast is dismissed', async () => {
    await page.getByTestId('nav-gallery').click();
    await page.getByTestId('gallery-date').selectOption('all');
    await expect.poll(() => tiles().count(), { timeout: 30_000 }).toBeGreaterThan(1);
    const before = await tiles().count();
    const first = tiles().first();
    const testId = (await first.getAttribute('data-testid'))!;
    await first.click();
    await expect.poll(() => page.getByTestId('gallery-detail').isVisible(), { timeout: 30_000 }).toBe(true);
    await page.getByTestId('gallery-delete').click();
    await expect.poll(() => page.getByTestId('undo-toast').isVisible()).toBe(true);
    await expect.poll(() => tiles().count()).toBe(before - 1);
    await session.shoot('deleted-undo');
    await page.getByTestId('undo-delete').click();
    await expect.poll(() => page.getByTestId(testId).count()).toBe(1);
    await expect.poll(() => page.getByTestId('gallery-detail').isVisible()).toBe(true);

    await page.getByTestId('gallery-delete').click();
    await expect.poll(() => page.getByTestId('undo-toast').isVisible()).toBe(true);
    await page.getByTestId('undo-toast').getByRole('button', { name: 'Dismiss' }).click();
    expect(await page.getByTestId('undo-toast').count()).toBe(0);
    expect(await page.getByTestId(testId).count()).toBe(0);
  });

  it('has no console errors and no CSP violations', () => {
    expect(session.problems).toEqual([]);
  });
});
