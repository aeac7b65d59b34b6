// Helpers shared by `npm start` and postinstall: the Electron binary, and better-sqlite3 built for
// Electron's ABI next to (never over) the Node build.
//
// Two ABIs: better-sqlite3 is a classic native add-on, compiled against one NODE_MODULE_VERSION. The
// copy in node_modules/better-sqlite3 stays built for the system Node (tests, CLI, serve mode). For
// Electron, a private copy of the package is rebuilt once per Electron / better-sqlite3 version under
// node_modules/.cache/blip-studio/, and `npm start` hands its path to the app in BLIP_SQLITE_BINDING
// (passed to better-sqlite3 as `nativeBinding`). Packaged apps need neither: electron-builder rebuilds
// the add-on for Electron while packaging (scripts/dist.mjs puts Node's build back afterwards).
// onnxruntime-node and sharp use N-API (ABI-stable) and run in both unchanged.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const electronDir = join(root, 'node_modules/electron');
const sqliteDir = join(root, 'node_modules/better-sqlite3');

/** The environment variable through which the app finds the Electron build of better-sqlite3. */
export const SQLITE_BINDING_ENV = 'BLIP_SQLITE_BINDING';

function packageVersion(dir) {
  return JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).version;
}

export function electronVersion() {
  return packageVersion(electronDir);
}

/**
 * Runs electron's own install.js (it downloads the binary unless it is already there).
 * Returns { ok: true } or { ok: false, detail } with the installer's last error line.
 */
export function installElectronBinary({ timeoutMs }) {
  const result = spawnSync(process.execPath, [join(electronDir, 'install.js')], {
    cwd: electronDir,
    stdio: ['ignore', 'ignore', 'pipe'],
    encoding: 'utf8',
    timeout: timeoutMs,
  });
  if (result.status === 0) return { ok: true };
  const firstLine = (result.stderr ?? '').trim().split('\n').find((line) => line.trim() !== '') ?? '';
  const detail = result.error?.code === 'ETIMEDOUT' ? `timed out after ${Math.round(timeoutMs / 1000)} s` : firstLine;
  return { ok: false, detail };
}

/** Path of the Electron executable that install.js unpacked, or null when it is missing. */
export function electronExecutable() {
  const pathFile = join(electronDir, 'path.txt');
  if (!existsSync(pathFile)) return null;
  const executable = join(electronDir, 'dist', readFileSync(pathFile, 'utf8').trim());
  return existsSync(executable) ? executable : null;
}

/**
 * The better-sqlite3 add-on built for this Electron, building it on first use (a prebuilt download
 * when online, else a compile against Electron's headers). Returns the .node file's path.
 */
export async function ensureSqliteForElectron(log) {
  const key = `electron-${electronVersion()}-${process.platform}-${process.arch}-better-sqlite3-${packageVersion(sqliteDir)}`;
  const cacheDir = join(root, 'node_modules/.cache/blip-studio/native', key);
  const bindingIn = (dir) => join(dir, 'node_modules/better-sqlite3/build/Release/better_sqlite3.node');
  if (existsSync(bindingIn(cacheDir))) return bindingIn(cacheDir);

  log(`Building better-sqlite3 for Electron ${electronVersion()} (first start only)...`);
  const workDir = `${cacheDir}.partial-${process.pid}`;
  rmSync(workDir, { recursive: true, force: true });
  mkdirSync(join(workDir, 'node_modules'), { recursive: true });
  writeFileSync(join(workDir, 'package.json'), JSON.stringify({ name: 'blip-studio-electron-native', private: true, dependencies: { 'better-sqlite3': packageVersion(sqliteDir) } }));
  // Sources only: the Node build under build/ must not be copied (or mistaken for an Electron one).
  const nodeBuildDir = join(sqliteDir, 'build');
  cpSync(sqliteDir, join(workDir, 'node_modules/better-sqlite3'), {
    recursive: true,
    filter: (source) => source !== nodeBuildDir && !source.startsWith(nodeBuildDir + sep),
  });
  try {
    const { rebuild } = await import('@electron/rebuild');
    await rebuild({ buildPath: workDir, electronVersion: electronVersion(), onlyModules: ['better-sqlite3'], force: true });
    if (!existsSync(bindingIn(workDir))) throw new Error('the rebuild finished without producing better_sqlite3.node');
    rmSync(cacheDir, { recursive: true, force: true });
    renameSync(workDir, cacheDir);
  } catch (error) {
    rmSync(workDir, { recursive: true, force: true });
    throw error;
  }
  return bindingIn(cacheDir);
}
