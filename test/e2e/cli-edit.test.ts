/**
 * `invert` and `edit` on the built CLI with the demo model: the inverted latents and trajectory as .npy,
 * an edit whose pixels outside the feathered mask are the fitted photo's bytes exactly while the painted
 * region changes, a mask at the photo's own size landing where it was painted, and the refusals (empty
 * mask, no subject, unreadable mask) that write nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { REPO_ROOT, requireBuild, runCli } from '../helpers/built-app';
import { makeTempDir } from '../helpers/temp-dir';
import { readNpyFile } from '../../main/engine/io/npy-file';
import { toFloat32 } from '../../main/engine/io/npy';
import { decodeRgb } from '../../main/engine/imaging/decode';
import { coverFit } from '../../main/engine/imaging/cover-fit';
import { featherMask } from '../../main/engine/imaging/paste-back';

const MODEL = join(REPO_ROOT, 'resources/demo-model/tiny-blipdiffusion-controlnet');
const DOG = join(REPO_ROOT, 'test/fixtures/dreambench/dog');
/** The demo model's default size is small; 64² keeps the run short. */
const SIZE = 64;
let data: ReturnType<typeof makeTempDir>;
const cli = (...args: string[]) => runCli(['--data-dir', data.path, ...args]);

/** A mask PNG of (w, h): white inside the box [x0, x1) × [y0, y1), black elsewhere. */
async function boxMask(path: string, w: number, h: number, box: [number, number, number, number]): Promise<void> {
  const pixels = Buffer.alloc(w * h);
  for (let y = box[1]; y < box[3]; y++) pixels.fill(255, y * w + box[0], y * w + box[2]);
  await sharp(pixels, { raw: { width: w, height: h, channels: 1 } }).png().toFile(path);
}

beforeAll(() => {
  requireBuild();
  data = makeTempDir('blip-cli-edit-');
});
afterAll(() => data.remove());

describe('CLI invert and edit', () => {
  it('inverts a photo: the inverted latents and the whole trajectory, starting at the encoded photo', () => {
    const out = join(data.path, 'inverted.npy');
    const trajectory = join(data.path, 'trajectory.npy');
    const result = cli('invert', '--model', MODEL, '--image', join(DOG, '00.jpg'), '--subject', 'dog', '--steps', '4', '--width', String(SIZE), '--height', String(SIZE), '--trajectory', trajectory, '--out', out);
    expect(result.status, result.stderr).toBe(0);
    const lastFile = readNpyFile(out);
    const allFile = readNpyFile(trajectory);
    expect(lastFile.shape.slice(0, 2)).toEqual([1, 4]);
    expect(allFile.shape[0]).toBe(5);
    const last = toFloat32(lastFile);
    const all = toFloat32(allFile);
    const plane = last.length;
    expect(Array.from(all.slice(4 * plane, 5 * plane))).toEqual(Array.from(last));
    expect(Array.from(all.slice(0, plane))).not.toEqual(Array.from(last));
    expect(Array.from(last).every(Number.isFinite)).toBe(true);
  });

  it('repaints only the masked region: outside the feathered mask the fitted photo’s bytes stay exactly', async () => {
    const mask = join(data.path, 'mask.png');
    await boxMask(mask, SIZE, SIZE, [16, 16, 48, 48]);
    const out = join(data.path, 'edited.png');
    const photo = join(DOG, '01.jpg');
    const result = cli('edit', '--model', MODEL, '--image', photo, '--mask', mask, '--reference', join(DOG, '00.jpg'), '--subject', 'dog', '--prompt', 'on a rug', '--steps', '4', '--feather', '3', '--width', String(SIZE), '--height', String(SIZE), '--out', out);
    expect(result.status, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/25 % repainted/);
    const edited = await sharp(out).removeAlpha().raw().toBuffer();
    const source = coverFit(await decodeRgb(photo, { honourExifOrientation: true }), SIZE, SIZE);
    const painted = new Float32Array(SIZE * SIZE);
    for (let y = 16; y < 48; y++) painted.fill(1, y * SIZE + 16, y * SIZE + 48);
    const feathered = featherMask(painted, SIZE, SIZE, 3);
    let outside = 0;
    let changed = 0;
    for (let i = 0; i < SIZE * SIZE; i++) {
      const same = edited[i * 3] === source.data[i * 3] && edited[i * 3 + 1] === source.data[i * 3 + 1] && edited[i * 3 + 2] === source.data[i * 3 + 2];
      if (feathered[i] === 0) {
        outside++;
        expect(same).toBe(true);
      } else if (!same) changed++;
    }
    expect(outside).toBeGreaterThan(SIZE * SIZE * 0.6);
    expect(changed).toBeGreaterThan(32 * 32 * 0.5);
  });

  it('fits a mask painted at the photo’s own size as it fits the photo', async () => {
    const photo = join(DOG, '02.jpg');
    const meta = await sharp(photo).metadata();
    const mask = join(data.path, 'photo-size-mask.png');
    // The left half of the photo: after cover-fitting a square photo, the left half of the output.
    await boxMask(mask, meta.width!, meta.height!, [0, 0, Math.floor(meta.width! / 2), meta.height!]);
    const out = join(data.path, 'left.png');
    const result = cli('edit', '--model', MODEL, '--image', photo, '--mask', mask, '--reference', join(DOG, '00.jpg'), '--subject', 'dog', '--prompt', 'x', '--steps', '3', '--feather', '0', '--width', String(SIZE), '--height', String(SIZE), '--out', out);
    expect(result.status, result.stderr).toBe(0);
    const edited = await sharp(out).removeAlpha().raw().toBuffer();
    const source = coverFit(await decodeRgb(photo, { honourExifOrientation: true }), SIZE, SIZE);
    for (let y = 0; y < SIZE; y++) {
      const i = (y * SIZE + SIZE - 1) * 3;
      expect([edited[i], edited[i + 1], edited[i + 2]]).toEqual([source.data[i], source.data[i + 1], source.data[i + 2]]);
    }
  });

  it('refuses an empty mask, a missing subject and an unreadable mask, writing nothing', async () => {
    const empty = join(data.path, 'empty.png');
    await boxMask(empty, SIZE, SIZE, [0, 0, 0, 0]);
    const out = join(data.path, 'never.png');
    const base = ['edit', '--model', MODEL, '--image', join(DOG, '01.jpg'), '--subject', 'dog', '--prompt', 'x', '--steps', '2', '--width', String(SIZE), '--height', String(SIZE), '--out', out];
    expect(cli(...base, '--mask', empty, '--reference', join(DOG, '00.jpg')).stderr).toMatch(/is empty: paint a region first/);
    expect(cli(...base, '--mask', empty).stderr).toMatch(/give the subject as --reference IMG or --embedding NPY/);
    expect(cli(...base, '--mask', join(data.path, 'nope.png'), '--reference', join(DOG, '00.jpg')).stderr).toMatch(/cannot read the mask .*nope\.png/);
    expect(existsSync(out)).toBe(false);
  });
});
