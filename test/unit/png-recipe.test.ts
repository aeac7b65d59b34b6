import { describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { encodePng } from '../../main/engine/imaging/encode';
import { assemblePng, encodeChunk, encodeInternationalTextChunk, encodeTextChunk, parsePngChunks } from '../../main/gallery/png-chunks';
import { embedRecipe, MAX_RECIPE_CHUNK_BYTES, PARAMETERS_KEYWORD, readPngTexts, readRecipe, RECIPE_KEYWORD, RecipeReadError } from '../../main/gallery/png-recipe';
import { sampleRecipe } from '../helpers/recipe-fixtures';

/** A small, deterministic RGB image as sharp encodes it (the engine's own PNG writer). */
async function plainPng(): Promise<Uint8Array> {
  const data = new Uint8Array(16 * 12 * 3).map((_, i) => (i * 37) % 256);
  return encodePng({ width: 16, height: 12, data });
}
const pixels = async (png: Uint8Array) => (await sharp(png).raw().toBuffer({ resolveWithObject: true })).data;

function readError(png: Uint8Array): RecipeReadError {
  try {
    readRecipe(png, 'x.png');
  } catch (error) {
    if (error instanceof RecipeReadError) return error;
    throw error;
  }
  throw new Error('expected the read to fail');
}

/** `png` with `extra` chunks spliced in before IEND, bypassing embedRecipe's checks (a forger's file). */
const withChunks = (png: Uint8Array, ...extra: Uint8Array[]) => assemblePng(parsePngChunks(png), extra);

describe('recipe in PNG', () => {
  it('round-trips the recipe, keeps the pixels, and puts both text chunks before IEND', async () => {
    const png = await plainPng();
    const recipe = sampleRecipe({ prompt: 'un chien à la plage 🐶' });
    const embedded = embedRecipe(png, recipe);
    expect(readRecipe(embedded)).toEqual(recipe);
    expect(await pixels(embedded)).toEqual(await pixels(png));
    const types = parsePngChunks(embedded).map((c) => c.type);
    expect(types.slice(-3)).toEqual(['iTXt', 'iTXt', 'IEND']); // non-Latin-1 prompt: parameters in iTXt, as PIL does
    expect((await sharp(embedded).metadata()).width).toBe(16); // other readers still accept the file
  });

  it('writes the A1111 parameters as tEXt when Latin-1, readable as hand-written', async () => {
    const embedded = embedRecipe(await plainPng(), sampleRecipe());
    expect(parsePngChunks(embedded).map((c) => c.type).slice(-3)).toEqual(['iTXt', 'tEXt', 'IEND']);
    expect(readPngTexts(embedded).get(PARAMETERS_KEYWORD)).toBe(
      'on the beach, golden hour\nNegative prompt: blurry\n' +
        'Steps: 25, Sampler: PLMS, CFG scale: 7.5, Seed: 42, Size: 128x96, Model hash: aaaaaaaaaa, Model: tiny-blipdiffusion, Subject: dog, Version: BLIP Studio 0.1.0',
    );
  });

  it('replaces an earlier recipe instead of adding a second one', async () => {
    const png = await plainPng();
    const twice = embedRecipe(embedRecipe(png, sampleRecipe()), sampleRecipe({ seed: '7' }));
    expect(readRecipe(twice).seed).toBe('7');
    expect(parsePngChunks(twice)).toHaveLength(parsePngChunks(png).length + 2); // + recipe, + parameters
  });

  it('says clearly when a PNG was not made by BLIP Studio', async () => {
    const error = readError(await plainPng());
    expect(error.problem).toBe('no-recipe');
    expect(error.message).toMatch(/x\.png was not made by BLIP Studio/);
  });

  it('refuses a broken CRC, a truncated file and a non-PNG', async () => {
    const embedded = embedRecipe(await plainPng(), sampleRecipe());
    const flipped = embedded.slice();
    flipped[flipped.length - 40] = flipped[flipped.length - 40]! ^ 0x01; // inside the parameters text
    expect(readError(flipped)).toMatchObject({ problem: 'corrupt', message: expect.stringMatching(/fails its CRC check/) });
    expect(readError(embedded.subarray(0, embedded.length - 20))).toMatchObject({ problem: 'truncated', message: expect.stringMatching(/truncated/) });
    expect(readError(embedded.subarray(0, 30))).toMatchObject({ problem: 'truncated' });
    expect(readError(new TextEncoder().encode('GIF89a not a png'))).toMatchObject({ problem: 'not-png', message: expect.stringMatching(/not a PNG/) });
    expect(() => embedRecipe(flipped, sampleRecipe())).toThrow(/CRC/);
  });

  it('refuses a recipe chunk over the limit before reading it', async () => {
    const huge = encodeInternationalTextChunk(RECIPE_KEYWORD, `{"prompt":"${'x'.repeat(MAX_RECIPE_CHUNK_BYTES)}"}`);
    const error = readError(withChunks(await plainPng(), huge));
    expect(error.problem).toBe('too-large');
    expect(error.message).toMatch(/limit is 65536/);
  });

  it('refuses forged recipes: invalid fields, not JSON, two recipes, compressed or in tEXt', async () => {
    const png = await plainPng();
    const json = JSON.parse(JSON.stringify(sampleRecipe())) as Record<string, unknown>;
    const forged = withChunks(png, encodeInternationalTextChunk(RECIPE_KEYWORD, JSON.stringify({ ...json, steps: 1e9, extra: true })));
    expect(readError(forged)).toMatchObject({ problem: 'invalid-recipe', message: expect.stringMatching(/forged[\s\S]*steps/) });
    expect(readError(withChunks(png, encodeInternationalTextChunk(RECIPE_KEYWORD, '{"app": "BLIP Studio"')))).toMatchObject({ message: expect.stringMatching(/not valid JSON/) });
    const valid = encodeInternationalTextChunk(RECIPE_KEYWORD, JSON.stringify(json));
    expect(readError(withChunks(png, valid, valid))).toMatchObject({ message: expect.stringMatching(/carries 2 recipes/) });
    expect(readError(withChunks(png, encodeTextChunk(RECIPE_KEYWORD, JSON.stringify(json))))).toMatchObject({ message: expect.stringMatching(/not in an iTXt chunk/) });
    const keyword = new TextEncoder().encode(`${RECIPE_KEYWORD}\0\u0001\0\0\0`);
    expect(readError(withChunks(png, encodeChunk('iTXt', keyword)))).toMatchObject({ message: expect.stringMatching(/compressed/) });
  });
});
