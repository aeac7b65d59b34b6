/** The pure LocalBlend helpers (main/engine/pipelines/local-blend.ts) on hand-made inputs, against torch's rules. */
import { describe, expect, it } from 'vitest';
import { AttentionAccumulator, localBlend, maxPool2d, normalizeByMax, resizeNearest, thresholdMask, wordAttentionMap } from '../../main/engine/pipelines/local-blend';

describe('LocalBlend helpers', () => {
  it('resizes like F.interpolate(mode="nearest"): index floor(i·in/out), up and down, uneven', () => {
    expect(Array.from(resizeNearest([1, 2, 3, 4], 2, 2, 4, 4))).toEqual([1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4]);
    expect(Array.from(resizeNearest([1, 2, 3], 1, 3, 1, 2))).toEqual([1, 2]);
    expect(Array.from(resizeNearest([1, 2], 1, 2, 1, 5))).toEqual([1, 1, 1, 2, 2]);
    expect(() => resizeNearest([1, 2, 3], 2, 2, 4, 4)).toThrow(/2×2 map needs 4 values, got 3/);
  });

  it('max-pools with any radius, borders included', () => {
    expect(Array.from(maxPool2d([0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0], 3, 4, 1))).toEqual([9, 9, 0, 0, 9, 9, 0, 0, 9, 9, 0, 0]);
    expect(Array.from(maxPool2d([3, 1, 2], 1, 3, 0))).toEqual([3, 1, 2]);
  });

  it('normalises by the max and thresholds strictly (gt); an all-zero map passes nowhere (NaN), as in torch', () => {
    expect(Array.from(normalizeByMax([1, 2, 4]))).toEqual([0.25, 0.5, 1]);
    expect(Array.from(thresholdMask([0.3, 0.31, 0.29], 0.3))).toEqual([0, 1, 0]);
    expect(Array.from(thresholdMask(normalizeByMax([0, 0]), 0.3))).toEqual([0, 0]);
  });

  it('sums maps over steps (AttentionStore) and checks the layer list stays the same', () => {
    const store = new AttentionAccumulator();
    const layer = (v: number) => ({ heads: 1, height: 1, width: 2, keys: 1, probabilities: Float32Array.of(v, 2 * v) });
    store.add([layer(1), layer(3)]);
    store.add([layer(2), layer(5)]);
    expect(store.steps).toBe(2);
    expect(Array.from(store.layers[1]!.probabilities)).toEqual([8, 16]);
    expect(() => store.add([layer(1)])).toThrow(/1 layers this step, 2 before/);
    expect(() => store.add([{ ...layer(1), width: 3 }, layer(1)])).toThrow(/2 values for 1×3×1/);
  });

  it('sums the word’s tokens, refuses layers on different grids, and runs the whole chain', () => {
    const probabilities = Float32Array.of(0.1, 0.2, 0.7, 0.5, 0.4, 0.1); // 2 positions × 3 tokens
    expect(Array.from(wordAttentionMap([{ heads: 2, height: 1, width: 2, keys: 3, probabilities }], [0, 1]).map).map((v) => Math.round(v * 1e6) / 1e6)).toEqual([0.3, 0.9]);
    const other = { heads: 1, height: 2, width: 1, keys: 3, probabilities };
    expect(() => wordAttentionMap([{ ...other, height: 1, width: 2 }, other], [0])).toThrow(/1×2 and 2×1 cannot be averaged/);
    const blend = localBlend([{ heads: 1, height: 1, width: 2, keys: 3, probabilities }], [2], 2, 4, { threshold: 0.5, poolRadius: 0 });
    // [0.7, 0.1] → nearest to 2×4 → ÷ 0.7
    expect(Array.from(blend.mask)).toEqual([1, 1, 0, 0, 1, 1, 0, 0]);
  });
});
