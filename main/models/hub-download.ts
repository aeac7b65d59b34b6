/**
 * Downloads a model repository (e.g. Salesforce/blipdiffusion) from the Hugging Face hub or a mirror
 * into a folder: lists the files, refuses to start without the disk space, fetches each file with
 * resume (see file-transfer), checks size and sha256, and keeps `.blip-download.json` so that calling
 * again after a pause, a crash or a dropped connection picks up where it stopped.
 */
import { mkdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { readManifest, writeManifest, type DownloadManifest, type ManifestFile } from './download-manifest';
import { freeBytesAt, spaceMargin } from './disk-space';
import { sha256File } from './file-hash';
import { checkRepoId, DEFAULT_HUB_URL, fileUrl, listRepoFiles, type HubFile } from './hub-api';
import { formatBytes, HubDownloadError } from './hub-errors';
import { partialPathOf, transferFile } from './file-transfer';

export { HubDownloadError, type HubErrorKind } from './hub-errors';
export { DEFAULT_HUB_URL, type HubFile } from './hub-api';
export { MANIFEST_NAME } from './download-manifest';

/** The repositories BLIP Studio installs. */
export const BLIP_DIFFUSION_REPOS = ['Salesforce/blipdiffusion', 'Salesforce/blipdiffusion-controlnet'] as const;

export interface DownloadProgress {
  /** Repository-relative path of the file being transferred or checked. */
  file: string;
  fileBytes: number;
  fileTotal: number;
  /** Bytes of the whole repository on disk so far (finished files plus the current one). */
  bytesDone: number;
  bytesTotal: number;
}

export interface DownloadRepoOptions {
  /** Hub or mirror root; defaults to https://huggingface.co. */
  baseUrl?: string;
  repo: string;
  revision?: string;
  targetDir: string;
  /** Aborting pauses: partial files stay, and calling again resumes. */
  signal?: AbortSignal;
  onProgress?: (progress: DownloadProgress) => void;
  /** Free bytes on the target's volume; injectable for tests, `fs.statfs` otherwise. */
  freeBytes?: (dir: string) => number | Promise<number>;
  /** Retries per file after dropped connections in a row (default 3); an attempt that brought bytes resets the count. */
  retries?: number;
  /** Base wait before a retry, growing with each one (default 1000 ms). */
  retryDelayMs?: number;
  /** Which of the repository's files to fetch (default: all); e.g. only the safetensors weights of a repo that also has .bin copies. */
  include?: (path: string) => boolean;
}

export interface DownloadedFile extends HubFile {
  /** False when the file was already complete and verified. */
  transferred: boolean;
}

export interface DownloadResult {
  repo: string;
  revision: string;
  targetDir: string;
  files: DownloadedFile[];
}

interface Plan {
  file: HubFile;
  /** Manifest record; `state: 'complete'` when the file on disk is verified. */
  record: ManifestFile;
  /** Bytes already on disk (a finished file or a usable partial). */
  onDisk: number;
}

async function sizeOf(path: string): Promise<{ size: number; mtimeMs: number } | null> {
  try {
    const stats = await stat(path);
    return { size: stats.size, mtimeMs: stats.mtimeMs };
  } catch {
    return null;
  }
}

/** Whether the file at `finalPath` is already the one the hub lists, hashing only when the manifest cannot vouch for it. */
async function checkExisting(file: HubFile, finalPath: string, previous: ManifestFile | undefined, signal?: AbortSignal): Promise<ManifestFile | null> {
  const onDisk = await sizeOf(finalPath);
  if (!onDisk || onDisk.size !== file.size) return null;
  const verified = previous?.verified;
  if (verified && verified.size === onDisk.size && verified.mtimeMs === onDisk.mtimeMs && (file.sha256 === null || verified.sha256 === file.sha256)) {
    return { ...file, state: 'complete', verified };
  }
  const sha256 = await sha256File(finalPath, signal);
  if (file.sha256 !== null && sha256 !== file.sha256) return null;
  return { ...file, state: 'complete', verified: { size: onDisk.size, mtimeMs: onDisk.mtimeMs, sha256 } };
}

async function plan(files: HubFile[], targetDir: string, previous: DownloadManifest | null, signal?: AbortSignal): Promise<Plan[]> {
  const records = new Map(previous?.files.map((record) => [record.path, record]));
  const plans: Plan[] = [];
  for (const file of files) {
    if (signal?.aborted) throw new HubDownloadError('paused', 'Download paused while checking files already on disk; start it again to continue.', file.path);
    const finalPath = join(targetDir, file.path);
    const old = records.get(file.path);
    const complete = await checkExisting(file, finalPath, old, signal).catch((error: unknown) => {
      if (signal?.aborted) throw new HubDownloadError('paused', 'Download paused while checking files already on disk; start it again to continue.', file.path);
      throw error;
    });
    if (complete) {
      plans.push({ file, record: complete, onDisk: file.size });
      continue;
    }
    // A partial from another version of the file cannot be continued.
    const partialPath = partialPathOf(finalPath);
    if (old && (old.sha256 !== file.sha256 || old.size !== file.size)) {
      await rm(partialPath, { force: true });
    }
    const partial = await sizeOf(partialPath);
    const onDisk = partial && partial.size <= file.size ? partial.size : 0;
    plans.push({ file, record: { ...file, state: 'pending' }, onDisk });
  }
  return plans;
}

function manifestOf(options: { repo: string; revision: string; baseUrl: string }, plans: Plan[], state: DownloadManifest['state']): DownloadManifest {
  return { version: 1, ...options, state, updatedAt: '', files: plans.map((p) => p.record) };
}

export async function downloadRepo(options: DownloadRepoOptions): Promise<DownloadResult> {
  const { repo, targetDir, signal, onProgress } = options;
  const baseUrl = options.baseUrl ?? DEFAULT_HUB_URL;
  const revision = options.revision ?? 'main';
  checkRepoId(repo);
  await mkdir(targetDir, { recursive: true });

  const listed = await listRepoFiles(baseUrl, repo, revision, signal);
  const files = options.include ? listed.filter((file) => options.include!(file.path)) : listed;
  const previous = await readManifest(targetDir);
  const sameSource = previous && previous.repo === repo && previous.revision === revision ? previous : null;
  const plans = await plan(files, targetDir, sameSource, signal);

  const bytesTotal = plans.reduce((sum, p) => sum + p.file.size, 0);
  const needed = plans.reduce((sum, p) => sum + (p.record.state === 'complete' ? 0 : p.file.size - p.onDisk), 0);
  if (needed > 0) {
    const available = await (options.freeBytes ?? freeBytesAt)(targetDir);
    const withMargin = needed + spaceMargin(needed);
    if (available < withMargin) {
      throw new HubDownloadError(
        'disk-space',
        `Not enough disk space to download ${repo}: it needs ${formatBytes(withMargin)} (${formatBytes(needed)} of files plus headroom) but only ${formatBytes(available)} is free in ${targetDir}. Free some space or choose another folder.`,
      );
    }
  }

  const source = { repo, revision, baseUrl };
  await writeManifest(targetDir, manifestOf(source, plans, 'downloading'));

  let finishedBytes = plans.reduce((sum, p) => sum + (p.record.state === 'complete' ? p.file.size : 0), 0);
  const result: DownloadedFile[] = [];
  for (const p of plans) {
    if (p.record.state === 'complete') {
      result.push({ ...p.file, transferred: false });
      continue;
    }
    const { file } = p;
    const done = await transferFile({
      url: fileUrl(baseUrl, repo, revision, file.path),
      file,
      finalPath: join(targetDir, file.path),
      signal,
      retries: options.retries ?? 3,
      retryDelayMs: options.retryDelayMs ?? 1000,
      onBytes: (fileBytes) => onProgress?.({ file: file.path, fileBytes, fileTotal: file.size, bytesDone: finishedBytes + fileBytes, bytesTotal }),
    });
    finishedBytes += file.size;
    p.record = { ...file, state: 'complete', verified: { size: file.size, mtimeMs: done.mtimeMs, sha256: done.sha256 } };
    await writeManifest(targetDir, manifestOf(source, plans, 'downloading'));
    result.push({ ...file, transferred: true });
  }

  await writeManifest(targetDir, manifestOf(source, plans, 'complete'));
  return { repo, revision, targetDir, files: result };
}
