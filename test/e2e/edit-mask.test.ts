/**
 * The Edit view's mask editor in Chromium against the built serve mode: open a DreamBench photo (picked),
 * paint a stroke, undo/redo it (buttons and Ctrl+Z / Ctrl+Shift+Z), invert, clear, brush size with [ and ],
 * the eraser, zoom with the wheel and fit; the mask canvas holds exactly what was painted. Screenshots of
 * the editor with a mask in both themes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../helpers/built-app';
import { startStudioSession, type StudioSession } from './support/studio-session';

const PHOTO = join(REPO_ROOT, 'test/fixtures/dreambench/dog/02.jpg');

let session: StudioSession;
let page: Page;

beforeAll(async () => {
  session = await startStudioSession({ tempPrefix: 'blip-edit-ui-', viewport: { width: 1280, height: 900 }, shotPrefix: 'edit-' });
  page = session.page;
});

afterAll(async () => {
  await session?.close();
});

/** The mask's value (first channel) at image pixel (x, y), and how many pixels are painted. */
async function maskAt(points: [number, number][]): Promise<{ values: number[]; painted: number }> {
  return page.getByTestId('edit-mask').evaluate((canvas: HTMLCanvasElement, at: [number, number][]) => {
    const data = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
    let painted = 0;
    for (let i = 0; i < data.length; i += 4) if (data[i]! > 127) painted++;
    return { values: at.map(([x, y]) => data[(y * canvas.width + x) * 4]!), painted };
  }, points);
}

/** Drags across the canvas from (x0, y0) to (x1, y1), in fractions of the shown image. */
async function drag(x0: number, y0: number, x1: number, y1: number): Promise<void> {
  const box = (await page.getByTestId('edit-mask').boundingBox())!;
  await page.mouse.move(box.x + box.width * x0, box.y + box.height * y0);
  await page.mouse.down();
  for (let i = 1; i <= 12; i++) await page.mouse.move(box.x + box.width * (x0 + ((x1 - x0) * i) / 12), box.y + box.height * (y0 + ((y1 - y0) * i) / 12));
  await page.mouse.up();
}

describe('the Edit view’s mask editor', () => {
  it('opens a picked photo, paints a stroke that undo and redo take back and give again, inverts and clears', async () => {
    await page.getByTestId('nav-edit').click();
    await page.getByTestId('edit-input').setInputFiles([{ name: '02.jpg', mimeType: 'image/jpeg', buffer: readFileSync(PHOTO) }]);
    await expect.poll(() => page.getByTestId('edit-image').isVisible(), { timeout: 30_000 }).toBe(true);
    const size = await page.getByTestId('edit-mask').evaluate((canvas: HTMLCanvasElement) => [canvas.width, canvas.height]);
    expect(size).toEqual([512, 512]);
    expect((await maskAt([[256, 256]])).painted).toBe(0);

    await page.getByTestId('edit-size').fill('40');
    await drag(0.2, 0.5, 0.8, 0.5);
    const stroke = await maskAt([[256, 256], [256, 40], [20, 20]]);
    expect(stroke.values).toEqual([255, 0, 0]);
    // A 40 px brush over ~60 % of the width: roughly 40 × 307 pixels (soft edge included).
    expect(stroke.painted).toBeGreaterThan(40 * 250);
    expect(stroke.painted).toBeLessThan(48 * 360);
    await page.getByTestId('edit-overlay').scrollIntoViewIfNeeded();
    for (const scheme of ['light', 'dark'] as const) {
      await page.emulateMedia({ colorScheme: scheme });
      await session.shoot(`mask-${scheme}`);
    }
    await page.emulateMedia({ colorScheme: 'light' });

    await page.getByTestId('edit-undo').click();
    await expect.poll(async () => (await maskAt([])).painted).toBe(0);
    await page.getByTestId('edit-redo').click();
    await expect.poll(async () => (await maskAt([])).painted).toBe(stroke.painted);
    await page.getByTestId('edit-canvas').focus();
    await page.keyboard.press('Control+z');
    await expect.poll(async () => (await maskAt([])).painted).toBe(0);
    await page.keyboard.press('Control+Shift+z');
    await expect.poll(async () => (await maskAt([])).painted).toBe(stroke.painted);

    await page.getByTestId('edit-invert').click();
    await expect.poll(async () => (await maskAt([])).painted).toBe(512 * 512 - stroke.painted);
    expect((await maskAt([[20, 20], [256, 256]])).values).toEqual([255, 0]);
    await page.getByTestId('edit-clear').click();
    await expect.poll(async () => (await maskAt([])).painted).toBe(0);
    await page.getByTestId('edit-undo').click();
    await expect.poll(async () => (await maskAt([])).painted).toBe(512 * 512 - stroke.painted);
  });

  it('changes the brush with [ and ], erases, zooms at the cursor and fits again', async () => {
    await page.getByTestId('edit-clear').click();
    await page.getByTestId('edit-canvas').focus();
    const before = Number(await page.getByTestId('edit-size').inputValue());
    await page.keyboard.press(']');
    await page.keyboard.press(']');
    expect(Number(await page.getByTestId('edit-size').inputValue())).toBeGreaterThan(before);
    await page.keyboard.press('[');
    await drag(0.5, 0.2, 0.5, 0.8);
    const painted = (await maskAt([])).painted;
    expect(painted).toBeGreaterThan(0);
    await page.getByTestId('edit-eraser').check();
    await drag(0.3, 0.5, 0.7, 0.5);
    const after = await maskAt([[256, 256], [256, 110]]);
    expect(after.values).toEqual([0, 255]);
    expect(after.painted).toBeLessThan(painted);

    const box = (await page.getByTestId('edit-mask').boundingBox())!;
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await page.mouse.wheel(0, -400);
    await expect.poll(async () => (await page.getByTestId('edit-mask').boundingBox())!.width).toBeGreaterThan(box.width * 1.3);
    await page.getByTestId('edit-fit').click();
    await expect.poll(async () => Math.round((await page.getByTestId('edit-mask').boundingBox())!.width)).toBe(Math.round(box.width));
  });
});
