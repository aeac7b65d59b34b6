/**
 * Pixel-exact comparison of two 8-bit images: how `reproduce` proves a recipe gave the same picture,
 * or says by how much it did not.
 */
/** Where two 8-bit images differ, if they do. */
export interface PixelComparison {
  identical: boolean;
  sameSize: boolean;
  /** Largest channel difference, 0-255 (null when the sizes differ). */
  maxDifference: number | null;
  /** Pixels with any channel different (null when the sizes differ). */
  differingPixels: number | null;
}

export function comparePixels(
  a: { width: number; height: number; data: Uint8Array },
  b: { width: number; height: number; data: Uint8Array },
): PixelComparison {
  if (a.width !== b.width || a.height !== b.height || a.data.length !== b.data.length) {
    return { identical: false, sameSize: false, maxDifference: null, differingPixels: null };
  }
  const channels = a.data.length / (a.width * a.height);
  let maxDifference = 0;
  let differingPixels = 0;
  for (let pixel = 0; pixel < a.width * a.height; pixel++) {
    let differs = false;
    for (let c = 0; c < channels; c++) {
      const difference = Math.abs(a.data[pixel * channels + c]! - b.data[pixel * channels + c]!);
      if (difference > 0) differs = true;
      if (difference > maxDifference) maxDifference = difference;
    }
    if (differs) differingPixels++;
  }
  return { identical: differingPixels === 0, sameSize: true, maxDifference, differingPixels };
}
