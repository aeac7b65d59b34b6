/** The first-flow sections of `bench` (subject creation, gallery first paint): their result types, medians and summary lines. */
import type { SubjectBenchResult } from './subject-bench';

/** The issue's goal for opening the gallery with 1,000 generations. */
export const GALLERY_FIRST_PAINT_GOAL_MS = 300;

export interface GalleryPaint {
  /** From navigation start to the first grid tile in the DOM. */
  firstTileMs: number;
  /** From navigation start to the first thumbnail decoded and painted. */
  firstThumbnailMs: number;
  tilesAtFirstPaint: number;
  /** Where the time went (navigation start = 0; null where Chromium did not report it). */
  domContentLoadedMs: number | null;
  thumbnailRequestMs: number | null;
  thumbnailResponseMs: number | null;
  /** The same, measured from outside (goto + wait), including Chromium's own overhead. */
  wallMs: number;
}

export type GalleryBenchResult = { generations: number; goalMs: number } & (
  | { skipped: string }
  | {
      skipped: null;
      fillMs: number;
      chromium: string;
      loads: GalleryPaint[];
      /**
       * Opening the Gallery from another view of the running app (a click in the sidebar → the first
       * thumbnail painted, nothing cached): what a user of the desktop app waits for, without the
       * page's own boot.
       */
      viewSwitchesMs: number[];
      loadAverage: { before: number; after: number; cores: number };
    }
);

export interface GalleryFigures {
  medianFirstThumbnailMs: number;
  worstFirstThumbnailMs: number;
  medianFirstTileMs: number;
  medianDomContentLoadedMs: number | null;
  medianThumbnailRequestMs: number | null;
  medianThumbnailResponseMs: number | null;
  goalMet: boolean;
  /** Median of the in-app switches to the Gallery (null when none was measured), and its verdict. */
  medianViewSwitchMs: number | null;
  viewSwitchGoalMet: boolean | null;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function medianOfReported(values: readonly (number | null)[]): number | null {
  const reported = values.filter((v): v is number => v !== null);
  return reported.length > 0 ? median(reported) : null;
}

/** Medians over the measured loads and the verdict against the goal; null when nothing was measured. */
export function galleryFigures(result: GalleryBenchResult): GalleryFigures | null {
  if (result.skipped !== null || result.loads.length === 0) return null;
  const thumbnails = result.loads.map((l) => l.firstThumbnailMs);
  const medianFirstThumbnailMs = median(thumbnails);
  return {
    medianFirstThumbnailMs,
    worstFirstThumbnailMs: Math.max(...thumbnails),
    medianFirstTileMs: median(result.loads.map((l) => l.firstTileMs)),
    medianDomContentLoadedMs: medianOfReported(result.loads.map((l) => l.domContentLoadedMs)),
    medianThumbnailRequestMs: medianOfReported(result.loads.map((l) => l.thumbnailRequestMs)),
    medianThumbnailResponseMs: medianOfReported(result.loads.map((l) => l.thumbnailResponseMs)),
    goalMet: medianFirstThumbnailMs < result.goalMs,
    medianViewSwitchMs: result.viewSwitchesMs.length > 0 ? median(result.viewSwitchesMs) : null,
    viewSwitchGoalMet: result.viewSwitchesMs.length > 0 ? median(result.viewSwitchesMs) < result.goalMs : null,
  };
}

const ms = (value: number) => `${value.toFixed(0)} ms`;
const optionalMs = (value: number | null) => (value === null ? 'n/a' : ms(value));

/** More runnable work than cores while measuring: other processes took part of the machine. */
export function contended(load: { before: number; after: number; cores: number }): boolean {
  return Math.max(load.before, load.after) > load.cores;
}

export function formatSubjectCreation(s: SubjectBenchResult | { failed: string }): string[] {
  if ('failed' in s) return [`  subject creation (3 photos → embeddings cached)  FAILED: ${s.failed}`];
  return [
    `  subject creation, 3 photos → embeddings cached (${s.model})`,
    `    create → cached           ${ms(s.createToCachedMs)} = import ${ms(s.importMs)} + embeddings ${ms(s.embeddingMs)}`,
    `    per photo                 ${s.perPhotoMs.map(ms).join(', ')} (the first builds the graph)`,
    `    second run                ${ms(s.cachedRun.ms)}, ${s.cachedRun.cached} from the cache, ${s.cachedRun.computed} computed`,
    `    model fingerprint         ${ms(s.fingerprintFirstMs)} once per model (remembered afterwards)`,
  ];
}

export function formatGallery(result: GalleryBenchResult | { failed: string }): string[] {
  if ('failed' in result) return [`  gallery first paint        FAILED: ${result.failed}`];
  const title = `  gallery first paint, ${result.generations} generations`;
  if (result.skipped !== null) return [`${title}: skipped: ${result.skipped}`];
  const figures = galleryFigures(result);
  if (figures === null) return [`${title}: no page load measured`];
  return [
    `${title} (Chromium ${result.chromium}, ${result.loads.length} loads of /#/gallery)`,
    `    first thumbnail painted   ${ms(figures.medianFirstThumbnailMs)} median, worst ${ms(figures.worstFirstThumbnailMs)} (first tile in the DOM ${ms(figures.medianFirstTileMs)})`,
    `    goal < ${result.goalMs} ms            ${figures.goalMet ? 'met' : 'NOT met'}${contended(result.loadAverage) ? ` (CONTENDED: load average ${result.loadAverage.after.toFixed(1)} on ${result.loadAverage.cores} cores)` : ''}`,
    ...(figures.medianViewSwitchMs === null
      ? []
      : [
          `    in the running app        sidebar → Gallery → first thumbnail ${ms(figures.medianViewSwitchMs)} median of ${result.viewSwitchesMs.length} (goal ${figures.viewSwitchGoalMet ? 'met' : 'NOT met'})`,
        ]),
    `    where the time went       DOMContentLoaded ${optionalMs(figures.medianDomContentLoadedMs)}, thumbnail fetched ${optionalMs(figures.medianThumbnailRequestMs)} → ${optionalMs(figures.medianThumbnailResponseMs)}`,
    `    library filled in         ${ms(result.fillMs)}`,
  ];
}
