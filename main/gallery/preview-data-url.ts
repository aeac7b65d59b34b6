/**
 * A live generation preview as the UI shows it: the latent preview (one pixel per latent, e.g. 8×8)
 * upscaled with nearest neighbour to about 128 px, so it stays crisp blocks instead of a blur, as a
 * small `data:image/png` URL that fits in a job event.
 */
import sharp from 'sharp';
import type { PreviewImage } from '../engine/pipelines/latent-preview';

export const PREVIEW_TARGET_PX = 128;

export async function previewDataUrl(preview: PreviewImage, targetPx = PREVIEW_TARGET_PX): Promise<string> {
  const scale = Math.max(1, Math.round(targetPx / Math.max(preview.width, preview.height)));
  const png = await sharp(preview.data, { raw: { width: preview.width, height: preview.height, channels: 3 } })
    .resize({ width: preview.width * scale, height: preview.height * scale, kernel: 'nearest' })
    .png({ compressionLevel: 6 })
    .toBuffer();
  return `data:image/png;base64,${png.toString('base64')}`;
}
