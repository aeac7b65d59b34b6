/**
 * The map a ControlNet gets, made from a source picture. The source is first fitted to the output size
 * the way the reference resizes a control image (BlipDiffusionControlNetPipeline.prepare_control_image:
 * stretched to width × height, PIL bicubic), and the map is then computed at that size, so the map
 * shown to the user is exactly what the network gets (the pipeline's own resize of it is the identity).
 * Modes: OpenCV's Canny edges on the RGB image (the canny ControlNet's convention), a depth estimate
 * (min-max 0..255), or the picture as it is (an edge or depth map the user already has).
 */
import type { RgbImage } from '../imaging/decode';
import { pilResize } from '../imaging/pil-resize';
import { countEdgePixels, edgeMapRgb, type EdgeMapOptions } from '../imaging/canny';

/** The source stretched to the output size (PIL bicubic, as the reference's control-image resize). */
export function fitControlSource(source: RgbImage, width: number, height: number): RgbImage {
  if (source.width === width && source.height === height) return source;
  return pilResize(source, width, height, 'bicubic');
}

/** Whether fitting visibly stretches the source: its aspect ratio differs from the output's by more than 1 %. */
export function controlSourceStretched(source: Pick<RgbImage, 'width' | 'height'>, width: number, height: number): boolean {
  return Math.abs(source.width / source.height / (width / height) - 1) > 0.01;
}

/** Canny edges of the fitted source as a 3-channel 0/255 map, with its edge-pixel count. */
export function cannyControlMap(fitted: RgbImage, options: EdgeMapOptions): { map: RgbImage; edgePixels: number } {
  const data = edgeMapRgb(fitted.data, fitted.width, fitted.height, options);
  return { map: { width: fitted.width, height: fitted.height, data }, edgePixels: countEdgePixels(data, 3) };
}

/** How a map is made from its source. */
export interface ControlMapSettings {
  mode: 'canny' | 'depth' | 'image';
  /** Canny thresholds (default 30/70: the reference's examples) and OpenCV's L2 gradient. */
  low?: number;
  high?: number;
  l2?: boolean;
}

export const CANNY_CONTROL_DEFAULTS = Object.freeze({ low: 30, high: 70 });

/** A depth estimator for a fitted source (the depth model's pipeline), one channel 0..255 at its size. */
export type DepthEstimator = (fitted: RgbImage) => Promise<{ width: number; height: number; data: Uint8Array }>;

/**
 * The map the ControlNet gets for `source` at the output size, the one code path of the app's panel and
 * the CLI: fitted first, then Canny / depth / as is. `estimateDepth` is needed for the depth mode only.
 */
export async function makeControlMapImage(
  source: RgbImage,
  size: { width: number; height: number },
  settings: ControlMapSettings,
  estimateDepth?: DepthEstimator,
): Promise<{ map: RgbImage; edgePixels: number | null; stretched: boolean }> {
  const fitted = fitControlSource(source, size.width, size.height);
  return { ...(await controlMapOfFitted(fitted, settings, estimateDepth)), stretched: controlSourceStretched(source, size.width, size.height) };
}

/** The map of a source already fitted to the output size (the panel keeps the fitted source while sliders move). */
export async function controlMapOfFitted(fitted: RgbImage, settings: ControlMapSettings, estimateDepth?: DepthEstimator): Promise<{ map: RgbImage; edgePixels: number | null }> {
  if (settings.mode === 'canny') {
    return cannyControlMap(fitted, { low: settings.low ?? CANNY_CONTROL_DEFAULTS.low, high: settings.high ?? CANNY_CONTROL_DEFAULTS.high, l2Gradient: settings.l2 ?? false });
  }
  if (settings.mode === 'depth') {
    if (!estimateDepth) throw new Error('a depth map needs a depth model (Depth Anything V2)');
    return { map: grayToRgbMap(await estimateDepth(fitted)), edgePixels: null };
  }
  return { map: fitted, edgePixels: null };
}

/** A one-channel map (e.g. depth 0..255) as the three channels the ControlNet takes. */
export function grayToRgbMap(gray: { width: number; height: number; data: Uint8Array }): RgbImage {
  const data = new Uint8Array(gray.data.length * 3);
  for (let i = 0, j = 0; i < gray.data.length; i++, j += 3) {
    const v = gray.data[i]!;
    data[j] = v;
    data[j + 1] = v;
    data[j + 2] = v;
  }
  return { width: gray.width, height: gray.height, data };
}
