/**
 * `subjects add|list|remove`: the subject library from the command line, over the same library code
 * as the app (import with per-file refusals, cached embeddings, crash recovery at open).
 */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { RejectedPhoto, SubjectDetail, SubjectSort, SubjectSummary } from '../api/contract';
import { LibraryStore } from '../library/library-store';
import { SubjectService } from '../library/subject-service';
import { computeSubjectEmbeddingsWithEngine } from '../library/subject-embeddings';
import { loadModelFolder } from '../models/model-folder';
import { DEVICE_HELP, withEngine } from './engine-session';
import { ProgressBar } from './progress-bar';

interface AddOptions {
  model?: string;
  name: string;
  category: string;
  note?: string;
  device: string;
  json?: boolean;
}

interface ListOptions {
  json?: boolean;
  search?: string;
  sort: string;
}

export interface SubjectAddReport {
  subject: SubjectDetail;
  rejected: RejectedPhoto[];
  embeddings: { modelHash: string; computed: number; cached: number; dims: number[] } | null;
}

export function registerSubjectsCommand(program: Command): void {
  const subjects = program.command('subjects').description('Manage the subject library: subjects made from a few photos each.');

  subjects
    .command('add')
    .description('Create a subject from 1-10 photos and (with --model) compute its cached subject embeddings.')
    .argument('<photos...>', 'photo files (JPEG, PNG, WebP); unusable ones are refused one by one with a reason')
    .requiredOption('--name <name>', 'the subject’s name, e.g. "Rex"')
    .requiredOption('--category <word>', 'the category word, e.g. dog or backpack')
    .option('--note <text>', 'a free note')
    .option('--model <dir>', 'a BLIP-Diffusion model folder: compute the embeddings now')
    .option('--device <name>', DEVICE_HELP, 'auto')
    .option('--json', 'print one JSON object instead of text')
    .action(async (photos: string[], options: AddOptions, command: Command) => {
      const { dataDir } = command.optsWithGlobals<{ dataDir: string }>();
      // A wrong model folder fails before any photo is imported.
      if (options.model !== undefined) loadModelFolder(options.model);
      await withLibrary(dataDir, async (library, service) => {
        const importBar = new ProgressBar('importing');
        const started = Date.now();
        const imported = await service.importSubject(
          { name: options.name, category: options.category, ...(options.note !== undefined ? { note: options.note } : {}) },
          photos.map((path) => ({ path: resolve(path) })),
          { onProgress: ({ done, total }) => importBar.update(done, total, etaOf(started, done, total), Date.now() - started) },
        );
        importBar.finish(`imported ${imported.added.length} of ${photos.length} photos into "${imported.subject.name}" (id ${imported.subject.id})`);
        for (const rejected of imported.rejected) process.stderr.write(`refused ${rejected.name}: ${rejected.reason}\n`);

        let embeddings: SubjectAddReport['embeddings'] = null;
        if (options.model !== undefined) {
          const bar = new ProgressBar('embedding');
          const embedStarted = Date.now();
          const result = await withEngine(dataDir, { model: options.model, device: options.device }, (context, model) =>
            computeSubjectEmbeddingsWithEngine(library.connection, dataDir, context, model, imported.subject.id, {
              onProgress: ({ done, total }) => bar.update(done, total, etaOf(embedStarted, done, total), Date.now() - embedStarted),
            }),
          );
          bar.finish(`subject embeddings: ${result.computed} computed, ${result.cached} from the cache`);
          embeddings = { modelHash: result.modelHash, computed: result.computed, cached: result.cached, dims: [...result.mean.dims] };
        }
        const report: SubjectAddReport = { subject: service.getSubject(imported.subject.id), rejected: imported.rejected, embeddings };
        if (options.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
        else process.stdout.write(`${formatSubjects([report.subject])}`);
      });
    });

  subjects
    .command('list')
    .description('List the subjects.')
    .option('--search <text>', 'only subjects whose name or category contains this text')
    .option('--sort <order>', 'name or recent', 'recent')
    .option('--json', 'print a JSON array instead of text')
    .action(async (options: ListOptions, command: Command) => {
      const { dataDir } = command.optsWithGlobals<{ dataDir: string }>();
      if (options.sort !== 'name' && options.sort !== 'recent') throw new Error(`--sort must be name or recent, not "${options.sort}"`);
      const sort: SubjectSort = options.sort;
      await withLibrary(dataDir, async (library) => {
        const list = library.listSubjects({ sort, ...(options.search !== undefined ? { search: options.search } : {}) });
        process.stdout.write(options.json ? `${JSON.stringify(list, null, 2)}\n` : formatSubjects(list));
      });
    });

  subjects
    .command('remove')
    .description('Delete a subject with its photos and embeddings (at once: the command line has no undo).')
    .argument('<subject>', 'the subject’s id, or its name when only one subject has it')
    .option('--json', 'print the removed subject as JSON')
    .action(async (nameOrId: string, options: { json?: boolean }, command: Command) => {
      const { dataDir } = command.optsWithGlobals<{ dataDir: string }>();
      await withLibrary(dataDir, async (_library, service) => {
        const subject = service.resolveSubject(nameOrId);
        service.deleteSubjectNow(subject.id);
        if (options.json) process.stdout.write(`${JSON.stringify({ removed: { id: subject.id, name: subject.name } })}\n`);
        else process.stdout.write(`removed "${subject.name}" (id ${subject.id}) with its ${subject.photoCount} photos\n`);
      });
    });
}

/** Opens the library, recovers from an earlier crash (telling the user), runs `work`, closes. */
async function withLibrary(dataDir: string, work: (library: LibraryStore, service: SubjectService) => Promise<void>): Promise<void> {
  const library = LibraryStore.open(dataDir);
  try {
    const service = new SubjectService(library.connection, dataDir);
    const recovery = service.recoverInterruptedWork();
    for (const job of recovery.failedJobs) process.stderr.write(`note: "${job.label}" was interrupted earlier and is marked failed: run it again.\n`);
    await work(library, service);
  } finally {
    library.close();
  }
}

function etaOf(startedMs: number, done: number, total: number): number | null {
  return done > 0 ? Math.round(((Date.now() - startedMs) / done) * (total - done)) : null;
}

function formatSubjects(subjects: readonly SubjectSummary[]): string {
  if (subjects.length === 0) return 'no subjects\n';
  const lines = subjects.map((s) => `${String(s.id).padStart(4)}  ${s.name.padEnd(24)} ${s.category.padEnd(14)} ${String(s.photoCount).padStart(2)} photos  ${s.updatedAt}`);
  return `${['  id  name                     category       photos     updated', ...lines].join('\n')}\n`;
}
