import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readNpyFile } from '../../main/engine/io/npy-file';
import { Mt19937 } from '../../main/engine/random/mt19937';
import { fmaFloat32 } from '../../main/engine/random/float32-fma';
import { TorchGenerator, torchRandn, torchSeedToUint64 } from '../../main/engine/random/torch-randn';
import { REPO_ROOT } from '../helpers/built-app';

const kit = join(REPO_ROOT, 'test/fixtures/parity');

interface RngEntry {
  file: string;
  seed: number;
  shape: number[];
  dtype: string;
  call: string;
}

const rngEntries = (JSON.parse(readFileSync(join(kit, 'extras-manifest.json'), 'utf8')) as { rng: RngEntry[] }).rng;

/** Indices where two float32 arrays differ in any bit (NaN never appears in the kit). */
function bitMismatches(actual: Float32Array, expected: Float32Array): number[] {
  const a = new Uint32Array(actual.buffer, actual.byteOffset, actual.length);
  const b = new Uint32Array(expected.buffer, expected.byteOffset, expected.length);
  const bad: number[] = [];
  for (let i = 0; i < b.length; i++) if (a[i] !== b[i]) bad.push(i);
  return bad;
}

describe('torch CPU randn', () => {
  it('covers every rng/ file of the kit, including a seed above 2^32 and a size that is not a multiple of 16', () => {
    expect(rngEntries).toHaveLength(16);
    expect(rngEntries.some((entry) => entry.seed > 2 ** 32)).toBe(true);
    expect(rngEntries.some((entry) => entry.shape.reduce((a, b) => a * b, 1) % 16 !== 0)).toBe(true);
  });

  it.each(rngEntries.map((entry) => [entry.file, entry] as const))('%s is reproduced bit for bit', (_file, entry) => {
    expect(entry.call).toContain("torch.Generator('cpu').manual_seed(seed)");
    const expected = readNpyFile(join(kit, entry.file));
    expect(expected.dtype).toBe('float32');
    expect(expected.shape).toEqual(entry.shape);
    const actual = torchRandn(BigInt(entry.seed), entry.shape);
    expect(actual.length).toBe(expected.data.length);
    expect(bitMismatches(actual, expected.data as Float32Array)).toEqual([]);
  });

  it('seeds the Mersenne Twister with the low 32 bits of the 64-bit seed, as torch does', () => {
    expect(torchRandn(4294967303n, [2, 4, 8, 8])).toEqual(torchRandn(7, [2, 4, 8, 8]));
    expect(torchSeedToUint64(2n ** 64n - 1n)).toBe(18446744073709551615n);
    expect(torchSeedToUint64(-1)).toBe(2n ** 64n - 1n);
    expect(() => torchSeedToUint64(2n ** 64n)).toThrow(RangeError);
    expect(() => torchSeedToUint64(0.5)).toThrow(RangeError);
    expect(() => torchSeedToUint64(2 ** 60)).toThrow(/bigint/);
  });

  it('MT19937 matches the reference generator: the 10000th output for seed 5489 is 4123659995', () => {
    // The C++ standard ([rand.predef]) requires this value of a default-constructed std::mt19937.
    const engine = new Mt19937(5489n);
    let value = 0;
    for (let i = 0; i < 10000; i++) value = engine.nextUint32();
    expect(value).toBe(4123659995);
  });

  it('takes the scalar double-precision path below 16 elements (published torch output for seed 42)', () => {
    // torch.manual_seed(42); torch.randn(2, 3) prints [[0.3367, 0.1288, 0.2345], [0.2303, -1.1229, -0.1863]]
    // (e.g. https://sprintchase.com/torch-randn); the 4-decimal print is all that is published.
    const values = torchRandn(42, [2, 3]);
    const printed = [0.3367, 0.1288, 0.2345, 0.2303, -1.1229, -0.1863];
    for (let i = 0; i < printed.length; i++) expect(values[i]).toBeCloseTo(printed[i]!, 4);
    // The vectorised path gives different numbers for the same seed (it draws 24-bit uniforms).
    expect(torchRandn(42, [16])[0]).not.toBeCloseTo(values[0]!, 2);
  });

  it('continues one stream across calls, including the cached second Box–Muller value of the scalar path', () => {
    // Vectorised: blocks of 16 are independent, so 16 + 16 draws equal one draw of 32.
    const generator = new TorchGenerator(1234567);
    const joined = new Float32Array([...generator.randn([16]), ...generator.randn([4, 4])]);
    expect(joined).toEqual(torchRandn(1234567, [32]));
    // Scalar: 1 + 5 elements use three Box–Muller pairs, like one call of 6 (the 2nd value comes from the cache).
    const scalar = new TorchGenerator(0);
    expect(new Float32Array([...scalar.randn([1]), ...scalar.randn([5])])).toEqual(torchRandn(0, [6]));
    // manual_seed restarts the stream and drops the cache.
    scalar.randn([1]);
    expect(scalar.manualSeed(0).randn([6])).toEqual(torchRandn(0, [6]));
    expect(scalar.initialSeed).toBe(0n);
  });

  it('handles empty and scalar shapes and rejects bad dimensions', () => {
    expect(torchRandn(0, [0, 4])).toHaveLength(0);
    expect(torchRandn(0, [])).toHaveLength(1);
    expect(() => torchRandn(0, [2, -1])).toThrow(RangeError);
    expect(() => torchRandn(0, [1.5])).toThrow(RangeError);
  });

  it('fuses multiply-add with a single float32 rounding', () => {
    // (1 + 2^-23)(1 − 2^-23) − 1 = −2^-46 exactly; rounding the product first would give 0.
    const up = 1 + 2 ** -23;
    const down = 1 - 2 ** -23;
    expect(fmaFloat32(up, down, -1)).toBe(-(2 ** -46));
    expect(Math.fround(Math.fround(up * down) - 1)).toBe(0);
    // (1 + 2^-23)(2^-24 − 2^-47) + (1 + 2^-23) = 1 + 2^-23 + 2^-24 − 2^-70: just below the float32 halfway
    // point, so it rounds down; the double sum lands ON the halfway point and would round up to even.
    const product = (1 + 2 ** -23) * (2 ** -24 - 2 ** -47);
    expect(Math.fround(product + up)).toBe(1 + 2 ** -22);
    expect(fmaFloat32(1 + 2 ** -23, 2 ** -24 - 2 ** -47, up)).toBe(up);
  });
});
