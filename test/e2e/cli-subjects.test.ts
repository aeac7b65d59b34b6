import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import BetterSqlite3 from 'better-sqlite3';
import sharp from 'sharp';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { SubjectSummary } from '../../main/api/contract';
import type { SubjectAddReport } from '../../main/cli/subjects-command';
import { databasePath } from '../../main/library/database';
import { absoluteDataPath, listFiles } from '../../main/library/photo-files';
import { BUILT_CLI, REPO_ROOT, requireBuild, runCli } from '../helpers/built-app';
import { makeTempDir } from '../helpers/temp-dir';

const MODEL = join(REPO_ROOT, 'resources/demo-model/tiny-blipdiffusion-controlnet');
const DREAMBENCH = join(REPO_ROOT, 'test/fixtures/dreambench');
const DOG = [0, 1, 2, 3, 4].map((i) => join(DREAMBENCH, 'dog', `0${i}.jpg`));
const CAT = [0, 1, 2, 3, 4].map((i) => join(DREAMBENCH, 'cat', `0${i}.jpg`));

let dir: ReturnType<typeof makeTempDir>;
beforeAll(() => {
  requireBuild();
  dir = makeTempDir('blip-studio-subjects-');
});
afterAll(() => dir.remove());

function listSubjects(dataDir: string): SubjectSummary[] {
  const result = runCli(['--data-dir', dataDir, 'subjects', 'list', '--json']);
  expect(result.status, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as SubjectSummary[];
}

describe('CLI subjects', () => {
  it('adds a subject from DreamBench photos with the demo model, lists it and removes it', () => {
    const dataDir = join(dir.path, 'flow');
    const args = ['--data-dir', dataDir, 'subjects', 'add', '--model', MODEL, '--name', 'Corgi', '--category', 'dog', '--note', 'DreamBench dog', '--json'];
    const added = runCli([...args, ...DOG.slice(0, 3), DOG[0]!, join(REPO_ROOT, 'README.md')]);
    expect(added.status, added.stderr).toBe(0);
    const report = JSON.parse(added.stdout) as SubjectAddReport;
    expect(report.subject).toMatchObject({ name: 'Corgi', category: 'dog', note: 'DreamBench dog', photoCount: 3 });
    expect(report.rejected.map((r) => r.name)).toEqual(['00.jpg', 'README.md']);
    expect(added.stderr).toMatch(/refused 00\.jpg: it is the same photo as 00\.jpg/);
    expect(added.stderr).toMatch(/refused README\.md: it is not an image/);
    expect(added.stderr).toMatch(/embedding 3\/3/);
    expect(report.embeddings).toMatchObject({ computed: 3, cached: 0, dims: [1, 16, expect.any(Number)] });
    expect(report.embeddings?.modelHash).toMatch(/^[0-9a-f]{64}$/);

    // The same photos in a second subject with the same category: nothing is recomputed.
    const twin = runCli(['--data-dir', dataDir, 'subjects', 'add', '--model', MODEL, '--name', 'Twin', '--category', 'dog', '--json', DOG[1]!]);
    expect(twin.status, twin.stderr).toBe(0);
    expect((JSON.parse(twin.stdout) as SubjectAddReport).embeddings).toMatchObject({ computed: 0, cached: 1, modelHash: report.embeddings?.modelHash });

    expect(listSubjects(dataDir).map((s) => [s.name, s.photoCount])).toEqual([['Twin', 1], ['Corgi', 3]]);
    const searched = runCli(['--data-dir', dataDir, 'subjects', 'list', '--json', '--search', 'cor', '--sort', 'name']);
    expect((JSON.parse(searched.stdout) as SubjectSummary[]).map((s) => s.name)).toEqual(['Corgi']);
    const text = runCli(['--data-dir', dataDir, 'subjects', 'list']);
    expect(text.stdout).toMatch(/Corgi\s+dog\s+3 photos/);

    const removed = runCli(['--data-dir', dataDir, 'subjects', 'remove', 'corgi']);
    expect(removed.status, removed.stderr).toBe(0);
    expect(removed.stdout).toMatch(/removed "Corgi" \(id \d+\) with its 3 photos/);
    expect(listSubjects(dataDir).map((s) => s.name)).toEqual(['Twin']);
    // Twin's photo (shared with Corgi) stays; Corgi's others are gone.
    expect(listFiles(dataDir, 'photos')).toHaveLength(1);
    const missing = runCli(['--data-dir', dataDir, 'subjects', 'remove', 'Corgi']);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/No subject is called "Corgi": list them with `subjects list`/);

    const refusedAll = runCli(['--data-dir', dataDir, 'subjects', 'add', '--name', 'X', '--category', 'dog', join(REPO_ROOT, 'README.md')]);
    expect(refusedAll.status).toBe(1);
    expect(refusedAll.stderr).toMatch(/None of the photos could be used, so no subject was created/);
  });

  it('survives kill -9 during an import or its embeddings: intact database, no orphans, job marked failed', async () => {
    const dataDir = join(dir.path, 'crash');
    const photos = [...DOG, ...CAT];
    // Kill points: early and late in the import, and during the embeddings.
    const rounds = [/importing +3\/10/, /embedding +2\/10/, /importing +7\/10/];
    for (const [round, killAt] of rounds.entries()) {
      const name = `Subject ${round}`;
      const exit = await runAndKill(['--data-dir', dataDir, 'subjects', 'add', '--model', MODEL, '--name', name, '--category', round === 1 ? 'cat' : 'dog', ...photos], killAt);
      expect(exit.signal, exit.output).toBe('SIGKILL');
      await expectNoHalfWrittenFiles(dataDir);

      // Reopening (any command) recovers: the interrupted job is failed, half an import is rolled back.
      const list = runCli(['--data-dir', dataDir, 'subjects', 'list', '--json']);
      expect(list.status, list.stderr).toBe(0);
      expect(list.stderr).toMatch(/was interrupted earlier and is marked failed: run it again/);
      const names = (JSON.parse(list.stdout) as SubjectSummary[]).map((s) => s.name);
      // Round 1 was killed after its import had finished: the subject stays, its embeddings resume later.
      expect(names.sort()).toEqual(round >= 1 ? ['Subject 1'] : []);

      const db = new BetterSqlite3(databasePath(dataDir), { readonly: true });
      try {
        expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
        expect(db.pragma('foreign_key_check')).toEqual([]);
        const jobs = db.prepare('SELECT kind, state, message FROM job_runs ORDER BY started_at').all() as { kind: string; state: string; message: string }[];
        expect(jobs.filter((j) => j.state === 'running')).toEqual([]);
        expect(jobs.at(-1)).toMatchObject({ kind: round === 1 ? 'subject-embeddings' : 'subject-import', state: 'failed', message: expect.stringMatching(/^Interrupted/) });
        expect(db.prepare('SELECT count(*) AS n FROM subjects WHERE import_job_id IS NOT NULL').get()).toEqual({ n: 0 });
        const rows = db.prepare('SELECT file_path, thumb_path FROM photos').all() as { file_path: string; thumb_path: string }[];
        const referenced = new Set(rows.flatMap((r) => [r.file_path, r.thumb_path]));
        expect(new Set([...listFiles(dataDir, 'photos'), ...listFiles(dataDir, 'thumbs')])).toEqual(referenced);
      } finally {
        db.close();
      }
    }

    // The interrupted embeddings resume: finished photos are not computed again.
    const resumed = runCli(['--data-dir', dataDir, 'subjects', 'add', '--model', MODEL, '--name', 'Again', '--category', 'cat', '--json', ...photos]);
    expect(resumed.status, resumed.stderr).toBe(0);
    const embeddings = (JSON.parse(resumed.stdout) as SubjectAddReport).embeddings!;
    expect(embeddings.cached).toBeGreaterThanOrEqual(1);
    expect(embeddings.computed + embeddings.cached).toBe(10);
  }, 240_000);
});

/** Starts the CLI, waits for a progress line matching `killAt` on stderr, then kills it with SIGKILL. */
function runAndKill(args: string[], killAt: RegExp): Promise<{ signal: NodeJS.Signals | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BUILT_CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`never saw ${killAt}:\n${output}`));
    }, 60_000);
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (killAt.test(output)) child.kill('SIGKILL');
    });
    child.on('exit', (_code, signal) => {
      clearTimeout(timer);
      resolve({ signal, output });
    });
  });
}

/** Files under their final names are complete: originals hash to their name, thumbnails decode. */
async function expectNoHalfWrittenFiles(dataDir: string): Promise<void> {
  for (const file of listFiles(dataDir, 'photos')) {
    if (file.endsWith('.partial')) continue;
    const hash = createHash('sha256').update(readFileSync(absoluteDataPath(dataDir, file))).digest('hex');
    expect(basename(file).split('.')[0]).toBe(hash);
  }
  for (const file of listFiles(dataDir, 'thumbs')) {
    if (file.endsWith('.partial')) continue;
    await expect(sharp(absoluteDataPath(dataDir, file), { failOn: 'error' }).stats()).resolves.toBeDefined();
  }
}
