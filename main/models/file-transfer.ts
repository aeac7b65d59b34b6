/**
 * One file from the hub into `<path>.partial`, appended from wherever a previous attempt stopped
 * (`Range: bytes=N-`), hashed as it arrives, then checked and renamed into place. A dropped connection
 * is retried from the bytes already on disk; an abort leaves the partial file for the next run.
 */
import { createHash, type Hash } from 'node:crypto';
import { mkdir, open, rename, stat, truncate, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { hashFileInto } from './file-hash';
import { describeError, type HubFile } from './hub-api';
import { formatBytes, HubDownloadError, statusAdvice } from './hub-errors';

export interface TransferOptions {
  url: string;
  file: HubFile;
  finalPath: string;
  signal?: AbortSignal;
  /** Retries after dropped connections in a row; an attempt that brought bytes starts the count again. */
  retries: number;
  retryDelayMs: number;
  /** Called with the bytes of this file now on disk. */
  onBytes: (fileBytes: number) => void;
}

export interface TransferResult {
  sha256: string;
  mtimeMs: number;
}

/** Where the transfer stands: bytes on disk and the hash over exactly those bytes. */
interface TransferState {
  offset: number;
  hash: Hash;
}

/** A failure worth another attempt from the bytes on disk (connection dropped, body ended early). */
class Dropped extends Error {}

export function partialPathOf(finalPath: string): string {
  return `${finalPath}.partial`;
}

async function sizeOf(path: string): Promise<number | null> {
  try {
    return (await stat(path)).size;
  } catch {
    return null;
  }
}

function paused(file: HubFile, offset: number): HubDownloadError {
  return new HubDownloadError(
    'paused',
    `Download paused at ${file.path} (${formatBytes(offset)} of ${formatBytes(file.size)}); start it again to resume from there.`,
    file.path,
  );
}

async function restartFromZero(partialPath: string, state: TransferState): Promise<void> {
  await truncate(partialPath, 0).catch(() => undefined);
  state.offset = 0;
  state.hash = createHash('sha256');
}

export async function transferFile(options: TransferOptions): Promise<TransferResult> {
  const { file, finalPath, signal } = options;
  const partialPath = partialPathOf(finalPath);
  await mkdir(dirname(finalPath), { recursive: true });

  const state: TransferState = { offset: 0, hash: createHash('sha256') };
  const existing = await sizeOf(partialPath);
  if (existing !== null && existing > file.size) {
    await unlink(partialPath); // longer than the file can be: not ours to resume
  } else if (existing !== null && existing > 0) {
    try {
      await hashFileInto(state.hash, partialPath, signal);
    } catch (error) {
      if (signal?.aborted) throw paused(file, existing);
      throw error;
    }
    state.offset = existing;
  }
  options.onBytes(state.offset);

  let failuresWithoutProgress = 0;
  let restarts = 0;
  while (state.offset < file.size) {
    if (signal?.aborted) throw paused(file, state.offset);
    const before = state.offset;
    try {
      const outcome = await fetchInto(options, partialPath, state);
      if (outcome === 'restart') {
        // The server refused our range (416); starting over once is fine, twice is a loop.
        if (++restarts > 1) throw new HubDownloadError('network', `${file.path}: the server keeps refusing to resume this file; delete ${partialPath} and try again.`, file.path);
        await restartFromZero(partialPath, state);
      }
    } catch (error) {
      if (!(error instanceof Dropped)) throw error;
      // Progress means the link works: count this failure afresh rather than adding to a streak.
      failuresWithoutProgress = state.offset > before ? 1 : failuresWithoutProgress + 1;
      if (failuresWithoutProgress > options.retries) {
        throw new HubDownloadError(
          'network',
          `${file.path}: ${error.message} (${formatBytes(state.offset)} of ${formatBytes(file.size)} received). Check the connection and start the download again; it resumes from there.`,
          file.path,
          undefined,
          { cause: error },
        );
      }
      if (options.retryDelayMs > 0) await new Promise((done) => setTimeout(done, options.retryDelayMs * (failuresWithoutProgress + 1)));
    }
  }

  const actualSize = await sizeOf(partialPath) ?? 0;
  if (actualSize !== file.size) {
    await unlink(partialPath).catch(() => undefined);
    throw new HubDownloadError('size', `${file.path}: expected ${file.size} bytes but ${actualSize} are on disk; the partial file was removed, start the download again.`, file.path);
  }
  const sha256 = state.hash.digest('hex');
  if (file.sha256 && sha256 !== file.sha256) {
    await unlink(partialPath).catch(() => undefined);
    throw new HubDownloadError(
      'checksum',
      `${file.path}: checksum mismatch (expected sha256 ${file.sha256}, got ${sha256}). The damaged file was deleted; start the download again, and if it happens again the server or mirror is serving a corrupt copy.`,
      file.path,
    );
  }
  await rename(partialPath, finalPath); // same folder, so atomic: the final name only ever holds verified bytes
  return { sha256, mtimeMs: (await stat(finalPath)).mtimeMs };
}

/**
 * One request: appends the body to the partial file. Returns 'restart' when the server will not resume
 * (416) and the file must start over from byte 0; a 200 to a range request restarts in place.
 */
async function fetchInto(options: TransferOptions, partialPath: string, state: TransferState): Promise<'done' | 'restart'> {
  const { file, signal } = options;
  const headers: Record<string, string> = state.offset > 0 ? { range: `bytes=${state.offset}-` } : {};
  let response: Response;
  try {
    response = await fetch(options.url, { signal, headers, redirect: 'follow' });
  } catch (error) {
    if (signal?.aborted) throw paused(file, state.offset);
    throw new Dropped(`could not connect (${describeError(error)})`);
  }

  if (state.offset > 0 && response.status === 416) {
    await response.body?.cancel();
    return 'restart';
  }
  // 200 to a range request: the server sends the whole file, so take it from byte 0.
  if (state.offset > 0 && response.status === 200) await restartFromZero(partialPath, state);
  if (!response.ok) {
    await response.body?.cancel();
    throw new HubDownloadError('http', `${file.path}: the server answered HTTP ${response.status}; ${statusAdvice(response.status)}.`, file.path, response.status);
  }
  if (response.status === 206) {
    const start = /^bytes (\d+)-/.exec(response.headers.get('content-range') ?? '')?.[1];
    if (start === undefined || Number(start) !== state.offset) {
      await response.body?.cancel();
      return 'restart';
    }
  }
  if (!response.body) throw new Dropped('the server sent no body');

  const handle = await open(partialPath, state.offset > 0 ? 'a' : 'w');
  try {
    for await (const chunk of response.body) {
      const bytes = chunk as Uint8Array;
      if (state.offset + bytes.length > file.size) {
        await handle.close();
        await unlink(partialPath).catch(() => undefined);
        throw new HubDownloadError('size', `${file.path}: the server sent more than the ${file.size} bytes the hub lists; the partial file was removed. The mirror may be out of date with the file list.`, file.path);
      }
      try {
        await handle.write(bytes);
      } catch (error) {
        await handle.truncate(state.offset).catch(() => undefined); // keep disk and hash in step
        const code = (error as NodeJS.ErrnoException).code;
        const advice = code === 'ENOSPC' ? 'the disk is full; free some space and resume' : 'check the folder is writable and resume';
        throw new HubDownloadError('disk', `${file.path}: writing to ${partialPath} failed (${code ?? describeError(error)}); ${advice}.`, file.path, undefined, { cause: error });
      }
      state.hash.update(bytes);
      state.offset += bytes.length;
      options.onBytes(state.offset);
      if (signal?.aborted) throw paused(file, state.offset);
    }
  } catch (error) {
    if (error instanceof HubDownloadError) throw error;
    if (signal?.aborted) throw paused(file, state.offset);
    throw new Dropped(`the connection dropped (${describeError(error)})`);
  } finally {
    await handle.close().catch(() => undefined);
  }
  if (state.offset < file.size) throw new Dropped('the server closed the transfer early');
  return 'done';
}
