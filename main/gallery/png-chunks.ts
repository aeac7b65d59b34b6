/**
 * The PNG container (ISO/IEC 15948 §5): signature, then chunks of length + type + data + CRC-32.
 * Parsing checks everything a forged or damaged file could get wrong (signature, lengths that run past
 * the end, CRCs, IHDR first, IEND last) and says which, so callers can refuse a file clearly. Text
 * chunks (tEXt, iTXt uncompressed) are encoded here; image data is never touched.
 * Our own ~100 lines instead of a dependency: we need CRC checks and size limits enforced *while*
 * parsing, and iTXt, which the small npm chunk packages do not all offer; CRC-32 comes from node:zlib.
 */
import { crc32 } from 'node:zlib';

export const PNG_SIGNATURE = Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
/** The spec's limit on a chunk length. */
const MAX_CHUNK_LENGTH = 2 ** 31 - 1;
/** Keywords are 1-79 Latin-1 characters (§11.3.4.2). */
const MAX_KEYWORD_BYTES = 79;

export type PngProblem = 'not-png' | 'truncated' | 'corrupt';

export class PngFormatError extends Error {
  constructor(
    readonly problem: PngProblem,
    detail: string,
  ) {
    super(detail);
    this.name = 'PngFormatError';
  }
}

export interface PngChunk {
  type: string;
  /** A view into the file's bytes (not a copy). */
  data: Uint8Array;
  /** Offset of the chunk's length field in the file. */
  offset: number;
}

function readUint32(bytes: Uint8Array, offset: number): number {
  return new DataView(bytes.buffer, bytes.byteOffset + offset, 4).getUint32(0);
}

function chunkCrc(typeAndData: Uint8Array): number {
  return crc32(typeAndData) >>> 0;
}

export function isPng(bytes: Uint8Array): boolean {
  return bytes.length >= PNG_SIGNATURE.length && PNG_SIGNATURE.every((b, i) => bytes[i] === b);
}

/**
 * Splits a PNG into its chunks, checking the structure and every CRC. `beforeCrc` sees each chunk's
 * type and declared length before its data is checked, so a caller can refuse an oversized chunk early.
 */
export function parsePngChunks(bytes: Uint8Array, beforeCrc?: (type: string, length: number, dataOffset: number) => void): PngChunk[] {
  if (!isPng(bytes)) throw new PngFormatError('not-png', 'this is not a PNG file (the PNG signature is missing)');
  const chunks: PngChunk[] = [];
  let offset = PNG_SIGNATURE.length;
  for (;;) {
    if (offset + 8 > bytes.length) throw new PngFormatError('truncated', `the PNG ends in the middle of a chunk header at byte ${offset} (no IEND): the file is truncated`);
    const length = readUint32(bytes, offset);
    const type = String.fromCharCode(...bytes.subarray(offset + 4, offset + 8));
    if (!/^[A-Za-z]{4}$/.test(type)) throw new PngFormatError('corrupt', `the PNG has an invalid chunk type at byte ${offset}: the file is damaged`);
    if (length > MAX_CHUNK_LENGTH) throw new PngFormatError('corrupt', `the PNG chunk ${type} at byte ${offset} declares an impossible length (${length})`);
    const dataOffset = offset + 8;
    if (dataOffset + length + 4 > bytes.length) throw new PngFormatError('truncated', `the PNG chunk ${type} at byte ${offset} runs past the end of the file: the file is truncated`);
    beforeCrc?.(type, length, dataOffset);
    const expected = readUint32(bytes, dataOffset + length);
    if (chunkCrc(bytes.subarray(offset + 4, dataOffset + length)) !== expected) {
      throw new PngFormatError('corrupt', `the PNG chunk ${type} at byte ${offset} fails its CRC check: the file is damaged or was edited by hand`);
    }
    if (chunks.length === 0 && (type !== 'IHDR' || length !== 13)) throw new PngFormatError('corrupt', 'the PNG does not start with an IHDR chunk');
    chunks.push({ type, data: bytes.subarray(dataOffset, dataOffset + length), offset });
    offset = dataOffset + length + 4;
    if (type === 'IEND') return chunks;
  }
}

/** length + type + data + CRC, ready to splice into a file. */
export function encodeChunk(type: string, data: Uint8Array): Uint8Array {
  if (!/^[A-Za-z]{4}$/.test(type)) throw new Error(`invalid PNG chunk type '${type}'`);
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  view.setUint32(8 + data.length, chunkCrc(out.subarray(4, 8 + data.length)));
  return out;
}

function latin1Bytes(text: string, what: string): Uint8Array {
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code > 0xff) throw new Error(`${what} is not Latin-1 text`);
    bytes[i] = code;
  }
  return bytes;
}

function keywordBytes(keyword: string): Uint8Array {
  if (keyword.length < 1 || keyword.length > MAX_KEYWORD_BYTES || keyword.includes('\0')) throw new Error(`invalid PNG text keyword '${keyword}'`);
  return latin1Bytes(keyword, 'a PNG text keyword');
}

export function isLatin1(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0xff) return false;
  return true;
}

/** tEXt: keyword, NUL, Latin-1 text. */
export function encodeTextChunk(keyword: string, text: string): Uint8Array {
  const key = keywordBytes(keyword);
  const value = latin1Bytes(text, `the '${keyword}' text`);
  const data = new Uint8Array(key.length + 1 + value.length);
  data.set(key, 0);
  data.set(value, key.length + 1);
  return encodeChunk('tEXt', data);
}

/** iTXt, uncompressed, no language tag: keyword, NUL, 0 (flag), 0 (method), NUL (language), NUL (translated keyword), UTF-8 text. */
export function encodeInternationalTextChunk(keyword: string, text: string): Uint8Array {
  const key = keywordBytes(keyword);
  const value = new TextEncoder().encode(text);
  const data = new Uint8Array(key.length + 5 + value.length);
  data.set(key, 0);
  data.set(value, key.length + 5);
  return encodeChunk('iTXt', data);
}

export interface TextChunk {
  type: 'tEXt' | 'iTXt';
  keyword: string;
  text: string;
}

/** The keyword of a tEXt/iTXt chunk's data, or null when it has none (malformed). */
export function textChunkKeyword(data: Uint8Array): string | null {
  const end = data.subarray(0, MAX_KEYWORD_BYTES + 1).indexOf(0);
  return end < 1 ? null : String.fromCharCode(...data.subarray(0, end));
}

/** Decodes a tEXt or uncompressed iTXt chunk; throws PngFormatError for malformed or compressed ones. */
export function decodeTextChunk(chunk: PngChunk): TextChunk {
  const keyword = textChunkKeyword(chunk.data);
  if (keyword === null) throw new PngFormatError('corrupt', `a ${chunk.type} chunk has no valid keyword`);
  const rest = chunk.data.subarray(keyword.length + 1);
  if (chunk.type === 'tEXt') return { type: 'tEXt', keyword, text: Buffer.from(rest.buffer, rest.byteOffset, rest.length).toString('latin1') };
  if (chunk.type !== 'iTXt') throw new Error(`${chunk.type} is not a text chunk`);
  if (rest.length < 2 || rest[0] !== 0 || rest[1] !== 0) throw new PngFormatError('corrupt', `the iTXt chunk '${keyword}' is compressed or malformed`);
  const languageEnd = rest.indexOf(0, 2);
  const translatedEnd = languageEnd < 0 ? -1 : rest.indexOf(0, languageEnd + 1);
  if (translatedEnd < 0) throw new PngFormatError('corrupt', `the iTXt chunk '${keyword}' is malformed`);
  try {
    return { type: 'iTXt', keyword, text: new TextDecoder('utf-8', { fatal: true }).decode(rest.subarray(translatedEnd + 1)) };
  } catch {
    throw new PngFormatError('corrupt', `the iTXt chunk '${keyword}' is not valid UTF-8`);
  }
}

/** The file rebuilt from `chunks` with `extra` inserted just before IEND. */
export function assemblePng(chunks: readonly PngChunk[], extra: readonly Uint8Array[]): Uint8Array {
  const encoded = chunks.map((chunk) => encodeChunk(chunk.type, chunk.data));
  const iend = encoded.pop();
  if (!iend || chunks[chunks.length - 1]?.type !== 'IEND') throw new Error('a PNG must end with IEND');
  const parts = [PNG_SIGNATURE, ...encoded, ...extra, iend];
  const out = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}
