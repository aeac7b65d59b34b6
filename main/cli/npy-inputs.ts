import { toFloat32 } from '../engine/io/npy';
import { readNpyFile } from '../engine/io/npy-file';
import type { PixelTensor } from '../engine/imaging/preprocess';

/** Preprocessed pixel values from a .npy file: [1, 3, H, W], float16/32/64 accepted. */
export function readPixelTensor(path: string): PixelTensor {
  const array = readNpyFile(path);
  if (array.shape.length !== 4 || array.shape[0] !== 1 || array.shape[1] !== 3) throw new Error(`${path}: pixel values must have shape [1, 3, H, W], got [${array.shape.join(', ')}]`);
  return { dims: array.shape as [1, 3, number, number], data: toFloat32(array) };
}
