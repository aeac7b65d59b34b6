import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { GraphBuilder } from '../../main/engine/graph/builder';
import { countFlops } from '../../main/engine/graph/flops';
import { GraphCache } from '../../main/engine/runtime/graph-cache';
import { makeTempDir } from '../helpers/temp-dir';

describe('countFlops', () => {
  it('counts 2 FLOPs per multiply-add of MatMul, Gemm and Conv from the static shapes', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [2, 3]);
    const w = b.constant(new Float32Array(12), [3, 4]);
    b.matMul(x, w); // [2,3]·[3,4]: 2·2·4·3 = 48
    const wt = b.constant(new Float32Array(20), [5, 4]);
    const y = b.gemm(b.matMul(x, w), wt, null, { transB: true }); // another 48, then [2,4]·[4,5]ᵀ: 2·2·5·4 = 80
    expect(y.shape).toEqual([2, 5]);
    const image = b.input('image', 'float32', [1, 3, 8, 8]);
    const kernel = b.constant(new Float32Array(6 * 3 * 3 * 3), [6, 3, 3, 3]);
    b.conv(image, kernel, null, { strides: [1, 1], pads: [1, 1, 1, 1] }); // out [1,6,8,8] = 384 values × 27 taps × 2 = 20736
    expect(countFlops(b.nodes)).toBe(48 + 48 + 80 + 20736);
  });
});

describe('GraphCache', () => {
  let dir: ReturnType<typeof makeTempDir>;
  beforeEach(() => {
    dir = makeTempDir();
  });
  afterEach(() => dir.remove());

  it('builds once per key and then serves the stored bytes', () => {
    const cache = new GraphCache(join(dir.path, 'graphs'));
    let builds = 0;
    const build = () => {
      builds += 1;
      return Uint8Array.from([1, 2, 3, builds]);
    };
    const key = 'a'.repeat(64);
    expect([...cache.getOrBuild(key, build)]).toEqual([1, 2, 3, 1]);
    const written = statSync(join(dir.path, 'graphs', `${key}.onnx`)).mtimeMs;
    expect([...cache.getOrBuild(key, build)]).toEqual([1, 2, 3, 1]);
    expect(builds).toBe(1);
    expect(statSync(join(dir.path, 'graphs', `${key}.onnx`)).mtimeMs).toBe(written);
    expect([...readFileSync(join(dir.path, 'graphs', `${key}.onnx`))]).toEqual([1, 2, 3, 1]);
    expect([...cache.getOrBuild('b'.repeat(64), build)]).toEqual([1, 2, 3, 2]);
  });

  it('refuses keys that are not plain file names', () => {
    const cache = new GraphCache(dir.path);
    for (const key of ['../../etc/passwd', 'A'.repeat(64), 'short', 'a/b'.repeat(10)]) expect(() => cache.getOrBuild(key, () => new Uint8Array(1))).toThrow(/not a safe file name/);
  });
});
