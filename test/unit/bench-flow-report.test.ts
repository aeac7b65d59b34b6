import { describe, expect, it } from 'vitest';
import { contended, formatGallery, formatSubjectCreation, galleryFigures, median, type GalleryBenchResult, type GalleryPaint } from '../../main/cli/bench/flow-summary';
import type { SubjectBenchResult } from '../../main/cli/bench/subject-bench';

const load = (firstThumbnailMs: number, extra: Partial<GalleryPaint> = {}): GalleryPaint => ({
  firstTileMs: firstThumbnailMs - 50,
  firstThumbnailMs,
  tilesAtFirstPaint: 60,
  domContentLoadedMs: 100,
  thumbnailRequestMs: null,
  thumbnailResponseMs: null,
  wallMs: firstThumbnailMs + 30,
  ...extra,
});

const measured = (loads: GalleryPaint[], loadAverage = { before: 0.5, after: 0.7, cores: 2 }): GalleryBenchResult => ({
  generations: 1000,
  goalMs: 300,
  skipped: null,
  fillMs: 4200,
  chromium: '156.0',
  loads,
  viewSwitchesMs: [],
  loadAverage,
});

describe('gallery first-paint figures', () => {
  it('reports the in-app switch to the Gallery with its own verdict, and nothing when none was measured', () => {
    const switched = { ...measured([load(600)]), viewSwitchesMs: [120, 400, 90] } as GalleryBenchResult;
    expect(galleryFigures(switched)).toMatchObject({ goalMet: false, medianViewSwitchMs: 120, viewSwitchGoalMet: true });
    expect(formatGallery(switched).join('\n')).toMatch(/sidebar → Gallery → first thumbnail 120 ms median of 3 \(goal met\)/);
    expect(galleryFigures(measured([load(200)]))).toMatchObject({ medianViewSwitchMs: null, viewSwitchGoalMet: null });
    expect(formatGallery(measured([load(200)])).join('\n')).not.toMatch(/sidebar/);
  });

  it('takes medians over the loads and judges the median against the goal', () => {
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNaN();
    const figures = galleryFigures(measured([load(310), load(250), load(280, { thumbnailRequestMs: 200, thumbnailResponseMs: 240 })]));
    expect(figures).toEqual({
      medianFirstThumbnailMs: 280,
      worstFirstThumbnailMs: 310,
      medianFirstTileMs: 230,
      medianDomContentLoadedMs: 100,
      medianThumbnailRequestMs: 200,
      medianThumbnailResponseMs: 240,
      goalMet: true,
      medianViewSwitchMs: null,
      viewSwitchGoalMet: null,
    });
    // Exactly the goal is not under it.
    expect(galleryFigures(measured([load(300)]))?.goalMet).toBe(false);
    expect(galleryFigures(measured([]))).toBeNull();
    expect(galleryFigures({ generations: 1000, goalMs: 300, skipped: 'no Chromium' })).toBeNull();
  });

  it('prints both numbers, the verdict, and says so when the machine was busy or the section was skipped or failed', () => {
    const quiet = formatGallery(measured([load(900), load(1000), load(1100)])).join('\n');
    expect(quiet).toMatch(/gallery first paint, 1000 generations \(Chromium 156\.0, 3 loads/);
    expect(quiet).toMatch(/first thumbnail painted\s+1000 ms median, worst 1100 ms \(first tile in the DOM 950 ms\)/);
    expect(quiet).toMatch(/goal < 300 ms\s+NOT met$/m);
    expect(quiet).toMatch(/thumbnail fetched n\/a → n\/a/);

    const busy = formatGallery(measured([load(200)], { before: 1, after: 9.5, cores: 2 })).join('\n');
    expect(busy).toMatch(/goal < 300 ms\s+met \(CONTENDED: load average 9\.5 on 2 cores\)/);
    expect(contended({ before: 2, after: 2, cores: 2 })).toBe(false);

    expect(formatGallery({ generations: 1000, goalMs: 300, skipped: 'playwright-core is not installed' })).toEqual([
      '  gallery first paint, 1000 generations: skipped: playwright-core is not installed',
    ]);
    expect(formatGallery({ failed: 'browser crashed' }).join('')).toMatch(/FAILED: browser crashed/);
  });
});

describe('subject creation summary', () => {
  it('adds import and embeddings into the create-to-cached time and shows the cache hit', () => {
    const result: SubjectBenchResult = {
      model: 'real-size Q-Former',
      photos: ['00.jpg', '01.jpg', '02.jpg'],
      fingerprintFirstMs: 5000,
      importMs: 120,
      embeddingMs: 4000,
      perPhotoMs: [2000, 1000, 1000],
      createToCachedMs: 4120,
      cachedRun: { ms: 12, computed: 0, cached: 3 },
    };
    const text = formatSubjectCreation(result).join('\n');
    expect(text).toMatch(/create → cached\s+4120 ms = import 120 ms \+ embeddings 4000 ms/);
    expect(text).toMatch(/per photo\s+2000 ms, 1000 ms, 1000 ms/);
    expect(text).toMatch(/second run\s+12 ms, 3 from the cache, 0 computed/);
    expect(formatSubjectCreation({ failed: 'no weights' }).join('')).toMatch(/FAILED: no weights/);
  });
});
