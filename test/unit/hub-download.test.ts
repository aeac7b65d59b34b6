import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { downloadRepo, HubDownloadError, MANIFEST_NAME, type DownloadProgress, type DownloadRepoOptions } from '../../main/models/hub-download';
import { BIG_FILE, startFakeHub, type FakeHub } from '../helpers/fake-hub';
import { makeTempDir } from '../helpers/temp-dir';

let hub: FakeHub;
let temp: { path: string; remove(): void };
let target: string;

beforeEach(async () => {
  hub = await startFakeHub();
  temp = makeTempDir('blip-hub-download-');
  target = join(temp.path, 'model');
});

afterEach(async () => {
  await hub.close();
  temp.remove();
});

const PLENTY = (): number => 10 * 1024 ** 3;

function options(extra: Partial<DownloadRepoOptions> = {}): DownloadRepoOptions {
  return { baseUrl: hub.baseUrl, repo: hub.repo, targetDir: target, freeBytes: PLENTY, retryDelayMs: 0, ...extra };
}

/** The error a download rejects with, checked to be ours. */
async function failure(run: Promise<unknown>): Promise<HubDownloadError> {
  const error = await run.then(() => null, (e: unknown) => e);
  expect(error).toBeInstanceOf(HubDownloadError);
  return error as HubDownloadError;
}

function expectAllFilesCorrect(): void {
  for (const file of hub.files) {
    if (file.path === '.gitattributes') continue;
    const onDisk = readFileSync(join(target, file.path));
    expect(createHash('sha256').update(onDisk).digest('hex'), file.path).toBe(createHash('sha256').update(file.content).digest('hex'));
    expect(existsSync(join(target, `${file.path}.partial`)), `${file.path}.partial left`).toBe(false);
  }
}

const bigFile = (): Buffer => hub.files.find((f) => f.path === BIG_FILE)!.content;

describe('downloadRepo', () => {
  it('downloads every listed file (not .gitattributes) through the redirect, with progress and a manifest', async () => {
    const progress: DownloadProgress[] = [];
    const result = await downloadRepo(options({ onProgress: (p) => progress.push(p) }));

    expectAllFilesCorrect();
    expect(existsSync(join(target, '.gitattributes'))).toBe(false);
    expect(result.files.map((f) => f.path).sort()).toEqual(hub.files.map((f) => f.path).filter((p) => p !== '.gitattributes').sort());
    expect(result.files.every((f) => f.transferred)).toBe(true);
    expect(hub.requests.some((r) => r.path.startsWith(`/${hub.repo}/resolve/main/`))).toBe(true);

    const total = hub.files.filter((f) => f.path !== '.gitattributes').reduce((sum, f) => sum + f.content.length, 0);
    const last = progress.at(-1)!;
    expect(last.bytesTotal).toBe(total);
    expect(last.bytesDone).toBe(total);
    const big = progress.filter((p) => p.file === BIG_FILE);
    expect(big.length).toBeGreaterThan(2);
    expect(big.at(-1)).toMatchObject({ fileBytes: 300 * 1024, fileTotal: 300 * 1024 });

    const manifest = JSON.parse(readFileSync(join(target, MANIFEST_NAME), 'utf8')) as { repo: string; state: string; files: { state: string }[] };
    expect(manifest).toMatchObject({ repo: hub.repo, revision: 'main', state: 'complete' });
    expect(manifest.files.every((f) => f.state === 'complete')).toBe(true);
  });

  it('resumes a transfer cut halfway with a Range request from the bytes on disk', async () => {
    const half = 150 * 1024;
    hub.cut = { path: BIG_FILE, afterBytes: half, times: 1 };
    await downloadRepo(options());

    const ranges = hub.cdnRequests(BIG_FILE).map((r) => r.range);
    expect(ranges).toEqual([undefined, `bytes=${half}-`]);
    expectAllFilesCorrect();
  });

  it('leaves the partial file when retries run out, and a later call resumes it', async () => {
    const cutAt = 100 * 1024;
    hub.cut = { path: BIG_FILE, afterBytes: cutAt, times: 1 };
    const error = await failure(downloadRepo(options({ retries: 0 })));
    expect(error.kind).toBe('network');
    expect(error.file).toBe(BIG_FILE);
    expect(error.message).toContain(BIG_FILE);
    expect(statSync(join(target, `${BIG_FILE}.partial`)).size).toBe(cutAt);

    await downloadRepo(options());
    expect(hub.cdnRequests(BIG_FILE).at(-1)?.range).toBe(`bytes=${cutAt}-`);
    expectAllFilesCorrect();
  });

  it('pauses through the signal, keeping the partial file, and resumes on the next call', async () => {
    const controller = new AbortController();
    const paused = await failure(
      downloadRepo(options({ signal: controller.signal, onProgress: (p) => p.file === BIG_FILE && p.fileBytes >= 64 * 1024 && controller.abort() })),
    );
    expect(paused.kind).toBe('paused');
    expect(paused.file).toBe(BIG_FILE);
    const partialSize = statSync(join(target, `${BIG_FILE}.partial`)).size;
    expect(partialSize).toBeGreaterThanOrEqual(64 * 1024);
    expect(partialSize).toBeLessThan(300 * 1024);
    expect(existsSync(join(target, BIG_FILE))).toBe(false);

    const before = hub.requests.length;
    const result = await downloadRepo(options());
    expect(hub.cdnRequests(BIG_FILE).at(-1)?.range).toBe(`bytes=${partialSize}-`);
    expectAllFilesCorrect();
    // Files finished before the pause were verified, not fetched again.
    const refetched = hub.requests.slice(before).filter((r) => r.path.startsWith('/cdn/')).map((r) => r.path);
    expect(refetched.length).toBe(result.files.filter((f) => f.transferred).length);
    expect(result.files.some((f) => !f.transferred)).toBe(true);
  });

  it('starts the file over when the server answers 200 to a range request', async () => {
    hub.cut = { path: BIG_FILE, afterBytes: 50 * 1024, times: 1 };
    hub.ignoreRange = true;
    await downloadRepo(options());
    expect(hub.cdnRequests(BIG_FILE).map((r) => r.range)).toEqual([undefined, 'bytes=51200-']);
    expectAllFilesCorrect();
  });

  it('rejects a checksum mismatch naming the file and both hashes, leaving no bad file behind', async () => {
    hub.corrupt.add(BIG_FILE);
    const error = await failure(downloadRepo(options()));
    const expected = createHash('sha256').update(bigFile()).digest('hex');
    expect(error.kind).toBe('checksum');
    expect(error.file).toBe(BIG_FILE);
    expect(error.message).toContain(BIG_FILE);
    expect(error.message).toContain(`expected sha256 ${expected}`);
    expect(existsSync(join(target, BIG_FILE))).toBe(false);
    expect(existsSync(join(target, `${BIG_FILE}.partial`))).toBe(false);

    hub.corrupt.clear();
    await downloadRepo(options());
    expectAllFilesCorrect();
  });

  it('refuses to start without the disk space, saying needed vs available', async () => {
    const error = await failure(downloadRepo(options({ freeBytes: () => 1024 * 1024 })));
    expect(error.kind).toBe('disk-space');
    expect(error.message).toMatch(/needs [\d.]+ MiB .* only 1\.0 MiB is free/);
    expect(hub.requests.filter((r) => r.path.includes('/resolve/') || r.path.startsWith('/cdn/'))).toEqual([]);
  });

  it.each([404, 500])('reports HTTP %i naming the file and the status', async (status) => {
    hub.failStatus.set('unet/config.json', status);
    const error = await failure(downloadRepo(options()));
    expect(error.kind).toBe('http');
    expect(error.status).toBe(status);
    expect(error.file).toBe('unet/config.json');
    expect(error.message).toContain('unet/config.json');
    expect(error.message).toContain(`HTTP ${status}`);
    expect(existsSync(join(target, 'unet/config.json'))).toBe(false);
  });

  it('names the repository when the file list fails', async () => {
    const error = await failure(downloadRepo(options({ repo: 'Salesforce/missing' })));
    expect(error.kind).toBe('listing');
    expect(error.status).toBe(404);
    expect(error.message).toContain('Salesforce/missing');
  });

  it('does not download files already complete, and re-checks them from the manifest without network bytes', async () => {
    await downloadRepo(options());
    const before = hub.requests.length;
    const again = await downloadRepo(options());
    expect(again.files.every((f) => !f.transferred)).toBe(true);
    expect(hub.requests.slice(before).map((r) => r.path)).toEqual([`/api/models/${hub.repo}/tree/main`]);

    // A file damaged on disk (same size) is caught by the hash and fetched again.
    const damaged = Buffer.from(bigFile());
    damaged[0] = (damaged[0] ?? 0) ^ 1;
    writeFileSync(join(target, BIG_FILE), damaged);
    const repaired = await downloadRepo(options());
    expect(repaired.files.filter((f) => f.transferred).map((f) => f.path)).toEqual([BIG_FILE]);
    expectAllFilesCorrect();
  });
});
