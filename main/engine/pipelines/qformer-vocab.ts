/**
 * Finds the Q-Former's BERT vocabulary the way the reference does, and loads its tokenizer.
 *
 * diffusers' `Blip2QFormerModel` calls `BertTokenizer.from_pretrained(config.tokenizer or
 * "bert-base-uncased")`. A `tokenizer` name in qformer/config.json is a folder looked up from the
 * current directory, which for the reference kit is the folder that holds the model folder
 * (`models/bert-tiny-uncased` beside `models/tiny-blipdiffusion`). Without it the reference downloads
 * bert-base-uncased from the hub; the real Salesforce/blipdiffusion model has no such key and ships no
 * vocabulary, so the app ships that file in `resources/bert-base-uncased/`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BertTokenizer } from '../tokenizers/bert-wordpiece';

/** The hub tokenizer the reference falls back to, and the folder name the app ships it under. */
export const DEFAULT_QFORMER_TOKENIZER = 'bert-base-uncased';
const VOCAB_FILE = 'vocab.txt';

/** The qformer/config.json fields that matter here. */
export interface QformerConfigFields {
  tokenizer?: unknown;
  qformer_config?: { vocab_size?: unknown };
}

export interface QformerVocabLocation {
  path: string;
  /** 'model': the folder the model config names; 'bundled': the copy shipped in the app's resources. */
  origin: 'model' | 'bundled';
}

export class QformerVocabMissingError extends Error {
  constructor(
    message: string,
    /** Where the vocabulary should be put. */
    readonly expectedPath: string,
  ) {
    super(message);
    this.name = 'QformerVocabMissingError';
  }
}

export interface LocateQformerVocabOptions {
  /** The model folder (the one with model_index.json and qformer/). */
  modelDir: string;
  qformerConfig: QformerConfigFields;
  /** The app's resources folder; found from this module's location when left out. */
  resourcesDir?: string;
  fileExists?: (path: string) => boolean;
}

export function locateQformerVocab(options: LocateQformerVocabOptions): QformerVocabLocation {
  const fileExists = options.fileExists ?? existsSync;
  const name = options.qformerConfig.tokenizer;
  if (name !== undefined && name !== null) {
    if (typeof name !== 'string' || name.trim() === '') {
      throw new Error(`qformer/config.json: "tokenizer" must be a folder name, got ${JSON.stringify(name)}`);
    }
    const candidates = tokenizerFolderCandidates(options.modelDir, name).map((folder) => join(folder, VOCAB_FILE));
    const found = candidates.find((path) => fileExists(path));
    if (found !== undefined) return { path: found, origin: 'model' };
    if (name !== DEFAULT_QFORMER_TOKENIZER) {
      const expected = candidates[0] ?? join(name, VOCAB_FILE);
      throw new QformerVocabMissingError(
        `The Q-Former's tokenizer "${name}" (named in qformer/config.json) was not found: looked for ${candidates.join(' and ')}. ` +
          `Put that tokenizer's BERT WordPiece ${VOCAB_FILE} at ${expected}.`,
        expected,
      );
    }
  }
  const bundled = join(options.resourcesDir ?? findResourcesDir(), DEFAULT_QFORMER_TOKENIZER, VOCAB_FILE);
  if (fileExists(bundled)) return { path: bundled, origin: 'bundled' };
  throw new QformerVocabMissingError(
    `The Q-Former needs the ${DEFAULT_QFORMER_TOKENIZER} WordPiece vocabulary (${VOCAB_FILE}, 30522 tokens). BLIP-Diffusion ` +
      `model folders do not include it and this installation is missing its copy: put ${DEFAULT_QFORMER_TOKENIZER}'s ${VOCAB_FILE} at ${bundled}, ` +
      `or reinstall BLIP Studio.`,
    bundled,
  );
}

export interface LoadQformerTokenizerOptions extends Omit<LocateQformerVocabOptions, 'qformerConfig' | 'fileExists'> {
  /** Read from `<modelDir>/qformer/config.json` when left out. */
  qformerConfig?: QformerConfigFields;
}

/** The Q-Former tokenizer with `[DEC]` added, checked against the Q-Former's embedding table size. */
export function loadQformerTokenizer(options: LoadQformerTokenizerOptions): { tokenizer: BertTokenizer; location: QformerVocabLocation } {
  const qformerConfig = options.qformerConfig ?? readQformerConfig(options.modelDir);
  const location = locateQformerVocab({ ...options, qformerConfig });
  const tokenizer = BertTokenizer.fromVocab(readFileSync(location.path, 'utf8'), { addDecBos: true });
  const tableSize = qformerConfig.qformer_config?.vocab_size;
  const needed = (tokenizer.decId ?? tokenizer.vocabSize - 1) + 1;
  if (typeof tableSize === 'number' && tableSize !== needed) {
    throw new Error(
      `${location.path} has ${tokenizer.vocabSize} tokens (${needed} with the added [DEC]), but the Q-Former's vocab_size is ${tableSize}: ` +
        'this vocabulary does not belong to this model.',
    );
  }
  return { tokenizer, location };
}

/** The app's `resources/` folder: beside the nearest package.json above this module (bundle or sources). */
export function findResourcesDir(moduleUrl: string = import.meta.url, fileExists: (path: string) => boolean = existsSync): string {
  let dir = dirname(fileURLToPath(moduleUrl));
  while (!fileExists(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`BLIP Studio's resources folder was not found: no package.json above ${fileURLToPath(moduleUrl)}`);
    dir = parent;
  }
  return join(dir, 'resources');
}

/** The reference resolves the name from the folder holding the model folder; a copy inside the model folder also counts. */
function tokenizerFolderCandidates(modelDir: string, name: string): string[] {
  if (isAbsolute(name)) return [name];
  return [resolve(modelDir, '..', name), resolve(modelDir, name)];
}

function readQformerConfig(modelDir: string): QformerConfigFields {
  const path = join(modelDir, 'qformer', 'config.json');
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new Error(`Cannot read the Q-Former config ${path}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  if (typeof parsed !== 'object' || parsed === null) throw new Error(`${path} is not a JSON object`);
  return parsed as QformerConfigFields;
}
