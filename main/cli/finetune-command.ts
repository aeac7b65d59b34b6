import { randomInt } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { serializeNpy } from '../engine/io/npy';
import { CancelledError, resolveDevice } from '../engine/pipelines/engine-context';
import { finetune, type FinetuneRequest } from '../engine/pipelines/finetune';
import { prepareFinetuneInputs } from '../engine/pipelines/finetune-inputs';
import { defaultFinetuneResolution, defaultMicroBatch, FINETUNE_DEFAULTS, FINETUNE_FILES } from '../engine/pipelines/finetune-defaults';
import { readLoraFile, writeDiffusersLora } from '../engine/weights/lora-weights';
import { writeFileAtomic } from '../files/atomic-write';
import { DEVICE_HELP, withEngine } from './engine-session';
import { ProgressBar } from './progress-bar';
import { interruptOnCtrlC } from './interrupt';


interface FinetuneOptions {
  model: string;
  photo: string[];
  category: string;
  out: string;
  steps: number;
  rank?: number;
  alpha?: number;
  lrLora: number;
  lrEmbedding: number;
  weightDecay: number;
  resolution?: number;
  seed?: bigint;
  initLora?: string;
  microBatch?: number;
  device: string;
  json?: boolean;
}

const positiveInteger = (name: string) => (value: string) => {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be a positive integer`);
  return n;
};
const nonNegative = (name: string) => (value: string) => {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`${name} must be a non-negative number`);
  return n;
};
const positive = (name: string) => (value: string) => {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive number`);
  return n;
};
const seedValue = (value: string) => {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError('the seed must be a non-negative integer');
  return BigInt(value);
};

export function registerFinetuneCommand(program: Command): void {
  program
    .command('finetune')
    .description(`Quick fine-tune: train a LoRA of the UNet's attention projections and the subject embedding on a few photos; writes ${FINETUNE_FILES.lora} (diffusers' format) and ${FINETUNE_FILES.embedding} [1, 16, hidden] into --out, only when the run completes.`)
    .requiredOption('--model <dir>', 'a BLIP-Diffusion model folder (diffusers layout)')
    .requiredOption('--photo <files...>', 'photos of the subject (one or more)')
    .requiredOption('--category <word>', 'the subject’s category word, e.g. dog')
    .requiredOption('--out <dir>', 'the folder to write the LoRA and the embedding into')
    .option('--steps <n>', 'training steps', positiveInteger('--steps'), FINETUNE_DEFAULTS.steps)
    .option('--rank <r>', `LoRA rank (default ${FINETUNE_DEFAULTS.rank}, or the --init-lora file's)`, positiveInteger('--rank'))
    .option('--alpha <a>', 'LoRA alpha (default: the rank)', positive('--alpha'))
    .option('--lr-lora <x>', 'learning rate of the LoRA tensors', nonNegative('--lr-lora'), FINETUNE_DEFAULTS.lrLora)
    .option('--lr-embedding <y>', 'learning rate of the subject embedding', nonNegative('--lr-embedding'), FINETUNE_DEFAULTS.lrEmbedding)
    .option('--weight-decay <w>', 'AdamW weight decay', nonNegative('--weight-decay'), FINETUNE_DEFAULTS.weightDecay)
    .option('--resolution <px>', 'training resolution, a multiple of the VAE factor (default: the VAE’s sample size on a GPU, half on the CPU)', positiveInteger('--resolution'))
    .option('--seed <s>', 'random seed (default: a random one, printed)', seedValue)
    .option('--init-lora <file>', 'continue from this LoRA file (diffusers or kohya format) instead of the default initialisation')
    .option('--micro-batch <n>', 'photos per training run (gradients are accumulated; default: 1 on the CPU, all on a GPU)', positiveInteger('--micro-batch'))
    .option('--device <name>', DEVICE_HELP, 'auto')
    .option('--json', 'print one JSON line per step (step, loss, ms) on stdout')
    .action(async (options: FinetuneOptions, command: Command) => {
      const { dataDir } = command.optsWithGlobals<{ dataDir: string }>();
      const seed = options.seed ?? BigInt(randomInt(2 ** 47));
      if (options.seed === undefined) process.stderr.write(`seed ${seed}\n`);
      // Ctrl+C stops after the current step; nothing is written unless the run completes.
      const interrupt = interruptOnCtrlC('stopping after this step (Ctrl+C again to quit at once); nothing will be written');
      const bar = new ProgressBar('fine-tune');
      const started = Date.now();
      try {
        const result = await withEngine(dataDir, options, async (engine, model) => {
          const context = { ...engine, signal: interrupt.signal };
          const device = await resolveDevice(context);
          const resolution = options.resolution ?? defaultFinetuneResolution(model, device);
          const inputs = await prepareFinetuneInputs(context, { model, photos: options.photo, category: options.category, resolution });
          const lora = initialLora(options, inputs.targets);
          const request: FinetuneRequest = {
            model,
            ...inputs,
            rank: lora?.rank ?? options.rank ?? FINETUNE_DEFAULTS.rank,
            alpha: lora?.alpha ?? options.alpha ?? options.rank ?? FINETUNE_DEFAULTS.rank,
            ...(lora ? { initialLora: lora } : {}),
            steps: options.steps,
            lrLora: options.lrLora,
            lrEmbedding: options.lrEmbedding,
            weightDecay: options.weightDecay,
            seed,
            microBatch: options.microBatch ?? defaultMicroBatch(device, options.photo.length),
          };
          process.stderr.write(`fine-tuning on ${device}: ${options.photo.length} photo(s) at ${resolution}², ${options.steps} steps, rank ${request.rank}\n`);
          let training = 0;
          return finetune(context, request, {
            onStep: (report) => {
              training += report.ms;
              if (options.json) process.stdout.write(`${JSON.stringify({ step: report.step, loss: report.loss, ms: report.ms })}\n`);
              bar.update(report.step, report.steps, (training / report.step) * (report.steps - report.step), training, `loss ${report.loss.toFixed(5)}`);
            },
          });
        });
        mkdirSync(options.out, { recursive: true });
        const embedding = { dtype: 'float32' as const, shape: [...result.embedding.dims], data: result.embedding.data };
        writeFileAtomic(join(options.out, FINETUNE_FILES.embedding), serializeNpy(embedding));
        writeFileAtomic(join(options.out, FINETUNE_FILES.lora), writeDiffusersLora(result.lora));
        const last = result.losses.at(-1);
        bar.finish(`wrote ${join(options.out, FINETUNE_FILES.lora)} and ${FINETUNE_FILES.embedding} (final loss ${last?.toFixed(5)}) in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      } catch (error) {
        if (error instanceof CancelledError) {
          bar.finish('stopped: nothing written');
          process.exitCode = 130;
          return;
        }
        throw error;
      } finally {
        interrupt.stop();
      }
    });
}

function initialLora(options: FinetuneOptions, targets: FinetuneRequest['targets']): FinetuneRequest['initialLora'] | undefined {
  if (options.initLora === undefined) return undefined;
  const bytes = new Uint8Array(readFileSync(options.initLora));
  // The file stores up·alpha/r (diffusers) or a separate alpha (kohya); training continues on the raw up.
  const alpha = options.alpha;
  const { lora, skipped } = readLoraFile(bytes, targets, { file: options.initLora, ...(alpha !== undefined ? { alpha } : {}) });
  if (skipped.length > 0) process.stderr.write(`note: ${options.initLora}: ${skipped.length} tensor(s) not for the UNet were skipped\n`);
  if (options.rank !== undefined && options.rank !== lora.rank) throw new Error(`--rank ${options.rank} differs from the rank of ${options.initLora} (${lora.rank})`);
  return lora;
}
