// `npm start [-- --data-dir D]`: build if sources changed, make sure the Electron binary and the
// Electron build of better-sqlite3 are there (see electron-support.mjs for the two ABIs), then run the
// app and exit with its exit code.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import { SQLITE_BINDING_ENV, electronExecutable, electronVersion, ensureSqliteForElectron, installElectronBinary, root } from './electron-support.mjs';

const DOWNLOAD_TIMEOUT_MS = 15 * 60_000;

function fail(message) {
  console.error(`npm start: ${message}`);
  process.exit(1);
}

function runNodeScript(script, args = []) {
  const result = spawnSync(process.execPath, [join(root, script), ...args], { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) process.exit(result.status ?? 1);
}

runNodeScript('scripts/ensure-built.mjs');
if (!existsSync(join(root, 'out/main/electron.js'))) runNodeScript('scripts/build.mjs', ['--quiet']);

// install.js returns at once when the right version is already unpacked, and replaces a stale one.
if (electronExecutable() === null) console.log(`Downloading Electron ${electronVersion()}...`);
const install = installElectronBinary({ timeoutMs: DOWNLOAD_TIMEOUT_MS });
const executable = electronExecutable();
if (!install.ok || executable === null) {
  fail(
    `the Electron binary is missing and could not be downloaded${install.ok ? '' : ` (${install.detail})`}.\n` +
      'Connect to the internet and run `npm start` again (behind a proxy or mirror, see ELECTRON_MIRROR in the Electron docs).\n' +
      'Without Electron you can still use the browser UI (`npm run serve`) and the CLI (`npm run cli`).',
  );
}

let sqliteBinding;
try {
  sqliteBinding = await ensureSqliteForElectron((line) => console.log(line));
} catch (error) {
  fail(
    `could not build better-sqlite3 for Electron ${electronVersion()}: ${error instanceof Error ? error.message : String(error)}\n` +
      'This needs either the internet (prebuilt download) or a C++ toolchain plus the internet once for Electron headers (node-gyp).',
  );
}

// ELECTRON_RUN_AS_NODE (set by some editors' terminals) would make Electron run as plain Node.
const { ELECTRON_RUN_AS_NODE: _ignored, ...inherited } = process.env;
const child = spawn(executable, ['.', ...process.argv.slice(2)], {
  cwd: root,
  stdio: 'inherit',
  env: { ...inherited, [SQLITE_BINDING_ENV]: sqliteBinding },
});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
child.on('error', (error) => fail(`could not run Electron: ${error.message}`));
// Like a shell: a child killed by a signal exits 128 + the signal's number.
child.on('exit', (code, signal) => process.exit(code ?? 128 + (constants.signals[signal] ?? 0)));
