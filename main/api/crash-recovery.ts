/**
 * What opening a data folder does first: work cut short by a crash or `kill -9` (a photo import, an
 * embeddings job, a generation) is marked failed with a reason, half an import is rolled back, and files
 * no row names (a photo or result written just before the crash, leftover `.partial` files) are swept.
 */
import type { Database } from 'better-sqlite3';
import { GenerationsStore } from '../gallery/generations-store';
import { hasLiveJobRuns, type JobRun } from '../library/job-journal';
import { SubjectService, UNDO_WINDOW_MS } from '../library/subject-service';

export interface CrashRecovery {
  /** The journalled runs found interrupted, now marked failed. */
  failedJobs: JobRun[];
  /** Data-folder-relative files removed because no row named them. */
  removedFiles: string[];
}

export function recoverInterruptedWork(db: Database, dataDir: string): CrashRecovery {
  const startedAtMs = Date.now();
  const subjects = new SubjectService(db, dataDir).recoverInterruptedWork();
  // Deletions whose undo window passed while the app was closed.
  new GenerationsStore(db, dataDir).purgeDeleted(UNDO_WINDOW_MS);
  // Another app or CLI instance still working on this folder may be about to commit a result: leave them.
  const results = hasLiveJobRuns(db) ? [] : new GenerationsStore(db, dataDir).sweepOrphanFiles(startedAtMs);
  return { failedJobs: subjects.failedJobs, removedFiles: [...subjects.removedFiles, ...results] };
}
