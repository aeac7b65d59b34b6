/**
 * `generate --control-from IMG --control-mode …` on the built CLI with the demo model: the map is made by
 * the same code as the app's control panel (the CLI's stored map has the hash the studio API gives for
 * the same picture and size), the recipe records how, `reproduce` gives identical pixels from it, and
 * with a library subject the job runs through the studio API. Refusals name the flag.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import sharp from 'sharp';
import { join } from 'node:path';
import { REPO_ROOT, requireBuild, runCli } from '../helpers/built-app';
import { makeTempDir } from '../helpers/temp-dir';
import { openStudio } from '../../main/api/studio';
import { controlFilePath } from '../../main/library/control-images';
import { bundleWorkerForTest } from '../helpers/worker-bundle';

const MODEL = join(REPO_ROOT, 'resources/demo-model/tiny-blipdiffusion-controlnet');
const DOG = ['00.jpg', '01.jpg'].map((name) => join(REPO_ROOT, 'test/fixtures/dreambench/dog', name));
const CAT = join(REPO_ROOT, 'test/fixtures/control/canny/cat_333x217_30_70.input.png');
let data: ReturnType<typeof makeTempDir>;
const cli = (...args: string[]) => runCli(['--data-dir', data.path, ...args]);
const recipeOf = (png: string) => JSON.parse(cli('recipe', png, '--json').stdout) as { control?: Record<string, unknown> };

beforeAll(() => {
  requireBuild();
  data = makeTempDir('blip-cli-control-');
});
afterAll(() => data.remove());

describe('CLI generate with a map made from a picture', () => {
  it('makes the Canny map as the app does, records it in the recipe, and reproduces identically', async () => {
    const out = join(data.path, 'out/edges.png');
    const args = ['generate', '--model', MODEL, '--reference', DOG[0]!, '--subject', 'dog', '--prompt', 'on a hill', '--steps', '3', '--width', '64', '--height', '64', '--seed', '8'];
    const result = cli(...args, '--control-from', CAT, '--low', '50', '--high', '120', '--control-end', '0.5', '--out', out);
    expect(result.status, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/is stretched to 64×64/);
    const control = recipeOf(out).control!;
    expect(control).toMatchObject({ mode: 'canny', low: 50, high: 120, end: 0.5, scale: 1 });
    const mapSha = control['sha256'] as string;
    expect(existsSync(join(data.path, controlFilePath(mapSha)))).toBe(true);

    // The app's control panel makes the very same map from the same picture.
    const bundle = await bundleWorkerForTest();
    const studio = await openStudio({ dataDir: data.path, mode: 'cli', workerFile: bundle.file });
    try {
      const source = await studio.api.addControlSource({ name: 'cat.png', dataBase64: readFileSync(CAT).toString('base64') });
      expect(source.id).toBe((control['source'] as { sha256: string }).sha256);
      const map = await studio.api.makeControlMap({ sourceId: source.id, mode: 'canny', width: 64, height: 64, low: 50, high: 120 });
      expect(map.id).toBe(mapSha);
    } finally {
      await studio.close();
      bundle.remove();
    }

    const again = cli('reproduce', out, '--out', join(data.path, 'out/again.png'), '--reference', DOG[0]!, '--json');
    expect(again.status, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ identical: true });

    // Another mode (the picture as is) gives another map, so another image.
    const asIs = join(data.path, 'out/as-is.png');
    expect(cli(...args, '--control-from', CAT, '--control-mode', 'image', '--out', asIs).status).toBe(0);
    expect(recipeOf(asIs).control).toMatchObject({ mode: 'image' });
    expect(recipeOf(asIs).control!['sha256']).not.toBe(mapSha);
    expect(readFileSync(asIs).equals(readFileSync(out))).toBe(false);
  });

  it('makes a depth map with --depth-model (min-max 0 … 255) and records the mode', async () => {
    const out = join(data.path, 'out/depth.png');
    const depthModel = join(REPO_ROOT, 'test/fixtures/depth/tiny-depth-anything');
    const args = ['generate', '--model', MODEL, '--reference', DOG[0]!, '--subject', 'dog', '--prompt', 'in a cave', '--steps', '2', '--width', '64', '--height', '64', '--seed', '4'];
    const result = cli(...args, '--control-from', DOG[1]!, '--control-mode', 'depth', '--depth-model', depthModel, '--out', out);
    expect(result.status, result.stderr).toBe(0);
    const control = recipeOf(out).control!;
    expect(control).toMatchObject({ mode: 'depth', scale: 1 });
    expect(control).not.toHaveProperty('low');
    const map = await sharp(join(data.path, controlFilePath(control['sha256'] as string))).extractChannel(0).raw().toBuffer();
    expect(Math.min(...map)).toBe(0);
    expect(Math.max(...map)).toBe(255);
  });

  it('with a library subject, makes the map through the studio API and records it in the gallery', () => {
    expect(cli('subjects', 'add', '--model', MODEL, '--name', 'Rex', '--category', 'dog', DOG[1]!).status).toBe(0);
    const out = join(data.path, 'out/rex.png');
    const result = cli('generate', '--model', MODEL, '--subject', 'Rex', '--prompt', 'in the snow', '--steps', '2', '--width', '64', '--height', '64', '--seed', '3', '--control-from', CAT, '--out', out);
    expect(result.status, result.stderr).toBe(0);
    expect(recipeOf(out).control).toMatchObject({ mode: 'canny', low: 30, high: 70 });
  });

  it('names the flag that is wrong', () => {
    const out = join(data.path, 'never.png');
    const base = ['generate', '--model', MODEL, '--reference', DOG[0]!, '--subject', 'dog', '--prompt', 'x', '--out', out];
    expect(cli(...base, '--low', '10').stderr).toMatch(/--low needs --control-from/);
    expect(cli(...base, '--control-from', CAT, '--control-mode', 'depth').stderr).toMatch(/--control-mode depth needs --depth-model/);
    expect(cli(...base, '--control-from', CAT, '--control-start', '0.6', '--control-end', '0.4').stderr).toMatch(/--control-start must be below --control-end/);
    expect(cli(...base, '--control-from', CAT, '--control-mode', 'edges').stderr).toMatch(/expected canny, depth or image/);
    expect(cli(...base, '--control-from', join(data.path, 'missing.png')).stderr).toMatch(/missing\.png/);
    expect(existsSync(out)).toBe(false);
  });
});
