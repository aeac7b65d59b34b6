/**
 * The fine-tune's target images, as LAVIS's BlipDiffusionTargetImageProcessor makes them (torchvision
 * on a PIL image): Resize(R, BICUBIC) of the shortest side, CenterCrop(R), ToTensor, Normalize(0.5, 0.5),
 * i.e. x = uint8 / 127.5 − 1 in float32, channels first [B, 3, R, R] (fine-tune kit README, step 1).
 * The resampling is Pillow's own, bit for bit (pil-resize.ts); decoding is sharp's (decode.ts).
 */
import { decodeRgb, type DecodeOptions, type RgbImage } from './decode';
import { pilResize, type PilFilter } from './pil-resize';

/** ToTensor's /255 then Normalize's (x − 0.5)/0.5, which in float32 equals x/127.5 − 1 for every byte. */
const HALF_RANGE = 127.5;
const CHANNELS = 3;

export interface TrainingPixels {
  /** [B, 3, R, R] */
  dims: [number, 3, number, number];
  /** In [−1, 1]. */
  data: Float32Array;
}

/**
 * torchvision's Resize(size) for an int size: the shortest side becomes `size`, the other
 * int(size · long / short) (truncated, as Python's int()), resampled with `filter`.
 */
export function resizeShortestSide(image: RgbImage, size: number, filter: PilFilter = 'bicubic'): RgbImage {
  checkSize(size);
  const portrait = image.width <= image.height;
  const [short, long] = portrait ? [image.width, image.height] : [image.height, image.width];
  const newLong = Math.trunc((size * long) / short);
  return portrait ? pilResize(image, size, newLong, filter) : pilResize(image, newLong, size, filter);
}

/** torchvision's CenterCrop on a PIL image at least `size` on both sides: offsets int(round((side − size) / 2)), halves to even. */
export function centreCrop(image: RgbImage, size: number): RgbImage {
  checkSize(size);
  if (image.width < size || image.height < size) throw new RangeError(`cannot centre-crop a ${image.width}×${image.height} image to ${size}×${size}`);
  const top = pythonRoundHalf((image.height - size) / 2);
  const left = pythonRoundHalf((image.width - size) / 2);
  const out = new Uint8Array(size * size * CHANNELS);
  for (let y = 0; y < size; y++) {
    const from = ((top + y) * image.width + left) * CHANNELS;
    out.set(image.data.subarray(from, from + size * CHANNELS), y * size * CHANNELS);
  }
  return { width: size, height: size, data: out };
}

/** Resize (shortest side) then centre crop: a `size`×`size` photo. */
export function squareTrainingPhoto(image: RgbImage, size: number, filter: PilFilter = 'bicubic'): RgbImage {
  return centreCrop(resizeShortestSide(image, size, filter), size);
}

/** Same-sized square RGB images → [B, 3, R, R] floats x = uint8 / 127.5 − 1. */
export function trainingPixels(images: readonly RgbImage[]): TrainingPixels {
  const first = images[0];
  if (!first) throw new RangeError('trainingPixels: no images');
  const size = first.width;
  const plane = size * size;
  const data = new Float32Array(images.length * CHANNELS * plane);
  images.forEach((image, n) => {
    if (image.width !== size || image.height !== size) throw new RangeError(`trainingPixels: image ${n} is ${image.width}×${image.height}, expected ${size}×${size}`);
    for (let c = 0; c < CHANNELS; c++) {
      const offset = (n * CHANNELS + c) * plane;
      for (let i = 0; i < plane; i++) data[offset + i] = Math.fround(Math.fround(image.data[i * CHANNELS + c]! / HALF_RANGE) - 1);
    }
  });
  return { dims: [images.length, CHANNELS, size, size], data };
}

/** Decodes each photo (alpha dropped, as PIL's convert("RGB")), squares it to `resolution` and stacks the batch. */
export async function preprocessTrainingPhotos(inputs: readonly (string | Uint8Array)[], resolution: number, options: DecodeOptions = {}): Promise<TrainingPixels> {
  checkSize(resolution);
  const images = await Promise.all(inputs.map(async (input) => squareTrainingPhoto(await decodeRgb(input, options), resolution)));
  return trainingPixels(images);
}

/** Python's round() of a multiple of ½: exact halves go to the even neighbour. */
function pythonRoundHalf(x: number): number {
  const floor = Math.floor(x);
  if (x - floor !== 0.5) return Math.round(x);
  return floor % 2 === 0 ? floor : floor + 1;
}

function checkSize(size: number): void {
  if (!Number.isSafeInteger(size) || size < 1) throw new RangeError(`the training resolution must be a positive integer, got ${size}`);
}
