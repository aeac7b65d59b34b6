/**
 * Float images in [0, 1] (NHWC, the pipelines' `output_type="np"`) to 8-bit RGB and PNG files, as the
 * reference's `numpy_to_pil` does: ×255 then round. PNGs are written atomically so an interrupted or
 * cancelled job never leaves a half-written image behind.
 */
import sharp from 'sharp';
import { writeFileAtomic } from '../../files/atomic-write';
import type { RgbImage } from './decode';

/** [H, W, 3] floats in [0, 1] → bytes; values are clamped first, NaN becomes 0. */
export function floatImageToRgb(data: Float32Array, width: number, height: number): RgbImage {
  if (data.length !== width * height * 3) throw new Error(`expected ${width}×${height}×3 values, got ${data.length}`);
  const bytes = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    bytes[i] = Number.isNaN(v) ? 0 : Math.round(Math.min(1, Math.max(0, v)) * 255);
  }
  return { width, height, data: bytes };
}

export async function encodePng(image: RgbImage): Promise<Uint8Array> {
  const png = await sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } })
    .png({ compressionLevel: 6 })
    .toBuffer();
  return new Uint8Array(png.buffer, png.byteOffset, png.byteLength);
}

export async function writePng(path: string, image: RgbImage): Promise<void> {
  writeFileAtomic(path, await encodePng(image));
}
