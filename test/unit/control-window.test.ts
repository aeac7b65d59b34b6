/**
 * Which model calls a control window steers: diffusers' `controlnet_keep` rule (call i of n is
 * controlled when i/n ≥ start and (i+1)/n ≤ end), and the map fitting that decides "stretched".
 */
import { describe, expect, it } from 'vitest';
import { controlKeep } from '../../main/engine/pipelines/generate';
import { controlSourceStretched, fitControlSource } from '../../main/engine/pipelines/control-map';

const kept = (start: number, end: number, calls: number) => Array.from({ length: calls }, (_, i) => controlKeep({ controlStart: start, controlEnd: end }, i, calls));

describe('the control window', () => {
  it('keeps every call by default and the calls inside [start, end] otherwise', () => {
    expect(kept(0, 1, 5)).toEqual([1, 1, 1, 1, 1]);
    expect(kept(0.2, 0.5, 10)).toEqual([0, 0, 1, 1, 1, 0, 0, 0, 0, 0]);
    expect(kept(0, 0.5, 3)).toEqual([1, 0, 0]);
    // PNDM makes steps + 1 calls; the rule counts calls, as diffusers' loop does over its timesteps.
    expect(kept(0.5, 1, 4)).toEqual([0, 0, 1, 1]);
    expect(controlKeep({}, 3, 4)).toBe(1);
  });

  it('fits a source to the output size without touching one already that size, and says when it stretches', () => {
    const source = { width: 4, height: 2, data: new Uint8Array(4 * 2 * 3).map((_, i) => i * 9) };
    expect(fitControlSource(source, 4, 2)).toBe(source);
    const fitted = fitControlSource(source, 2, 2);
    expect([fitted.width, fitted.height, fitted.data.length]).toEqual([2, 2, 12]);
    expect(controlSourceStretched(source, 2, 2)).toBe(true);
    expect(controlSourceStretched({ width: 512, height: 512 }, 64, 64)).toBe(false);
    expect(controlSourceStretched({ width: 515, height: 512 }, 64, 64)).toBe(false);
    expect(controlSourceStretched({ width: 333, height: 217 }, 64, 64)).toBe(true);
  });
});
