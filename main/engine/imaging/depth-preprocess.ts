/**
 * The depth estimator's image side, pure (no Node, no DOM): transformers' DPTImageProcessor (4.57.6,
 * models/dpt/image_processing_dpt.py) before the network, and the ControlNet-depth convention after it.
 *
 * Before: RGB → resize to the DPT size (keep_aspect_ratio: the scale closest to 1 of height's and
 * width's; each side rounded to a multiple of ensure_multiple_of with Python's round, i.e. half to
 * even) with PIL (image_transforms.resize converts uint8 images to PIL; pil-resize.ts is Pillow exact)
 * → ×rescale_factor in float64, cast to float32 → (x − mean)/std in float32 → [1, 3, h, w].
 *
 * After (transformers' depth-estimation pipeline, whose `depth` image the ControlNet depth examples
 * feed, replicated to 3 channels): predicted_depth resized to the image size with
 * F.interpolate(mode='bicubic', align_corners=False) (post_process_depth_estimation), then
 *     depth = (d − d.min()) / (d.max() − d.min());  (depth · 255).astype('uint8')
 * in float32, truncating. A constant depth (max = min) divides 0 by 0 in the reference (NaN, whose
 * uint8 cast is undefined): here it gives an all-zero map.
 */
import type { RgbImage } from './decode';
import { pilResize, type PilFilter } from './pil-resize';
import { bicubicTaps } from '../nets/resize-matrices';

/** PIL's resample constants (Image.NEAREST = 0, LANCZOS = 1, BILINEAR = 2, BICUBIC = 3). */
const PIL_RESAMPLE: Readonly<Record<number, PilFilter>> = { 0: 'nearest', 1: 'lanczos', 2: 'bilinear', 3: 'bicubic' };
/** DPTImageProcessor's defaults (IMAGENET_STANDARD_MEAN/STD) when the config gives no statistics. */
const IMAGENET_STANDARD = [0.5, 0.5, 0.5] as const;
const WHERE = 'preprocessor_config.json';
const LEVELS = 255;

export interface DptProcessorConfig {
  doResize: boolean;
  /** The target the resize starts from (`size`). */
  height: number;
  width: number;
  keepAspectRatio: boolean;
  ensureMultipleOf: number;
  filter: PilFilter;
  doRescale: boolean;
  rescaleFactor: number;
  doNormalize: boolean;
  mean: readonly [number, number, number];
  std: readonly [number, number, number];
}

export class DepthProcessorConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DepthProcessorConfigError';
  }
}

function invalid(key: string, expected: string, got: unknown): DepthProcessorConfigError {
  return new DepthProcessorConfigError(`${WHERE}: ${key} must be ${expected} (got ${JSON.stringify(got)})`);
}

/** Reads a DPTImageProcessor config (already parsed JSON) with the processor's defaults for missing or null keys. */
export function parseDptProcessorConfig(json: unknown): DptProcessorConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new DepthProcessorConfigError(`${WHERE} must be a JSON object`);
  const o = json as Record<string, unknown>;
  const get = (key: string, fallback: unknown): unknown => (o[key] === undefined || o[key] === null ? fallback : o[key]);
  const bool = (key: string, fallback: boolean): boolean => {
    const value = get(key, fallback);
    if (typeof value !== 'boolean') throw invalid(key, 'true or false', value);
    return value;
  };
  const positiveInt = (value: unknown, key: string): number => {
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) throw invalid(key, 'a positive integer', value);
    return value;
  };
  const triple = (key: string): readonly [number, number, number] => {
    const value = get(key, IMAGENET_STANDARD);
    const list = typeof value === 'number' ? [value, value, value] : value;
    if (!Array.isArray(list) || list.length !== 3 || !list.every((v) => typeof v === 'number' && Number.isFinite(v))) throw invalid(key, 'a number or three numbers', value);
    return [list[0], list[1], list[2]];
  };

  const type = get('image_processor_type', 'DPTImageProcessor');
  if (type !== 'DPTImageProcessor') throw invalid('image_processor_type', '"DPTImageProcessor"', type);
  const size = get('size', { height: 384, width: 384 });
  // get_size_dict: an int means a square.
  const sized = typeof size === 'number' ? { height: size, width: size } : size;
  if (typeof sized !== 'object' || sized === null || !('height' in sized) || !('width' in sized)) throw invalid('size', 'an object with "height" and "width" (or one integer)', size);
  const resample = get('resample', 3);
  const filter = typeof resample === 'number' ? PIL_RESAMPLE[resample] : undefined;
  if (!filter) throw invalid('resample', 'a PIL filter 0, 1, 2 or 3', resample);
  const rescaleFactor = get('rescale_factor', 1 / 255);
  if (typeof rescaleFactor !== 'number' || !(rescaleFactor > 0) || !Number.isFinite(rescaleFactor)) throw invalid('rescale_factor', 'a positive number', rescaleFactor);
  if (bool('do_pad', false)) throw invalid('do_pad', 'false (padding to size_divisor is not supported)', true);
  const std = triple('image_std');
  if (std.some((s) => s === 0)) throw invalid('image_std', 'non-zero', std);
  return {
    doResize: bool('do_resize', true),
    height: positiveInt((sized as { height: unknown }).height, 'size.height'),
    width: positiveInt((sized as { width: unknown }).width, 'size.width'),
    keepAspectRatio: bool('keep_aspect_ratio', false),
    ensureMultipleOf: positiveInt(get('ensure_multiple_of', 1), 'ensure_multiple_of'),
    filter,
    doRescale: bool('do_rescale', true),
    rescaleFactor,
    doNormalize: bool('do_normalize', true),
    mean: triple('image_mean'),
    std,
  };
}

/** Python's round() on a float: to nearest, ties to even. */
export function roundHalfToEven(x: number): number {
  const floor = Math.floor(x);
  const diff = x - floor;
  if (diff > 0.5) return floor + 1;
  if (diff < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

/**
 * get_resize_output_image_size: the scale of each side (target / input), with keep_aspect_ratio the one
 * closer to 1 for both ("scale as little as possible": the short side goes to the target when shrinking,
 * the long side when enlarging), then constrain_to_multiple_of (round, no min/max here).
 */
export function dptResizeSize(image: { height: number; width: number }, config: Pick<DptProcessorConfig, 'height' | 'width' | 'keepAspectRatio' | 'ensureMultipleOf'>): { height: number; width: number } {
  let scaleHeight = config.height / image.height;
  let scaleWidth = config.width / image.width;
  if (config.keepAspectRatio) {
    if (Math.abs(1 - scaleWidth) < Math.abs(1 - scaleHeight)) scaleHeight = scaleWidth;
    else scaleWidth = scaleHeight;
  }
  const multiple = config.ensureMultipleOf;
  const constrain = (value: number) => roundHalfToEven(value / multiple) * multiple;
  const size = { height: constrain(scaleHeight * image.height), width: constrain(scaleWidth * image.width) };
  if (size.height < 1 || size.width < 1) {
    throw new Error(`a ${image.width}×${image.height} image resizes to ${size.width}×${size.height} with the depth processor's settings (size ${config.width}×${config.height}, multiple of ${multiple}): it is too thin`);
  }
  return size;
}

export interface DepthPixels {
  dims: [1, 3, number, number];
  data: Float32Array;
}

/** DPTImageProcessor.preprocess on one RGB image: pixel_values [1, 3, h, w] float32. */
export function preprocessDepthImage(image: RgbImage, config: DptProcessorConfig): DepthPixels {
  const size = config.doResize ? dptResizeSize(image, config) : { height: image.height, width: image.width };
  const resized = size.height === image.height && size.width === image.width ? image : pilResize(image, size.width, size.height, config.filter);
  const plane = resized.width * resized.height;
  const out = new Float32Array(3 * plane);
  for (let c = 0; c < 3; c++) {
    const mean = Math.fround(config.mean[c]!);
    const std = Math.fround(config.std[c]!);
    for (let i = 0; i < plane; i++) {
      // rescale: float64 product, stored as float32; normalize: float32 arithmetic (numpy with float32 arrays).
      const byte = resized.data[i * 3 + c]!;
      const scaled = config.doRescale ? Math.fround(byte * config.rescaleFactor) : byte;
      out[c * plane + i] = config.doNormalize ? Math.fround(Math.fround(scaled - mean) / std) : scaled;
    }
  }
  return { dims: [1, 3, resized.height, resized.width], data: out };
}

/**
 * F.interpolate(depth[None, None], size=(height, width), mode='bicubic', align_corners=False) of one
 * [inHeight, inWidth] map: separable (ATen's order: each source row along the width, then along the
 * height), in float64, rounded to float32 at the end.
 */
export function resizeDepthBicubic(depth: Float32Array, inHeight: number, inWidth: number, height: number, width: number): Float32Array {
  if (depth.length !== inHeight * inWidth) throw new Error(`expected ${inHeight}×${inWidth} depth values, got ${depth.length}`);
  const cols = bicubicTaps(inWidth, width);
  const rows = bicubicTaps(inHeight, height);
  const wide = new Float64Array(inHeight * width);
  for (let y = 0; y < inHeight; y++) {
    for (let x = 0; x < width; x++) {
      let sum = 0;
      for (let k = 0; k < 4; k++) sum += cols.weights[x * 4 + k]! * depth[y * inWidth + cols.indices[x * 4 + k]!]!;
      wide[y * width + x] = sum;
    }
  }
  const out = new Float32Array(height * width);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let sum = 0;
      for (let k = 0; k < 4; k++) sum += rows.weights[y * 4 + k]! * wide[rows.indices[y * 4 + k]! * width + x]!;
      out[y * width + x] = sum;
    }
  }
  return out;
}

/** The pipeline's min-max map: ((d − min) / (max − min) · 255).astype('uint8'), float32 steps, truncation. */
export function depthToUint8(depth: Float32Array): Uint8Array {
  let min = Infinity;
  let max = -Infinity;
  for (const v of depth) {
    if (Number.isNaN(v)) throw new Error('the depth map holds NaN');
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const out = new Uint8Array(depth.length);
  const range = Math.fround(max - min);
  if (!(range > 0)) return out;
  for (let i = 0; i < depth.length; i++) {
    const unit = Math.fround(Math.fround(depth[i]! - min) / range);
    out[i] = Math.trunc(Math.fround(unit * LEVELS));
  }
  return out;
}

/** A one-channel map as the RGB image the ControlNet takes (the channel replicated three times). */
export function grayToRgb(map: { width: number; height: number; data: Uint8Array }): RgbImage {
  if (map.data.length !== map.width * map.height) throw new Error(`expected ${map.width}×${map.height} values, got ${map.data.length}`);
  const data = new Uint8Array(map.data.length * 3);
  for (let i = 0; i < map.data.length; i++) data.fill(map.data[i]!, i * 3, i * 3 + 3);
  return { width: map.width, height: map.height, data };
}
