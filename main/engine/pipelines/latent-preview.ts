/**
 * A cheap live preview of the latents while a generation runs: each latent pixel's 4 channels mapped
 * to RGB by a fixed linear projection (no VAE), then upscaled by the viewer. The factors are the
 * widely used approximation for Stable Diffusion 1.x latents (the VAE BLIP-Diffusion uses); they only
 * need to look right, not be exact. Pure.
 */

/** latent channel → RGB contribution, for SD 1.x latents (4 channels). */
const SD1_LATENT_RGB: readonly (readonly [number, number, number])[] = [
  [0.3512, 0.2297, 0.3227],
  [0.325, 0.4974, 0.235],
  [-0.2829, 0.1762, 0.2721],
  [-0.212, -0.2616, -0.7177],
];

export interface PreviewImage {
  width: number;
  height: number;
  /** Interleaved RGB bytes. */
  data: Uint8Array;
}

/** Latents [1, C, h, w] → an h × w RGB preview; null when the latent space is not the 4-channel SD one. */
export function latentPreview(latents: Float32Array, channels: number, height: number, width: number): PreviewImage | null {
  if (channels !== SD1_LATENT_RGB.length) return null;
  const plane = height * width;
  const data = new Uint8Array(plane * 3);
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) {
      let v = 0;
      for (let k = 0; k < channels; k++) v += latents[k * plane + i]! * SD1_LATENT_RGB[k]![c]!;
      // The projection lands roughly in [-1, 1].
      data[i * 3 + c] = Math.round(Math.min(1, Math.max(0, (v + 1) / 2)) * 255);
    }
  }
  return { width, height, data };
}
