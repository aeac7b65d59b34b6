/**
 * Shared set-up for CLI commands that run the engine: the model folder, the ORT worker, the caches in
 * the data folder, device notes on stderr, and a clean shutdown whatever happens.
 */
import { join } from 'node:path';
import { RuntimeClient } from '../engine/runtime/runtime-client';
import type { EngineContext } from '../engine/pipelines/engine-context';
import { loadModelFolder, type ModelFolder } from '../models/model-folder';

export interface EngineOptions {
  model: string;
  device: string;
  threads?: number;
}

export const DEVICE_HELP = 'execution provider: auto, cpu, webgpu, cuda, dml, coreml';

export async function withEngine<T>(dataDir: string, options: EngineOptions, work: (context: EngineContext, model: ModelFolder) => Promise<T>): Promise<T> {
  const model = loadModelFolder(options.model);
  const runtime = RuntimeClient.start({ threads: options.threads ?? 0 });
  const notes = new Set<string>();
  const context: EngineContext = {
    runtime,
    device: options.device,
    cacheDir: join(dataDir, 'cache'),
    onDeviceNote: (note) => {
      if (notes.has(note)) return;
      notes.add(note);
      process.stderr.write(`note: ${note}\n`);
    },
  };
  try {
    return await work(context, model);
  } finally {
    await runtime.close();
  }
}
