/**
 * Decoding user images with sharp into plain RGB bytes. Alpha is DROPPED, not composited (PIL's
 * `convert("RGB")`, which the reference uses), and this happens before any resampling so that
 * libvips never premultiplies colours by a transparent alpha.
 */
import sharp from 'sharp';

/** Refuse decompression bombs: 50 megapixels is far beyond any photo the pipelines need. */
export const MAX_INPUT_PIXELS = 50_000_000;

export interface RgbImage {
  width: number;
  height: number;
  /** Interleaved RGB, row-major, 3 bytes per pixel. */
  data: Uint8Array;
}

export interface DecodeOptions {
  /** Apply the EXIF orientation (photos from cameras). The reference does not, so parity paths keep it off. */
  honourExifOrientation?: boolean;
}

export async function decodeRgb(input: string | Uint8Array, options: DecodeOptions = {}): Promise<RgbImage> {
  const name = typeof input === 'string' ? input : 'the image';
  try {
    let pipeline = sharp(input, { limitInputPixels: MAX_INPUT_PIXELS, failOn: 'error' });
    if (options.honourExifOrientation) pipeline = pipeline.rotate();
    const { data, info } = await pipeline.removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`expected 3 colour channels after conversion, got ${info.channels}`);
    return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    const hint = /pixel limit/i.test(reason) ? ` (images above ${MAX_INPUT_PIXELS / 1e6} megapixels are refused)` : '';
    throw new Error(`Could not read ${name} as an image: ${reason}${hint}`, { cause: error });
  }
}
