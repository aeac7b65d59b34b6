import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseNpy, type NpyArray } from '../../main/engine/io/npy';
import { REPO_ROOT, requireBuild, runCli } from '../helpers/built-app';
import { makeTempDir } from '../helpers/temp-dir';

const kit = join(REPO_ROOT, 'test/fixtures/parity');
const tinyModel = join(kit, 'models/tiny-blipdiffusion');
const tinyBinModel = join(kit, 'models/tiny-blipdiffusion-bin');
let data: ReturnType<typeof makeTempDir>;

const npy = (path: string): NpyArray => parseNpy(readFileSync(path));

/** The bound: max |a − b| ≤ 1e-4 · max|b| + 1e-6, with the shapes equal. */
function expectClose(actualPath: string, expectedKitFile: string): void {
  const actual = npy(actualPath);
  const expected = npy(join(kit, expectedKitFile));
  expect(actual.shape).toEqual(expected.shape);
  let maxErr = 0;
  let maxRef = 0;
  for (let i = 0; i < expected.data.length; i++) {
    maxErr = Math.max(maxErr, Math.abs(Number(actual.data[i]) - Number(expected.data[i])));
    maxRef = Math.max(maxRef, Math.abs(Number(expected.data[i])));
  }
  expect(maxErr).toBeLessThanOrEqual(1e-4 * maxRef + 1e-6);
}

beforeAll(() => {
  requireBuild();
  data = makeTempDir('blip-cli-engine-');
});
afterAll(() => data.remove());

const cli = (...args: string[]) => runCli(['--data-dir', data.path, ...args]);

describe('CLI engine commands on the reference kit', () => {
  it('inspect: components, parameter counts, and 0 missing / unused / mis-shaped for the Q-Former and text encoder', () => {
    const result = cli('inspect', '--model', tinyModel, '--json');
    expect(result.status).toBe(0);
    const report = JSON.parse(result.stdout);
    expect(report.ok).toBe(true);
    const byName = Object.fromEntries(report.components.map((c: { name: string }) => [c.name, c]));
    for (const name of ['qformer', 'text_encoder']) {
      expect(byName[name].check).toEqual({ missing: [], unused: [], misshaped: [] });
      expect(byName[name].weights.parameters).toBeGreaterThan(0);
    }
    expect(byName.unet.check).toEqual({ missing: [], unused: [], misshaped: [] });
  });

  it('inspect --real-shapes: 0 missing / unused / mis-shaped for every real checkpoint, without weights', () => {
    const result = cli('inspect', '--real-shapes', join(kit, 'real-shapes'), '--json');
    expect(result.status).toBe(0);
    const report = JSON.parse(result.stdout);
    const ids = report.components.map((c: { name: string }) => c.name);
    expect(ids).toEqual(expect.arrayContaining(['blipdiffusion-qformer', 'blipdiffusion-text_encoder', 'blipdiffusion-unet', 'blipdiffusion-vae', 'controlnet-canny']));
    for (const component of report.components) expect(component.check, component.name).toEqual({ missing: [], unused: [], misshaped: [] });
  });

  it('inspect lists what is wrong when the config and the weights disagree, and exits non-zero', () => {
    const model = join(data.path, 'mismatched');
    cpSync(tinyModel, model, { recursive: true });
    const configPath = join(model, 'text_encoder/config.json');
    const config = JSON.parse(readFileSync(configPath, 'utf8'));
    config.intermediate_size *= 2;
    config.num_hidden_layers += 1;
    writeFileSync(configPath, JSON.stringify(config));
    const result = cli('inspect', '--model', model);
    expect(result.status).toBe(1);
    expect(result.stdout).toMatch(/mis-shaped text_model\.encoder\.layers\.0\.mlp\.fc1\.weight: shape \[\d+, \d+\], expected/);
    expect(result.stdout).toMatch(new RegExp(`missing +text_model\\.encoder\\.layers\\.${config.num_hidden_layers - 1}\\.`));
    expect(result.stdout).toContain('PROBLEMS');
  });

  it('inspect names the file when weights are malicious or broken', () => {
    const model = join(data.path, 'bad-weights');
    cpSync(tinyBinModel, model, { recursive: true });
    cpSync(join(kit, 'bad-weights/code-execution.bin'), join(model, 'qformer/pytorch_model.bin'));
    const result = cli('inspect', '--model', model);
    expect(result.status).toBe(1);
    // Every component is still reported; the broken one names its file and the problem.
    expect(result.stdout).toMatch(/qformer[/\\]pytorch_model\.bin: refused to load: .*posix\.system/);
    expect(result.stdout).toMatch(/unet +UNet2DConditionModel .*\n.*check: 0 missing, 0 unused, 0 mis-shaped/);
    expect(existsSync('/tmp/blipstudio-pwned')).toBe(false);
  });

  it('embed from the kit’s pixel values and from the PNG (our own resize) both match query_embeds', () => {
    const fromPixels = join(data.path, 'from-pixels.npy');
    const fromImage = join(data.path, 'from-image.npy');
    expect(cli('embed', '--model', tinyModel, '--pixels', join(kit, 'blip/ref_pixel_values.npy'), '--subject', 'dog', '--out', fromPixels, '--device', 'cpu').status).toBe(0);
    expectClose(fromPixels, 'blip/query_embeds.npy');
    const result = cli('embed', '--model', tinyBinModel, '--image', join(kit, 'inputs/reference_image.png'), '--subject', 'dog', '--out', fromImage);
    expect(result.status).toBe(0);
    expectClose(fromImage, 'blip/query_embeds.npy');
  });

  it('encode-prompt writes the conditional and unconditional text embeddings', () => {
    const cond = join(data.path, 'cond.npy');
    const uncond = join(data.path, 'uncond.npy');
    const embeds = join(data.path, 'embeds.npy');
    cpSync(join(kit, 'blip/query_embeds.npy'), embeds);
    expect(cli('encode-prompt', '--model', tinyModel, '--prompt', 'swimming underwater', '--target', 'puppy', '--embeds', embeds, '--out', cond).status).toBe(0);
    expectClose(cond, 'blip/cond_text_embeddings.npy');
    expect(cli('encode-prompt', '--model', tinyModel, '--negative', '', '--out', uncond).status).toBe(0);
    expectClose(uncond, 'blip/uncond_text_embeddings.npy');
  });

  it('refuses bad requests clearly and writes nothing', () => {
    const out = join(data.path, 'never.npy');
    const tooLong = cli('encode-prompt', '--model', tinyModel, '--negative', 'word '.repeat(100), '--out', out);
    expect(tooLong.status).toBe(1);
    expect(tooLong.stderr).toMatch(/Shorten the negative prompt/);
    const both = cli('embed', '--model', tinyModel, '--subject', 'dog', '--out', out);
    expect(both.stderr).toMatch(/exactly one of --image or --pixels/);
    const wrongPixels = cli('embed', '--model', tinyModel, '--pixels', join(kit, 'inputs/initial_latents.npy'), '--subject', 'dog', '--out', out);
    expect(wrongPixels.stderr).toMatch(/pixel values must have shape \[1, 3, H, W\]/);
    const notAModel = cli('embed', '--model', kit, '--image', join(kit, 'inputs/reference_image.png'), '--subject', 'dog', '--out', out);
    expect(notAModel.stderr).toMatch(/model_index.json is missing/);
    expect(existsSync(out)).toBe(false);
  });
});
