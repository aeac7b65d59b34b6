/**
 * `control canny`: the map the canny ControlNet gets, from a picture, with the app's own code
 * (engine/imaging/canny.ts, bit-exact with OpenCV 4.6.0). The `control` group is returned so that other
 * map makers (depth) can be added to it as subcommands.
 */
import { extname, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { InvalidArgumentError, type Command } from 'commander';
import { CANNY_DEFAULTS, countEdgePixels, edgeMapRgb, type EdgeMapOptions } from '../engine/imaging/canny';
import { decodeRgb, type RgbImage } from '../engine/imaging/decode';
import { writePng } from '../engine/imaging/encode';
import { registerControlDepthSubcommand } from './control-depth';
import type { WriteOut } from './cli-output';

/** The source picture cannot be decoded (missing, corrupt, not an image, too large). */
export class ControlImageError extends Error {
  override name = 'ControlImageError';
}

export interface CannyMapRequest extends EdgeMapOptions {
  image: string;
  out: string;
}

export interface CannyMapReport {
  /** Absolute path of the PNG written. */
  out: string;
  width: number;
  height: number;
  edgePixels: number;
  /** Decode → edges → PNG written. */
  ms: number;
  /** The edge map alone. */
  cannyMs: number;
}

/** Where the command prints: stdout in the CLI, a collector in tests. */

const threshold = (value: string) => {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError('expected a number ≥ 0.');
  return n;
};

/** Decodes the picture, makes its 3-channel 0/255 edge map and writes it atomically as a PNG; nothing is written on failure. */
export async function writeCannyMap(request: CannyMapRequest): Promise<CannyMapReport> {
  const started = performance.now();
  const out = resolve(request.out);
  if (extname(out).toLowerCase() !== '.png') throw new Error(`--out must name a .png file, got ${request.out}`);
  let image: RgbImage;
  try {
    // A photo straight from a camera: upright as the user sees it.
    image = await decodeRgb(resolve(request.image), { honourExifOrientation: true });
  } catch (error) {
    throw new ControlImageError(error instanceof Error ? error.message : String(error), { cause: error });
  }
  const cannyStarted = performance.now();
  const map = edgeMapRgb(image.data, image.width, image.height, request);
  const cannyMs = performance.now() - cannyStarted;
  await writePng(out, { width: image.width, height: image.height, data: map });
  return { out, width: image.width, height: image.height, edgePixels: countEdgePixels(map, 3), ms: performance.now() - started, cannyMs };
}

export function registerControlCommand(program: Command, write: WriteOut = (text) => process.stdout.write(text)): Command {
  const control = program.command('control').description('Make the maps a ControlNet is conditioned on, from a picture.');

  control
    .command('canny')
    .description('Canny edges as the canny ControlNet expects them (OpenCV 4.6.0 cv2.Canny, bit-exact): a 3-channel 0/255 PNG.')
    .requiredOption('--image <file>', 'the source picture (JPEG, PNG, WebP, …); EXIF orientation is applied')
    .requiredOption('--out <file>', 'the edge map to write (.png), atomically')
    .option('--low <n>', 'lower hysteresis threshold', threshold, CANNY_DEFAULTS.low)
    .option('--high <n>', 'upper hysteresis threshold (swapped with --low when smaller)', threshold, CANNY_DEFAULTS.high)
    .option('--l2', 'L2 gradient magnitude √(dx² + dy²) instead of |dx| + |dy|')
    .option('--grayscale', 'detect on the gray luma (cv2.COLOR_RGB2GRAY) instead of the strongest colour channel')
    .option('--json', 'print one JSON line instead of text')
    .action(async (options: { image: string; out: string; low: number; high: number; l2?: boolean; grayscale?: boolean; json?: boolean }) => {
      const report = await writeCannyMap({
        image: options.image,
        out: options.out,
        low: options.low,
        high: options.high,
        l2Gradient: options.l2 === true,
        grayscale: options.grayscale === true,
      });
      write(
        options.json
          ? `${JSON.stringify(report)}\n`
          : `wrote ${report.out}: ${report.width}×${report.height}, ${report.edgePixels} edge pixels, ${report.cannyMs.toFixed(1)} ms for the edges (${report.ms.toFixed(0)} ms in all)\n`,
      );
    });

  registerControlDepthSubcommand(control, write);
  return control;
}
