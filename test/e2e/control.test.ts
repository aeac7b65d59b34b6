/**
 * Generate with an edge map in Chromium against the built serve mode (demo model with its ControlNet):
 * a DreamBench photo picked as the control picture, the live Canny preview changing as the thresholds
 * move (the canvas shows exactly the stored map the ControlNet gets), a controlled generation with its
 * recipe, a stroke drawn over the map (undo/redo) that is in the map sent, Reproduce with identical
 * pixels and the map beside the result in the Gallery; depth offered for download while missing, then a
 * depth preview from a Depth Anything folder added in Settings. Screenshots of the panel in both themes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { GenerationsStore, type GenerationRecord } from '../../main/gallery/generations-store';
import { controlFilePath } from '../../main/library/control-images';
import { REPO_ROOT } from '../helpers/built-app';
import { startStudioSession, type StudioSession } from './support/studio-session';

const PHOTOS = join(REPO_ROOT, 'test/fixtures/dreambench/dog');
const JOB_TIMEOUT = 120_000;
const SIZE = 128;

let session: StudioSession;
let page: Page;

beforeAll(async () => {
  session = await startStudioSession({ tempPrefix: 'blip-control-ui-', viewport: { width: 1280, height: 1100 }, shotPrefix: 'control-' });
  page = session.page;
});

afterAll(async () => {
  await session?.close();
});

function newestGeneration(): GenerationRecord {
  const store = GenerationsStore.open(session.data.path);
  try {
    return store.list()[0]!;
  } finally {
    store.close();
  }
}

const pixelsOf = (record: GenerationRecord) => sharp(readFileSync(join(session.data.path, record.imagePath))).removeAlpha().raw().toBuffer();
/** The stored map with this hash, one byte per pixel (its first channel; the three are equal). */
const storedMap = (sha256: string) => sharp(readFileSync(join(session.data.path, controlFilePath(sha256)))).extractChannel(0).raw().toBuffer();

/** The control canvas's pixels (first channel), as the page paints them. */
async function canvasPixels(): Promise<Buffer> {
  const values = await page.getByTestId('control-map').evaluate((canvas: HTMLCanvasElement) => {
    const data = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
    return Array.from({ length: data.length / 4 }, (_, i) => data[i * 4]!);
  });
  return Buffer.from(values);
}

async function bothThemes(name: string): Promise<void> {
  await page.emulateMedia({ colorScheme: 'light' });
  await session.shoot(`${name}-light`);
  await page.emulateMedia({ colorScheme: 'dark' });
  await session.shoot(`${name}-dark`);
  await page.emulateMedia({ colorScheme: 'light' });
}

async function generateAndExpectDone(): Promise<GenerationRecord> {
  const panel = page.getByTestId('generate-progress');
  const previous = await panel.getAttribute('data-job');
  await page.getByTestId('generate-start').click();
  await expect.poll(() => panel.getAttribute('data-job'), { timeout: JOB_TIMEOUT }).not.toBe(previous);
  await expect.poll(() => panel.getAttribute('data-state'), { timeout: JOB_TIMEOUT }).toMatch(/^(done|failed|cancelled)$/);
  expect(await panel.getAttribute('data-state'), await panel.innerText()).toBe('done');
  return newestGeneration();
}

const mapId = () => page.getByTestId('control-map').getAttribute('data-map-id');

describe('generate with an edge map', () => {
  let controlled: GenerationRecord;

  it('previews the Canny map of a picked photo live as the thresholds move, exactly as stored for the ControlNet', async () => {
    await page.getByTestId('nav-subjects').click();
    await page.getByTestId('new-subject').click();
    await page.getByTestId('subject-name-input').fill('Rex');
    await page.getByTestId('subject-category-input').fill('dog');
    await page.getByTestId('subject-create').click();
    await page.getByTestId('photo-input').setInputFiles([{ name: '00.jpg', mimeType: 'image/jpeg', buffer: readFileSync(join(PHOTOS, '00.jpg')) }]);
    await expect.poll(() => page.locator('li[data-testid^="photo-"]').count(), { timeout: 30_000 }).toBe(1);

    await page.getByTestId('nav-generate').click();
    await page.getByTestId('generate-prompt').fill('in a garden');
    await page.getByTestId('generate-steps').fill('3');
    await page.getByTestId('generate-size-128').click();
    await page.getByTestId('generate-seed').fill('31');
    await page.getByTestId('control-panel').locator('summary').click();
    await page.getByTestId('control-input').setInputFiles([{ name: '01.jpg', mimeType: 'image/jpeg', buffer: readFileSync(join(PHOTOS, '01.jpg')) }]);
    await expect.poll(mapId, { timeout: 30_000 }).toMatch(/^[0-9a-f]{64}$/);
    const first = (await mapId())!;
    const firstEdges = Number(await page.getByTestId('control-map').getAttribute('data-edge-pixels'));
    expect(firstEdges).toBeGreaterThan(0);
    await expect.poll(async () => (await canvasPixels()).equals(await storedMap(first))).toBe(true);

    await page.getByTestId('control-low').fill('120');
    await page.getByTestId('control-high').fill('220');
    await expect.poll(mapId).not.toBe(first);
    expect(await page.getByTestId('control-high-value').innerText()).toBe('220');
    const fewer = Number(await page.getByTestId('control-map').getAttribute('data-edge-pixels'));
    expect(fewer).toBeLessThan(firstEdges);
    const second = (await mapId())!;
    await expect.poll(async () => (await canvasPixels()).equals(await storedMap(second))).toBe(true);
    expect((await page.getByTestId('control-edge-count').innerText()).replace(/\D/g, '')).toBe(String(fewer));
    await page.getByTestId('control-panel').scrollIntoViewIfNeeded();
    await bothThemes('panel');

    controlled = await generateAndExpectDone();
    expect(controlled.recipe).toMatchObject({ recipeVersion: 6, control: { sha256: second, mode: 'canny', low: 120, high: 220, scale: 1 } });
  });

  it('sends a stroke drawn over the map (with undo and redo), and the stroke steers the image', async () => {
    const before = (await mapId())!;
    await page.getByTestId('control-draw').check();
    await page.getByTestId('control-brush').fill('6');
    const box = (await page.getByTestId('control-map').boundingBox())!;
    // A horizontal stroke across the middle, where the high-threshold map has few edges.
    await page.mouse.move(box.x + box.width * 0.15, box.y + box.height * 0.5);
    await page.mouse.down();
    for (let i = 1; i <= 10; i++) await page.mouse.move(box.x + box.width * (0.15 + 0.07 * i), box.y + box.height * 0.5);
    await page.mouse.up();
    expect(await page.getByTestId('control-undo').isEnabled()).toBe(true);
    const drawnCanvas = await canvasPixels();
    await page.getByTestId('control-undo').click();
    await expect.poll(async () => (await canvasPixels()).equals(await storedMap(before))).toBe(true);
    await page.getByTestId('control-redo').click();
    await expect.poll(async () => (await canvasPixels()).equals(drawnCanvas)).toBe(true);

    const drawn = await generateAndExpectDone();
    const control = drawn.recipe['control'] as { sha256: string; drawn?: boolean };
    expect(control).toMatchObject({ drawn: true, mode: 'canny' });
    const sent = await storedMap(control.sha256);
    const plain = await storedMap(before);
    // The map sent is the canvas: white along the stroke's row where the plain map was black.
    expect(sent.equals(drawnCanvas)).toBe(true);
    const row = Math.round(SIZE * 0.5);
    let painted = 0;
    for (let x = Math.round(SIZE * 0.2); x < Math.round(SIZE * 0.8); x++) if (sent[row * SIZE + x] === 255 && plain[row * SIZE + x] === 0) painted++;
    expect(painted).toBeGreaterThan(20);
    expect((await pixelsOf(drawn)).equals(await pixelsOf(controlled))).toBe(false);
  });

  it('reproduces the controlled image with identical pixels and shows its map in the Gallery', async () => {
    await page.getByTestId('nav-gallery').click();
    const tile = page.getByTestId(`gallery-item-${controlled.id}`);
    await expect.poll(() => tile.isVisible(), { timeout: 30_000 }).toBe(true);
    await tile.click();
    const detail = page.getByTestId('gallery-detail');
    expect(await detail.innerText()).toMatch(/Control\s+Edges \(Canny\) 120\/220 · scale 1/);
    await expect.poll(() => page.getByTestId('gallery-control-map').evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth)).toBe(SIZE);
    await page.getByTestId('gallery-reproduce').click();
    const result = page.getByTestId('reproduce-result');
    await expect.poll(() => result.isVisible(), { timeout: JOB_TIMEOUT }).toBe(true);
    expect(await result.innerText()).toContain('Identical pixels');
  });

  it('offers the depth model when it is missing; once added from a folder, previews the depth map', async () => {
    await page.getByTestId('nav-generate').click();
    // The stroke stays over whatever map is made next, until cleared.
    await page.getByTestId('control-clear').click();
    await page.getByTestId('control-draw').uncheck();
    await page.getByTestId('control-mode-depth').check();
    await expect.poll(() => page.getByTestId('control-depth-missing').isVisible()).toBe(true);
    expect(await page.getByTestId('control-depth-download').isVisible()).toBe(true);
    await expect.poll(() => page.getByTestId('control-error').innerText()).toMatch(/Depth Anything V2.*download it/);

    await page.getByTestId('nav-settings').click();
    await page.getByTestId('add-folder-path').fill(join(REPO_ROOT, 'test/fixtures/depth/tiny-depth-anything'));
    await page.getByTestId('add-folder-submit').click();
    await expect.poll(() => page.getByTestId('control-models-list').innerText(), { timeout: JOB_TIMEOUT }).toMatch(/tiny-depth-anything[\s\S]*Depth estimator/);

    await page.getByTestId('nav-generate').click();
    await expect.poll(() => page.getByTestId('control-depth-missing').count()).toBe(0);
    await page.getByTestId('control-mode-canny').check();
    const edges = (await mapId())!;
    await page.getByTestId('control-mode-depth').check();
    await expect.poll(mapId, { timeout: 30_000 }).not.toBe(edges);
    const depth = await storedMap((await mapId())!);
    expect(Math.min(...depth)).toBe(0);
    expect(Math.max(...depth)).toBe(255);
    await expect.poll(async () => (await canvasPixels()).equals(depth)).toBe(true);
    await page.getByTestId('control-panel').scrollIntoViewIfNeeded();
    await bothThemes('depth');
  });
});
