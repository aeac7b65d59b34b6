import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { float16ToFloat32, parseNpy, serializeNpy, toFloat32 } from '../../main/engine/io/npy';
import { REPO_ROOT } from '../helpers/built-app';

const kit = join(REPO_ROOT, 'test/fixtures/parity');

describe('.npy', () => {
  it('reads the kit’s int64 token ids and float32 arrays with their shapes', () => {
    const ids = parseNpy(readFileSync(join(kit, 'blip/cond_input_ids.npy')));
    expect(ids.dtype).toBe('int64');
    expect(ids.shape).toEqual([1, 61]);
    // CLIP's <|startoftext|> is the second-to-last vocab id and comes first.
    expect(typeof (ids.data as BigInt64Array)[0]).toBe('bigint');
    const latents = parseNpy(readFileSync(join(kit, 'inputs/initial_latents.npy')));
    expect(latents).toMatchObject({ dtype: 'float32', shape: [1, 4, 24, 16] });
    expect(latents.data.length).toBe(1536);
  });

  it('writes what NumPy writes: magic, version 1.0, a 64-byte aligned header, then the data', () => {
    const bytes = serializeNpy({ dtype: 'float32', shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) });
    expect([...bytes.subarray(0, 8)]).toEqual([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
    const headerLength = bytes[8]! | (bytes[9]! << 8);
    expect((10 + headerLength) % 64).toBe(0);
    const header = String.fromCharCode(...bytes.subarray(10, 10 + headerLength));
    expect(header).toMatch(/^\{'descr': '<f4', 'fortran_order': False, 'shape': \(2, 3\), \} *\n$/);
    expect(bytes.length).toBe(10 + headerLength + 24);
    expect(parseNpy(bytes)).toEqual({ dtype: 'float32', shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) });
  });

  it('writes a 1-D shape as a one-element tuple and a scalar as ()', () => {
    const vector = serializeNpy({ dtype: 'int64', shape: [2], data: new BigInt64Array([5n, -1n]) });
    expect(String.fromCharCode(...vector.subarray(10, 80))).toContain("'shape': (2,)");
    expect(parseNpy(vector).data).toEqual(new BigInt64Array([5n, -1n]));
    const scalar = serializeNpy({ dtype: 'float64', shape: [], data: new Float64Array([0.5]) });
    expect(parseNpy(scalar)).toMatchObject({ shape: [], data: new Float64Array([0.5]) });
  });

  it('converts float16 exactly', () => {
    expect(float16ToFloat32(0x3c00)).toBe(1);
    expect(float16ToFloat32(0xc000)).toBe(-2);
    expect(float16ToFloat32(0x7bff)).toBe(65504);
    expect(float16ToFloat32(0x0001)).toBe(2 ** -24);
    expect(float16ToFloat32(0x7c00)).toBe(Infinity);
    expect(Number.isNaN(float16ToFloat32(0x7e00))).toBe(true);
    expect(toFloat32({ dtype: 'float16', shape: [2], data: new Uint16Array([0x3555, 0xbc00]) })[0]).toBeCloseTo(1 / 3, 3);
  });

  it('refuses broken files with a reason', () => {
    expect(() => parseNpy(new Uint8Array([1, 2, 3]))).toThrow(/bad magic/);
    const good = serializeNpy({ dtype: 'float32', shape: [4], data: new Float32Array(4) });
    expect(() => parseNpy(good.subarray(0, good.length - 3))).toThrow(/truncated .npy data/);
    const bigEndian = serializeNpy({ dtype: 'float32', shape: [1], data: new Float32Array(1) });
    bigEndian[10 + "{'descr': '".length] = '>'.charCodeAt(0);
    expect(() => parseNpy(bigEndian)).toThrow(/unsupported .npy dtype '>f4'/);
  });
});
