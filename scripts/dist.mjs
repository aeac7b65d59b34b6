// `npm run dist [-- electron-builder args]`: package the app. electron-builder's npmRebuild rebuilds
// better-sqlite3 for Electron in place, in node_modules/, which would leave tests, the CLI and serve
// mode with an add-on built for the wrong ABI. Node's build is kept aside while packaging and put back
// afterwards, however packaging ends.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { root } from './electron-support.mjs';

const nodeBuild = join(root, 'node_modules/better-sqlite3/build');
const keptBuild = join(root, 'node_modules/.cache/blip-studio/better-sqlite3-node-build');

if (!existsSync(nodeBuild)) {
  console.error('npm run dist: node_modules/better-sqlite3/build is missing; run `npm rebuild better-sqlite3` first.');
  process.exit(1);
}
rmSync(keptBuild, { recursive: true, force: true });
cpSync(nodeBuild, keptBuild, { recursive: true });

// Ctrl+C reaches electron-builder directly; this process stays to restore the build.
process.on('SIGINT', () => undefined);
let result;
try {
  result = spawnSync(process.execPath, [join(root, 'node_modules/electron-builder/cli.js'), ...process.argv.slice(2)], { cwd: root, stdio: 'inherit' });
} finally {
  rmSync(nodeBuild, { recursive: true, force: true });
  renameSync(keptBuild, nodeBuild);
}
process.exit(result.status ?? 1);
