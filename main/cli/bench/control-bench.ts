/**
 * The control maps' speed: Canny edges (engine/imaging/canny.ts, the code the app and `control canny`
 * run) on a real photo stretched to 512² RGB with the pipelines' own PIL bicubic resize — the size a
 * SD-1.5 control map is made at. Warm-up runs first (V8 compiles the loops), then the median of the rest.
 */
import { resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { CANNY_DEFAULTS, cannyEdges } from '../../engine/imaging/canny';
import { decodeRgb } from '../../engine/imaging/decode';
import { pilResize } from '../../engine/imaging/pil-resize';

export const CANNY_BENCH_PHOTO = 'test/fixtures/dreambench/dog/00.jpg';
const SIZE = 512;
const WARM_UP_RUNS = 5;

export interface CannyBenchResult {
  photo: string;
  width: number;
  height: number;
  low: number;
  high: number;
  /** Timed runs after the warm-up. */
  runs: number;
  /** The very first call: V8 not yet warm, what a first map in a fresh app costs. */
  msFirst: number;
  msMedian: number;
  msMin: number;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export async function benchCanny(options: { photo?: string; runs?: number } = {}): Promise<CannyBenchResult> {
  const photo = resolve(options.photo ?? CANNY_BENCH_PHOTO);
  const runs = Math.max(20, options.runs ?? 30);
  const image = pilResize(await decodeRgb(photo), SIZE, SIZE, 'bicubic');
  const input = { width: SIZE, height: SIZE, channels: 3 as const, data: image.data };
  const times: number[] = [];
  for (let i = 0; i < WARM_UP_RUNS + runs; i++) {
    const begin = performance.now();
    cannyEdges(input, CANNY_DEFAULTS);
    times.push(performance.now() - begin);
  }
  const timed = times.slice(WARM_UP_RUNS);
  return { photo, width: SIZE, height: SIZE, ...CANNY_DEFAULTS, runs, msFirst: times[0]!, msMedian: median(timed), msMin: Math.min(...timed) };
}

export function formatControl(result: CannyBenchResult | { failed: string }): string[] {
  if ('failed' in result) return [`  canny edge map            FAILED: ${result.failed}`];
  return [
    `  canny edge map ${result.width}² RGB  ${result.msMedian.toFixed(1)} ms median, ${result.msMin.toFixed(1)} ms min (${result.runs} runs; first call ${result.msFirst.toFixed(0)} ms)`,
  ];
}
