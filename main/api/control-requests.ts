/**
 * The control panel's requests: store a source picture (a picked or dropped file, a gallery result),
 * make the map the ControlNet gets from it (engine/pipelines/control-map.ts), store a drawn map. Every
 * image is content-addressed in the data folder (library/control-images.ts): the renderer only ever
 * sees hashes and data-folder-relative paths, never a file path it did not pick.
 */
import { performance } from 'node:perf_hooks';
import type { ControlImage, ControlMap, ControlMapRequest, ControlSourceRequest, DrawnControlMap } from './contract';
import { CONTROL_DEFAULTS } from './contract';
import { StudioError } from './studio-error';
import { decodeRgb, type RgbImage } from '../engine/imaging/decode';
import { controlMapOfFitted, controlSourceStretched, fitControlSource, type DepthEstimator } from '../engine/pipelines/control-map';
import { readStoredControlImage, storeControlImage } from '../library/control-images';
import type { GenerationsStore } from '../gallery/generations-store';

/** Control sources larger than this are refused (a map is made at the output size, at most 2048²). */
export const MAX_CONTROL_SOURCE_PIXELS = 40_000_000;

export interface ControlEnvironment {
  dataDir: string;
  gallery: GenerationsStore;
  /** The last source fitted to an output size: moving a slider makes only the map again. */
  fittedSources: FittedSourceCache;
  /** Depth estimation (the depth model's pipeline), or null when no depth model is installed. */
  estimateDepth: DepthEstimator | null;
}

async function decodeForControl(input: Uint8Array | string, what: string): Promise<RgbImage> {
  let image: RgbImage;
  try {
    image = await decodeRgb(input, { honourExifOrientation: true });
  } catch (error) {
    throw new StudioError('invalid-request', `${what} cannot be read as an image: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (image.width * image.height > MAX_CONTROL_SOURCE_PIXELS) {
    throw new StudioError('invalid-request', `${what} is ${image.width}×${image.height}, more than ${MAX_CONTROL_SOURCE_PIXELS / 1e6} megapixels: scale it down first.`);
  }
  if (Math.min(image.width, image.height) < 8) throw new StudioError('invalid-request', `${what} is only ${image.width}×${image.height} pixels: a control image needs at least 8 on each side.`);
  return image;
}

function pngDataUrl(png: Uint8Array): string {
  return `data:image/png;base64,${Buffer.from(png.buffer, png.byteOffset, png.byteLength).toString('base64')}`;
}

function asControlImage(stored: { sha256: string; path: string; width: number; height: number }): ControlImage {
  return { id: stored.sha256, path: stored.path, width: stored.width, height: stored.height };
}

export async function addControlSource(env: ControlEnvironment, request: ControlSourceRequest): Promise<ControlImage> {
  let image: RgbImage;
  if ('storedId' in request) {
    image = await readControlImage(env.dataDir, request.storedId, 'control image');
  } else if ('generationId' in request) {
    const record = env.gallery.get(request.generationId);
    if (!record) throw new StudioError('not-found', `No gallery result with id ${request.generationId}: it may have been deleted.`);
    image = await decodeForControl(env.gallery.absolutePath(record.imagePath), 'The gallery result');
  } else {
    const buffer = Buffer.from(request.dataBase64, 'base64');
    image = await decodeForControl(new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength), request.name);
  }
  return asControlImage(await storeControlImage(env.dataDir, image));
}

/** A stored control image by hash, decoded; a missing one is a named error. */
export async function readControlImage(dataDir: string, id: string, what: string): Promise<RgbImage> {
  const stored = readStoredControlImage(dataDir, id);
  if (stored === null) throw new StudioError('not-found', `The ${what} (sha256 ${id.slice(0, 12)}…) is not in the library: add the picture again.`);
  return decodeRgb(stored.bytes);
}

/**
 * The last source fitted to an output size, kept for the live preview: each slider move makes the map
 * from it instead of reading, checking, decoding and resizing the stored picture again. One entry: the
 * panel works on one source at a time, and a fitted source is at most 2048² pixels.
 */
export class FittedSourceCache {
  #key: string | null = null;
  #entry: { fitted: RgbImage; stretched: boolean } | null = null;

  async get(dataDir: string, sourceId: string, width: number, height: number): Promise<{ fitted: RgbImage; stretched: boolean }> {
    const key = `${sourceId}:${width}x${height}`;
    if (this.#key === key && this.#entry !== null) return this.#entry;
    const source = await readControlImage(dataDir, sourceId, 'control source');
    const entry = { fitted: fitControlSource(source, width, height), stretched: controlSourceStretched(source, width, height) };
    this.#key = key;
    this.#entry = entry;
    return entry;
  }
}

export async function makeControlMap(env: ControlEnvironment, request: ControlMapRequest): Promise<ControlMap> {
  const started = performance.now();
  const { fitted, stretched } = await env.fittedSources.get(env.dataDir, request.sourceId, request.width, request.height);
  if (request.mode === 'depth' && !env.estimateDepth) throw new StudioError('unavailable', 'A depth map needs the Depth Anything V2 model: download it in Models & Settings.');
  const settings = { mode: request.mode, low: request.low ?? CONTROL_DEFAULTS.low, high: request.high ?? CONTROL_DEFAULTS.high, l2: request.l2 ?? false };
  const { map, edgePixels } = await controlMapOfFitted(fitted, settings, env.estimateDepth ?? undefined);
  const stored = await storeControlImage(env.dataDir, map);
  return { ...asControlImage(stored), dataUrl: pngDataUrl(stored.png), mode: request.mode, edgePixels, stretched, ms: performance.now() - started };
}

export async function saveDrawnControlMap(env: ControlEnvironment, drawn: DrawnControlMap): Promise<ControlMap> {
  const started = performance.now();
  const buffer = Buffer.from(drawn.dataBase64, 'base64');
  const image = await decodeForControl(new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength), 'The drawn map');
  if (image.width !== drawn.width || image.height !== drawn.height) {
    throw new StudioError('invalid-request', `The drawn map is ${image.width}×${image.height}, not the ${drawn.width}×${drawn.height} it was said to be.`);
  }
  const stored = await storeControlImage(env.dataDir, image);
  return { ...asControlImage(stored), dataUrl: pngDataUrl(stored.png), mode: 'image', edgePixels: null, stretched: false, ms: performance.now() - started };
}
