// Builds the app when out/ is missing or older than any source file, so `npm run cli` / `npm run serve`
// always run current code on a fresh clone without a separate build step.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outputs = ['out/main/electron.js', 'out/main/cli.js', 'out/main/serve.js', 'out/main/ort-worker.js', 'out/preload/index.cjs', 'out/renderer/index.html'];
const sources = ['main', 'preload', 'renderer', 'resources', 'package.json', 'vite.config.ts', 'scripts/build.mjs'];

function newestMtime(path) {
  const full = join(root, path);
  if (!existsSync(full)) return 0;
  const stat = statSync(full);
  if (!stat.isDirectory()) return stat.mtimeMs;
  let newest = 0;
  for (const entry of readdirSync(full)) newest = Math.max(newest, newestMtime(join(path, entry)));
  return newest;
}

const oldestOutput = Math.min(...outputs.map((p) => (existsSync(join(root, p)) ? statSync(join(root, p)).mtimeMs : 0)));
if (oldestOutput < Math.max(...sources.map(newestMtime))) {
  const result = spawnSync(process.execPath, [join(root, 'scripts/build.mjs'), '--quiet'], { stdio: ['ignore', 2, 2] });
  if (result.status !== 0) process.exit(result.status ?? 1);
}
