import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, CommanderError } from 'commander';
import sharp from 'sharp';
import { ControlImageError, registerControlCommand } from '../../main/cli/control-command';
import { REPO_ROOT } from '../helpers/built-app';
import { makeTempDir } from '../helpers/temp-dir';

const kit = join(REPO_ROOT, 'test/fixtures/control/canny');

interface KitCase {
  name: string;
  input: string;
  edges: string;
  low: number;
  high: number;
  l2gradient: boolean;
  grayscale_first: boolean;
  width: number;
  height: number;
  edge_pixels: number;
}

const cases = (JSON.parse(readFileSync(join(kit, 'cases.json'), 'utf8')) as { cases: KitCase[] }).cases;
const kitCase = (name: string) => cases.find((c) => c.name === name)!;

let dir: { path: string; remove(): void };
beforeEach(() => {
  dir = makeTempDir();
});
afterEach(() => dir.remove());

/** `blip-studio control …` in-process: the real command tree, its printed text collected, errors thrown. */
async function runControl(args: string[]): Promise<string> {
  let printed = '';
  const program = new Command('blip-studio').exitOverride().configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
  registerControlCommand(program, (text) => (printed += text));
  await program.parseAsync(['control', ...args], { from: 'user' });
  return printed;
}

/** Each of the map's three channels must be the kit's one-channel OpenCV edges, byte for byte. */
async function expectKitEdgesReplicated(file: string, c: KitCase): Promise<void> {
  expect((await sharp(file).metadata()).channels).toBe(3);
  const { data, info } = await sharp(file).raw().toBuffer({ resolveWithObject: true });
  expect([info.width, info.height, info.channels]).toEqual([c.width, c.height, 3]);
  const edges = await sharp(join(kit, c.edges)).toColourspace('b-w').raw().toBuffer();
  let mismatches = 0;
  for (let i = 0; i < data.length; i++) if (data[i] !== edges[Math.floor(i / 3)]) mismatches++;
  expect(mismatches, `${c.name}: bytes differing from the kit's edges`).toBe(0);
}

describe('cli control canny', () => {
  it('writes the kit’s OpenCV edges as a 3-channel PNG, with the default thresholds 30/70', async () => {
    const c = kitCase('dog_512_30_70');
    const out = join(dir.path, 'edges.png');
    const printed = await runControl(['canny', '--image', join(kit, c.input), '--out', out, '--json']);
    const lines = printed.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    const report = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(report).toMatchObject({ out, width: c.width, height: c.height, edgePixels: c.edge_pixels });
    expect(report.ms).toBeTypeOf('number');
    await expectKitEdgesReplicated(out, c);
    expect(readdirSync(dir.path)).toEqual(['edges.png']);
  });

  it('--l2 and --grayscale with explicit thresholds match their kit cases', async () => {
    for (const c of [kitCase('cat_333x217_l2'), kitCase('dog_256_gray_30_70'), kitCase('synthetic_97x131_l2_50_51')]) {
      const out = join(dir.path, `${c.name}.png`);
      const flags = [...(c.l2gradient ? ['--l2'] : []), ...(c.grayscale_first ? ['--grayscale'] : [])];
      const printed = await runControl(['canny', '--image', join(kit, c.input), '--out', out, '--low', String(c.low), '--high', String(c.high), ...flags]);
      expect(printed).toContain(`${c.edge_pixels} edge pixels`);
      await expectKitEdgesReplicated(out, c);
    }
  });

  it('a corrupt image is a ControlImageError naming the file, and nothing is written', async () => {
    const image = join(dir.path, 'broken.png');
    writeFileSync(image, Buffer.concat([readFileSync(join(kit, kitCase('synthetic_97x131_30_70').input)).subarray(0, 8), Buffer.from('not the rest of a PNG')]));
    const out = join(dir.path, 'edges.png');
    const failure = await runControl(['canny', '--image', image, '--out', out]).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(ControlImageError);
    expect((failure as Error).name).toBe('ControlImageError');
    expect((failure as Error).message).toMatch(/Could not read .*broken\.png as an image/);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(dir.path)).toEqual(['broken.png']);
  });

  it('refuses bad thresholds and a non-PNG output before reading anything', async () => {
    const image = join(kit, kitCase('synthetic_97x131_30_70').input);
    const out = join(dir.path, 'edges.png');
    await expect(runControl(['canny', '--image', image, '--out', out, '--low', '-3'])).rejects.toThrow(CommanderError);
    await expect(runControl(['canny', '--image', image, '--out', out, '--high', 'lots'])).rejects.toThrow(/expected a number ≥ 0/);
    await expect(runControl(['canny', '--image', image, '--out', join(dir.path, 'edges.jpg')])).rejects.toThrow(/--out must name a \.png file/);
    expect(readdirSync(dir.path)).toEqual([]);
  });
});
