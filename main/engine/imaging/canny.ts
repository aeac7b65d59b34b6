/**
 * Canny edge detection, bit-exact with OpenCV 4.6.0's `cv2.Canny(image, low, high, L2gradient=l2)`
 * (aperture 3, modules/imgproc/src/canny.cpp), and its RGB → gray luma (color_rgb.simd.hpp). The canny
 * ControlNet was trained on edge maps made this way, so the app and the CLI must make the same bytes.
 *
 * The algorithm, in OpenCV's integer arithmetic:
 *  1. Sobel 3×3 derivatives dx, dy with BORDER_REPLICATE (int16; |d| ≤ 4·255).
 *  2. Magnitude |dx| + |dy| (L1) or dx² + dy² (L2). For colour input each channel has its own
 *     gradient and the pixel takes the one with the largest magnitude (the first on ties).
 *  3. Non-maximum suppression: the gradient direction falls into one of four sectors by an integer
 *     tangent test (TG22 = tan 22.5° · 2¹⁵); the pixel survives if its magnitude beats its two
 *     neighbours along that direction (strictly on one side, ≥ on the other, strictly both for the
 *     diagonals), with magnitude 0 outside the image. Survivors above `low` are candidates, above
 *     `high` edges.
 *  4. Hysteresis: candidates 8-connected to an edge become edges.
 * Pixels on the image's first and last rows and columns can be edges, as in OpenCV.
 *
 * Pure: typed arrays only, no Node, no DOM.
 */

export interface CannyOptions {
  /** Hysteresis thresholds on the gradient magnitude (OpenCV's threshold1/threshold2); swapped when low > high. */
  low: number;
  high: number;
  /** dx² + dy² against squared thresholds instead of |dx| + |dy|. */
  l2Gradient?: boolean;
}

/** One (gray) or three (interleaved RGB) 8-bit channels, row-major. */
export interface CannyImage {
  width: number;
  height: number;
  channels: 1 | 3;
  data: Uint8Array;
}

/** The thresholds of the ControlNet reference's own canny example. */
export const CANNY_DEFAULTS: Readonly<{ low: number; high: number }> = Object.freeze({ low: 30, high: 70 });

/** tan(22.5°) = √2 − 1 in 15-bit fixed point: (int)(0.41421356… · 2¹⁵ + 0.5), canny.cpp's constant. */
const TG22 = 13573;
const CANNY_SHIFT = 15;

/**
 * color_rgb.simd.hpp's 15-bit BT.601 luma weights (they sum to 2¹⁵) for 8-bit RGB2GRAY. Not the older
 * 14-bit 4899/9617/1868: those differ from OpenCV 4.6.0 on 43,864 of the 2²⁴ colours, these on none.
 */
const GRAY_R = 9798;
const GRAY_G = 19235;
const GRAY_B = 3735;
const GRAY_SHIFT = 15;

/** Map states, as in canny.cpp: 0 a candidate, 1 never an edge, 2 an edge. */
const CANDIDATE = 0;
const NOT_EDGE = 1;
const EDGE = 2;

function checkSize(width: number, height: number): void {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new Error(`image size must be positive integers, got ${width}×${height}`);
  }
}

function checkImage(image: CannyImage): void {
  checkSize(image.width, image.height);
  if (image.channels !== 1 && image.channels !== 3) throw new Error(`canny takes 1 or 3 channels, got ${String(image.channels)}`);
  const expected = image.width * image.height * image.channels;
  if (image.data.length !== expected) {
    throw new Error(`expected ${image.width}×${image.height}×${image.channels} = ${expected} bytes, got ${image.data.length}`);
  }
}

/** Validated options → the integer thresholds canny.cpp compares against (`m > low`, `m > high`). */
function integerThresholds(options: CannyOptions): { low: number; high: number; l2: boolean } {
  for (const key of ['low', 'high'] as const) {
    const value = options[key];
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
      throw new Error(`canny ${key} threshold must be a finite number ≥ 0, got ${String(value)}`);
    }
  }
  if (options.l2Gradient !== undefined && typeof options.l2Gradient !== 'boolean') {
    throw new Error(`canny l2Gradient must be true or false, got ${String(options.l2Gradient)}`);
  }
  const l2 = options.l2Gradient === true;
  let low = Math.min(options.low, options.high);
  let high = Math.max(options.low, options.high);
  if (l2) {
    // OpenCV clamps before squaring so the squares stay in int range, then floors the squares.
    low = Math.min(32767, low);
    high = Math.min(32767, high);
    low *= low;
    high *= high;
  }
  // cvFloor. (Above the int32 range OpenCV's conversion overflows; here such a threshold simply means "none".)
  return { low: Math.floor(low), high: Math.floor(high), l2 };
}

/**
 * Step 1 and 2 for all rows: `mag` gets the magnitude inside a zero ring (stride width + 2), `gx`/`gy`
 * the derivatives of the channel that gave it (stride width).
 */
function gradients(image: CannyImage, l2: boolean, mag: Int32Array, gx: Int16Array, gy: Int16Array): void {
  const { width, height, channels: cn, data } = image;
  const rowBytes = width * cn;
  const stride = width + 2;
  for (let y = 0; y < height; y++) {
    const up = Math.max(y - 1, 0) * rowBytes;
    const mid = y * rowBytes;
    const down = Math.min(y + 1, height - 1) * rowBytes;
    const magRow = (y + 1) * stride + 1;
    const gRow = y * width;
    for (let x = 0; x < width; x++) {
      const l = (x > 0 ? x - 1 : 0) * cn;
      const c = x * cn;
      const r = (x < width - 1 ? x + 1 : width - 1) * cn;
      let bestM = -1;
      let bestX = 0;
      let bestY = 0;
      for (let k = 0; k < cn; k++) {
        const ul = data[up + l + k]!;
        const ur = data[up + r + k]!;
        const dl = data[down + l + k]!;
        const dr = data[down + r + k]!;
        const dx = ur - ul + 2 * (data[mid + r + k]! - data[mid + l + k]!) + (dr - dl);
        const dy = dl + 2 * data[down + c + k]! + dr - (ul + 2 * data[up + c + k]! + ur);
        const m = l2 ? dx * dx + dy * dy : Math.abs(dx) + Math.abs(dy);
        // Strictly greater: on a tie the first channel wins, as in canny.cpp.
        if (m > bestM) {
          bestM = m;
          bestX = dx;
          bestY = dy;
        }
      }
      mag[magRow + x] = bestM;
      gx[gRow + x] = bestX;
      gy[gRow + x] = bestY;
    }
  }
}

/**
 * Step 3: marks every pixel of `map` (same padded layout as `mag`, ring already NOT_EDGE) and pushes the
 * edges onto `stack`; returns the stack height.
 */
function suppressNonMaxima(
  width: number,
  height: number,
  low: number,
  high: number,
  mag: Int32Array,
  gx: Int16Array,
  gy: Int16Array,
  map: Uint8Array,
  stack: Int32Array,
): number {
  const stride = width + 2;
  let top = 0;
  for (let y = 0; y < height; y++) {
    const row = (y + 1) * stride + 1;
    const gRow = y * width;
    for (let x = 0; x < width; x++) {
      const p = row + x;
      const m = mag[p]!;
      let state = NOT_EDGE;
      if (m > low) {
        const xs = gx[gRow + x]!;
        const ys = gy[gRow + x]!;
        const ax = Math.abs(xs);
        const ay = Math.abs(ys) << CANNY_SHIFT;
        const tg22x = ax * TG22;
        let isMax: boolean;
        if (ay < tg22x) {
          isMax = m > mag[p - 1]! && m >= mag[p + 1]!; // near-horizontal gradient: left/right
        } else {
          const tg67x = tg22x + (ax << (CANNY_SHIFT + 1));
          if (ay > tg67x) {
            isMax = m > mag[p - stride]! && m >= mag[p + stride]!; // near-vertical: above/below
          } else {
            const s = (xs ^ ys) < 0 ? -1 : 1; // diagonal: which one depends on the signs
            isMax = m > mag[p - stride - s]! && m > mag[p + stride + s]!;
          }
        }
        if (isMax) state = m > high ? EDGE : CANDIDATE;
      }
      map[p] = state;
      if (state === EDGE) stack[top++] = p;
    }
  }
  return top;
}

/** Step 4: grows the edges through 8-connected candidates. Each pixel is pushed at most once. */
function hysteresis(stride: number, map: Uint8Array, stack: Int32Array, stackHeight: number): void {
  let top = stackHeight;
  const push = (q: number) => {
    if (map[q] === CANDIDATE) {
      map[q] = EDGE;
      stack[top++] = q;
    }
  };
  while (top > 0) {
    const p = stack[--top]!;
    push(p - stride - 1);
    push(p - stride);
    push(p - stride + 1);
    push(p - 1);
    push(p + 1);
    push(p + stride - 1);
    push(p + stride);
    push(p + stride + 1);
  }
}

/** OpenCV's `cv2.Canny(image, low, high, L2gradient)`: width × height bytes, 255 on edges, else 0. */
export function cannyEdges(image: CannyImage, options: CannyOptions): Uint8Array {
  checkImage(image);
  const { low, high, l2 } = integerThresholds(options);
  const { width, height } = image;
  const stride = width + 2;
  const padded = stride * (height + 2);
  const pixels = width * height;

  // One allocation for all working arrays (the magnitude ring is zero: OpenCV's NMS reads 0 outside).
  const buffer = new ArrayBuffer(padded * 4 + pixels * 4 + pixels * 2 * 2 + padded);
  let offset = 0;
  const mag = new Int32Array(buffer, offset, padded);
  offset += padded * 4;
  const stack = new Int32Array(buffer, offset, pixels);
  offset += pixels * 4;
  const gx = new Int16Array(buffer, offset, pixels);
  offset += pixels * 2;
  const gy = new Int16Array(buffer, offset, pixels);
  offset += pixels * 2;
  const map = new Uint8Array(buffer, offset, padded).fill(NOT_EDGE);

  gradients(image, l2, mag, gx, gy);
  const edges = suppressNonMaxima(width, height, low, high, mag, gx, gy, map, stack);
  hysteresis(stride, map, stack, edges);

  const out = new Uint8Array(pixels);
  for (let y = 0; y < height; y++) {
    const row = (y + 1) * stride + 1;
    for (let x = 0; x < width; x++) out[y * width + x] = map[row + x] === EDGE ? 255 : 0;
  }
  return out;
}

/** OpenCV's `cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)` on 8-bit RGB: 15-bit fixed-point luma, rounded. */
export function rgbToGray(data: Uint8Array, width: number, height: number): Uint8Array {
  checkSize(width, height);
  if (data.length !== width * height * 3) throw new Error(`expected ${width}×${height}×3 = ${width * height * 3} bytes of RGB, got ${data.length}`);
  const gray = new Uint8Array(width * height);
  const round = 1 << (GRAY_SHIFT - 1);
  for (let i = 0, j = 0; i < gray.length; i++, j += 3) {
    gray[i] = (data[j]! * GRAY_R + data[j + 1]! * GRAY_G + data[j + 2]! * GRAY_B + round) >> GRAY_SHIFT;
  }
  return gray;
}

export interface EdgeMapOptions extends CannyOptions {
  /** Detect on OpenCV's gray luma instead of the colour image (per-pixel strongest channel). */
  grayscale?: boolean;
}

/**
 * The map the canny ControlNet gets: edges of an RGB image replicated to three channels (0 or 255),
 * width × height × 3 bytes.
 */
export function edgeMapRgb(rgb: Uint8Array, width: number, height: number, options: EdgeMapOptions): Uint8Array {
  const source: CannyImage = options.grayscale
    ? { width, height, channels: 1, data: rgbToGray(rgb, width, height) }
    : { width, height, channels: 3, data: rgb };
  const edges = cannyEdges(source, options);
  const map = new Uint8Array(edges.length * 3);
  for (let i = 0, j = 0; i < edges.length; i++, j += 3) {
    const v = edges[i]!;
    map[j] = v;
    map[j + 1] = v;
    map[j + 2] = v;
  }
  return map;
}

/** Non-zero bytes of an edge image (or of a 3-channel map, divided by `channels`). */
export function countEdgePixels(edges: Uint8Array, channels = 1): number {
  let count = 0;
  for (let i = 0; i < edges.length; i += channels) if (edges[i] !== 0) count++;
  return count;
}
