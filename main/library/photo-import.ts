/**
 * Checking and preparing one subject photo before it is stored: the bytes are sniffed and fully
 * decoded with sharp (so a truncated or corrupt file is caught now, not at generation time), images
 * above 50 megapixels are refused before decoding, and a thumbnail is made with the EXIF orientation
 * applied. Every refusal carries a reason written for the user; nothing here touches the library.
 */
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import sharp, { type Metadata } from 'sharp';
import { MAX_INPUT_PIXELS } from '../engine/imaging/decode';

/** A photo from disk (CLI, drag and drop) or uploaded bytes (the UI). */
export type PhotoSource = { path: string } | { name: string; bytes: Uint8Array };

export interface PreparedPhoto {
  /** The file name the user knows it by. */
  name: string;
  bytes: Uint8Array;
  sha256: string;
  /** File extension for the stored original, from the sniffed format (not the file's name). */
  extension: string;
  /** Size as displayed, i.e. after applying the EXIF orientation. */
  width: number;
  height: number;
  /** EXIF orientation of the original, 1 (upright) when absent. */
  orientation: number;
  thumbnail: Uint8Array;
}

export interface RejectedPhoto {
  name: string;
  reason: string;
}

export type PreparedOrRejected = { ok: true; photo: PreparedPhoto } | { ok: false; rejected: RejectedPhoto };

/** Long edge of the stored thumbnails, in pixels. */
export const THUMBNAIL_SIZE = 384;
/** Larger files are refused before reading: no photo worth 50 MP needs more. */
export const MAX_PHOTO_BYTES = 200 * 1024 * 1024;

/** Formats the engine decodes, with the extension their originals are stored under. */
const ACCEPTED_FORMATS: Readonly<Record<string, string>> = { jpeg: 'jpg', png: 'png', webp: 'webp', tiff: 'tiff', gif: 'gif' };
const FORMATS_HINT = 'use a JPEG, PNG or WebP photo';

export function sourceName(source: PhotoSource): string {
  return 'path' in source ? basename(source.path) : source.name;
}

export async function preparePhoto(source: PhotoSource): Promise<PreparedOrRejected> {
  const name = sourceName(source);
  const reject = (reason: string): PreparedOrRejected => ({ ok: false, rejected: { name, reason } });
  let bytes: Uint8Array;
  if ('path' in source) {
    const info = await stat(source.path).catch(() => null);
    if (!info) return reject('the file does not exist or cannot be read');
    if (!info.isFile()) return reject('it is not a file');
    if (info.size > MAX_PHOTO_BYTES) return reject(`the file is ${(info.size / 1e6).toFixed(0)} MB; photos above ${MAX_PHOTO_BYTES / 1024 / 1024} MB are refused`);
    bytes = await readFile(source.path);
  } else {
    bytes = source.bytes;
    if (bytes.length > MAX_PHOTO_BYTES) return reject(`the file is ${(bytes.length / 1e6).toFixed(0)} MB; photos above ${MAX_PHOTO_BYTES / 1024 / 1024} MB are refused`);
  }
  if (bytes.length === 0) return reject('the file is empty');

  let metadata: Metadata;
  try {
    // Header only: the size check below happens before any pixel is decoded.
    metadata = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch {
    return reject(`it is not an image BLIP Studio can read (${FORMATS_HINT})`);
  }
  const extension = metadata.format ? ACCEPTED_FORMATS[metadata.format] : undefined;
  if (!extension) return reject(`its format (${metadata.format ?? 'unknown'}) is not supported: ${FORMATS_HINT}`);
  const { width, height } = metadata;
  if (!width || !height) return reject('the image has no size: the file is damaged');
  if (width * height > MAX_INPUT_PIXELS) {
    return reject(`the image is ${((width * height) / 1e6).toFixed(1)} megapixels (${width}×${height}); photos above ${MAX_INPUT_PIXELS / 1e6} megapixels are refused: scale it down first`);
  }

  let thumbnail: Uint8Array;
  try {
    // A full decode (failOn 'error' also catches truncation): damage is found now, not at generation.
    thumbnail = await sharp(bytes, { limitInputPixels: MAX_INPUT_PIXELS, failOn: 'error' })
      .rotate()
      .resize(THUMBNAIL_SIZE, THUMBNAIL_SIZE, { fit: 'inside', withoutEnlargement: true })
      .webp({ quality: 82 })
      .toBuffer();
  } catch (error) {
    const detail = error instanceof Error ? error.message.replace(/\s+/g, ' ').trim() : String(error);
    return reject(`the image is damaged or incomplete (${detail}): export it again from the original`);
  }

  const orientation = metadata.orientation && metadata.orientation >= 1 && metadata.orientation <= 8 ? metadata.orientation : 1;
  // Orientations 5-8 turn the picture a quarter: the displayed width is the stored height.
  const quarterTurn = orientation >= 5;
  return {
    ok: true,
    photo: {
      name,
      bytes,
      sha256: createHash('sha256').update(bytes).digest('hex'),
      extension,
      width: quarterTurn ? height : width,
      height: quarterTurn ? width : height,
      orientation,
      thumbnail,
    },
  };
}
