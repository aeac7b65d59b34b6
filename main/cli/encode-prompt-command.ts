import { InvalidArgumentError, type Command } from 'commander';
import { encodeNegativePrompt, encodePrompt } from '../engine/pipelines/text-embeddings';
import { readNpyFile, writeNpyFile } from '../engine/io/npy-file';
import { toFloat32 } from '../engine/io/npy';
import { DEVICE_HELP, withEngine } from './engine-session';

interface EncodeOptions {
  model: string;
  prompt?: string;
  target?: string;
  embeds?: string;
  negative?: string;
  promptStrength: number;
  promptReps: number;
  out: string;
  device: string;
}

export function registerEncodePromptCommand(program: Command): void {
  program
    .command('encode-prompt')
    .description(
      'Write text embeddings [1, 77, hidden] as float32 .npy: the conditional one (--prompt, --target, --embeds: the prompt with the subject spliced in) or the unconditional one (--negative).',
    )
    .requiredOption('--model <dir>', 'a BLIP-Diffusion model folder (diffusers layout)')
    .option('--prompt <text>', 'what the subject does, e.g. "swimming underwater"')
    .option('--target <word>', 'the target category word, e.g. puppy')
    .option('--embeds <npy>', 'subject embeddings from `embed`')
    .option('--negative <text>', 'encode this negative prompt (may be "") instead')
    .option('--prompt-strength <x>', 'prompt strength (the prompt is repeated strength × reps times)', parsePositive, 1.0)
    .option('--prompt-reps <n>', 'prompt repetitions', parsePositive, 20)
    .requiredOption('--out <npy>', 'where to write the embeddings')
    .option('--device <name>', DEVICE_HELP, 'auto')
    .action(async (options: EncodeOptions, command: Command) => {
      const { dataDir } = command.optsWithGlobals<{ dataDir: string }>();
      const conditional = options.prompt !== undefined || options.target !== undefined || options.embeds !== undefined;
      if (conditional === (options.negative !== undefined)) throw new Error('give either --prompt, --target and --embeds, or --negative');
      const result = await withEngine(dataDir, options, async (context, model) => {
        if (options.negative !== undefined) return encodeNegativePrompt(context, model, options.negative);
        if (options.prompt === undefined || options.target === undefined || options.embeds === undefined) throw new Error('--prompt, --target and --embeds go together');
        const embeds = readNpyFile(options.embeds);
        if (embeds.shape.length !== 3 || embeds.shape[0] !== 1) throw new Error(`${options.embeds}: expected subject embeddings [1, tokens, hidden], got [${embeds.shape.join(', ')}]`);
        return encodePrompt(context, {
          model,
          prompt: options.prompt,
          targetSubject: options.target,
          subjectEmbedding: { dims: embeds.shape as [1, number, number], data: toFloat32(embeds) },
          promptStrength: options.promptStrength,
          promptReps: options.promptReps,
        });
      });
      writeNpyFile(options.out, { dtype: 'float32', shape: [...result.dims], data: result.data });
      process.stderr.write(`wrote ${options.out} [${result.dims.join(', ')}]\n`);
    });
}

function parsePositive(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a positive number.');
  return n;
}
