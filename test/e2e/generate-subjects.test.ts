/**
 * Subjects editing, batches and two-subject mixes in Chromium against the built serve mode (demo model,
 * DreamBench photos, 64×64, two steps): rename a subject and change its category word (its embeddings
 * are computed again), choose its cover, remove a photo after confirming; generate a batch of two with
 * consecutive seeds; mix two subjects at 0.7 and reproduce that image through the CLI, pixel for pixel.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GenerationsStore, type GenerationRecord } from '../../main/gallery/generations-store';
import { REPO_ROOT, runCli } from '../helpers/built-app';
import { startStudioSession, type StudioSession } from './support/studio-session';

const PHOTOS = join(REPO_ROOT, 'test/fixtures/dreambench');
const JOB_TIMEOUT = 90_000;

let session: StudioSession;
let page: Page;

beforeAll(async () => {
  session = await startStudioSession({ tempPrefix: 'blip-gen-subjects-', viewport: { width: 1280, height: 900 }, shotPrefix: 'generate-subjects-' });
  page = session.page;
});

afterAll(async () => {
  await session?.close();
});

/** The gallery as the library holds it, newest first. */
function generations(): GenerationRecord[] {
  const store = GenerationsStore.open(session.data.path);
  try {
    return store.list();
  } finally {
    store.close();
  }
}

const photoCards = () => page.locator('li[data-testid^="photo-"]');

async function createSubject(name: string, category: string, files: string[]): Promise<void> {
  await page.getByTestId('nav-subjects').click();
  await page.getByTestId('new-subject').click();
  await page.getByTestId('subject-name-input').fill(name);
  await page.getByTestId('subject-category-input').fill(category);
  await page.getByTestId('subject-create').click();
  await expect.poll(() => page.getByTestId('photo-drop').isVisible()).toBe(true);
  await page.getByTestId('photo-input').setInputFiles(files.map((file) => ({ name: file, mimeType: 'image/jpeg', buffer: readFileSync(join(PHOTOS, category, file)) })));
  await expect.poll(() => photoCards().count(), { timeout: 30_000 }).toBe(files.length);
  await expectEmbeddingsDone();
}

async function expectEmbeddingsDone(): Promise<string> {
  const status = page.getByTestId('embeddings-status');
  await expect.poll(() => status.innerText(), { timeout: JOB_TIMEOUT }).toMatch(/Done|Failed/);
  const text = await status.innerText();
  expect(text).toMatch(/Done/);
  return text;
}

/** Clicks Generate and waits for that job (not the panel's previous one) to end, expecting it done. */
async function generateAndExpectDone(): Promise<void> {
  const panel = page.getByTestId('generate-progress');
  const previous = await panel.getAttribute('data-job');
  await page.getByTestId('generate-start').click();
  await expect.poll(() => panel.getAttribute('data-job'), { timeout: JOB_TIMEOUT }).not.toBe(previous);
  await expect.poll(() => panel.getAttribute('data-state'), { timeout: JOB_TIMEOUT }).toMatch(/^(done|failed|cancelled)$/);
  expect(await panel.getAttribute('data-state'), await panel.innerText()).toBe('done');
}

async function chooseOption(testId: string, text: string): Promise<void> {
  const value = await page.getByTestId(testId).locator('option', { hasText: text }).getAttribute('value');
  await page.getByTestId(testId).selectOption(value ?? '');
}

describe('editing subjects, batches and mixes', () => {
  it('edits a subject: name and category (embeddings computed again), cover, and a photo removed after confirming', async () => {
    await expect.poll(() => page.getByTestId('view-subjects').isVisible()).toBe(true);
    await createSubject('Biscuit', 'dog', ['00.jpg', '01.jpg', '02.jpg']);

    await page.getByTestId('subject-edit').click();
    await page.getByTestId('subject-edit-name').fill('   ');
    expect(await page.getByTestId('subject-edit-form').innerText()).toContain('Give the subject a name.');
    expect(await page.getByTestId('subject-edit-save').isDisabled()).toBe(true);
    await page.getByTestId('subject-edit-name').fill('Biscuit the Second');
    await page.getByTestId('subject-edit-category').fill('puppy');
    expect(await page.getByTestId('subject-edit-form').innerText()).toMatch(/embeddings are computed again/);
    await page.getByTestId('subject-edit-note').fill('Golden, three years old');
    await session.shoot('edit-form');
    await page.getByTestId('subject-edit-save').click();
    const detail = page.getByTestId('subject-detail');
    await expect.poll(() => detail.locator('h2').innerText()).toBe('Biscuit the Second');
    expect(await page.getByTestId('subject-note').innerText()).toBe('Golden, three years old');
    // The new word is part of the embeddings' key: all three are computed again, none reused.
    await expect.poll(() => page.getByTestId('embeddings-status').innerText(), { timeout: JOB_TIMEOUT }).toMatch(/3 computed, 0 reused/);

    const second = photoCards().nth(1);
    const secondId = (await second.getAttribute('data-testid'))!.replace('photo-', '');
    await page.getByTestId(`photo-cover-${secondId}`).click();
    await expect.poll(() => second.getAttribute('data-cover')).toBe('true');
    expect(await photoCards().first().getAttribute('data-cover')).toBe('false');

    const third = photoCards().nth(2);
    const thirdId = (await third.getAttribute('data-testid'))!.replace('photo-', '');
    await third.hover();
    await page.getByTestId(`photo-remove-${thirdId}`).click();
    expect(await photoCards().count()).toBe(3); // nothing is removed before the second click
    await session.shoot('remove-confirm');
    await page.getByTestId('photo-remove-confirm').click();
    await expect.poll(() => photoCards().count()).toBe(2);
    await session.shoot('subject-edited');

    // The list shows the new name, word and cover (the second photo's thumbnail).
    const coverSrc = await second.locator('img').getAttribute('src');
    await page.getByRole('button', { name: 'All subjects' }).click();
    const card = page.locator('li[data-testid^="subject-"]', { hasText: 'Biscuit the Second' });
    await expect.poll(() => card.count()).toBe(1);
    expect(await card.innerText()).toMatch(/puppy[\s\S]*2 photos/);
    expect(await card.locator('img').getAttribute('src')).toBe(coverSrc);
  });

  it('generates a batch of two: two images with consecutive seeds, both in Generate', async () => {
    await createSubject('Mittens', 'cat', ['00.jpg', '01.jpg']);
    await page.getByTestId('nav-generate').click();
    await expect.poll(() => page.getByTestId('generate-prompt').isVisible()).toBe(true);
    await chooseOption('generate-subject', 'Biscuit the Second');
    expect(await page.getByTestId('generate-target').inputValue()).toBe('puppy');
    await page.getByTestId('generate-prompt').fill('on the beach');
    await page.getByTestId('generate-steps').fill('2');
    await page.getByTestId('generate-size-64').click();
    await page.getByTestId('generate-seed').fill('1000');
    await page.getByTestId('generate-batch').selectOption('2');
    expect(await page.getByTestId('generate-start').innerText()).toContain('Generate 2');
    await generateAndExpectDone();
    await expect.poll(() => page.locator('[data-testid^="generate-result-"]').count(), { timeout: 30_000 }).toBe(2);
    expect(generations().map((g) => g.seed).sort()).toEqual(['1000', '1001']);
    await session.shoot('batch-done');
  });

  it('mixes two subjects at 0.7, records it, and the CLI reproduces the image pixel for pixel', async () => {
    await page.getByTestId('generate-batch').selectOption('1');
    await page.getByTestId('generate-seed').fill('7');
    await chooseOption('generate-mix-subject', 'Mittens');
    await page.getByTestId('generate-mix-ratio').fill('0.7');
    await expect.poll(() => page.getByTestId('generate-mix-share').innerText()).toBe('70%');
    await session.shoot('mix');
    await generateAndExpectDone();
    await expect.poll(() => generations().length, { timeout: 30_000 }).toBe(3);
    const [mixed] = generations();
    expect(mixed!.recipe).toMatchObject({
      recipeVersion: 2,
      seed: '7',
      targetSubject: 'puppy',
      subject: { name: 'Biscuit the Second', category: 'puppy' },
      mix: { ratio: 0.7, subject: { name: 'Mittens', category: 'cat' } },
    });
    await session.shoot('mix-done');

    const png = join(session.data.path, mixed!.imagePath);
    const out = join(session.data.path, 'mixed-again.png');
    const result = runCli(['--data-dir', session.data.path, 'reproduce', png, '--out', out, '--json']);
    expect(result.status, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ identical: true, differingPixels: 0, sameDevice: true, modelMatches: true });
  });

  it('"Reuse settings" on the mixed result restores the mix, its ratio and the target word', async () => {
    // Change the form first, so restoring is visible.
    await page.getByTestId('generate-mix-ratio').fill('0.2');
    await page.getByTestId('generate-target').fill('dog');
    const [mixed] = generations();
    await page.getByTestId('nav-gallery').click();
    await page.getByTestId(`gallery-item-${mixed!.id}`).click();
    // The detail shows the whole recipe: the photos by hash with their weights, and the mix.
    await expect.poll(() => page.getByTestId('recipe-mix').innerText()).toMatch(/Mittens · cat, 30 %/);
    const photos = await page.getByTestId('recipe-photos').innerText();
    expect(photos.match(/[0-9a-f]{12}… ×[\d.]+/g)).toHaveLength(2);
    expect(await page.getByTestId('recipe-mixPhotos').innerText()).toMatch(/Its photos\s+[0-9a-f]{12}… ×[\d.]+/);
    await page.getByTestId('gallery-reuse').click();
    await expect.poll(() => page.getByTestId('generate-prompt').isVisible()).toBe(true);
    expect(await page.getByTestId('generate-target').inputValue()).toBe('puppy');
    expect(await page.getByTestId('generate-mix-subject').locator('option:checked').innerText()).toContain('Mittens');
    await expect.poll(() => page.getByTestId('generate-mix-share').innerText()).toBe('70%');
    expect(await page.getByTestId('generate-seed').inputValue()).toBe('7');
  });

  it('has no console errors and no CSP violations', () => {
    expect(session.problems).toEqual([]);
  });
});
