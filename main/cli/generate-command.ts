import { InvalidArgumentError, type Command } from 'commander';
import { randomInt } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import packageJson from '../../package.json' with { type: 'json' };
import { toFloat32 } from '../engine/io/npy';
import { readNpyFile, writeNpyFile } from '../engine/io/npy-file';
import { floatImageToRgb } from '../engine/imaging/encode';
import { GENERATE_DEFAULTS, type GenerateRequest, type GenerateResult, type ImageInput } from '../engine/pipelines/generate';
import { CancelledError } from '../engine/pipelines/engine-context';
import type { ModelFolder } from '../models/model-folder';
import { readLoraForModel, readSubjectEmbeddingFile } from '../engine/pipelines/adapter-files';
import type { LoraWeights } from '../engine/weights/lora-weights';
import { SCHEDULER_NAMES, type SchedulerName } from '../api/contract';
import { modelFingerprint } from '../library/model-fingerprint';
import { createRecipe, deviceNotesField, type Recipe } from '../gallery/recipe';
import { sha256OfFile } from '../gallery/recipe-files';
import { DEVICE_HELP, withEngine } from './engine-session';
import { writeGenerationOutput } from './generation-output';
import { generateOnResolvedDevice } from '../engine/pipelines/resolved-device';
import { readPixelTensor } from './npy-inputs';
import { ProgressBar } from './progress-bar';
import { generateFromLibrary } from './generate-from-library';
import { interruptOnCtrlC } from './interrupt';
import { integerIn, numberIn } from './option-parsers';
import { decodeRgb } from '../engine/imaging/decode';
import { generationGeometry } from '../engine/pipelines/generate';
import { CANNY_CONTROL_DEFAULTS, makeControlMapImage, type ControlMapSettings, type DepthEstimator } from '../engine/pipelines/control-map';
import { storeControlImage } from '../library/control-images';
import { absoluteDataPath } from '../library/photo-files';
import type { EngineContext } from '../engine/pipelines/engine-context';
import { estimateDepthMap } from '../engine/pipelines/depth-map';

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
  controlFrom?: string;
  controlMode: ControlMapSettings['mode'];
  low?: number;
  high?: number;
  l2?: boolean;
  depthModel?: string;
  controlStart: number;
  controlEnd: number;
  promptStrength: number;
  promptReps: number;
  device: string;
  out: string;
  outNpy?: string;
  library: boolean;
  lora?: string;
  loraScale: number;
  embedding?: string;
}

/** The weights cache, where the model fingerprint keeps its file-hash records (as engine-session's context does). */
export const weightsCacheDir = (dataDir: string) => join(dataDir, 'cache', 'weights');

/**
 * The recipe of a CLI run, or null when it cannot be re-run from a recipe: given latents or
 * preprocessed pixel tensors are not files a recipe can name by hash. A LoRA file and a given
 * embedding file are named by hash (reproducing needs them given again: the library does not keep them).
 */
async function recipeOfRun(
  options: GenerateOptions,
  run: { model: ModelFolder; device: string; result: GenerateResult; seed: bigint | null; dataDir: string; madeControl: MadeControl | null },
): Promise<Recipe | null> {
  if (run.seed === null || options.controlPixels !== undefined) return null;
  const subject =
    options.embedding !== undefined
      ? { category: options.subject, embedding: { sha256: sha256OfFile(options.embedding) } }
      : options.reference !== undefined
        ? { category: options.subject, reference: { sha256: sha256OfFile(options.reference) } }
        : null;
  if (subject === null) return null;
  return createRecipe({
    appVersion: packageJson.version,
    model: { name: basename(run.model.dir), folder: run.model.dir, hash: await modelFingerprint(run.model, { weightsCacheDir: weightsCacheDir(run.dataDir) }) },
    subject,
    targetSubject: options.target ?? options.subject,
    prompt: options.prompt,
    negativePrompt: options.negative,
    seed: run.seed.toString(),
    steps: options.steps,
    guidanceScale: options.guidance,
    scheduler: options.scheduler,
    width: run.result.width,
    height: run.result.height,
    ...(options.control !== undefined || run.madeControl !== null ? { control: recipeControl(options, run.madeControl) } : {}),
    ...(options.lora !== undefined ? { lora: { sha256: sha256OfFile(options.lora), scale: options.loraScale } } : {}),
    promptStrength: options.promptStrength,
    promptReps: options.promptReps,
    device: run.device,
    ...deviceNotesField(run.result.placements),
    durationMs: Math.round(run.result.timings.totalMs),
    createdAt: new Date().toISOString(),
  });
}


/** A map made from --control-from: where it is stored (content-addressed) and the picture it came from. */
interface MadeControl {
  mapFile: string;
  mapSha256: string;
  sourceSha256: string;
}

function recipeControl(options: GenerateOptions, made: MadeControl | null): NonNullable<Recipe['control']> {
  const window = { ...(options.controlStart !== 0 ? { start: options.controlStart } : {}), ...(options.controlEnd !== 1 ? { end: options.controlEnd } : {}) };
  if (made === null) return { sha256: sha256OfFile(options.control!), scale: options.controlScale, ...window };
  return {
    sha256: made.mapSha256,
    scale: options.controlScale,
    ...window,
    mode: options.controlMode,
    source: { sha256: made.sourceSha256 },
    ...(options.controlMode === 'canny' ? { low: options.low ?? CANNY_CONTROL_DEFAULTS.low, high: options.high ?? CANNY_CONTROL_DEFAULTS.high } : {}),
  };
}

/**
 * The map for --control-from, made as the app's control panel makes it (the same engine code): the
 * picture and the map are stored content-addressed in the data folder, so a reproduction finds them.
 */
async function makeCliControlMap(options: GenerateOptions, dataDir: string, model: ModelFolder, estimateDepth: DepthEstimator | undefined): Promise<MadeControl> {
  const source = await decodeRgb(options.controlFrom!, { honourExifOrientation: true });
  const size = generationGeometry(model, options.height, options.width);
  const { map, stretched } = await makeControlMapImage(source, size, { mode: options.controlMode, low: options.low, high: options.high, l2: options.l2 ?? false }, estimateDepth);
  if (stretched) process.stderr.write(`note: ${options.controlFrom} (${source.width}×${source.height}) is stretched to ${size.width}×${size.height}, as the reference resizes a control image\n`);
  const storedSource = await storeControlImage(dataDir, source);
  const stored = await storeControlImage(dataDir, map);
  return { mapFile: absoluteDataPath(dataDir, stored.path), mapSha256: stored.sha256, sourceSha256: storedSource.sha256 };
}

const controlMode = (value: string): ControlMapSettings['mode'] => {
  if (value !== 'canny' && value !== 'depth' && value !== 'image') throw new InvalidArgumentError('expected canny, depth or image.');
  return value;
};
const fraction = numberIn(0, 1);
const nonNegative = (value: string) => {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError('expected a non-negative number.');
  return n;
};
const finite = (value: string) => {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError('expected a number.');
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

/** The depth estimator of a Depth Anything V2 folder, on the run's engine (the same pipeline as the app's). */
function depthEstimator(context: EngineContext, folder: string): DepthEstimator {
  return (fitted) => estimateDepthMap(context, { dir: folder }, fitted);
}

/** A LoRA file for this model's UNet; tensors for other parts (the text encoder's) are skipped with a note. */
function loraWithNote(file: string, model: ModelFolder): LoraWeights {
  const { lora, skipped } = readLoraForModel(file, model);
  if (skipped.length > 0) process.stderr.write(`note: ${file}: ${skipped.length} tensor(s) for other parts than the UNet were not applied\n`);
  return lora;
}

export function registerGenerateCommand(program: Command): void {
  program
    .command('generate')
    .description('Generate an image of a subject in a new scene (zero-shot BLIP-Diffusion), optionally guided by a ControlNet image.')
    .requiredOption('--model <dir>', 'a BLIP-Diffusion model folder (diffusers layout)')
    .option('--reference <image>', 'a photo of the subject (without it, --subject names a subject of the library)')
    .option('--reference-pixels <npy>', 'preprocessed reference pixels [1, 3, S, S] instead of --reference')
    .requiredOption('--subject <word>', 'the subject’s category word, e.g. dog')
    .option('--target <word>', 'the category word in the prompt (default: --subject)')
    .requiredOption('--prompt <text>', 'what the subject does, e.g. "swimming underwater"')
    .option('--negative <text>', 'negative prompt', GENERATE_DEFAULTS.negativePrompt)
    .option('--steps <n>', 'denoising steps', integerIn(1, 1000), GENERATE_DEFAULTS.steps)
    .option('--guidance <g>', 'classifier-free guidance scale', nonNegative, GENERATE_DEFAULTS.guidanceScale)
    .option('--height <px>', 'image height (default: the model’s)', integerIn(1, 4096))
    .option('--width <px>', 'image width (default: the model’s)', integerIn(1, 4096))
    .option('--seed <n>', 'noise seed, as torch.Generator("cpu").manual_seed (default: random, printed)', seed)
    .option('--latents <npy>', 'initial latents [1, C, h, w] instead of a seed')
    .option('--scheduler <name>', SCHEDULER_NAMES.join(' | '), scheduler, GENERATE_DEFAULTS.scheduler)
    .option('--control <image>', 'a ControlNet conditioning image (edges, depth…)')
    .option('--control-pixels <npy>', 'preprocessed control pixels [1, 3, H, W] in [0, 1] instead of --control')
    .option('--control-scale <x>', 'ControlNet conditioning scale', nonNegative, GENERATE_DEFAULTS.controlScale)
    .option('--control-from <image>', 'make the control map from this picture, as the app does (fitted to the output size, then --control-mode)')
    .option('--control-mode <mode>', 'how --control-from becomes a map: canny | depth | image (as is)', controlMode, 'canny')
    .option('--low <t>', `Canny low threshold (default ${CANNY_CONTROL_DEFAULTS.low})`, nonNegative)
    .option('--high <t>', `Canny high threshold (default ${CANNY_CONTROL_DEFAULTS.high})`, nonNegative)
    .option('--l2', 'Canny with OpenCV’s L2 gradient')
    .option('--depth-model <dir>', 'the Depth Anything V2 folder for --control-mode depth')
    .option('--control-start <f>', 'fraction of the steps where control starts (diffusers’ control_guidance_start)', fraction, 0)
    .option('--control-end <f>', 'fraction of the steps where control ends (diffusers’ control_guidance_end)', fraction, 1)
    .option('--prompt-strength <x>', 'prompt strength', nonNegative, 1)
    .option('--prompt-reps <n>', 'prompt repetitions', integerIn(1, 1000), 20)
    .option('--lora <file>', 'apply a LoRA to the UNet (diffusers pytorch_lora_weights.safetensors or a kohya/A1111 SD-1.5 file)')
    .option('--lora-scale <s>', 'the LoRA’s strength, as diffusers’ cross_attention_kwargs={"scale": s} (0 = no LoRA)', finite, 1)
    .option('--embedding <npy>', 'a subject embedding [1, 16, hidden] (e.g. from finetune) instead of one computed from --reference')
    .option('--device <name>', DEVICE_HELP, 'auto')
    .requiredOption('--out <png>', 'the image to write')
    .option('--out-npy <npy>', 'also write the float32 image [1, H, W, 3] in [0, 1]')
    .option('--no-library', 'do not record the result in the data folder’s gallery (the recipe is still embedded in the PNG)')
    .action(async (options: GenerateOptions, command: Command) => {
      const { dataDir } = command.optsWithGlobals<{ dataDir: string }>();
      if (options.lora === undefined && command.getOptionValueSource('loraScale') === 'cli') throw new Error('--lora-scale needs a --lora file');
      if ([options.control, options.controlPixels, options.controlFrom].filter((v) => v !== undefined).length > 1) throw new Error('give at most one of --control, --control-pixels or --control-from');
      if (options.controlFrom === undefined) {
        for (const flag of ['low', 'high', 'l2', 'depthModel'] as const) if (options[flag] !== undefined) throw new Error(`--${flag === 'depthModel' ? 'depth-model' : flag} needs --control-from`);
        if (command.getOptionValueSource('controlMode') === 'cli') throw new Error('--control-mode needs --control-from');
      }
      if (options.controlFrom !== undefined && options.controlMode === 'depth' && options.depthModel === undefined) throw new Error('--control-mode depth needs --depth-model DIR (Depth Anything V2)');
      if (options.controlStart >= options.controlEnd) throw new Error('--control-start must be below --control-end');
      if (options.reference === undefined && options.referencePixels === undefined && options.embedding === undefined) {
        // No photo given: the subject is one of the library's (its cached embeddings).
        const unsupported = (['latents', 'control', 'controlPixels', 'outNpy', 'lora', 'depthModel'] as const).filter((key) => options[key] !== undefined);
        if (unsupported.length > 0) throw new Error(`with a library subject (no --reference), ${unsupported.map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`).join(', ')} cannot be used yet`);
        await generateFromLibrary({ dataDir, ...options });
        return;
      }
      if ([options.reference, options.referencePixels, options.embedding].filter((v) => v !== undefined).length > 1) throw new Error('give at most one of --reference, --reference-pixels or --embedding');
      if (options.seed !== undefined && options.latents !== undefined) throw new Error('give at most one of --seed or --latents');
      const noise: GenerateRequest['noise'] = options.latents !== undefined ? { latents: toFloat32(readNpyFile(options.latents)) } : { seed: options.seed ?? BigInt(randomInt(2 ** 47)) };
      if ('seed' in noise && options.seed === undefined) process.stderr.write(`seed ${noise.seed}\n`);
      const reference: ImageInput | null = options.embedding !== undefined ? null : options.referencePixels !== undefined ? { pixels: readPixelTensor(options.referencePixels) } : { path: options.reference! };
      const givenControl: ImageInput | undefined =
        options.controlPixels !== undefined ? { pixels: readPixelTensor(options.controlPixels) } : options.control !== undefined ? { path: options.control } : undefined;

      // Ctrl+C cancels between steps; nothing is written unless the image is complete.
      const interrupt = interruptOnCtrlC('cancelling after this step (Ctrl+C again to quit at once)');
      const bar = new ProgressBar('denoising');
      try {
        const { result, device, recipe } = await withEngine(dataDir, options, async (context, model) => {
          const estimateDepth = options.depthModel !== undefined ? depthEstimator(context, options.depthModel) : undefined;
          const madeControl = options.controlFrom !== undefined ? await makeCliControlMap(options, dataDir, model, estimateDepth) : null;
          const control = madeControl !== null ? { path: madeControl.mapFile } : givenControl;
          const run = await generateOnResolvedDevice(
            { ...context, signal: interrupt.signal },
            {
              model,
              subject: reference ? { image: reference, category: options.subject } : { embedding: readSubjectEmbeddingFile(options.embedding!, model) },
              ...(options.lora !== undefined ? { lora: { weights: loraWithNote(options.lora, model), scale: options.loraScale } } : {}),
              targetSubject: options.target ?? options.subject,
              prompt: options.prompt,
              negativePrompt: options.negative,
              steps: options.steps,
              guidanceScale: options.guidance,
              ...(options.height !== undefined ? { height: options.height } : {}),
              ...(options.width !== undefined ? { width: options.width } : {}),
              noise,
              scheduler: options.scheduler,
              ...(control ? { control, controlStart: options.controlStart, controlEnd: options.controlEnd } : {}),
              controlScale: options.controlScale,
              promptStrength: options.promptStrength,
              promptReps: options.promptReps,
            },
            (step, total, etaMs, elapsedMs) => bar.update(step, total, etaMs, elapsedMs),
          );
          const seed = 'seed' in noise ? BigInt(noise.seed) : null;
          return { ...run, recipe: await recipeOfRun(options, { model, device: run.device, result: run.result, seed, dataDir, madeControl }) };
        });
        const recorded = await writeGenerationOutput({
          image: floatImageToRgb(result.image, result.width, result.height),
          recipe,
          out: options.out,
          libraryDir: options.library ? dataDir : null,
        });
        if (options.outNpy !== undefined) mkdirSync(dirname(options.outNpy), { recursive: true });
        if (options.outNpy !== undefined) writeNpyFile(options.outNpy, { dtype: 'float32', shape: [1, result.height, result.width, 3], data: result.image });
        bar.finish(`wrote ${options.out} (${result.width}×${result.height}) on ${device} in ${(result.timings.totalMs / 1000).toFixed(1)} s`);
        if (recorded) process.stderr.write(`recorded in the library as generation ${recorded.id} (${recorded.imagePath})\n`);
        else if (!recipe) process.stderr.write('note: no recipe embedded and nothing recorded: runs from --latents or pixel tensors cannot be re-run from a recipe yet\n');
      } catch (error) {
        if (error instanceof CancelledError) {
          bar.finish('cancelled: no image written');
          process.exitCode = 130;
          return;
        }
        throw error;
      } finally {
        interrupt.stop();
      }
    });
}
