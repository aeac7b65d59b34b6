import type { Command } from 'commander';
import { embedSubject } from '../engine/pipelines/subject-embedding';
import { writeNpyFile } from '../engine/io/npy-file';
import { DEVICE_HELP, withEngine } from './engine-session';
import { readPixelTensor } from './npy-inputs';

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
      const image = options.pixels !== undefined ? { pixels: readPixelTensor(options.pixels) } : { path: options.image! };
      const embedding = await withEngine(dataDir, options, (context, model) => embedSubject(context, { model, subject: options.subject, image }));
      writeNpyFile(options.out, { dtype: 'float32', shape: [...embedding.dims], data: embedding.data });
      process.stderr.write(`wrote ${options.out} [${embedding.dims.join(', ')}]\n`);
    });
}
