/**
 * A picture fitted to an output size the way photo editors crop: scaled (PIL bicubic) until it covers
 * width × height, then centre-cropped, so nothing is stretched. The Edit view and the `edit` CLI fit the
 * photo (and a mask of the photo's size) this way; the control maps follow the reference's stretch instead.
 */
import type { RgbImage } from './decode';
import { pilResize } from './pil-resize';

/** The scaled size before the crop (each side at least the target, aspect kept). */
export function coverSize(source: { width: number; height: number }, width: number, height: number): { width: number; height: number } {
  const scale = Math.max(width / source.width, height / source.height);
  return { width: Math.max(width, Math.round(source.width * scale)), height: Math.max(height, Math.round(source.height * scale)) };
}

export function coverFit(source: RgbImage, width: number, height: number): RgbImage {
  if (source.width === width && source.height === height) return source;
  const scaled = coverSize(source, width, height);
  const resized = scaled.width === source.width && scaled.height === source.height ? source : pilResize(source, scaled.width, scaled.height, 'bicubic');
  const left = Math.floor((resized.width - width) / 2);
  const top = Math.floor((resized.height - height) / 2);
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) data.set(resized.data.subarray(((top + y) * resized.width + left) * 3, ((top + y) * resized.width + left + width) * 3), y * width * 3);
  return { width, height, data };
}
