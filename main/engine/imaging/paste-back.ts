/**
 * The painted mask of a brush edit, in pixel space and at latent size, and the feathered paste-back
 * (docs/edit-reference.md, "Painted mask"). Pure: numbers in, numbers out.
 *
 * - featherMask: m = p · boxblur_r(p), p the painted mask in [0, 1]: a separable box blur of radius r
 *   (window 2r + 1, rows then columns, edges clamped, float64), multiplied by p, so m is 0 wherever
 *   nothing was painted and ramps up inside the stroke's edge.
 * - latentMask: a latent cell is editable (1) when any pixel of its f×f block has m > 0, else 0, so the
 *   region the edit may change covers every pixel the paste-back lets through.
 * - pasteBack: out = round(original·(1 − m) + edited·m) per byte (round half up): where m = 0 the bytes
 *   are the original's exactly, where m = 1 the edited image's.
 */
import type { RgbImage } from './decode';

function checkMask(mask: Float32Array | Float64Array, width: number, height: number): void {
  if (mask.length !== width * height) throw new Error(`the mask has ${mask.length} values; a ${width}×${height} image needs ${width * height}`);
  for (const v of mask) if (!(v >= 0 && v <= 1)) throw new Error(`mask values must be in [0, 1] (got ${v})`);
}

/** Separable box blur of radius r, float64, edges clamped (rows, then columns). */
export function boxBlur(values: Float32Array | Float64Array, width: number, height: number, radius: number): Float64Array {
  if (!Number.isInteger(radius) || radius < 0) throw new Error(`the blur radius must be a non-negative integer (got ${radius})`);
  const window = 2 * radius + 1;
  const rows = new Float64Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let acc = 0;
      for (let d = -radius; d <= radius; d++) acc += values[y * width + Math.min(width - 1, Math.max(0, x + d))]!;
      rows[y * width + x] = acc / window;
    }
  }
  const out = new Float64Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let acc = 0;
      for (let d = -radius; d <= radius; d++) acc += rows[Math.min(height - 1, Math.max(0, y + d)) * width + x]!;
      out[y * width + x] = acc / window;
    }
  }
  return out;
}

/** The feathered mask m = p · boxblur_r(p) of a painted mask p ∈ [0, 1] (H×W, row-major); radius 0 gives p·p. */
export function featherMask(painted: Float32Array | Float64Array, width: number, height: number, radius: number): Float32Array {
  checkMask(painted, width, height);
  const blurred = boxBlur(painted, width, height, radius);
  return Float32Array.from(painted, (p, i) => p * blurred[i]!);
}

/** A painted mask from 8-bit grey values (a mask PNG): v / 255. */
export function maskFromBytes(bytes: Uint8Array): Float64Array {
  return Float64Array.from(bytes, (v) => v / 255);
}

/** The latent-size mask [h, w]: 1 where any pixel of the cell's f×f block has m > 0. */
export function latentMask(mask: Float32Array | Float64Array, width: number, height: number, factor: number): Float32Array {
  checkMask(mask, width, height);
  if (width % factor !== 0 || height % factor !== 0) throw new Error(`the mask size ${width}×${height} is not a multiple of the latent factor ${factor}`);
  const w = width / factor;
  const h = height / factor;
  const out = new Float32Array(w * h);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (mask[y * width + x]! > 0) out[Math.floor(y / factor) * w + Math.floor(x / factor)] = 1;
    }
  }
  return out;
}

/** out = round_half_up(original·(1 − m) + edited·m) per byte; m = 0 keeps the original bytes exactly. */
export function pasteBack(original: RgbImage, edited: RgbImage, mask: Float32Array | Float64Array): RgbImage {
  const { width, height } = original;
  if (edited.width !== width || edited.height !== height) throw new Error(`the edited image is ${edited.width}×${edited.height}, the original ${width}×${height}`);
  checkMask(mask, width, height);
  const data = new Uint8Array(width * height * 3);
  for (let p = 0; p < width * height; p++) {
    const m = mask[p]!;
    for (let c = 0; c < 3; c++) {
      const i = 3 * p + c;
      data[i] = m === 0 ? original.data[i]! : Math.floor(original.data[i]! * (1 - m) + edited.data[i]! * m + 0.5);
    }
  }
  return { width, height, data };
}
