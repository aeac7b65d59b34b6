// One build command for every bundle: the renderer with Vite (Svelte), the Node-side programs with
// esbuild (Electron main, serve mode, CLI, the ORT worker) and the sandboxed preload as one CJS file.
import { build as viteBuild } from 'vite';
import { build as esbuild } from 'esbuild';
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const quiet = process.argv.includes('--quiet');

/** Entry points of the main-process bundles: output name → source. */
export const MAIN_ENTRIES = {
  electron: 'main/electron/main.ts',
  serve: 'main/serve/main.ts',
  cli: 'main/cli/main.ts',
  'ort-worker': 'main/engine/runtime/ort-worker.ts',
};

async function buildMain() {
  rmSync(join(root, 'out/main'), { recursive: true, force: true });
  await esbuild({
    absWorkingDir: root,
    entryPoints: MAIN_ENTRIES,
    outdir: 'out/main',
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    sourcemap: true,
    logLevel: quiet ? 'warning' : 'info',
    // ESM output still meets CommonJS-only packages that call require(); give them one.
    banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  });
}

async function buildPreload() {
  rmSync(join(root, 'out/preload'), { recursive: true, force: true });
  // A sandboxed preload may only require('electron'): bundle everything else into one CommonJS file.
  await esbuild({
    absWorkingDir: root,
    entryPoints: { index: 'preload/index.ts' },
    outdir: 'out/preload',
    outExtension: { '.js': '.cjs' },
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    external: ['electron'],
    sourcemap: 'inline',
    logLevel: quiet ? 'warning' : 'info',
  });
}

async function buildRenderer() {
  await viteBuild({ root: join(root, 'renderer'), configFile: join(root, 'vite.config.ts'), logLevel: quiet ? 'warn' : 'info' });
}

await Promise.all([buildMain(), buildPreload()]);
await buildRenderer();
