import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { GenerationsStore } from '../../main/gallery/generations-store';
import { openDatabase } from '../../main/library/database';
import { listJobRuns } from '../../main/library/job-journal';
import { assemblePng, encodeInternationalTextChunk, parsePngChunks } from '../../main/gallery/png-chunks';
import { readPngFile, RECIPE_KEYWORD } from '../../main/gallery/png-recipe';
import { REPO_ROOT, requireBuild, runCli } from '../helpers/built-app';
import { makeTempDir } from '../helpers/temp-dir';

const demoModel = join(REPO_ROOT, 'resources/demo-model/tiny-blipdiffusion-controlnet');
const photo = join(REPO_ROOT, 'resources/demo-photos/dog-00.jpg');
let data: ReturnType<typeof makeTempDir>;
let original: string;

const cli = (...args: string[]) => runCli(['--data-dir', data.path, ...args]);
const generateArgs = (out: string, ...extra: string[]) => [
  'generate', '--model', demoModel, '--reference', photo, '--subject', 'dog', '--prompt', 'on the beach, golden hour', '--negative', 'blurry',
  '--steps', '5', '--height', '64', '--width', '64', '--seed', '42', '--device', 'cpu', '--out', out, ...extra,
];
const rawPixels = async (path: string) => (await sharp(path).raw().toBuffer({ resolveWithObject: true })).data;
const generationCount = () => {
  const store = GenerationsStore.open(data.path);
  try {
    return store.list().length;
  } finally {
    store.close();
  }
};

beforeAll(() => {
  requireBuild();
  data = makeTempDir('blip-cli-recipe-');
  original = join(data.path, 'original.png');
  const result = cli(...generateArgs(original));
  expect(result.status, result.stderr).toBe(0);
  expect(result.stderr).toMatch(/recorded in the library as generation 1 \(results\/[0-9a-f]{2}\/[0-9a-f]{64}\.png\)/);
});
afterAll(() => data.remove());

describe('CLI recipes', () => {
  it('records the generation in the library with the same PNG as --out', () => {
    const store = GenerationsStore.open(data.path);
    try {
      const [generation] = store.list();
      expect(generation).toMatchObject({ id: 1, seed: '42', prompt: 'on the beach, golden hour', width: 64, height: 64 });
      expect(readFileSync(store.absolutePath(generation!.imagePath))).toEqual(readFileSync(original));
    } finally {
      store.close();
    }
    // Recording was journaled (a studio starting meanwhile leaves its file alone), and the run ended.
    const db = openDatabase(data.path);
    try {
      expect(listJobRuns(db).filter((run) => run.kind === 'cli-record')).toMatchObject([{ state: 'done', label: 'Record original.png in the gallery' }]);
    } finally {
      db.close();
    }
  });

  it('`recipe` prints the embedded recipe', () => {
    const result = cli('recipe', original, '--json');
    expect(result.status, result.stderr).toBe(0);
    const recipe = JSON.parse(result.stdout) as Record<string, unknown>;
    expect(recipe).toMatchObject({
      app: 'BLIP Studio',
      recipeVersion: 1,
      model: { name: 'tiny-blipdiffusion-controlnet', folder: demoModel, hash: expect.stringMatching(/^[0-9a-f]{64}$/) },
      subject: { category: 'dog', reference: { sha256: createHash('sha256').update(readFileSync(photo)).digest('hex') } },
      targetSubject: 'dog',
      prompt: 'on the beach, golden hour',
      negativePrompt: 'blurry',
      seed: '42',
      steps: 5,
      guidanceScale: 7.5,
      scheduler: 'pndm',
      width: 64,
      height: 64,
      promptStrength: 1,
      promptReps: 20,
      device: 'cpu',
    });
    expect(recipe.control).toBeUndefined();
    expect(cli('recipe', original).stdout).toMatch(/seed\s+42\n/);
    expect(cli('recipe', original, '--parameters').stdout).toMatch(/^on the beach, golden hour\nNegative prompt: blurry\nSteps: 5, Sampler: PLMS, CFG scale: 7.5, Seed: 42, Size: 64x64, Model hash: [0-9a-f]{10},/);
  });

  it('`reproduce` gives identical pixels on the same device', async () => {
    const out = join(data.path, 'again.png');
    const result = cli('reproduce', original, '--out', out, '--reference', photo, '--json');
    expect(result.status, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ identical: true, maxDifference: 0, differingPixels: 0, device: 'cpu', sameDevice: true, modelMatches: true });
    expect(await rawPixels(out)).toEqual(await rawPixels(original));
    expect(cli('recipe', out, '--json').status).toBe(0); // the new image carries its own recipe
    expect(generationCount()).toBe(1); // reproducing does not add to the gallery
  });

  it('`reproduce` asks for the photo when the library lacks it, and refuses the wrong one', () => {
    const out = join(data.path, 'never.png');
    expect(cli('reproduce', original, '--out', out).stderr).toMatch(/not in the library .*give the file with --reference/);
    expect(cli('reproduce', original, '--out', out, '--reference', join(REPO_ROOT, 'test/fixtures/parity/inputs/control_image.png')).stderr).toMatch(/is not the subject photo this recipe used/);
    expect(existsSync(out)).toBe(false);
  });

  it('`reproduce` finds the photos in the library by hash, and re-runs a ControlNet recipe', async () => {
    const control = join(REPO_ROOT, 'test/fixtures/parity/inputs/control_image.png');
    const controlled = join(data.path, 'controlled.png');
    expect(cli(...generateArgs(controlled, '--control', control, '--control-scale', '0.7')).status).toBe(0);
    // What the subject library does when photos are imported: content-addressed files plus rows naming them.
    const db = openDatabase(data.path);
    const subjectId = db.prepare("INSERT INTO subjects (name, category) VALUES ('Rex', 'dog')").run().lastInsertRowid;
    for (const file of [photo, control]) {
      const sha256 = createHash('sha256').update(readFileSync(file)).digest('hex');
      const stored = `photos/${sha256.slice(0, 2)}/${sha256}.${file.split('.').pop()}`;
      mkdirSync(join(data.path, stored, '..'), { recursive: true });
      copyFileSync(file, join(data.path, stored));
      db.prepare('INSERT INTO photos (subject_id, sha256, file_path, width, height, bytes) VALUES (?, ?, ?, 1, 1, 1)').run(subjectId, sha256, stored);
    }
    db.close();
    const out = join(data.path, 'controlled-again.png');
    const result = cli('reproduce', controlled, '--out', out, '--json');
    expect(result.status, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ identical: true });
    expect(JSON.parse(cli('recipe', out, '--json').stdout)).toMatchObject({ control: { scale: 0.7 } });
    expect(await rawPixels(out)).toEqual(await rawPixels(controlled));
  });

  it('refuses forged, damaged and foreign PNGs clearly, writing nothing', async () => {
    const png = readPngFile(original);
    const chunks = parsePngChunks(png);
    const recipeChunk = chunks.find((c) => c.type === 'iTXt' && new TextDecoder().decode(c.data.subarray(0, RECIPE_KEYWORD.length)) === RECIPE_KEYWORD)!;
    const json = JSON.parse(new TextDecoder().decode(recipeChunk.data.subarray(RECIPE_KEYWORD.length + 5))) as Record<string, unknown>;
    const forged = join(data.path, 'forged.png');
    writeFileSync(forged, assemblePng(chunks.filter((c) => c !== recipeChunk), [encodeInternationalTextChunk(RECIPE_KEYWORD, JSON.stringify({ ...json, steps: 1e9, width: -1 }))]));
    const out = join(data.path, 'never.png');
    for (const command of [['recipe', forged], ['reproduce', forged, '--out', out, '--reference', photo]]) {
      const result = cli(...command);
      expect(result.status).toBe(1);
      expect(result.stderr).toMatch(/forged\.png has a recipe BLIP Studio cannot use[\s\S]*steps[\s\S]*width/);
    }
    const damaged = join(data.path, 'damaged.png');
    const flipped = png.slice();
    flipped[recipeChunk.offset + 30] = flipped[recipeChunk.offset + 30]! ^ 0x20;
    writeFileSync(damaged, flipped);
    expect(cli('recipe', damaged).stderr).toMatch(/fails its CRC check/);
    const truncated = join(data.path, 'truncated.png');
    writeFileSync(truncated, png.subarray(0, png.length - 100));
    expect(cli('recipe', truncated).stderr).toMatch(/truncated/);
    const foreign = join(data.path, 'foreign.png');
    await sharp(photo).resize(16, 16).png().toFile(foreign);
    expect(cli('recipe', foreign).stderr).toMatch(/was not made by BLIP Studio/);
    expect(existsSync(out)).toBe(false);
    expect(readFileSync(original)).toEqual(Buffer.from(png)); // nothing lost
  });

  it('`generate --no-library` embeds the recipe but records nothing', () => {
    const out = join(data.path, 'unrecorded.png');
    const result = cli(...generateArgs(out, '--no-library'));
    expect(result.status, result.stderr).toBe(0);
    expect(result.stderr).not.toMatch(/recorded in the library/);
    expect(JSON.parse(cli('recipe', out, '--json').stdout)).toMatchObject({ seed: '42' });
    expect(generationCount()).toBe(2); // the original and the ControlNet run
  });
});
