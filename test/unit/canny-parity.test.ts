import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { CANNY_DEFAULTS, cannyEdges, countEdgePixels, edgeMapRgb, rgbToGray, type CannyImage } from '../../main/engine/imaging/canny';
import { REPO_ROOT } from '../helpers/built-app';

const kit = join(REPO_ROOT, 'test/fixtures/control/canny');

interface KitCase {
  name: string;
  input: string;
  edges: string;
  gray: string | null;
  low: number;
  high: number;
  l2gradient: boolean;
  grayscale_first: boolean;
  height: number;
  width: number;
  edge_pixels: number;
}

const cases = (JSON.parse(readFileSync(join(kit, 'cases.json'), 'utf8')) as { cases: KitCase[] }).cases;

interface Raw {
  width: number;
  height: number;
  channels: number;
  data: Uint8Array;
}

/** sharp turns a one-channel PNG into sRGB for raw output unless told to keep it black-and-white. */
async function decodePng(file: string, channels: 1 | 3): Promise<Raw> {
  let pipeline = sharp(join(kit, file));
  if (channels === 1) pipeline = pipeline.toColourspace('b-w');
  const { data, info } = await pipeline.raw().toBuffer({ resolveWithObject: true });
  expect(info.channels, `${file} channels`).toBe(channels);
  return { width: info.width, height: info.height, channels: info.channels, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

/** Every byte equal; on failure the count and the first few (x, y) with both values. */
function expectSameImage(actual: Uint8Array, expected: Uint8Array, width: number, label: string): void {
  expect(actual.length, `${label} size`).toBe(expected.length);
  const firstFew: string[] = [];
  let mismatches = 0;
  for (let i = 0; i < actual.length; i++) {
    if (actual[i] === expected[i]) continue;
    mismatches++;
    if (firstFew.length < 5) firstFew.push(`(${i % width}, ${Math.floor(i / width)}): ${actual[i]} vs ${expected[i]}`);
  }
  expect(mismatches, `${label}: ${mismatches} pixels differ, first ${firstFew.join('; ')}`).toBe(0);
}

async function kitRgb(c: KitCase): Promise<CannyImage> {
  const input = await decodePng(c.input, 3);
  expect([input.width, input.height]).toEqual([c.width, c.height]);
  return { width: input.width, height: input.height, channels: 3, data: input.data };
}

describe('Canny parity with OpenCV 4.6.0 (the control kit’s golden edge maps)', () => {
  for (const c of cases) {
    it(`${c.name}: ${c.grayscale_first ? 'gray' : 'RGB'}, ${c.l2gradient ? 'L2' : 'L1'}, ${c.low}/${c.high}`, async () => {
      const rgb = await kitRgb(c);
      let source = rgb;
      if (c.grayscale_first) {
        const gray = rgbToGray(rgb.data, rgb.width, rgb.height);
        expectSameImage(gray, (await decodePng(c.gray!, 1)).data, c.width, `${c.name} COLOR_RGB2GRAY`);
        source = { width: rgb.width, height: rgb.height, channels: 1, data: gray };
      }
      const edges = cannyEdges(source, { low: c.low, high: c.high, l2Gradient: c.l2gradient });
      expectSameImage(edges, (await decodePng(c.edges, 1)).data, c.width, c.name);
      expect(countEdgePixels(edges)).toBe(c.edge_pixels);
    });
  }

  it('edgeMapRgb is the kit’s edge image replicated to three channels', async () => {
    const c = cases.find((k) => k.grayscale_first)!;
    const rgb = await kitRgb(c);
    const map = edgeMapRgb(rgb.data, rgb.width, rgb.height, { low: c.low, high: c.high, l2Gradient: c.l2gradient, grayscale: true });
    const edges = (await decodePng(c.edges, 1)).data;
    for (let k = 0; k < 3; k++) expectSameImage(map.filter((_, i) => i % 3 === k), edges, c.width, `${c.name} channel ${k}`);
    expect(countEdgePixels(map, 3)).toBe(c.edge_pixels);
  });
});

describe('Canny rules', () => {
  const photo = () => kitRgb(cases.find((k) => k.name.startsWith('cat'))!);

  it('low > high is the same as the thresholds swapped', async () => {
    const image = await photo();
    const swapped = cannyEdges(image, { low: 70, high: 30 });
    expect(countEdgePixels(swapped)).toBeGreaterThan(0);
    expect(swapped).toEqual(cannyEdges(image, { low: 30, high: 70 }));
  });

  it('floors the thresholds, after squaring them for L2 (a rounding or ceiling implementation fails)', () => {
    // A vertical step of 18 levels: Sobel magnitude 4·18 = 72 (L1) or 72² = 5184 (L2) on the edge column.
    const width = 16;
    const height = 9;
    const data = new Uint8Array(width * height);
    for (let y = 0; y < height; y++) data.fill(18, y * width + width / 2, (y + 1) * width);
    const step = { width, height, channels: 1 as const, data };
    const edgeCount = (low: number, high: number, l2Gradient = false) => countEdgePixels(cannyEdges(step, { low, high, l2Gradient }));
    expect(edgeCount(30, 71.9)).toBe(height); // floor 71 < 72
    expect(edgeCount(30, 72)).toBe(0); // strictly greater
    expect(edgeCount(30, Math.sqrt(5183.5), true)).toBe(height); // floor(5183.5) = 5183 < 5184
    expect(edgeCount(30, 72, true)).toBe(0);
    expect(edgeCount(71.9, 71.9)).toBe(height);
  });

  it('L2 compares squared magnitudes with squared thresholds: a different map from L1', async () => {
    const image = await photo();
    const l2 = cannyEdges(image, { low: 30, high: 70, l2Gradient: true });
    expect(countEdgePixels(l2)).toBeGreaterThan(0);
    expect(l2).not.toEqual(cannyEdges(image, { low: 30, high: 70 }));
  });

  it('a flat image has no edges, even at threshold 0', () => {
    for (const channels of [1, 3] as const) {
      const flat = { width: 37, height: 23, channels, data: new Uint8Array(37 * 23 * channels).fill(140) };
      expect(countEdgePixels(cannyEdges(flat, { low: 0, high: 0 }))).toBe(0);
      expect(countEdgePixels(cannyEdges(flat, { low: 0, high: 0, l2Gradient: true }))).toBe(0);
    }
  });

  it('edges reach the image border: a vertical step makes edges on the first and last rows (OpenCV reads magnitude 0 outside)', () => {
    const width = 16;
    const height = 9;
    const data = new Uint8Array(width * height);
    for (let y = 0; y < height; y++) data.fill(200, y * width + width / 2, (y + 1) * width);
    const edges = cannyEdges({ width, height, channels: 1, data }, CANNY_DEFAULTS);
    // Sobel puts the same magnitude on columns 7 and 8; the non-maximum test is strict on the left
    // neighbour and ≥ on the right one, so column 7 wins, in every row including both borders.
    for (let y = 0; y < height; y++) {
      expect([...edges.subarray(y * width, (y + 1) * width)].map((v, x) => (v ? x : -1)).filter((x) => x >= 0), `row ${y}`).toEqual([7]);
    }
  });

  it('colour input takes the channel with the strongest gradient, not the luma', () => {
    const width = 12;
    const height = 12;
    const data = new Uint8Array(width * height * 3);
    // A step in blue only, weak in luma (3735/32768 of 255 ≈ 29 gray levels → Sobel 116 in L1).
    for (let y = 0; y < height; y++) for (let x = width / 2; x < width; x++) data[(y * width + x) * 3 + 2] = 255;
    const rgb = { width, height, channels: 3 as const, data };
    const options = { low: 200, high: 500 };
    expect(countEdgePixels(cannyEdges(rgb, options))).toBe(height);
    expect(countEdgePixels(cannyEdges({ width, height, channels: 1, data: rgbToGray(data, width, height) }, options))).toBe(0);
  });

  it('refuses bad options and images with the reason', () => {
    const image = { width: 4, height: 3, channels: 1 as const, data: new Uint8Array(12) };
    expect(() => cannyEdges(image, { low: -1, high: 70 })).toThrow(/low threshold must be a finite number ≥ 0, got -1/);
    expect(() => cannyEdges(image, { low: 30, high: Number.NaN })).toThrow(/high threshold .* got NaN/);
    expect(() => cannyEdges(image, { low: 30, high: Number.POSITIVE_INFINITY })).toThrow(/high threshold/);
    expect(() => cannyEdges(image, { low: '30' as unknown as number, high: 70 })).toThrow(/low threshold/);
    expect(() => cannyEdges(image, { low: 30, high: 70, l2Gradient: 'yes' as unknown as boolean })).toThrow(/l2Gradient must be true or false/);
    expect(() => cannyEdges({ ...image, data: new Uint8Array(11) }, CANNY_DEFAULTS)).toThrow(/expected 4×3×1 = 12 bytes, got 11/);
    expect(() => cannyEdges({ ...image, width: 0, data: new Uint8Array(0) }, CANNY_DEFAULTS)).toThrow(/positive integers, got 0×3/);
    expect(() => cannyEdges({ ...image, channels: 2 as 1 }, CANNY_DEFAULTS)).toThrow(/1 or 3 channels, got 2/);
    expect(() => rgbToGray(new Uint8Array(10), 2, 2)).toThrow(/expected 2×2×3 = 12 bytes of RGB, got 10/);
    expect(() => edgeMapRgb(new Uint8Array(12), 2, 2, { low: 30, high: -70 })).toThrow(/high threshold/);
  });
});
