import { InvalidArgumentError, type Command } from 'commander';
import { randomInt } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { toFloat32 } from '../engine/io/npy';
import { readNpyFile, writeNpyFile } from '../engine/io/npy-file';
import { floatImageToRgb, writePng } from '../engine/imaging/encode';
import { generate, GENERATE_DEFAULTS, type GenerateRequest, type ImageInput } from '../engine/pipelines/generate';
import { CancelledError } from '../engine/pipelines/engine-context';
import { SCHEDULER_NAMES, type SchedulerName } from '../api/contract';
import { DEVICE_HELP, withEngine } from './engine-session';
import { readPixelTensor } from './npy-inputs';
import { ProgressBar } from './progress-bar';

interface GenerateOptions {
  model: string;
  reference?: string;
  referencePixels?: string;
  subject: string;
  target?: string;
  prompt: string;
  negative: string;
  steps: number;
  guidance: number;
  height?: number;
  width?: number;
  seed?: bigint;
  latents?: string;
  scheduler: SchedulerName;
  control?: string;
  controlPixels?: string;
  controlScale: number;
  promptStrength: number;
  promptReps: number;
  device: string;
  out: string;
  outNpy?: string;
}

const integer = (min: number, max: number) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`expected an integer from ${min} to ${max}.`);
  return n;
};
const nonNegative = (value: string) => {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError('expected a non-negative number.');
  return n;
};
const seed = (value: string) => {
  if (!/^\d+$/.test(value) || BigInt(value) >= 2n ** 64n) throw new InvalidArgumentError('expected an integer from 0 to 2^64 − 1.');
  return BigInt(value);
};
const scheduler = (value: string): SchedulerName => {
  if (!(SCHEDULER_NAMES as readonly string[]).includes(value)) throw new InvalidArgumentError(`expected one of ${SCHEDULER_NAMES.join(', ')}.`);
  return value as SchedulerName;
};

export function registerGenerateCommand(program: Command): void {
  program
    .command('generate')
    .description('Generate an image of a subject in a new scene (zero-shot BLIP-Diffusion), optionally guided by a ControlNet image.')
    .requiredOption('--model <dir>', 'a BLIP-Diffusion model folder (diffusers layout)')
    .option('--reference <image>', 'a photo of the subject')
    .option('--reference-pixels <npy>', 'preprocessed reference pixels [1, 3, S, S] instead of --reference')
    .requiredOption('--subject <word>', 'the subject’s category word, e.g. dog')
    .option('--target <word>', 'the category word in the prompt (default: --subject)')
    .requiredOption('--prompt <text>', 'what the subject does, e.g. "swimming underwater"')
    .option('--negative <text>', 'negative prompt', GENERATE_DEFAULTS.negativePrompt)
    .option('--steps <n>', 'denoising steps', integer(1, 1000), GENERATE_DEFAULTS.steps)
    .option('--guidance <g>', 'classifier-free guidance scale', nonNegative, GENERATE_DEFAULTS.guidanceScale)
    .option('--height <px>', 'image height (default: the model’s)', integer(1, 4096))
    .option('--width <px>', 'image width (default: the model’s)', integer(1, 4096))
    .option('--seed <n>', 'noise seed, as torch.Generator("cpu").manual_seed (default: random, printed)', seed)
    .option('--latents <npy>', 'initial latents [1, C, h, w] instead of a seed')
    .option('--scheduler <name>', SCHEDULER_NAMES.join(' | '), scheduler, GENERATE_DEFAULTS.scheduler)
    .option('--control <image>', 'a ControlNet conditioning image (edges, depth…)')
    .option('--control-pixels <npy>', 'preprocessed control pixels [1, 3, H, W] in [0, 1] instead of --control')
    .option('--control-scale <x>', 'ControlNet conditioning scale', nonNegative, GENERATE_DEFAULTS.controlScale)
    .option('--prompt-strength <x>', 'prompt strength', nonNegative, 1)
    .option('--prompt-reps <n>', 'prompt repetitions', integer(1, 1000), 20)
    .option('--device <name>', DEVICE_HELP, 'auto')
    .requiredOption('--out <png>', 'the image to write')
    .option('--out-npy <npy>', 'also write the float32 image [1, H, W, 3] in [0, 1]')
    .action(async (options: GenerateOptions, command: Command) => {
      const { dataDir } = command.optsWithGlobals<{ dataDir: string }>();
      if ((options.reference === undefined) === (options.referencePixels === undefined)) throw new Error('give exactly one of --reference or --reference-pixels');
      if (options.control !== undefined && options.controlPixels !== undefined) throw new Error('give at most one of --control or --control-pixels');
      if (options.seed !== undefined && options.latents !== undefined) throw new Error('give at most one of --seed or --latents');
      const noise: GenerateRequest['noise'] = options.latents !== undefined ? { latents: toFloat32(readNpyFile(options.latents)) } : { seed: options.seed ?? BigInt(randomInt(2 ** 47)) };
      if ('seed' in noise && options.seed === undefined) process.stderr.write(`seed ${noise.seed}\n`);
      const reference: ImageInput = options.referencePixels !== undefined ? { pixels: readPixelTensor(options.referencePixels) } : { path: options.reference! };
      const control: ImageInput | undefined =
        options.controlPixels !== undefined ? { pixels: readPixelTensor(options.controlPixels) } : options.control !== undefined ? { path: options.control } : undefined;

      // Ctrl+C cancels between steps; nothing is written unless the image is complete.
      const controller = new AbortController();
      const onInterrupt = () => {
        if (controller.signal.aborted) process.exit(130);
        process.stderr.write('\ncancelling after this step (Ctrl+C again to quit at once)\n');
        controller.abort();
      };
      process.on('SIGINT', onInterrupt);
      const bar = new ProgressBar('denoising');
      try {
        const result = await withEngine(dataDir, options, (context, model) =>
          generate(
            { ...context, signal: controller.signal },
            {
              model,
              subject: { image: reference, category: options.subject },
              targetSubject: options.target ?? options.subject,
              prompt: options.prompt,
              negativePrompt: options.negative,
              steps: options.steps,
              guidanceScale: options.guidance,
              ...(options.height !== undefined ? { height: options.height } : {}),
              ...(options.width !== undefined ? { width: options.width } : {}),
              noise,
              scheduler: options.scheduler,
              ...(control ? { control } : {}),
              controlScale: options.controlScale,
              promptStrength: options.promptStrength,
              promptReps: options.promptReps,
            },
            { previewEvery: 0, onProgress: (p) => bar.update(p.step, p.totalSteps, p.etaMs, p.elapsedMs) },
          ),
        );
        mkdirSync(dirname(options.out), { recursive: true });
        await writePng(options.out, floatImageToRgb(result.image, result.width, result.height));
        if (options.outNpy !== undefined) mkdirSync(dirname(options.outNpy), { recursive: true });
        if (options.outNpy !== undefined) writeNpyFile(options.outNpy, { dtype: 'float32', shape: [1, result.height, result.width, 3], data: result.image });
        bar.finish(`wrote ${options.out} (${result.width}×${result.height}) in ${(result.timings.totalMs / 1000).toFixed(1)} s`);
      } catch (error) {
        if (error instanceof CancelledError) {
          bar.finish('cancelled: no image written');
          process.exitCode = 130;
          return;
        }
        throw error;
      } finally {
        process.off('SIGINT', onInterrupt);
      }
    });
}
