import { InvalidArgumentError, type Command } from 'commander';
import { existsSync, readdirSync } from 'node:fs';
import { writeTinyModel } from '../models/tiny-model';

export function registerMakeTinyModelCommand(program: Command): void {
  program
    .command('make-tiny-model')
    .description('Write a tiny random-weight BLIP-Diffusion model (with ControlNet) in a configuration unlike the reference kit’s, for tests and demos.')
    .requiredOption('--out <dir>', 'an empty or new folder')
    .option('--seed <n>', 'seed of the random weights', (value: string) => {
      const n = Number(value);
      if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a non-negative integer.');
      return n;
    }, 1)
    .action((options: { out: string; seed: number }) => {
      if (existsSync(options.out) && readdirSync(options.out).length > 0) throw new Error(`${options.out} is not empty: choose a new folder`);
      writeTinyModel(options.out, options.seed);
      process.stderr.write(`wrote a tiny model to ${options.out}\n`);
    });
}
