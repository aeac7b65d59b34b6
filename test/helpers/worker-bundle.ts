import { build } from 'esbuild';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './built-app';
import { RuntimeClient } from '../../main/engine/runtime/runtime-client';

/**
 * Bundles the ORT worker from the current sources (same esbuild options as scripts/build.mjs), so unit
 * tests never run a stale out/main. The folder sits inside the repo so `onnxruntime-node` resolves.
 */
export async function bundleWorkerForTest(): Promise<{ file: string; remove(): void }> {
  mkdirSync(join(REPO_ROOT, 'out/test'), { recursive: true });
  const dir = mkdtempSync(join(REPO_ROOT, 'out/test/ort-worker-'));
  const file = join(dir, 'ort-worker.js');
  await build({
    absWorkingDir: REPO_ROOT,
    entryPoints: ['main/engine/runtime/ort-worker.ts'],
    outfile: file,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    logLevel: 'warning',
    banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  });
  return { file, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A RuntimeClient over a freshly bundled worker, and the cleanup of both. */
export async function startTestRuntime(): Promise<{ runtime: RuntimeClient; stop(): Promise<void> }> {
  const bundle = await bundleWorkerForTest();
  const runtime = RuntimeClient.start({ workerFile: bundle.file });
  return {
    runtime,
    stop: async () => {
      await runtime.close();
      bundle.remove();
    },
  };
}
