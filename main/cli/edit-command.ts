/**
 * `invert` and `edit`: the engine's DDIM inversion of a photo and the masked subject-driven edit
 * (pipelines/invert.ts, pipelines/edit.ts; the rules are in docs/edit-reference.md). The photo is fitted
 * to the output size by cover-and-centre-crop, and a mask is fitted the same way, so a mask painted on
 * the photo (at its size) or at the output size both land where they were painted. Outside the
 * feathered mask the result keeps the photo's pixels exactly. Ctrl+C stops within a step, writing nothing.
 */
import type { Command } from 'commander';
import sharp, { type OutputInfo } from 'sharp';
import { writeNpyFile } from '../engine/io/npy-file';
import { decodeRgb, type RgbImage } from '../engine/imaging/decode';
import { coverFit } from '../engine/imaging/cover-fit';
import { writePng } from '../engine/imaging/encode';
import { featherMask } from '../engine/imaging/paste-back';
import { CancelledError } from '../engine/pipelines/engine-context';
import { editImage } from '../engine/pipelines/edit';
import { generationGeometry, GENERATE_DEFAULTS } from '../engine/pipelines/generate';
import { invertImage, INVERSION_DEFAULT_STEPS } from '../engine/pipelines/invert';
import { readLoraForModel, readSubjectEmbeddingFile } from '../engine/pipelines/adapter-files';
import type { ModelFolder } from '../models/model-folder';
import { DEVICE_HELP, withEngine } from './engine-session';
import { ProgressBar } from './progress-bar';
import { interruptOnCtrlC } from './interrupt';
import { integerIn, numberIn } from './option-parsers';

const CANCEL_MESSAGE = 'cancelling after this step (Ctrl+C again to quit at once)';

/** Feathering of the painted mask's edge, in pixels (box-blur radius), when none is given. */
export const DEFAULT_FEATHER_PX = 4;


interface FitOptions {
  model: string;
  image: string;
  width?: number;
  height?: number;
}

/** The photo fitted to the output size (the model's default size unless given). */
async function fittedPhoto(options: FitOptions, model: ModelFolder): Promise<RgbImage> {
  const photo = await decodeRgb(options.image, { honourExifOrientation: true });
  const size = generationGeometry(model, options.height, options.width);
  return coverFit(photo, size.width, size.height);
}

/** The painted mask in [0, 1] at the output size: grey levels / 255, fitted as the photo is. */
export async function readPaintedMask(path: string, photoSize: { width: number; height: number }, width: number, height: number): Promise<Float32Array> {
  let raw: { data: Buffer; info: OutputInfo };
  try {
    raw = await sharp(path).flatten({ background: '#000000' }).greyscale().raw().toBuffer({ resolveWithObject: true });
  } catch (error) {
    throw new Error(`cannot read the mask ${path}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  const grey = { width: raw.info.width, height: raw.info.height, data: new Uint8Array(raw.info.width * raw.info.height * 3) };
  for (let i = 0; i < grey.width * grey.height; i++) grey.data.fill(raw.data[i * raw.info.channels]!, i * 3, i * 3 + 3);
  // A mask of the photo's size (or the output's) is fitted like the photo; any other size is stretched to the photo's first.
  const samePlace = (grey.width === photoSize.width && grey.height === photoSize.height) || (grey.width === width && grey.height === height);
  const placed = samePlace ? grey : coverFit(grey, photoSize.width, photoSize.height);
  const fitted = coverFit(placed, width, height);
  const mask = new Float32Array(width * height);
  for (let i = 0; i < mask.length; i++) mask[i] = fitted.data[i * 3]! / 255;
  return mask;
}

export function registerEditCommands(program: Command): void {
  program
    .command('invert')
    .description('DDIM-invert a photo (VAE encode, then the inverse scheduler as LAVIS’s editing configures it) and write the inverted latents.')
    .requiredOption('--model <dir>', 'a BLIP-Diffusion model folder')
    .requiredOption('--image <img>', 'the photo (fitted to the output size by cover and centre crop)')
    .requiredOption('--subject <word>', 'what the photo shows, e.g. dog (the inversion prompt is "a <word> <prompt>")')
    .option('--prompt <text>', 'the rest of the inversion prompt', '')
    .option('--steps <n>', 'inversion steps', integerIn(1, 1000), INVERSION_DEFAULT_STEPS)
    .option('--width <px>', 'output width (default: the model’s)', integerIn(8, 4096))
    .option('--height <px>', 'output height (default: the model’s)', integerIn(8, 4096))
    .option('--trajectory <npy>', 'also write every step’s latents [steps + 1, C, h, w] (index 0: the encoded photo)')
    .option('--device <name>', DEVICE_HELP, 'auto')
    .requiredOption('--out <npy>', 'the inverted latents [1, C, h, w] (the start of an edit)')
    .action(async (options: FitOptions & { subject: string; prompt: string; steps: number; trajectory?: string; device: string; out: string }, command: Command) => {
      const { dataDir } = command.optsWithGlobals<{ dataDir: string }>();
      const run = interruptOnCtrlC(CANCEL_MESSAGE);
      const bar = new ProgressBar('inverting');
      const started = Date.now();
      try {
        await withEngine(dataDir, options, async (context, model) => {
          const image = await fittedPhoto(options, model);
          const result = await invertImage({ ...context, signal: run.signal }, { model, image, sourceSubject: options.subject, prompt: options.prompt, steps: options.steps }, (p) =>
            bar.update(p.step, p.totalSteps, null, Date.now() - started),
          );
          const last = result.trajectory.at(-1)!;
          const geometry = generationGeometry(model, image.height, image.width);
          const dims = [1, geometry.latentChannels, geometry.latentHeight, geometry.latentWidth];
          writeNpyFile(options.out, { dtype: 'float32', shape: dims, data: last });
          if (options.trajectory !== undefined) {
            const all = new Float32Array(last.length * result.trajectory.length);
            result.trajectory.forEach((latents, k) => all.set(latents, k * last.length));
            writeNpyFile(options.trajectory, { dtype: 'float32', shape: [result.trajectory.length, ...dims.slice(1)], data: all });
          }
          bar.finish(`wrote ${options.out} ([${dims.join(', ')}], ${options.steps} steps on ${result.device})`);
        });
      } catch (error) {
        if (error instanceof CancelledError) {
          bar.finish('cancelled: nothing written');
          process.exitCode = 130;
          return;
        }
        throw error;
      } finally {
        run.stop();
      }
    });

  program
    .command('edit')
    .description('Repaint the masked region of a photo with a subject (DDIM inversion, then the masked subject-driven edit and a feathered paste-back).')
    .requiredOption('--model <dir>', 'a BLIP-Diffusion model folder')
    .requiredOption('--image <img>', 'the photo to edit (fitted to the output size by cover and centre crop)')
    .requiredOption('--mask <png>', 'where to repaint: white = repaint, black = keep (grey levels blend); at the photo’s size or the output size')
    .option('--reference <img>', 'a photo of the subject to paint in (zero-shot)')
    .option('--embedding <npy>', 'a subject embedding [1, 16, hidden] (e.g. from finetune) instead of --reference')
    .requiredOption('--subject <word>', 'the subject’s category word, e.g. dog')
    .option('--source-subject <word>', 'what the photo shows where the mask is (default: --subject)')
    .requiredOption('--prompt <text>', 'the scene, e.g. "on a sofa"')
    .option('--negative <text>', 'negative prompt', '')
    .option('--steps <n>', 'steps', integerIn(1, 1000), GENERATE_DEFAULTS.steps)
    .option('--guidance <g>', 'classifier-free guidance scale', numberIn(0, 100), GENERATE_DEFAULTS.guidanceScale)
    .option('--strength <s>', 'how much of the trajectory is re-noised and repainted (0 … 1]', numberIn(0.001, 1), 1)
    .option('--feather <px>', 'soften the mask’s edge over this many pixels', integerIn(0, 256), DEFAULT_FEATHER_PX)
    .option('--lora <file>', 'a LoRA (e.g. the subject’s fine-tune), applied in the inversion and the edit')
    .option('--lora-scale <s>', 'the LoRA’s strength', numberIn(-100, 100), 1)
    .option('--width <px>', 'output width (default: the model’s)', integerIn(8, 4096))
    .option('--height <px>', 'output height (default: the model’s)', integerIn(8, 4096))
    .option('--device <name>', DEVICE_HELP, 'auto')
    .requiredOption('--out <png>', 'the edited photo')
    .action(
      async (
        options: FitOptions & {
          mask: string;
          reference?: string;
          embedding?: string;
          subject: string;
          sourceSubject?: string;
          prompt: string;
          negative: string;
          steps: number;
          guidance: number;
          strength: number;
          feather: number;
          lora?: string;
          loraScale: number;
          device: string;
          out: string;
        },
        command: Command,
      ) => {
        const { dataDir } = command.optsWithGlobals<{ dataDir: string }>();
        if ((options.reference === undefined) === (options.embedding === undefined)) throw new Error('give the subject as --reference IMG or --embedding NPY (one of them)');
        const run = interruptOnCtrlC(CANCEL_MESSAGE);
        const bar = new ProgressBar('editing');
        const started = Date.now();
        try {
          await withEngine(dataDir, options, async (context, model) => {
            const photo = await decodeRgb(options.image, { honourExifOrientation: true });
            const size = generationGeometry(model, options.height, options.width);
            const source = coverFit(photo, size.width, size.height);
            const painted = await readPaintedMask(options.mask, photo, size.width, size.height);
            const coverage = painted.reduce((sum, v) => sum + v, 0) / painted.length;
            if (coverage === 0) throw new Error(`the mask ${options.mask} is empty: paint a region first (white = repaint)`);
            if (painted.every((v) => v === 1)) process.stderr.write('note: the mask covers the whole photo: this is a plain generation from the inverted photo\n');
            const mask = featherMask(painted, size.width, size.height, options.feather);
            const result = await editImage(
              { ...context, signal: run.signal },
              {
                model,
                source,
                mask,
                subject: options.reference !== undefined ? { image: { path: options.reference }, category: options.subject } : { embedding: readSubjectEmbeddingFile(options.embedding!, model) },
                targetSubject: options.subject,
                ...(options.sourceSubject !== undefined ? { sourceSubject: options.sourceSubject } : {}),
                prompt: options.prompt,
                negativePrompt: options.negative,
                steps: options.steps,
                guidanceScale: options.guidance,
                strength: options.strength,
                ...(options.lora !== undefined ? { lora: { weights: readLoraForModel(options.lora, model).lora, scale: options.loraScale } } : {}),
              },
              {
                onInversionProgress: (p) => bar.update(p.step, p.totalSteps * 2, null, Date.now() - started),
                onProgress: (p) => bar.update(p.totalSteps + p.step, p.totalSteps * 2, p.etaMs, Date.now() - started),
              },
            );
            await writePng(options.out, result.pasted);
            bar.finish(`wrote ${options.out} (${result.width}×${result.height}, ${Math.round(coverage * 100)} % repainted, on ${result.device})`);
          });
        } catch (error) {
          if (error instanceof CancelledError) {
            bar.finish('cancelled: no image written');
            process.exitCode = 130;
            return;
          }
          throw error;
        } finally {
          run.stop();
        }
      },
    );
}
