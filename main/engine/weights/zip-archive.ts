/**
 * The central directory of a zip archive, read with positioned reads (the archive is never loaded
 * whole: a torch checkpoint can be 3.4 GB). Supports what `torch.save` writes: stored (uncompressed)
 * records, data descriptors, and Zip64 (always present in torch archives). Each stored record's
 * absolute data offset is exposed, so callers read a tensor's bytes in place with one read.
 * Compressed, encrypted and multi-disk archives are refused: torch never writes them.
 */
import type { FileHandle } from 'node:fs/promises';
import { readRange } from './file-range';

export interface ZipRecord {
  readonly name: string;
  /** Absolute offset of the first data byte. */
  readonly dataOffset: number;
  readonly size: number;
  readonly crc32: number;
}

const END_OF_CENTRAL_DIRECTORY = 0x06054b50;
const ZIP64_END_LOCATOR = 0x07064b50;
const ZIP64_END_OF_CENTRAL_DIRECTORY = 0x06064b50;
const CENTRAL_DIRECTORY_HEADER = 0x02014b50;
const LOCAL_FILE_HEADER = 0x04034b50;
const ZIP64_EXTRA_FIELD = 0x0001;
const MAX_COMMENT = 0xffff;
const EOCD_SIZE = 22;
const ZIP64_LOCATOR_SIZE = 20;
const ZIP64_EOCD_SIZE = 56;
/** A 4 GB checkpoint has a few thousand records; a directory past this is hostile. */
const MAX_CENTRAL_DIRECTORY_BYTES = 64 * 1024 * 1024;
const METHOD_STORED = 0;
const FLAG_ENCRYPTED = 0x1;

export class ZipFormatError extends Error {
  override readonly name = 'ZipFormatError';
}

/** Reads every record of the archive. Throws ZipFormatError for anything malformed or unsupported. */
export async function readZipRecords(handle: FileHandle, fileSize: number): Promise<Map<string, ZipRecord>> {
  const directory = await locateCentralDirectory(handle, fileSize);
  if (directory.size > MAX_CENTRAL_DIRECTORY_BYTES) throw new ZipFormatError(`its central directory claims ${directory.size} bytes, far more than a checkpoint has`);
  const bytes = await readRange(handle, directory.offset, directory.size);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headers: CentralHeader[] = [];
  let position = 0;
  for (let i = 0; i < directory.entries; i++) {
    const header = parseCentralHeader(bytes, view, position);
    headers.push(header);
    position = header.next;
  }

  const records = new Map<string, ZipRecord>();
  for (const header of headers) {
    if (records.has(header.name)) throw new ZipFormatError(`it holds two records named '${header.name}'`);
    if (header.flags & FLAG_ENCRYPTED) throw new ZipFormatError(`record '${header.name}' is encrypted`);
    if (header.method !== METHOD_STORED) {
      throw new ZipFormatError(`record '${header.name}' is compressed (method ${header.method}); torch.save writes uncompressed archives, so the file was re-packed by another tool: load it in Python and save it again with torch.save`);
    }
    if (header.compressedSize !== header.size) throw new ZipFormatError(`record '${header.name}' is stored but its two sizes differ: the file is corrupt`);
    const local = await readRange(handle, header.localHeaderOffset, 30).catch(() => {
      throw new ZipFormatError(`record '${header.name}' starts past the end of the file`);
    });
    const localView = new DataView(local.buffer, local.byteOffset, local.byteLength);
    if (localView.getUint32(0, true) !== LOCAL_FILE_HEADER) throw new ZipFormatError(`record '${header.name}' has no local header where the directory says`);
    const dataOffset = header.localHeaderOffset + 30 + localView.getUint16(26, true) + localView.getUint16(28, true);
    if (dataOffset + header.size > directory.offset) throw new ZipFormatError(`record '${header.name}' runs into the central directory: the file is corrupt`);
    records.set(header.name, { name: header.name, dataOffset, size: header.size, crc32: header.crc32 });
  }
  return records;
}

interface CentralHeader {
  name: string;
  flags: number;
  method: number;
  crc32: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
  next: number;
}

function parseCentralHeader(bytes: Uint8Array, view: DataView, position: number): CentralHeader {
  if (position + 46 > bytes.length || view.getUint32(position, true) !== CENTRAL_DIRECTORY_HEADER) {
    throw new ZipFormatError('its central directory is corrupt');
  }
  const flags = view.getUint16(position + 8, true);
  const method = view.getUint16(position + 10, true);
  const crc32 = view.getUint32(position + 16, true);
  let compressedSize = view.getUint32(position + 20, true);
  let size = view.getUint32(position + 24, true);
  const nameLength = view.getUint16(position + 28, true);
  const extraLength = view.getUint16(position + 30, true);
  const commentLength = view.getUint16(position + 32, true);
  const disk = view.getUint16(position + 34, true);
  let localHeaderOffset = view.getUint32(position + 42, true);
  const nameStart = position + 46;
  const extraStart = nameStart + nameLength;
  const next = extraStart + extraLength + commentLength;
  if (next > bytes.length) throw new ZipFormatError('its central directory is corrupt');
  const name = new TextDecoder('utf-8').decode(bytes.subarray(nameStart, extraStart));

  // Zip64: the 32-bit fields that overflowed are 0xFFFFFFFF and their real values follow, in order, in extra field 0x0001.
  const needs = [size === 0xffffffff, compressedSize === 0xffffffff, localHeaderOffset === 0xffffffff];
  if (needs.some(Boolean)) {
    const values = zip64Values(bytes, view, extraStart, extraStart + extraLength, needs.filter(Boolean).length, name);
    if (needs[0]) size = values.shift()!;
    if (needs[1]) compressedSize = values.shift()!;
    if (needs[2]) localHeaderOffset = values.shift()!;
  }
  if (disk !== 0 && disk !== 0xffff) throw new ZipFormatError('it is a multi-part archive');
  return { name, flags, method, crc32, compressedSize, size, localHeaderOffset, next };
}

function zip64Values(bytes: Uint8Array, view: DataView, start: number, end: number, count: number, name: string): number[] {
  for (let position = start; position + 4 <= end; ) {
    const id = view.getUint16(position, true);
    const length = view.getUint16(position + 2, true);
    if (position + 4 + length > end) break;
    if (id === ZIP64_EXTRA_FIELD) {
      if (length < count * 8) break;
      return Array.from({ length: count }, (_, i) => safeUint64(view, position + 4 + i * 8));
    }
    position += 4 + length;
  }
  throw new ZipFormatError(`record '${name}' lacks its Zip64 sizes`);
}

async function locateCentralDirectory(handle: FileHandle, fileSize: number): Promise<{ offset: number; size: number; entries: number }> {
  const tailLength = Math.min(fileSize, EOCD_SIZE + MAX_COMMENT + ZIP64_LOCATOR_SIZE);
  const tailStart = fileSize - tailLength;
  const tail = await readRange(handle, tailStart, tailLength);
  const view = new DataView(tail.buffer, tail.byteOffset, tail.byteLength);
  let eocd = -1;
  for (let position = tail.length - EOCD_SIZE; position >= 0; position--) {
    if (view.getUint32(position, true) === END_OF_CENTRAL_DIRECTORY && position + EOCD_SIZE + view.getUint16(position + 20, true) <= tail.length) {
      eocd = position;
      break;
    }
  }
  if (eocd < 0) throw new ZipFormatError('the zip archive has no end-of-central-directory record: the file is truncated (or not a zip archive); download it again');

  let entries = view.getUint16(eocd + 10, true);
  let size = view.getUint32(eocd + 12, true);
  let offset = view.getUint32(eocd + 16, true);
  if (view.getUint16(eocd + 4, true) !== 0 || view.getUint16(eocd + 6, true) !== 0) throw new ZipFormatError('it is a multi-part archive');

  const locator = eocd - ZIP64_LOCATOR_SIZE;
  if (locator >= 0 && view.getUint32(locator, true) === ZIP64_END_LOCATOR) {
    const zip64Offset = safeUint64(view, locator + 8);
    if (zip64Offset + ZIP64_EOCD_SIZE > fileSize) throw new ZipFormatError('its Zip64 directory record lies past the end of the file: the file is truncated');
    const record = await readRange(handle, zip64Offset, ZIP64_EOCD_SIZE);
    const recordView = new DataView(record.buffer, record.byteOffset, record.byteLength);
    if (recordView.getUint32(0, true) !== ZIP64_END_OF_CENTRAL_DIRECTORY) throw new ZipFormatError('its Zip64 directory record is missing: the file is corrupt');
    entries = safeUint64(recordView, 32);
    size = safeUint64(recordView, 40);
    offset = safeUint64(recordView, 48);
  }
  if (offset + size > fileSize) throw new ZipFormatError('its central directory lies past the end of the file: the file is truncated; download it again');
  return { offset, size, entries };
}

function safeUint64(view: DataView, position: number): number {
  const value = view.getBigUint64(position, true);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new ZipFormatError('it holds an impossible 64-bit size or offset');
  return Number(value);
}
