import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { REPO_ROOT, requireBuild, runCli } from '../helpers/built-app';
import { makeTempDir } from '../helpers/temp-dir';

const MODEL = join(REPO_ROOT, 'resources/demo-model/tiny-blipdiffusion-controlnet');
const DOG = ['00.jpg', '01.jpg', '02.jpg'].map((name) => join(REPO_ROOT, 'test/fixtures/dreambench/dog', name));
let data: ReturnType<typeof makeTempDir>;
const cli = (...args: string[]) => runCli(['--data-dir', data.path, ...args]);

beforeAll(() => {
  requireBuild();
  data = makeTempDir('blip-cli-library-');
});
afterAll(() => data.remove());

describe('CLI generate with a library subject (the same job path as the app)', () => {
  it('generates from the subject’s cached embeddings, records the result in the gallery and embeds the recipe', async () => {
    expect(cli('subjects', 'add', '--model', MODEL, '--name', 'Rex', '--category', 'dog', ...DOG).status).toBe(0);
    const out = join(data.path, 'out/rex.png');
    const result = cli('generate', '--model', MODEL, '--subject', 'rex', '--prompt', 'on the moon', '--steps', '2', '--height', '64', '--width', '64', '--seed', '11', '--out', out);
    expect(result.stderr).toMatch(/wrote .*rex\.png \(64×64, seed 11\); also in the gallery/);
    expect(result.status).toBe(0);
    expect((await sharp(out).metadata()).width).toBe(64);
    const recipe = JSON.parse(cli('recipe', out, '--json').stdout);
    expect(recipe).toMatchObject({ prompt: 'on the moon', seed: '11', steps: 2, width: 64, height: 64 });
    expect(JSON.stringify(recipe.subject)).toContain('Rex');
    expect(JSON.parse(cli('info', '--json').stdout).library.generations).toBe(1);
  });

  it('says what to do when the subject or the model is not in the library', () => {
    const out = join(data.path, 'never.png');
    expect(cli('generate', '--model', MODEL, '--subject', 'Nobody', '--prompt', 'x', '--out', out).stderr).toMatch(/no subject named "Nobody".*subjects add/);
    const other = join(REPO_ROOT, 'test/fixtures/parity/models/tiny-blipdiffusion');
    expect(cli('generate', '--model', other, '--subject', 'Rex', '--prompt', 'x', '--out', out).stderr).toMatch(/is not in the library yet/);
    expect(cli('generate', '--model', MODEL, '--subject', 'Rex', '--prompt', 'x', '--control', DOG[0]!, '--out', out).stderr).toMatch(/--control cannot be used yet/);
    expect(existsSync(out)).toBe(false);
  });
});
