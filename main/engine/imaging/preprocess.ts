/**
 * The reference pipeline's image preprocessing (diffusers' BlipImageProcessor, see the parity kit's
 * README items 7-8), with sizes and statistics from the model's `image_processor` config:
 * reference image → RGB → resize → ×rescale → normalise (mean/std) → channels-first [1, 3, H, W];
 * control image → RGB → resize to the output size → ×rescale, no normalisation.
 */
import { decodeRgb, type DecodeOptions, type RgbImage } from './decode';
import { pilResize, type PilFilter } from './pil-resize';

/** PIL's resample constants (Image.NEAREST = 0, LANCZOS = 1, BILINEAR = 2, BICUBIC = 3). */
const PIL_RESAMPLE: Readonly<Record<number, PilFilter>> = { 0: 'nearest', 1: 'lanczos', 2: 'bilinear', 3: 'bicubic' };

export interface ImageProcessorConfig {
  height: number;
  width: number;
  filter: PilFilter;
  rescaleFactor: number;
  mean: readonly [number, number, number];
  std: readonly [number, number, number];
}

/** OpenAI CLIP statistics: BlipImageProcessor's defaults when the config gives none. */
const CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073] as const;
const CLIP_STD = [0.26862954, 0.26130258, 0.27577711] as const;

function triple(value: unknown, key: string, fallback: readonly [number, number, number]): readonly [number, number, number] {
  if (value === undefined || value === null) return fallback;
  if (Array.isArray(value) && value.length === 3 && value.every((v) => typeof v === 'number' && Number.isFinite(v))) return [value[0], value[1], value[2]];
  throw new Error(`image_processor config: '${key}' must be three numbers`);
}

/** Reads `image_processor/preprocessor_config.json` (already parsed), with the processor's defaults. */
export function parseImageProcessorConfig(json: Record<string, unknown>): ImageProcessorConfig {
  const size = (json.size ?? { height: 384, width: 384 }) as { height?: unknown; width?: unknown };
  const height = size.height;
  const width = size.width;
  if (!Number.isInteger(height) || !Number.isInteger(width) || (height as number) <= 0 || (width as number) <= 0) {
    throw new Error("image_processor config: 'size' needs positive integer 'height' and 'width'");
  }
  const resample = json.resample ?? 3;
  const filter = typeof resample === 'number' ? PIL_RESAMPLE[resample] : undefined;
  if (!filter) throw new Error(`image_processor config: resample filter ${String(resample)} is not supported (use 0, 1, 2 or 3)`);
  const rescaleFactor = json.rescale_factor ?? 1 / 255;
  if (typeof rescaleFactor !== 'number' || !(rescaleFactor > 0)) throw new Error("image_processor config: 'rescale_factor' must be a positive number");
  return {
    height: height as number,
    width: width as number,
    filter,
    rescaleFactor,
    mean: triple(json.image_mean, 'image_mean', CLIP_MEAN),
    std: triple(json.image_std, 'image_std', CLIP_STD),
  };
}

export interface PixelTensor {
  dims: [1, 3, number, number];
  data: Float32Array;
}

/** Interleaved RGB bytes → channels-first floats: (byte × rescale − mean) / std per channel. */
export function toChannelsFirst(image: RgbImage, rescale: number, mean: readonly number[], std: readonly number[]): PixelTensor {
  const plane = image.width * image.height;
  const out = new Float32Array(3 * plane);
  for (let c = 0; c < 3; c++) {
    // The reference rescales in float64, then normalises in float32: round once after rescaling.
    const m = Math.fround(mean[c]!);
    const s = Math.fround(std[c]!);
    for (let i = 0; i < plane; i++) {
      const scaled = Math.fround(image.data[i * 3 + c]! * rescale);
      out[c * plane + i] = Math.fround(Math.fround(scaled - m) / s);
    }
  }
  return { dims: [1, 3, image.height, image.width], data: out };
}

/** The subject photo as the vision tower's `pixel_values`. */
export async function preprocessReferenceImage(input: string | Uint8Array, config: ImageProcessorConfig, options: DecodeOptions = {}): Promise<PixelTensor> {
  const rgb = await decodeRgb(input, options);
  return toChannelsFirst(pilResize(rgb, config.width, config.height, config.filter), config.rescaleFactor, config.mean, config.std);
}

/** A ControlNet conditioning image at the output size, in [0, 1], not normalised. */
export async function preprocessControlImage(
  input: string | Uint8Array,
  size: { height: number; width: number },
  config: Pick<ImageProcessorConfig, 'filter' | 'rescaleFactor'>,
  options: DecodeOptions = {},
): Promise<PixelTensor> {
  const rgb = await decodeRgb(input, options);
  return toChannelsFirst(pilResize(rgb, size.width, size.height, config.filter), config.rescaleFactor, [0, 0, 0], [1, 1, 1]);
}
