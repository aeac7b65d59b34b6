import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openStudio } from '../../main/api/studio';
import { openDatabase } from '../../main/library/database';
import { getJobRun, journaledJob, listJobRuns } from '../../main/library/job-journal';
import { JobQueue } from '../../main/jobs/job-queue';
import { GenerationsStore, RESULTS_FOLDER } from '../../main/gallery/generations-store';
import { listFilesUnder } from '../helpers/list-files';
import { sampleRecipe } from '../helpers/recipe-fixtures';
import { makeTempDir } from '../helpers/temp-dir';

let dir: ReturnType<typeof makeTempDir>;
beforeEach(() => {
  dir = makeTempDir('blip-recovery-');
});
afterEach(() => dir.remove());

describe('opening a data folder after a crash', () => {
  it('lists the interrupted generation as failed and sweeps result files no row names', async () => {
    const store = GenerationsStore.open(dir.path);
    const kept = store.insert({ recipe: sampleRecipe(), png: new TextEncoder().encode('kept png') });
    store.close();
    // What a serve process killed while saving a result leaves: a complete file without its row, and a temporary file.
    const orphan = join(dir.path, RESULTS_FOLDER, 'cd', `${'cd'.repeat(32)}.png`);
    const partial = join(dir.path, RESULTS_FOLDER, 'ef', `${'ef'.repeat(32)}.png.0a1b2c3d4e5f.partial`);
    for (const file of [orphan, partial]) {
      mkdirSync(join(file, '..'), { recursive: true });
      writeFileSync(file, 'left by a crash');
      utimesSync(file, new Date(1_000_000), new Date(1_000_000));
    }
    const dead = spawnSync(process.execPath, ['-e', '']).pid!;
    const db = openDatabase(dir.path);
    db.prepare("INSERT INTO job_runs (id, kind, label, state, step, total_steps, pid) VALUES ('killed', 'generation', '“on the beach” · Rex', 'running', 7, 30, ?)").run(dead);
    db.close();

    const studio = await openStudio({ dataDir: dir.path, mode: 'cli' });
    try {
      const jobs = await studio.api.listJobs();
      expect(jobs).toEqual([
        expect.objectContaining({ id: 'killed', kind: 'generation', label: '“on the beach” · Rex', state: 'failed', step: 7, totalSteps: 30, etaMs: null, finishedAt: expect.any(String) }),
      ]);
      expect(jobs[0]!.message).toMatch(/^Interrupted: BLIP Studio stopped while this job ran\. Run it again.*\(7 of 30 steps were done\.\)$/);
      expect(listFilesUnder(join(dir.path, RESULTS_FOLDER))).toEqual([kept.imagePath]);
      expect((await studio.api.listGenerations({})).map((g) => g.id)).toEqual([kept.id]);
    } finally {
      await studio.close();
    }
    // Reported once: the next start has nothing new to say.
    const again = await openStudio({ dataDir: dir.path, mode: 'cli' });
    try {
      expect(await again.api.listJobs()).toEqual([]);
    } finally {
      await again.close();
    }
  });

  it('leaves result files alone while another process still runs a journalled job on the folder', async () => {
    const orphan = join(dir.path, RESULTS_FOLDER, 'cd', `${'cd'.repeat(32)}.png`);
    mkdirSync(join(orphan, '..'), { recursive: true });
    writeFileSync(orphan, 'another process is about to commit this');
    utimesSync(orphan, new Date(1_000_000), new Date(1_000_000));
    const db = openDatabase(dir.path);
    // The test runner's parent process is alive: it stands for a CLI generating into the same folder.
    db.prepare("INSERT INTO job_runs (id, kind, label, state, pid) VALUES ('live', 'generation', 'elsewhere', 'running', ?)").run(process.ppid);
    db.close();
    const studio = await openStudio({ dataDir: dir.path, mode: 'cli' });
    await studio.close();
    expect(listFilesUnder(join(dir.path, RESULTS_FOLDER))).toEqual([`${RESULTS_FOLDER}/cd/${'cd'.repeat(32)}.png`]);
  });
});

describe('journaledJob', () => {
  it('records a queue job’s run: its steps, then done, failed or cancelled', async () => {
    const db = openDatabase(dir.path);
    try {
      const queue = new JobQueue(() => undefined);
      let seenRunning: unknown = null;
      queue.submit(
        journaledJob(db, {
          kind: 'generation',
          label: 'works',
          totalSteps: 3,
          run: async (context) => {
            for (let step = 1; step <= 3; step++) context.progress(step, 3, `Step ${step} of 3`);
            seenRunning = listJobRuns(db)[0];
            return 'Saved';
          },
        }, { subjectId: null }),
      );
      queue.submit(journaledJob(db, { kind: 'generation', label: 'breaks', totalSteps: 3, run: async () => Promise.reject(new Error('out of memory')) }));
      const cancelled = queue.submit(
        journaledJob(db, {
          kind: 'generation',
          label: 'cancelled',
          totalSteps: 3,
          run: async (context) => {
            queue.cancel(cancelled.id);
            context.signal.throwIfAborted();
            return 'never';
          },
        }),
      );
      await queue.whenIdle();
      expect(seenRunning).toMatchObject({ label: 'works', state: 'running', step: 3, totalSteps: 3, message: 'Step 3 of 3', pid: process.pid });
      const runs = Object.fromEntries(listJobRuns(db).map((r) => [r.label, r]));
      expect(runs.works).toMatchObject({ kind: 'generation', state: 'done', message: 'Saved', finishedAt: expect.any(String) });
      expect(runs.breaks).toMatchObject({ state: 'failed', message: 'out of memory' });
      expect(runs.cancelled).toMatchObject({ state: 'cancelled', message: 'Cancelled' });
      expect(getJobRun(db, 'nope')).toBeUndefined();
    } finally {
      db.close();
    }
  });
});
