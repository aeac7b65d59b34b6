/**
 * The Depth Anything references (test/fixtures/depth/, made by scripts/reference-depth-anything.py):
 * the manifest, each case's arrays, and the tolerance rule its "tolerance_rule" states, shared by the
 * CPU and WebGPU parity tests.
 *
 * Rule: a float stage may differ from the float32 reference by 4 × |ref32 − ref64| + 1e-6 × max|ref64|
 * (our float32 run rounds differently from torch's, by about as much as torch's own float32 run differs
 * from its float64 rerun; the floor covers stages where the two reference runs happen to agree). The
 * uint8 map truncates d·255, so a float32 difference at a level boundary flips a pixel by one level: no
 * pixel may be more than one level off, and at most max(4 × the reference's own float32/float64 share,
 * 0.1 %) of the pixels by one.
 */
import { expect } from 'vitest';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeRgb, type RgbImage } from '../../main/engine/imaging/decode';
import { readNpyFile } from '../../main/engine/io/npy-file';
import { REPO_ROOT } from './built-app';

export const DEPTH_FIXTURES = join(REPO_ROOT, 'test/fixtures/depth');
export const readJson = (path: string): unknown => JSON.parse(readFileSync(path, 'utf8'));

export interface Float64Gap {
  max_abs: number;
  max_ref: number;
  /** depth_map only: the share of pixels where the float32 and float64 maps differ. */
  share_differing?: number;
}

export interface StageEntry {
  shape: number[];
  dtype: string;
  sha256: string;
  float64_gap?: Float64Gap;
}

export interface DepthCase {
  model: string;
  source: string;
  /** [height, width] */
  image_size: [number, number];
  files: Record<string, StageEntry>;
}

export interface DepthManifest {
  cases: Record<string, DepthCase>;
  resize_sizes: { cases: { input: [number, number]; output: [number, number] }[] };
}

export const depthManifest = readJson(join(DEPTH_FIXTURES, 'manifest.json')) as DepthManifest;

const GAP_FACTOR = 4;
const ULP_FLOOR = 1e-6;
const MAP_SHARE_FLOOR = 0.001;

/** The bound of a float stage. */
export function stageBound(gap: Float64Gap): number {
  return GAP_FACTOR * gap.max_abs + ULP_FLOOR * gap.max_ref;
}

export const depthModelDir = (name: string): string => join(DEPTH_FIXTURES, name);
export const depthCasePath = (id: string, file: string): string => join(DEPTH_FIXTURES, 'cases', id, file);
export const depthStage = (id: string, stage: string): Float32Array => readNpyFile(depthCasePath(id, `${stage}.npy`)).data as Float32Array;
export const depthMapOf = (id: string): Uint8Array => readNpyFile(depthCasePath(id, 'depth_map.npy')).data as Uint8Array;

/** The float stages a case stores that the graph outputs (everything between pixel_values and the post-processing). */
export function graphStages(entry: DepthCase): string[] {
  return Object.keys(entry.files)
    .filter((f) => f.endsWith('.npy') && !['pixel_values.npy', 'depth_resized.npy', 'depth_map.npy'].includes(f))
    .map((f) => f.slice(0, -4));
}

/** The case's input as the reference decoded it (PIL), checked by the hash of its bytes. */
export async function depthCaseImage(id: string): Promise<RgbImage> {
  const entry = depthManifest.cases[id]!;
  const image = await decodeRgb(join(REPO_ROOT, entry.source));
  const sha = createHash('sha256').update(image.data).digest('hex');
  expect(sha, `${entry.source} decodes to the bytes PIL decoded`).toBe(entry.files['input_rgb']!.sha256);
  return image;
}

/** One map against the reference map under the rule; returns a summary line. */
export function expectMapWithinBound(actual: Uint8Array, expected: Uint8Array, entry: StageEntry, what: string): string {
  expect(actual.length, `${what}: pixels`).toBe(expected.length);
  let off = 0;
  let worst = 0;
  for (let i = 0; i < actual.length; i++) {
    const d = Math.abs(actual[i]! - expected[i]!);
    if (d > 0) off++;
    worst = Math.max(worst, d);
  }
  const allowed = Math.max(GAP_FACTOR * (entry.float64_gap?.share_differing ?? 0), MAP_SHARE_FLOOR);
  expect(worst, `${what}: largest level difference`).toBeLessThanOrEqual(1);
  expect(off / actual.length, `${what}: share of pixels one level off (${off})`).toBeLessThanOrEqual(allowed);
  return `${what}: ${off} of ${actual.length} pixels one level off (allowed ${(allowed * 100).toFixed(2)} %)`;
}
