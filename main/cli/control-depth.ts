/**
 * `control depth`: the map the depth ControlNet gets, from a picture, with the app's own pipeline
 * (engine/pipelines/depth-map.ts: DPT preprocessing, Depth Anything, bicubic resize to the picture's
 * size, min-max 0..255), written as a 3-channel PNG, atomically.
 */
import { extname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Command } from 'commander';
import { decodeRgb } from '../engine/imaging/decode';
import { grayToRgb } from '../engine/imaging/depth-preprocess';
import { writePng } from '../engine/imaging/encode';
import { estimateDepthMap } from '../engine/pipelines/depth-map';
import { resolveDevice, type EngineContext } from '../engine/pipelines/engine-context';
import { RuntimeClient } from '../engine/runtime/runtime-client';
import type { WriteOut } from './cli-output';
import { DEVICE_HELP } from './engine-session';

export interface DepthMapRequest {
  image: string;
  out: string;
  /** The depth estimator's folder (config.json, model.safetensors, preprocessor_config.json). */
  model: string;
  device: string;
  /** The app data folder: its cache/ keeps built graphs (and converted weights). */
  dataDir: string;
  /** An ORT worker to use (left running); by default one is started for the call and closed after it. */
  runtime?: RuntimeClient;
}

export interface DepthMapReport {
  /** Absolute path of the PNG written. */
  out: string;
  width: number;
  height: number;
  /** The provider the estimator ran on. */
  device: string;
  /** Decode → depth map → PNG written. */
  ms: number;
  /** The depth estimate alone (graph from the cache or built, session, run, post-processing). */
  depthMs: number;
}

/** Decodes the picture, estimates its depth map and writes it (3 channels) atomically as a PNG; nothing is written on failure. */
export async function writeDepthMap(request: DepthMapRequest, onNote: (note: string) => void = () => {}): Promise<DepthMapReport> {
  const started = performance.now();
  const out = resolve(request.out);
  if (extname(out).toLowerCase() !== '.png') throw new Error(`--out must name a .png file, got ${request.out}`);
  // A photo straight from a camera: upright as the user sees it (as `control canny`). Its errors name the file.
  const image = await decodeRgb(resolve(request.image), { honourExifOrientation: true });
  const runtime = request.runtime ?? RuntimeClient.start();
  const notes = new Set<string>();
  const context: EngineContext = {
    runtime,
    device: request.device,
    cacheDir: join(request.dataDir, 'cache'),
    onDeviceNote: (note) => {
      if (notes.has(note)) return;
      notes.add(note);
      onNote(note);
    },
  };
  try {
    const device = await resolveDevice(context);
    const depthStarted = performance.now();
    const map = await estimateDepthMap({ ...context, device }, { dir: resolve(request.model) }, image);
    const depthMs = performance.now() - depthStarted;
    await writePng(out, grayToRgb(map));
    return { out, width: map.width, height: map.height, device, ms: performance.now() - started, depthMs };
  } finally {
    if (!request.runtime) await runtime.close();
  }
}

/** Adds `depth` to the `control` command group. */
export function registerControlDepthSubcommand(control: Command, write: WriteOut = (text) => process.stdout.write(text)): void {
  control
    .command('depth')
    .description('A depth map as the depth ControlNet expects it (Depth Anything, min-max 0..255, near is bright): a 3-channel PNG at the picture’s size.')
    .requiredOption('--image <file>', 'the source picture (JPEG, PNG, WebP, …); EXIF orientation is applied')
    .requiredOption('--out <file>', 'the depth map to write (.png), atomically')
    .requiredOption('--model <dir>', 'a Depth Anything folder as transformers saves it (config.json, model.safetensors, preprocessor_config.json), e.g. depth-anything/Depth-Anything-V2-Small-hf')
    .option('--device <name>', DEVICE_HELP, 'auto')
    .option('--json', 'print one JSON line instead of text')
    .action(async (options: { image: string; out: string; model: string; device: string; json?: boolean }, command: Command) => {
      const { dataDir } = command.optsWithGlobals<{ dataDir: string }>();
      const report = await writeDepthMap({ image: options.image, out: options.out, model: options.model, device: options.device, dataDir }, (note) => process.stderr.write(`note: ${note}\n`));
      write(
        options.json
          ? `${JSON.stringify(report)}\n`
          : `wrote ${report.out}: ${report.width}×${report.height} depth map on ${report.device}, ${report.depthMs.toFixed(0)} ms for the depth (${report.ms.toFixed(0)} ms in all)\n`,
      );
    });
}
