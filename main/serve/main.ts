/**
 * `npm run serve -- --data-dir D [--port P]`: runs the studio headless and serves the UI on
 * 127.0.0.1 (for UI tests here, and for a studio on a remote GPU box reached through an SSH tunnel).
 */
import { Command, InvalidArgumentError } from 'commander';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openStudio } from '../api/studio';
import { defaultDataDir } from '../app-paths';
import { startServer } from './server';

function parsePort(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new InvalidArgumentError('expected a port number between 0 and 65535.');
  return port;
}

const program = new Command('blip-studio-serve')
  .description('Serve BLIP Studio to a browser on this machine (127.0.0.1 only, guarded by a per-run token).')
  .option('--data-dir <dir>', 'the app data folder (library, photos, results)', defaultDataDir())
  .option('--port <port>', 'port to listen on (0 picks a free one)', parsePort, 0)
  .showHelpAfterError();

program.parse();
const options = program.opts<{ dataDir: string; port: number }>();

const rendererDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'renderer');
const studio = await openStudio({ dataDir: options.dataDir, mode: 'serve' });
const server = await startServer({ studio, rendererDir, port: options.port });

process.stdout.write(
  `BLIP Studio serve mode\n  data folder: ${studio.dataDir}\n  open:        ${server.openUrl}\n` +
    '  Only this machine can connect (127.0.0.1). From another computer, use an SSH tunnel.\n  Press Ctrl+C to stop.\n',
);

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await server.close();
  await studio.close();
  process.exit(0);
}
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
