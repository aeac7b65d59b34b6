/**
 * Recipes inside PNGs: our JSON in an uncompressed `iTXt` chunk (keyword `blip-studio-recipe`), and the
 * AUTOMATIC1111 `parameters` text that other tools read (tEXt when Latin-1, else iTXt, as PIL writes
 * it). Reading refuses, with a message a user can act on, anything that is not a sound PNG carrying
 * exactly one valid recipe of sane size; the image file is only ever read.
 */
import { openSync, readSync, closeSync, fstatSync } from 'node:fs';
import { a1111Parameters, InvalidRecipeError, parseRecipe, type Recipe } from './recipe';
import {
  assemblePng,
  decodeTextChunk,
  encodeInternationalTextChunk,
  encodeTextChunk,
  isLatin1,
  parsePngChunks,
  PngFormatError,
  textChunkKeyword,
  type PngChunk,
} from './png-chunks';

export const RECIPE_KEYWORD = 'blip-studio-recipe';
export const PARAMETERS_KEYWORD = 'parameters';
/** A real recipe is ~1-2 KB; anything above this is refused unread. */
export const MAX_RECIPE_CHUNK_BYTES = 64 * 1024;
/** Files bigger than this are refused before being read (a 4096² RGBA PNG is < 70 MB). */
export const MAX_PNG_FILE_BYTES = 256 * 1024 * 1024;

export type RecipeReadProblem = 'not-png' | 'truncated' | 'corrupt' | 'no-recipe' | 'too-large' | 'invalid-recipe';

export class RecipeReadError extends Error {
  constructor(
    readonly problem: RecipeReadProblem,
    message: string,
  ) {
    super(message);
    this.name = 'RecipeReadError';
  }
}

const isTextChunk = (chunk: PngChunk) => chunk.type === 'tEXt' || chunk.type === 'iTXt';
const isOurs = (chunk: PngChunk) => isTextChunk(chunk) && [RECIPE_KEYWORD, PARAMETERS_KEYWORD].includes(textChunkKeyword(chunk.data) ?? '');

/** Parses the chunks, turning format problems into RecipeReadErrors and refusing an oversized recipe chunk before its CRC is even computed. */
function readChunks(png: Uint8Array, source: string): PngChunk[] {
  try {
    return parsePngChunks(png, (type, length, dataOffset) => {
      if (type !== 'iTXt' && type !== 'tEXt') return;
      if (textChunkKeyword(png.subarray(dataOffset, dataOffset + Math.min(length, 80))) !== RECIPE_KEYWORD) return;
      if (length > MAX_RECIPE_CHUNK_BYTES) {
        throw new RecipeReadError('too-large', `${source} carries a recipe of ${length} bytes (the limit is ${MAX_RECIPE_CHUNK_BYTES}): it was not written by BLIP Studio and was not read.`);
      }
    });
  } catch (error) {
    if (error instanceof PngFormatError) throw new RecipeReadError(error.problem, `${source} cannot be read: ${error.message}.`);
    throw error;
  }
}

/** The PNG with `recipe` (and its A1111 text) embedded before IEND, replacing any recipe it had. */
export function embedRecipe(png: Uint8Array, recipe: Recipe): Uint8Array {
  const chunks = readChunks(png, 'the image').filter((chunk) => !isOurs(chunk));
  const json = JSON.stringify(recipe);
  if (new TextEncoder().encode(json).length > MAX_RECIPE_CHUNK_BYTES) throw new Error(`the recipe is over ${MAX_RECIPE_CHUNK_BYTES} bytes`);
  const parameters = a1111Parameters(recipe);
  return assemblePng(chunks, [
    encodeInternationalTextChunk(RECIPE_KEYWORD, json),
    isLatin1(parameters) ? encodeTextChunk(PARAMETERS_KEYWORD, parameters) : encodeInternationalTextChunk(PARAMETERS_KEYWORD, parameters),
  ]);
}

/** Every tEXt/iTXt chunk of a (checked) PNG, e.g. to show the A1111 `parameters`. */
export function readPngTexts(png: Uint8Array, source = 'the image'): Map<string, string> {
  const texts = new Map<string, string>();
  for (const chunk of readChunks(png, source).filter(isTextChunk)) {
    try {
      const { keyword, text } = decodeTextChunk(chunk);
      texts.set(keyword, text);
    } catch (error) {
      if (error instanceof PngFormatError) throw new RecipeReadError(error.problem, `${source} cannot be read: ${error.message}.`);
      throw error;
    }
  }
  return texts;
}

/** The recipe embedded in a PNG, validated; throws RecipeReadError saying what is wrong. */
export function readRecipe(png: Uint8Array, source = 'the image'): Recipe {
  const recipeChunks = readChunks(png, source).filter((chunk) => isTextChunk(chunk) && textChunkKeyword(chunk.data) === RECIPE_KEYWORD);
  if (recipeChunks.length === 0) {
    throw new RecipeReadError('no-recipe', `${source} was not made by BLIP Studio (it carries no recipe), so there is nothing to restore. Open a PNG that BLIP Studio generated.`);
  }
  if (recipeChunks.length > 1) throw new RecipeReadError('invalid-recipe', `${source} carries ${recipeChunks.length} recipes: it was edited after BLIP Studio wrote it, so none is trusted.`);
  const chunk = recipeChunks[0]!;
  let value: unknown;
  try {
    if (chunk.type !== 'iTXt') throw new PngFormatError('corrupt', 'the recipe is not in an iTXt chunk');
    value = JSON.parse(decodeTextChunk(chunk).text);
  } catch (error) {
    const why = error instanceof PngFormatError ? error.message : 'its recipe is not valid JSON';
    throw new RecipeReadError('invalid-recipe', `${source} has a damaged recipe (${why}); the image itself is untouched.`);
  }
  try {
    return parseRecipe(value);
  } catch (error) {
    if (error instanceof InvalidRecipeError) {
      throw new RecipeReadError('invalid-recipe', `${source} has a recipe BLIP Studio cannot use (forged, damaged or from a newer version):\n  - ${error.problems.join('\n  - ')}`);
    }
    throw error;
  }
}

/** Reads a PNG file (refusing huge files before reading them) for `readRecipe` and friends. */
export function readPngFile(path: string): Uint8Array {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (error) {
    throw new Error(`cannot open ${path}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  try {
    const size = fstatSync(fd).size;
    if (size > MAX_PNG_FILE_BYTES) throw new RecipeReadError('too-large', `${path} is ${size} bytes, more than any image BLIP Studio writes; it was not read.`);
    const bytes = new Uint8Array(size);
    let read = 0;
    while (read < size) {
      const n = readSync(fd, bytes, read, size - read, read);
      if (n === 0) break;
      read += n;
    }
    return bytes.subarray(0, read);
  } finally {
    closeSync(fd);
  }
}

export function readRecipeFile(path: string): Recipe {
  return readRecipe(readPngFile(path), path);
}
