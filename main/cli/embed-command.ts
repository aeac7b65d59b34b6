import type { Command } from 'commander';
import { embedSubject } from '../engine/pipelines/subject-embedding';
import { readNpyFile, writeNpyFile } from '../engine/io/npy-file';
import { toFloat32 } from '../engine/io/npy';
import type { PixelTensor } from '../engine/imaging/preprocess';
import { DEVICE_HELP, withEngine } from './engine-session';

interface EmbedOptions {
  model: string;
  image?: string;
  pixels?: string;
  subject: string;
  out: string;
  device: string;
}

export function registerEmbedCommand(program: Command): void {
  program
    .command('embed')
    .description('Compute the 16 subject-query embeddings of a photo (after the projection layer) as a float32 .npy [1, 16, hidden].')
    .requiredOption('--model <dir>', 'a BLIP-Diffusion model folder (diffusers layout)')
    .option('--image <file>', 'the subject photo')
    .option('--pixels <npy>', 'preprocessed pixel values [1, 3, S, S] float32 instead of --image')
    .requiredOption('--subject <word>', 'the subject’s category word, e.g. dog')
    .requiredOption('--out <npy>', 'where to write the embeddings')
    .option('--device <name>', DEVICE_HELP, 'auto')
    .action(async (options: EmbedOptions, command: Command) => {
      if ((options.image === undefined) === (options.pixels === undefined)) throw new Error('give exactly one of --image or --pixels');
      const { dataDir } = command.optsWithGlobals<{ dataDir: string }>();
      const image = options.pixels !== undefined ? { pixels: readPixels(options.pixels) } : { path: options.image! };
      const embedding = await withEngine(dataDir, options, (context, model) => embedSubject(context, { model, subject: options.subject, image }));
      writeNpyFile(options.out, { dtype: 'float32', shape: [...embedding.dims], data: embedding.data });
      process.stderr.write(`wrote ${options.out} [${embedding.dims.join(', ')}]\n`);
    });
}

function readPixels(path: string): PixelTensor {
  const array = readNpyFile(path);
  if (array.shape.length !== 4 || array.shape[0] !== 1 || array.shape[1] !== 3) throw new Error(`${path}: pixel values must have shape [1, 3, S, S], got [${array.shape.join(', ')}]`);
  return { dims: array.shape as [1, 3, number, number], data: toFloat32(array) };
}
