/**
 * Control images in the data folder: the photos a user picks as a control source and the maps made
 * from them (edges, depth, drawn), content-addressed as PNG at `control/<sha[0:2]>/<sha>.png`. A
 * recipe names its map by that hash, so a reproduction finds the very pixels the ControlNet got.
 * Files are small and shared by every generation that used them; nothing here is ever rewritten.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import sharp from 'sharp';
import type { RgbImage } from '../engine/imaging/decode';
import { absoluteDataPath, storeContentFile } from './photo-files';

export const CONTROL_FOLDER = 'control';

const SHA256_HEX = /^[0-9a-f]{64}$/;

/** Data-folder-relative, '/'-separated (the UI's file routes take it). */
export function controlFilePath(sha256: string): string {
  if (!SHA256_HEX.test(sha256)) throw new Error(`not a SHA-256: ${sha256.slice(0, 80)}`);
  return `${CONTROL_FOLDER}/${sha256.slice(0, 2)}/${sha256}.png`;
}

export interface StoredControlImage {
  sha256: string;
  /** Data-folder-relative path. */
  path: string;
  width: number;
  height: number;
  /** The PNG's bytes. */
  png: Uint8Array;
}

/** Encodes an RGB image as PNG and stores it under its content hash (once: the same pixels share a file). */
export async function storeControlImage(dataDir: string, image: RgbImage): Promise<StoredControlImage> {
  const png = await sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } }).png({ compressionLevel: 6 }).toBuffer();
  const sha256 = createHash('sha256').update(png).digest('hex');
  const path = controlFilePath(sha256);
  storeContentFile(dataDir, path, png);
  return { sha256, path, width: image.width, height: image.height, png };
}

/** The bytes of the stored control image with this hash (read once, content checked), with its path; null when absent or altered. */
export function readStoredControlImage(dataDir: string, sha256: string): { path: string; bytes: Uint8Array } | null {
  if (!SHA256_HEX.test(sha256)) return null;
  const path = absoluteDataPath(dataDir, controlFilePath(sha256));
  if (!existsSync(path)) return null;
  const bytes = readFileSync(path);
  return createHash('sha256').update(bytes).digest('hex') === sha256 ? { path, bytes } : null;
}

/** The absolute path of a stored control image with this hash (content checked), or null. */
export function findControlImage(dataDir: string, sha256: string): string | null {
  return readStoredControlImage(dataDir, sha256)?.path ?? null;
}
