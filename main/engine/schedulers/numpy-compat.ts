/**
 * The few NumPy (1.24) float64 routines the reference schedulers build their timesteps and sigmas with,
 * computed the way NumPy computes them so that rounding lands on the same integers.
 */

/** `np.linspace(start, stop, num)`: i·step + start, the last element exactly `stop`. */
export function numpyLinspace(start: number, stop: number, num: number): number[] {
  if (!Number.isSafeInteger(num) || num < 0) throw new RangeError(`linspace: bad count ${num}`);
  if (num === 1) return [start];
  const step = (stop - start) / (num - 1);
  const values = Array.from({ length: num }, (_, i) => i * step + start);
  if (num > 1) values[num - 1] = stop;
  return values;
}

/**
 * `np.arange(start, stop, step)` for floats: ceil((stop − start) / step) elements; NumPy fills them as
 * start + i·δ with δ = (start + step) − start, which can differ from `step` in the last bit.
 */
export function numpyArange(start: number, stop: number, step: number): number[] {
  const length = Math.ceil((stop - start) / step);
  if (!(length > 0)) return [];
  const delta = start + step - start;
  return Array.from({ length }, (_, i) => (i === 0 ? start : i === 1 ? start + step : start + i * delta));
}

/** `np.round` / `np.rint`: halves go to the even neighbour (0.5 → 0, 1.5 → 2, 498.5 → 498). */
export function roundHalfEven(x: number): number {
  const floor = Math.floor(x);
  const fraction = x - floor;
  if (fraction > 0.5) return floor + 1;
  if (fraction < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

/** `np.interp(x, np.arange(len(fp)), fp)`: linear interpolation on the integer grid 0 … n−1, clamped at the ends. */
export function interpOnIndexGrid(x: number, fp: ArrayLike<number>): number {
  const last = fp.length - 1;
  if (Number.isNaN(x)) return x;
  if (x <= 0) return fp[0]!;
  if (x >= last) return fp[last]!;
  const j = Math.floor(x);
  if (j === x) return fp[j]!;
  const slope = fp[j + 1]! - fp[j]!; // the grid step is 1
  return slope * (x - j) + fp[j]!;
}
