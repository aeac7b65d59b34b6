import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readNpyFile } from '../../main/engine/io/npy-file';
import { Mt19937 } from '../../main/engine/random/mt19937';
import { TorchGenerator, torchSeedToUint64 } from '../../main/engine/random/torch-randn';
import { REPO_ROOT } from '../helpers/built-app';

const fixtures = join(REPO_ROOT, 'test/fixtures/torch-randint');

interface Call {
  file: string;
  call: string;
  dtype: string;
  shape: number[];
}
const manifest = JSON.parse(readFileSync(join(fixtures, 'manifest.json'), 'utf8')) as { versions: Record<string, string>; cases: Record<string, { seed: number; calls: Call[] }> };

/** Replays one recorded call on our generator, from the call's own text: `torch.randint(low, high, shape, …)` or `torch.randn(shape, …)`. */
function replay(generator: TorchGenerator, call: Call): BigInt64Array | Float32Array {
  const randint = /^torch\.randint\((-?\d+), (-?\d+), \(/.exec(call.call);
  if (randint) return generator.randint(BigInt(randint[1]!), BigInt(randint[2]!), call.shape);
  if (call.call.startsWith('torch.randn(')) return generator.randn(call.shape);
  throw new Error(`cannot replay ${call.call}`);
}

describe('torch CPU randint (scripts/reference-torch-randint.py, torch 1.13)', () => {
  it('the fixtures come from the kits’ torch and cover both draw widths, negative lows and interleaving with randn', () => {
    expect(manifest.versions.torch).toMatch(/^1\.13/);
    const calls = Object.values(manifest.cases).flatMap((c) => c.calls.map((call) => call.call));
    expect(calls.some((c) => c.includes('randint(0, 4294967296'))).toBe(true);
    expect(calls.some((c) => c.includes('randint(0, 4294967295'))).toBe(true);
    expect(calls.some((c) => c.startsWith('torch.randint(-'))).toBe(true);
    expect(calls.some((c) => c.startsWith('torch.randn((1,)'))).toBe(true);
  });

  it.each(Object.entries(manifest.cases))('%s: every call of the case is reproduced exactly, in order, from one generator', (_name, testCase) => {
    const generator = new TorchGenerator(BigInt(testCase.seed));
    for (const call of testCase.calls) {
      const expected = readNpyFile(join(fixtures, call.file));
      expect(expected.shape).toEqual(call.shape);
      const actual = replay(generator, call);
      if (call.dtype === 'int64') {
        expect(expected.dtype).toBe('int64');
        expect(Array.from(actual as BigInt64Array), call.call).toEqual(Array.from(expected.data as BigInt64Array));
      } else {
        expect(Array.from(new Uint32Array((actual as Float32Array).buffer)), call.call).toEqual(Array.from(new Uint32Array((expected.data as Float32Array).buffer)));
      }
    }
  });

  it('draws one 32-bit word per element below a range of 2^32 and two from there (first word high)', () => {
    const seed = 99n;
    const words = new Mt19937(torchSeedToUint64(seed));
    const next = () => BigInt(words.nextUint32());
    const narrow = new TorchGenerator(seed).randint(3, 3 + 2 ** 32 - 1, [2]);
    expect(Array.from(narrow)).toEqual([(next() % (2n ** 32n - 1n)) + 3n, (next() % (2n ** 32n - 1n)) + 3n]);
    const wide = new TorchGenerator(seed).randint(0, 2 ** 32, 1);
    const fresh = new Mt19937(torchSeedToUint64(seed));
    const high = BigInt(fresh.nextUint32());
    expect(wide[0]).toBe(((high << 32n) | BigInt(fresh.nextUint32())) % 2n ** 32n);
  });

  it('takes a shape or an element count, and refuses what torch refuses', () => {
    expect(new TorchGenerator(5).randint(0, 10, [2, 3])).toEqual(new TorchGenerator(5).randint(0, 10, 6));
    expect(new TorchGenerator(5).randint(0, 10, [0])).toHaveLength(0);
    const generator = new TorchGenerator(5);
    expect(() => generator.randint(4, 4, [1])).toThrow(/low \(4\) must be less than high \(4\)/);
    expect(() => generator.randint(0, 2n ** 63n, [1])).toThrow(/outside the int64 range/);
    expect(() => generator.randint(0, 2 ** 60, [1])).toThrow(/bigint/);
    expect(() => generator.randint(0, 10, [-1])).toThrow(/randint: bad dimension -1/);
  });
});
