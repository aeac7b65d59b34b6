import { describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { decodeRgb, MAX_INPUT_PIXELS } from '../../main/engine/imaging/decode';
import { pilResize } from '../../main/engine/imaging/pil-resize';
import { parseImageProcessorConfig, preprocessControlImage, preprocessReferenceImage } from '../../main/engine/imaging/preprocess';
import { readNpyFile } from '../../main/engine/io/npy-file';
import { REPO_ROOT } from '../helpers/built-app';
import { makeTempDir } from '../helpers/temp-dir';

const kit = join(REPO_ROOT, 'test/fixtures/parity');
const processorConfig = () =>
  parseImageProcessorConfig(JSON.parse(readFileSync(join(kit, 'models/tiny-blipdiffusion/image_processor/preprocessor_config.json'), 'utf8')));

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

describe('reference image preprocessing (BlipImageProcessor)', () => {
  it('matches the kit’s ref_pixel_values from the RGBA PNG: alpha dropped, PIL bicubic, CLIP normalisation', async () => {
    const expected = readNpyFile(join(kit, 'blip/ref_pixel_values.npy'));
    const pixels = await preprocessReferenceImage(join(kit, 'inputs/reference_image.png'), processorConfig());
    expect(pixels.dims).toEqual(expected.shape);
    // Bit-exact resampling; the only freedom left is float32 rounding of the normalisation.
    expect(maxAbsDiff(pixels.data, expected.data as Float32Array)).toBeLessThanOrEqual(1e-6);
  });

  it('matches the kit’s control_pixel_values (resize to the output size, [0, 1], not normalised)', async () => {
    const expected = readNpyFile(join(kit, 'controlnet/control_pixel_values.npy'));
    const [, , height, width] = expected.shape as [number, number, number, number];
    const pixels = await preprocessControlImage(join(kit, 'inputs/control_image.png'), { height, width }, processorConfig());
    // The pipeline duplicates the control image for CFG; compare the first copy.
    expect(maxAbsDiff(pixels.data, (expected.data as Float32Array).subarray(0, pixels.data.length))).toBeLessThanOrEqual(1e-6);
  });

  it('resizes like Pillow in hand-checkable cases', () => {
    const gradient = { width: 4, height: 1, data: Uint8Array.from([0, 0, 0, 100, 100, 100, 200, 200, 200, 250, 250, 250]) };
    // Halving with the bilinear (triangle) filter stretched ×2: output 0 centres at source 1.0, weights
    // 0.25/0.75/0.75/0.25 over pixels −0.5..2.5 clipped → (0·.75 + 100·.75 + 200·.25)/1.75 = 71.43 → 71.
    expect([...pilResize(gradient, 2, 1, 'bilinear').data.subarray(0, 3)]).toEqual([71, 71, 71]);
    // Same size: a copy.
    expect(pilResize(gradient, 4, 1, 'bicubic').data).toEqual(gradient.data);
    // A constant image stays constant under every filter (weights are normalised).
    const flat = { width: 3, height: 3, data: new Uint8Array(27).fill(77) };
    for (const filter of ['nearest', 'bilinear', 'bicubic', 'lanczos'] as const) expect(new Set(pilResize(flat, 7, 5, filter).data)).toEqual(new Set([77]));
  });

  it('works for another processor size and statistics from the config', async () => {
    const config = parseImageProcessorConfig({ size: { height: 40, width: 56 }, resample: 2, image_mean: [0.5, 0.5, 0.5], image_std: [0.5, 0.5, 0.5] });
    const pixels = await preprocessReferenceImage(join(kit, 'inputs/reference_image.png'), config);
    expect(pixels.dims).toEqual([1, 3, 40, 56]);
    expect(Math.min(...pixels.data)).toBeGreaterThanOrEqual(-1);
    expect(Math.max(...pixels.data)).toBeLessThanOrEqual(1);
  });

  it('refuses bad configs and bad images with the reason', async () => {
    expect(() => parseImageProcessorConfig({ size: { height: 0, width: 4 } })).toThrow(/positive integer/);
    expect(() => parseImageProcessorConfig({ resample: 9 })).toThrow(/resample filter 9/);
    expect(() => parseImageProcessorConfig({ image_mean: [1, 2] })).toThrow(/image_mean/);
    const dir = makeTempDir();
    try {
      writeFileSync(join(dir.path, 'not-an-image.png'), 'hello');
      await expect(decodeRgb(join(dir.path, 'not-an-image.png'))).rejects.toThrow(/Could not read .*not-an-image.png as an image/);
      const huge = await sharp({ create: { width: 8000, height: 7000, channels: 3, background: '#808080' } }).png({ compressionLevel: 1 }).toBuffer();
      expect(8000 * 7000).toBeGreaterThan(MAX_INPUT_PIXELS);
      await expect(decodeRgb(huge)).rejects.toThrow(/megapixels are refused/);
    } finally {
      dir.remove();
    }
  });
});
