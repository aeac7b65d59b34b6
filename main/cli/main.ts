/**
 * The headless CLI over the same main-process code as the app: `npm run cli -- <command>` or
 * `node out/main/cli.js <command>`. Each command has `--help`; `--json` prints machine-readable output.
 */
import { Command } from 'commander';
import packageJson from '../../package.json' with { type: 'json' };
import { defaultDataDir } from '../app-paths';
import { registerInfoCommand } from './info-command';
import { registerBenchCommand } from './bench-command';
import { registerInspectCommand } from './inspect-command';
import { registerEmbedCommand } from './embed-command';
import { registerEncodePromptCommand } from './encode-prompt-command';
import { registerGenerateCommand } from './generate-command';
import { registerModelsCommand } from './models-command';
import { registerMakeTinyModelCommand } from './make-tiny-model-command';
import { registerSubjectsCommand } from './subjects-command';
import { registerRecipeCommand } from './recipe-command';
import { registerReproduceCommand } from './reproduce-command';
import { registerFinetuneCommand } from './finetune-command';
import { registerEditCommands } from './edit-command';
import { registerControlCommand } from './control-command';

const program = new Command('blip-studio')
  .description('BLIP Studio command line: the studio engine and library without the window.')
  .version(packageJson.version)
  .option('--data-dir <dir>', 'the app data folder (library, photos, results)', defaultDataDir())
  .showHelpAfterError()
  .configureHelp({ showGlobalOptions: true });

registerInfoCommand(program);
registerInspectCommand(program);
registerEmbedCommand(program);
registerEncodePromptCommand(program);
registerGenerateCommand(program);
registerFinetuneCommand(program);
registerEditCommands(program);
registerModelsCommand(program);
registerRecipeCommand(program);
registerReproduceCommand(program);
registerMakeTinyModelCommand(program);
registerBenchCommand(program);
registerSubjectsCommand(program);
registerControlCommand(program);

try {
  await program.parseAsync();
} catch (error) {
  process.stderr.write(`blip-studio: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
}
