/**
 * Gallery first paint with 1,000 generations: a data folder with 1,000 rows and small PNGs (inserted
 * through the gallery's store), the built UI served as `serve` does (in this process), and Chromium
 * (playwright-core) loading `/#/gallery`. Measured in the page: from navigation start to the first grid
 * thumbnail decoded and painted, and to the first tile in the DOM. playwright-core is a dev dependency
 * and Chromium a system package, so without either the section says it was skipped and why.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import sharp from 'sharp';
import packageJson from '../../../package.json' with { type: 'json' };
import { openStudio } from '../../api/studio';
import { startServer } from '../../serve/server';
import { GenerationsStore } from '../../gallery/generations-store';
import { createRecipe } from '../../gallery/recipe';
import { LibraryStore } from '../../library/library-store';
import { SubjectService } from '../../library/subject-service';
import { GALLERY_FIRST_PAINT_GOAL_MS, type GalleryBenchResult, type GalleryPaint } from './flow-summary';

export const DEFAULT_CHROMIUM = '/usr/bin/chromium';
/** As the E2E tests launch it: headless, no sandbox (containers), no GPU, nothing phoning home. */
const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
/** A grid tile's image: `gallery-item-<id>` is the gallery's stable test id for a tile. */
const THUMBNAIL = '[data-testid^="gallery-item-"] img';
const TILE = '[data-testid^="gallery-item-"]';

/**
 * Runs in every document before the app: on each animation frame, notes when the first tile is in the
 * DOM and when the first thumbnail has decoded (it is painted in that frame). A string, because it runs
 * in the page, not here.
 */
const PAINT_PROBE = `(() => {
  const marks = { tileMs: null, thumbnailMs: null, tiles: 0, imageRequestMs: null, imageResponseMs: null, domContentLoadedMs: null };
  window.__galleryPaint = marks;
  const frame = () => {
    if (marks.tileMs === null && document.querySelector(${JSON.stringify(TILE)})) marks.tileMs = performance.now();
    const img = document.querySelector(${JSON.stringify(THUMBNAIL)});
    if (img && img.complete && img.naturalWidth > 0) {
      marks.thumbnailMs = performance.now();
      marks.tiles = document.querySelectorAll(${JSON.stringify(TILE)}).length;
      const fetched = performance.getEntriesByName(img.currentSrc)[0];
      marks.imageRequestMs = fetched ? fetched.startTime : null;
      marks.imageResponseMs = fetched ? fetched.responseEnd : null;
      const navigation = performance.getEntriesByType('navigation')[0];
      marks.domContentLoadedMs = navigation ? navigation.domContentLoadedEventEnd : null;
      return;
    }
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
})();`;

interface PaintMarks {
  tileMs: number | null;
  thumbnailMs: number | null;
  tiles: number;
  imageRequestMs: number | null;
  imageResponseMs: number | null;
  domContentLoadedMs: number | null;
}

/** The little of the DOM the in-page functions below use (this code is type-checked without the DOM). */
type PageGlobals = {
  document: { querySelector(selector: string): { click(): void; complete?: boolean; naturalWidth?: number } | null };
  requestAnimationFrame(callback: () => void): number;
  performance: { now(): number };
};

/** How the page's global holding the probe's marks is typed here (the page functions below are serialised, so they inline it). */
type ProbeGlobal = { __galleryPaint?: PaintMarks };

export interface GalleryBenchOptions {
  generations: number;
  /** Page loads measured after one warm-up load. */
  loads: number;
  chromium: string;
  onProgress?: (message: string) => void;
}

export async function benchGallery(options: GalleryBenchOptions): Promise<GalleryBenchResult> {
  const say = options.onProgress ?? (() => undefined);
  const base = { generations: options.generations, goalMs: GALLERY_FIRST_PAINT_GOAL_MS };
  const rendererDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'renderer');
  if (!existsSync(join(rendererDir, 'index.html'))) return { ...base, skipped: `the built UI is missing at ${rendererDir}: run npm run build` };
  if (!existsSync(options.chromium)) return { ...base, skipped: `Chromium is not at ${options.chromium} (install it, e.g. apt-get install chromium, or pass --chromium PATH)` };
  let playwright: typeof import('playwright-core');
  try {
    // A development dependency: imported only here, by name at run time, so the CLI works without it.
    const name = 'playwright-core';
    playwright = (await import(name)) as typeof import('playwright-core');
  } catch {
    return { ...base, skipped: 'playwright-core is not installed (it is a development dependency: npm install without --omit=dev)' };
  }

  const dataDir = mkdtempSync(join(tmpdir(), 'blip-bench-gallery-'));
  try {
    say(`gallery: writing ${options.generations} generations…`);
    let started = performance.now();
    await fillLibrary(dataDir, options.generations);
    const fillMs = performance.now() - started;

    // Chromium, the server and this process share the machine: a busy machine shows in the figures.
    const loadBefore = loadavg()[0]!;
    const studio = await openStudio({ dataDir, mode: 'serve' });
    const server = await startServer({ studio, rendererDir, port: 0 });
    const browser = await playwright.chromium.launch({ executablePath: options.chromium, args: CHROMIUM_FLAGS });
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
      await page.addInitScript(PAINT_PROBE);
      // The printed URL sets the session cookie (and loads the app once: the warm-up).
      await page.goto(server.openUrl);
      const origin = new URL(server.openUrl).origin;
      const loads: GalleryPaint[] = [];
      say(`gallery: ${options.loads + 1} page loads of /#/gallery in Chromium…`);
      for (let i = 0; i <= options.loads; i++) {
        await page.goto('about:blank');
        started = performance.now();
        await page.goto(`${origin}/#/gallery`);
        // Functions, not strings (the app's CSP forbids the eval string predicates need); they run in the page.
        await page.waitForFunction(() => ((globalThis as ProbeGlobal).__galleryPaint?.thumbnailMs ?? null) !== null, undefined, { timeout: 30_000 });
        const marks = await page.evaluate(() => (globalThis as ProbeGlobal).__galleryPaint!);
        const paint: GalleryPaint = {
          firstTileMs: marks.tileMs ?? marks.thumbnailMs!,
          firstThumbnailMs: marks.thumbnailMs!,
          tilesAtFirstPaint: marks.tiles,
          domContentLoadedMs: marks.domContentLoadedMs,
          thumbnailRequestMs: marks.imageRequestMs,
          thumbnailResponseMs: marks.imageResponseMs,
          wallMs: performance.now() - started,
        };
        if (i > 0) loads.push(paint);
      }
      say(`gallery: ${options.loads} switches to the Gallery from a freshly loaded Subjects view…`);
      // Cold: no HTTP cache, and a new document each time, so no thumbnail is already decoded.
      const cdp = await page.context().newCDPSession(page);
      await cdp.send('Network.enable');
      await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
      const viewSwitchesMs: number[] = [];
      for (let i = 0; i < options.loads; i++) viewSwitchesMs.push(await switchToGallery(page, origin));
      return { ...base, skipped: null, fillMs, chromium: browser.version(), loads, viewSwitchesMs, loadAverage: { before: loadBefore, after: loadavg()[0]!, cores: cpus().length } };
    } finally {
      await browser.close();
      await server.close();
      await studio.close();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/**
 * Loads the app on its Subjects view and lets it settle, then clicks Gallery in the sidebar and
 * measures, in the page, the time until the grid's first thumbnail has decoded.
 */
async function switchToGallery(page: import('playwright-core').Page, origin: string): Promise<number> {
  await page.goto('about:blank');
  await page.goto(`${origin}/#/subjects`);
  await page.getByTestId('view-subjects').waitFor();
  await page.waitForLoadState('networkidle');
  // A function, not a string: the app's CSP forbids eval. It runs in the page.
  return page.evaluate(
    ({ nav, thumbnail }) =>
      new Promise<number>((resolve) => {
        const page = globalThis as unknown as PageGlobals;
        // page.performance, not performance: the bundler renames this module's perf_hooks import.
        const started = page.performance.now();
        page.document.querySelector(nav)?.click();
        const frame = (): void => {
          const img = page.document.querySelector(thumbnail);
          if (img?.complete && (img.naturalWidth ?? 0) > 0) resolve(page.performance.now() - started);
          else page.requestAnimationFrame(frame);
        };
        page.requestAnimationFrame(frame);
      }),
    { nav: '[data-testid="nav-gallery"]', thumbnail: THUMBNAIL },
  );
}

/** `count` generations of one subject, a minute apart, each with its own small PNG (distinct bytes, distinct files). */
async function fillLibrary(dataDir: string, count: number): Promise<void> {
  const library = LibraryStore.open(dataDir);
  const store = new GenerationsStore(library.connection, dataDir);
  try {
    const subject = new SubjectService(library.connection, dataDir).createSubject({ name: 'Biscuit', category: 'dog' });
    const start = Date.UTC(2026, 0, 1);
    for (let i = 0; i < count; i++) {
      const png = await sharp({ create: { width: 128, height: 128, channels: 3, background: { r: i & 255, g: (i >> 8) & 255, b: 128 } } })
        .png()
        .toBuffer();
      const recipe = createRecipe({
        appVersion: packageJson.version,
        model: { name: 'bench', hash: 'a'.repeat(64) },
        subject: { name: 'Biscuit', category: 'dog', reference: { sha256: 'b'.repeat(64) } },
        targetSubject: 'dog',
        prompt: `bench generation ${i}, on the beach at golden hour`,
        negativePrompt: '',
        seed: String(i),
        steps: 25,
        guidanceScale: 7.5,
        scheduler: 'pndm',
        width: 128,
        height: 128,
        promptStrength: 1,
        promptReps: 20,
        device: 'cpu',
        durationMs: 1000,
        createdAt: new Date(start + i * 60_000).toISOString(),
      });
      store.insert({ recipe, png: new Uint8Array(png.buffer, png.byteOffset, png.byteLength), subjectId: subject.id });
    }
  } finally {
    library.close();
  }
}
