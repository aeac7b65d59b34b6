/**
 * `models list | add DIR | download REPO --to DIR`: the library's models from the command line. Adding
 * checks the folder (every tensor its configs imply, nothing unused) and fingerprints it; downloading
 * resumes where a previous run stopped (Ctrl+C pauses) and adds the result.
 */
import type { Command } from 'commander';
import { resolve } from 'node:path';
import { openStudio } from '../api/studio';
import { BLIP_DIFFUSION_REPOS, DEFAULT_HUB_URL, downloadRepo, HubDownloadError } from '../models/hub-download';
import { installModelFolder } from '../models/model-install';
import { openDatabase } from '../library/database';
import { ProgressBar } from './progress-bar';

/** The same check, fingerprint and registration as the app's "Add a folder you have". */
async function addModel(dataDir: string, folder: string, name?: string): Promise<void> {
  const db = openDatabase(dataDir);
  try {
    const { folder: model, hash } = await installModelFolder(db, folder, { dataDir, ...(name !== undefined ? { name } : {}) });
    process.stderr.write(`added ${model.dir} (${model.pipelineClass}, ${hash.slice(0, 12)}…)\n`);
  } finally {
    db.close();
  }
}

export function registerModelsCommand(program: Command): void {
  const models = program.command('models').description('The models in the library: list, add a folder you have, download from the Hugging Face hub.');

  models
    .command('list')
    .description('List the library’s models.')
    .option('--json', 'print JSON')
    .action(async (options: { json?: boolean }, command: Command) => {
      const { dataDir } = command.optsWithGlobals<{ dataDir: string }>();
      const studio = await openStudio({ dataDir, mode: 'cli' });
      try {
        const list = await studio.api.listModels();
        process.stdout.write(
          options.json ? `${JSON.stringify(list, null, 2)}\n` : list.map((m) => `${String(m.id).padStart(3)}  ${m.name}${m.isDemo ? ' (demo)' : ''}  ${m.status}  ${m.folder}`).join('\n') + '\n',
        );
      } finally {
        await studio.close();
      }
    });

  models
    .command('add')
    .description('Add a diffusers model folder you already have (safetensors or .bin), after checking it.')
    .argument('<dir>', 'the model folder (the one with model_index.json)')
    .action(async (dir: string, _options: unknown, command: Command) => {
      const { dataDir } = command.optsWithGlobals<{ dataDir: string }>();
      await addModel(dataDir, resolve(dir));
    });

  models
    .command('download')
    .description(`Download a model from the hub (${BLIP_DIFFUSION_REPOS.join(', ')}), resuming a previous run; Ctrl+C pauses.`)
    .argument('<repo>', 'hub repository, e.g. Salesforce/blipdiffusion')
    .requiredOption('--to <dir>', 'the folder to download into')
    .option('--base-url <url>', 'hub or mirror URL', DEFAULT_HUB_URL)
    .option('--revision <rev>', 'branch, tag or commit', 'main')
    .action(async (repo: string, options: { to: string; baseUrl: string; revision: string }, command: Command) => {
      const { dataDir } = command.optsWithGlobals<{ dataDir: string }>();
      const controller = new AbortController();
      const pause = () => controller.abort();
      process.on('SIGINT', pause);
      const bar = new ProgressBar('downloading');
      const started = Date.now();
      try {
        await downloadRepo({
          baseUrl: options.baseUrl,
          repo,
          revision: options.revision,
          targetDir: resolve(options.to),
          signal: controller.signal,
          onProgress: (p) => {
            const elapsed = Date.now() - started;
            const eta = p.bytesDone > 0 ? (elapsed / p.bytesDone) * (p.bytesTotal - p.bytesDone) : null;
            bar.update(Math.round((p.bytesDone / Math.max(1, p.bytesTotal)) * 100), 100, eta, elapsed);
          },
        });
        bar.finish(`downloaded ${repo} into ${options.to}`);
      } catch (error) {
        if (error instanceof HubDownloadError && error.kind === 'paused') {
          bar.finish('paused: run the same command again to resume');
          process.exitCode = 130;
          return;
        }
        throw error;
      } finally {
        process.off('SIGINT', pause);
      }
      await addModel(dataDir, resolve(options.to));
    });
}
