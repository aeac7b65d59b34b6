import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeRgb, type RgbImage } from '../../main/engine/imaging/decode';
import { centreCrop, preprocessTrainingPhotos, resizeShortestSide, squareTrainingPhoto, trainingPixels } from '../../main/engine/imaging/training-photos';
import { readNpyFile } from '../../main/engine/io/npy-file';
import { REPO_ROOT } from '../helpers/built-app';
import { FINETUNE_KIT, finetuneKitConfig, kitNpy } from '../helpers/finetune-kit';

const goldens = join(REPO_ROOT, 'test/fixtures/training-photos');

interface GoldenEntry {
  source: string;
  resolution: number;
  shape: number[];
}
const manifest = JSON.parse(readFileSync(join(goldens, 'manifest.json'), 'utf8')) as { versions: Record<string, string>; files: Record<string, GoldenEntry> };

function maxAbsByteDiff(a: Uint8Array, b: Uint8Array): number {
  expect(a.length).toBe(b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

/** A w×h image whose pixel (x, y) is (x, y, x + y) (mod 256): crops can be read off the values. */
function coordinateImage(width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data.set([x % 256, y % 256, (x + y) % 256], (y * width + x) * 3);
  return { width, height, data };
}

describe('fine-tune photo preprocessing (kit step 1: shortest side to R with PIL bicubic, centre crop, x = uint8/127.5 − 1)', () => {
  const config = finetuneKitConfig();

  it('the kit’s photos/*.png (already R×R) give target_pixels.npy bit for bit', async () => {
    const expected = kitNpy('target_pixels');
    const pixels = await preprocessTrainingPhotos(
      config.photos.map((photo) => join(FINETUNE_KIT, photo)),
      config.resolution,
    );
    expect(pixels.dims).toEqual(expected.shape);
    expect(Buffer.from(pixels.data.buffer).equals(Buffer.from((expected.data as Float32Array).buffer))).toBe(true);
  });

  it('the kit’s photos are DreamBench dog/00-02.jpg squared here: identical bytes (sharp decodes these JPEGs like PIL)', async ({ annotate }) => {
    const errors: string[] = [];
    for (const [i, photo] of config.photos.entries()) {
      const kitPhoto = await decodeRgb(join(FINETUNE_KIT, photo));
      const ours = squareTrainingPhoto(await decodeRgb(join(REPO_ROOT, `test/fixtures/dreambench/dog/0${i}.jpg`)), config.resolution);
      const error = maxAbsByteDiff(ours.data, kitPhoto.data);
      errors.push(`${photo}: max |Δ| = ${error} levels`);
      expect(error, photo).toBe(0);
    }
    await annotate(errors.join('; '));
  });

  it.each(Object.entries(manifest.files))('%s matches the PIL reference (scripts/reference-training-photos.py) exactly', async (name, entry) => {
    const golden = readNpyFile(join(goldens, name));
    expect(golden.shape).toEqual([entry.resolution, entry.resolution, 3]);
    const ours = squareTrainingPhoto(await decodeRgb(join(REPO_ROOT, entry.source)), entry.resolution);
    expect([ours.height, ours.width]).toEqual([entry.resolution, entry.resolution]);
    // Pillow's resampling is re-implemented bit-exactly (pil-resize.ts), and sharp's decoder agrees with
    // PIL's on these files, so no level of difference is allowed.
    expect(maxAbsByteDiff(ours.data, golden.data as Uint8Array)).toBe(0);
  });

  it('the references were made with the kit’s Pillow and NumPy', () => {
    expect(manifest.versions).toMatchObject({ pillow: '9.4.0', numpy: '1.24.2' });
  });

  it('resizes the shortest side as torchvision does: the long side is truncated, orientation kept', () => {
    const portrait = resizeShortestSide(coordinateImage(80, 120), 50);
    expect([portrait.width, portrait.height]).toEqual([50, 75]);
    const landscape = resizeShortestSide(coordinateImage(192, 160), 33);
    expect([landscape.width, landscape.height]).toEqual([39, 33]); // 33·192/160 = 39.6
    const square = resizeShortestSide(coordinateImage(12, 12), 12);
    expect(square.data).toEqual(coordinateImage(12, 12).data);
  });

  it('centre-crops with Python’s round: exact halves go to the even offset', () => {
    // 75 − 50 = 25 → round(12.5) = 12 rows off the top; 42 − 35 = 7 → round(3.5) = 4 columns off the left.
    expect(centreCrop(coordinateImage(50, 75), 50).data.subarray(0, 3)).toEqual(Uint8Array.from([0, 12, 12]));
    expect(centreCrop(coordinateImage(42, 35), 35).data.subarray(0, 3)).toEqual(Uint8Array.from([4, 0, 4]));
    // 45 − 40 = 5 → round(2.5) = 2; 47 − 40 = 7 → round(3.5) = 4.
    expect(centreCrop(coordinateImage(47, 45), 40).data.subarray(0, 3)).toEqual(Uint8Array.from([4, 2, 6]));
    const cropped = centreCrop(coordinateImage(9, 7), 5);
    expect(cropped.data.subarray((4 * 5 + 4) * 3, (4 * 5 + 4) * 3 + 3)).toEqual(Uint8Array.from([6, 5, 11]));
  });

  it('maps bytes to [−1, 1] channels first, image after image', () => {
    const a: RgbImage = { width: 1, height: 1, data: Uint8Array.from([0, 255, 128]) };
    const b: RgbImage = { width: 1, height: 1, data: Uint8Array.from([127, 1, 254]) };
    const pixels = trainingPixels([a, b]);
    expect(pixels.dims).toEqual([2, 3, 1, 1]);
    // NumPy float32 of torchvision's ToTensor + Normalize(0.5, 0.5): (u / 255 − 0.5) / 0.5.
    expect(Array.from(pixels.data)).toEqual([-1, 1, 0.003921627998352051, -0.003921568393707275, -0.9921568632125854, 0.9921568632125854]);
  });

  it('refuses what it cannot make', async () => {
    expect(() => trainingPixels([])).toThrow(/no images/);
    expect(() => trainingPixels([coordinateImage(4, 4), coordinateImage(5, 5)])).toThrow(/image 1 is 5×5, expected 4×4/);
    expect(() => centreCrop(coordinateImage(4, 8), 5)).toThrow(/cannot centre-crop a 4×8 image to 5×5/);
    expect(() => resizeShortestSide(coordinateImage(4, 4), 0)).toThrow(/positive integer/);
    await expect(preprocessTrainingPhotos([join(FINETUNE_KIT, 'config.json')], 64)).rejects.toThrow(/Could not read .*config.json as an image/);
  });
});
