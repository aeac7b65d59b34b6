/**
 * `control depth`: the depth map of a photo through the engine's depth pipeline, written as a 3-channel
 * PNG (each channel the one-channel map) atomically, on the tiny Depth Anything of test/fixtures/depth/.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import sharp from 'sharp';
import { registerControlCommand } from '../../main/cli/control-command';
import { writeDepthMap } from '../../main/cli/control-depth';
import type { RuntimeClient } from '../../main/engine/runtime/runtime-client';
import { REPO_ROOT } from '../helpers/built-app';
import { depthManifest, depthMapOf, depthModelDir, expectMapWithinBound } from '../helpers/depth-fixtures';
import { makeTempDir } from '../helpers/temp-dir';
import { startTestRuntime } from '../helpers/worker-bundle';

const CASE = 'tiny-depth-anything/dog-00';
const entry = depthManifest.cases[CASE]!;
const temp = makeTempDir('blip-control-depth-');
let testRuntime: Awaited<ReturnType<typeof startTestRuntime>>;
let runtime: RuntimeClient;
beforeAll(async () => {
  testRuntime = await startTestRuntime();
  runtime = testRuntime.runtime;
});
afterAll(async () => {
  await testRuntime?.stop();
  temp.remove();
});

const request = (out: string, overrides: Partial<Parameters<typeof writeDepthMap>[0]> = {}) => ({
  image: join(REPO_ROOT, entry.source),
  out,
  model: depthModelDir(entry.model),
  device: 'cpu',
  dataDir: join(temp.path, 'data'),
  runtime,
  ...overrides,
});

describe('cli control depth', () => {
  it('is a subcommand of `control`, with --image, --out, --model, --device and --json', () => {
    const program = new Command('blip-studio');
    const control = registerControlCommand(program, () => undefined);
    const depth = control.commands.find((c) => c.name() === 'depth');
    expect(depth).toBeDefined();
    expect(depth!.options.map((o) => o.long)).toEqual(['--image', '--out', '--model', '--device', '--json']);
  });

  it('writes the reference’s depth map (within the parity bound) as a 3-channel PNG at the photo’s size', async () => {
    mkdirSync(join(temp.path, 'maps'));
    const out = join(temp.path, 'maps', 'dog-depth.png');
    const report = await writeDepthMap(request(out));
    expect(report).toMatchObject({ out, width: 512, height: 512, device: 'cpu' });
    expect(report.depthMs).toBeGreaterThan(0);
    const { data, info } = await sharp(out).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height, info.channels]).toEqual([512, 512, 3]);
    const gray = new Uint8Array(info.width * info.height);
    for (let i = 0; i < gray.length; i++) {
      expect(data[i * 3] === data[i * 3 + 1] && data[i * 3] === data[i * 3 + 2]).toBe(true);
      gray[i] = data[i * 3]!;
    }
    expectMapWithinBound(gray, depthMapOf(CASE), entry.files['depth_map.npy']!, CASE);
    expect(readdirSync(join(temp.path, 'maps'))).toEqual(['dog-depth.png']);
  });

  it('refuses a non-PNG --out, an unreadable picture and a folder that is not a depth estimator, writing nothing', async () => {
    const out = join(temp.path, 'refused.png');
    await expect(writeDepthMap(request(join(temp.path, 'map.jpg')))).rejects.toThrow(/--out must name a \.png file/);
    await expect(writeDepthMap(request(out, { image: join(temp.path, 'missing.jpg') }))).rejects.toThrow(/missing\.jpg/);
    await expect(writeDepthMap(request(out, { model: join(REPO_ROOT, 'test/fixtures/dreambench') }))).rejects.toThrow(/config\.json is missing[\s\S]*preprocessor_config\.json is missing/);
    expect(existsSync(out)).toBe(false);
  });
});
