import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { cpSync, existsSync, openSync, readFileSync, rmSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { parseNpy } from '../../main/engine/io/npy';
import { readSafetensorsFile } from '../../main/engine/weights/safetensors';
import { BUILT_CLI, REPO_ROOT, requireBuild, runCli } from '../helpers/built-app';
import { makeTempDir } from '../helpers/temp-dir';

const kit = join(REPO_ROOT, 'test/fixtures/parity');
const photo = join(REPO_ROOT, 'resources/demo-photos/dog-00.jpg');
let data: ReturnType<typeof makeTempDir>;
let tinyModel: string;

const cli = (...args: string[]) => runCli(['--data-dir', data.path, ...args]);
const floats = (path: string) => parseNpy(readFileSync(path)).data as Float32Array;

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

/** The kit's run through the CLI, with the kit's reference pixels and initial latents. */
const kitRun = (model: string, out: string, ...extra: string[]) =>
  cli(
    'generate', '--model', join(kit, 'models', model), '--reference-pixels', join(kit, 'blip/ref_pixel_values.npy'), '--subject', 'dog', '--target', 'puppy',
    '--prompt', 'swimming underwater', '--steps', '4', '--height', '48', '--width', '32', '--latents', join(kit, 'inputs/initial_latents.npy'),
    '--out', out, '--out-npy', out.replace(/\.png$/, '.npy'), '--device', 'cpu', ...extra,
  );

beforeAll(() => {
  requireBuild();
  data = makeTempDir('blip-cli-generate-');
  tinyModel = join(data.path, 'second-config');
  expect(cli('make-tiny-model', '--out', tinyModel).status).toBe(0);
});
afterAll(() => data.remove());

describe('CLI generate', () => {
  it('reproduces the reference pipeline’s output_image.npy and writes the PNG', async () => {
    const out = join(data.path, 'blip.png');
    const result = kitRun('tiny-blipdiffusion', out);
    expect(result.stderr).toMatch(/denoising 4\/4/); // the 4 steps asked for (PNDM calls the UNet 5 times)
    expect(result.status).toBe(0);
    expect(maxAbsDiff(floats(out.replace(/\.png$/, '.npy')), parseNpy(readFileSync(join(kit, 'blip/output_image.npy'))).data as Float32Array)).toBeLessThanOrEqual(2e-3);
    const png = await sharp(out).metadata();
    expect([png.width, png.height, png.channels]).toEqual([32, 48, 3]);
  });

  it('reproduces the ControlNet pipeline’s output with the kit’s control pixels', () => {
    const out = join(data.path, 'controlnet.png');
    expect(kitRun('tiny-blipdiffusion-controlnet', out, '--control-pixels', join(kit, 'controlnet/control_pixel_values.npy')).status).toBe(0);
    const expected = parseNpy(readFileSync(join(kit, 'controlnet/output_image.npy'))).data as Float32Array;
    expect(maxAbsDiff(floats(out.replace(/\.png$/, '.npy')), expected)).toBeLessThanOrEqual(2e-3);
  });

  it('runs a second, differently shaped model end to end, deterministically per seed, with every scheduler', async () => {
    const run = (name: string, ...extra: string[]) =>
      cli('generate', '--model', tinyModel, '--reference', photo, '--subject', 'dog', '--prompt', 'on a red sofa', '--steps', '3', '--out', join(data.path, `${name}.png`), '--out-npy', join(data.path, `${name}.npy`), ...extra);
    expect(run('a', '--seed', '7', '--control', join(kit, 'inputs/control_image.png')).status).toBe(0);
    expect(run('b', '--seed', '7', '--control', join(kit, 'inputs/control_image.png')).status).toBe(0);
    expect(floats(join(data.path, 'b.npy'))).toEqual(floats(join(data.path, 'a.npy')));
    expect(run('c', '--seed', '8', '--control', join(kit, 'inputs/control_image.png')).status).toBe(0);
    expect(maxAbsDiff(floats(join(data.path, 'a.npy')), floats(join(data.path, 'c.npy')))).toBeGreaterThan(0);
    for (const scheduler of ['ddim', 'euler', 'dpmpp2m', 'dpmpp2m-karras']) {
      const result = run(scheduler, '--seed', '1', '--scheduler', scheduler, '--height', '40', '--width', '24');
      expect(result.status, result.stderr).toBe(0);
      expect((await sharp(join(data.path, `${scheduler}.png`)).metadata()).height).toBe(40);
    }
    const seedless = run('random-seed');
    expect(seedless.stderr).toMatch(/^seed \d+$/m);
  });

  it('refuses bad requests clearly and writes nothing', () => {
    const out = join(data.path, 'never.png');
    const base = ['generate', '--model', tinyModel, '--reference', photo, '--subject', 'dog', '--prompt', 'x', '--steps', '2', '--out', out];
    expect(cli(...base, '--height', '42').stderr).toMatch(/height must be a positive multiple of 4/);
    expect(cli(...base, '--scheduler', 'lms').stderr).toMatch(/expected one of pndm, ddim/);
    expect(cli(...base, '--negative', 'word '.repeat(60)).stderr).toMatch(/Shorten the negative prompt/);
    const plain = cli('generate', '--model', join(kit, 'models/tiny-blipdiffusion'), '--reference', photo, '--subject', 'dog', '--prompt', 'x', '--control', photo, '--out', out);
    expect(plain.stderr).toMatch(/control image needs a model with a ControlNet/);
    expect(existsSync(out)).toBe(false);
  });

  it('names what is wrong with a broken model: a missing component, a ControlNet that does not fit', () => {
    const out = join(data.path, 'never.png');
    const args = (model: string) => ['generate', '--model', model, '--reference', photo, '--subject', 'dog', '--prompt', 'x', '--steps', '2', '--seed', '1', '--out', out];

    const noVae = join(data.path, 'no-vae');
    cpSync(tinyModel, noVae, { recursive: true });
    rmSync(join(noVae, 'vae'), { recursive: true });
    expect(cli(...args(noVae)).stderr).toMatch(/vae\/: the component folder is missing/);

    const misfit = join(data.path, 'misfit');
    cpSync(tinyModel, misfit, { recursive: true });
    const configPath = join(misfit, 'controlnet/config.json');
    writeFileSync(configPath, JSON.stringify({ ...JSON.parse(readFileSync(configPath, 'utf8')), block_out_channels: [8, 16, 32] }));
    expect(cli(...args(misfit), '--control', photo).stderr).toMatch(/ControlNet does not fit this UNet: block_out_channels \[8, 16, 32\]/);

    expect(existsSync(out)).toBe(false);
  });

  it('reports NaN weights with the stage that produced them', async () => {
    const poisoned = join(data.path, 'poisoned');
    cpSync(tinyModel, poisoned, { recursive: true });
    const file = join(poisoned, 'unet/diffusion_pytorch_model.safetensors');
    const tensor = (await readSafetensorsFile(file)).tensors.find((t) => t.name === 'conv_in.weight')!;
    const fd = openSync(file, 'r+');
    writeSync(fd, new Uint8Array(new Float32Array(tensor.byteLength / 4).fill(Number.NaN).buffer), 0, tensor.byteLength, tensor.offset);
    closeSync(fd);
    const out = join(data.path, 'nan.png');
    const result = cli('generate', '--model', poisoned, '--reference', photo, '--subject', 'dog', '--prompt', 'x', '--steps', '2', '--seed', '1', '--out', out);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/The UNet produced NaN or infinite values/);
    expect(existsSync(out)).toBe(false);
  });

  it('stops on Ctrl+C between steps and leaves no output file', async () => {
    const out = join(data.path, 'cancelled.png');
    const child = spawn(process.execPath, [BUILT_CLI, '--data-dir', data.path, 'generate', '--model', tinyModel, '--reference', photo, '--subject', 'dog', '--prompt', 'x', '--steps', '400', '--seed', '1', '--out', out], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      if (/denoising/.test(stderr) && !child.killed) child.kill('SIGINT');
    });
    expect(await exit).toBe(130);
    expect(stderr).toMatch(/cancelled: no image written/);
    expect(existsSync(out)).toBe(false);
  });
});
