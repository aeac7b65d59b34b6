/**
 * Static shape arithmetic for the graph builder: every dim is a known non-negative integer at build
 * time, so each op's output shape is computed here, and a mismatch surfaces as a message the builder
 * turns into an error naming the node.
 */

export type Shape = readonly number[];

/** Thrown by the helpers below; the builder catches it and adds the node's name and inputs. */
export class ShapeProblem extends Error {}

export function formatShape(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

export function elementCount(shape: Shape): number {
  return shape.reduce((product, dim) => product * dim, 1);
}

export function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((dim, i) => dim === b[i]);
}

export function isValidShape(shape: Shape): boolean {
  return shape.every((dim) => Number.isSafeInteger(dim) && dim >= 0);
}

/** An axis in [−rank, rank) as its non-negative index. */
export function normalizeAxis(axis: number, rank: number): number {
  if (!Number.isInteger(axis) || axis < -rank || axis >= rank) throw new ShapeProblem(`axis ${axis} is out of range for rank ${rank}`);
  return axis < 0 ? axis + rank : axis;
}

/** Distinct normalised axes, sorted. */
export function normalizeAxes(axes: readonly number[], rank: number): number[] {
  const normalized = axes.map((axis) => normalizeAxis(axis, rank));
  if (new Set(normalized).size !== normalized.length) throw new ShapeProblem(`axes [${axes.join(', ')}] repeat an axis`);
  return normalized.sort((a, b) => a - b);
}

/** NumPy (multidirectional) broadcasting, as ONNX elementwise ops, Expand and Where use it. */
export function broadcastShapes(...shapes: Shape[]): number[] {
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    let dim = 1;
    for (const shape of shapes) {
      const d = shape[shape.length - rank + i] ?? 1;
      if (d === dim || d === 1) continue;
      if (dim !== 1) throw new ShapeProblem(`shapes ${shapes.map(formatShape).join(' and ')} do not broadcast`);
      dim = d;
    }
    out.push(dim);
  }
  return out;
}

/** The axes of `shape` (right-aligned against `target`) that broadcasting stretched: what a VJP sums over. */
export function broadcastAxes(shape: Shape, target: Shape): number[] {
  const offset = target.length - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < target.length; i++) {
    const d = i < offset ? 1 : (shape[i - offset] ?? 1);
    if (d === 1 && target[i] !== 1) axes.push(i);
  }
  return axes;
}

/** ONNX MatMul (NumPy matmul) for operands of rank ≥ 2: batch dims broadcast, inner dims must agree. */
export function matMulShape(a: Shape, b: Shape): number[] {
  if (a.length < 2 || b.length < 2) throw new ShapeProblem('MatMul operands must have rank ≥ 2 here (vectors are reshaped by the caller)');
  const [m, k] = a.slice(-2) as [number, number];
  const [k2, n] = b.slice(-2) as [number, number];
  if (k !== k2) throw new ShapeProblem(`inner dims differ: ${formatShape(a)} · ${formatShape(b)} (${k} ≠ ${k2})`);
  return [...broadcastShapes(a.slice(0, -2), b.slice(0, -2)), m, n];
}

/** ONNX Reshape with a static target: at most one −1 (inferred); 0 is not allowed (ambiguous in a typed graph). */
export function reshapeShape(input: Shape, target: Shape): number[] {
  const inferred = target.filter((d) => d === -1).length;
  if (inferred > 1) throw new ShapeProblem(`target ${formatShape(target)} has more than one −1`);
  if (target.some((d) => !Number.isInteger(d) || d < -1 || d === 0)) throw new ShapeProblem(`target ${formatShape(target)} must hold positive dims and at most one −1`);
  const known = target.filter((d) => d !== -1).reduce((p, d) => p * d, 1);
  const total = elementCount(input);
  if (inferred === 1) {
    if (known === 0 || total % known !== 0) throw new ShapeProblem(`cannot infer −1 in ${formatShape(target)} for ${total} elements`);
    return target.map((d) => (d === -1 ? total / known : d));
  }
  if (known !== total) throw new ShapeProblem(`${formatShape(input)} (${total} elements) cannot become ${formatShape(target)} (${known})`);
  return [...target];
}

export function transposeShape(input: Shape, perm: readonly number[]): number[] {
  const sorted = [...perm].sort((a, b) => a - b);
  if (perm.length !== input.length || sorted.some((p, i) => p !== i)) throw new ShapeProblem(`perm [${perm.join(', ')}] is not a permutation of rank ${input.length}`);
  return perm.map((p) => input[p] as number);
}

export function concatShape(inputs: readonly Shape[], axis: number): number[] {
  const first = inputs[0];
  if (!first) throw new ShapeProblem('Concat needs at least one input');
  const a = normalizeAxis(axis, first.length);
  const out = [...first];
  out[a] = 0;
  for (const shape of inputs) {
    if (shape.length !== first.length || shape.some((d, i) => i !== a && d !== first[i])) {
      throw new ShapeProblem(`inputs ${inputs.map(formatShape).join(', ')} differ outside axis ${a}`);
    }
    out[a] += shape[a] as number;
  }
  return out;
}

export interface SliceSpec {
  starts: readonly number[];
  ends: readonly number[];
  axes: readonly number[];
  steps: readonly number[];
}

/** ONNX Slice semantics (negative indices count from the end, out-of-range ones are clamped). */
export function sliceShape(input: Shape, spec: SliceSpec): number[] {
  const { starts, ends, axes, steps } = spec;
  if (starts.length !== axes.length || ends.length !== axes.length || steps.length !== axes.length) {
    throw new ShapeProblem('starts, ends, axes and steps must have the same length');
  }
  const out = [...input];
  normalizeAxes(axes, input.length); // rejects repeated or out-of-range axes
  axes.forEach((axis, i) => {
    const a = normalizeAxis(axis, input.length);
    const dim = input[a] as number;
    const step = steps[i] as number;
    if (!Number.isInteger(step) || step === 0) throw new ShapeProblem(`step ${step} on axis ${a} must be a non-zero integer`);
    out[a] = sliceRange(dim, starts[i] as number, ends[i] as number, step).count;
  });
  return out;
}

/** ONNX Slice along one axis of size `dim`, resolved: the first index read and how many (each `step` apart). */
export function sliceRange(dim: number, start: number, end: number, step: number): { first: number; count: number } {
  const clamp = (value: number, low: number, high: number) => Math.min(Math.max(value, low), high);
  const resolve = (index: number) => (index < 0 ? index + dim : index);
  const first = step > 0 ? clamp(resolve(start), 0, dim) : clamp(resolve(start), 0, dim - 1);
  const last = step > 0 ? clamp(resolve(end), 0, dim) : clamp(resolve(end), -1, dim - 1);
  return { first, count: Math.max(0, Math.ceil((last - first) / step)) };
}

export function gatherShape(data: Shape, indices: Shape, axis: number): number[] {
  const a = normalizeAxis(axis, data.length);
  return [...data.slice(0, a), ...indices, ...data.slice(a + 1)];
}

export function unsqueezeShape(input: Shape, axes: readonly number[]): number[] {
  const rank = input.length + axes.length;
  const inserted = normalizeAxes(axes, rank);
  const out: number[] = [];
  let next = 0;
  for (let i = 0; i < rank; i++) out.push(inserted.includes(i) ? 1 : (input[next++] as number));
  return out;
}

export function squeezeShape(input: Shape, axes: readonly number[]): number[] {
  const removed = normalizeAxes(axes, input.length);
  for (const a of removed) if (input[a] !== 1) throw new ShapeProblem(`cannot squeeze axis ${a} of size ${input[a]}`);
  return input.filter((_, i) => !removed.includes(i));
}

export function reduceShape(input: Shape, axes: readonly number[], keepDims: boolean): number[] {
  const reduced = normalizeAxes(axes, input.length);
  if (reduced.length === 0) throw new ShapeProblem('reduce over no axes (ONNX would reduce all or none, depending on flags): name the axes');
  return keepDims ? input.map((d, i) => (reduced.includes(i) ? 1 : d)) : input.filter((_, i) => !reduced.includes(i));
}

export interface ConvSpec {
  kernelShape: readonly number[];
  strides: readonly number[];
  /** ONNX order: all begins, then all ends. */
  pads: readonly number[];
  dilations: readonly number[];
  group: number;
}

/** ONNX Conv (N, C, spatial…) with weights (M, C/group, kernel…). */
export function convShape(input: Shape, weight: Shape, spec: ConvSpec): number[] {
  const spatial = input.length - 2;
  if (spatial < 1 || weight.length !== input.length) throw new ShapeProblem(`input ${formatShape(input)} and weight ${formatShape(weight)} must both be (N, C, spatial…) with the same rank`);
  const { kernelShape, strides, pads, dilations, group } = spec;
  if (kernelShape.length !== spatial || strides.length !== spatial || dilations.length !== spatial || pads.length !== 2 * spatial) {
    throw new ShapeProblem(`kernel_shape, strides, dilations need ${spatial} entries and pads ${2 * spatial}`);
  }
  const [n, c] = input as [number, number];
  const [m, cPerGroup] = weight as [number, number];
  if (!Number.isInteger(group) || group < 1 || c % group !== 0 || m % group !== 0 || cPerGroup * group !== c) {
    throw new ShapeProblem(`channels: input ${c}, weight ${cPerGroup} per group × group ${group}, output ${m}`);
  }
  const out = [n, m];
  for (let i = 0; i < spatial; i++) {
    const k = kernelShape[i] as number;
    if (weight[i + 2] !== k) throw new ShapeProblem(`kernel_shape [${kernelShape.join(', ')}] differs from the weight's ${formatShape(weight.slice(2))}`);
    const size = (input[i + 2] as number) + (pads[i] as number) + (pads[i + spatial] as number) - (dilations[i] as number) * (k - 1) - 1;
    if (size < 0) throw new ShapeProblem(`spatial dim ${i} (${input[i + 2]}) is smaller than the dilated kernel`);
    out.push(Math.floor(size / (strides[i] as number)) + 1);
  }
  return out;
}

/**
 * The input index each output index of a nearest Resize reads along one axis, as ORT computes it
 * (asymmetric coordinates, floor): a whole factor divides exactly; any other goes through float32,
 * index = floor(float32(i / float32(out / in))), e.g. 14 → 2 reads [0, 6], not floor(i·in/out) = [0, 7].
 */
export function nearestSourceIndices(inSize: number, outSize: number): Int32Array {
  const factor = outSize / inSize;
  const scale = Number.isInteger(factor) ? factor : Math.fround(factor);
  return Int32Array.from({ length: outSize }, (_, i) => Math.min(inSize - 1, Math.max(0, Math.floor(Math.fround(i / scale)))));
}

export interface ConvTransposeSpec extends ConvSpec {
  /** Added to each spatial output end; below max(stride, dilation) (ONNX). */
  outputPadding: readonly number[];
}

/**
 * ONNX ConvTranspose (N, M, spatial…) with weights (M, C/group, kernel…), the layout of the Conv it
 * transposes: out = stride·(in − 1) + output_padding + dilation·(kernel − 1) + 1 − pad_begin − pad_end.
 */
export function convTransposeShape(input: Shape, weight: Shape, spec: ConvTransposeSpec): number[] {
  const spatial = input.length - 2;
  if (spatial < 1 || weight.length !== input.length) throw new ShapeProblem(`input ${formatShape(input)} and weight ${formatShape(weight)} must both be (N, C, spatial…) with the same rank`);
  const { kernelShape, strides, pads, dilations, group, outputPadding } = spec;
  if (kernelShape.length !== spatial || strides.length !== spatial || dilations.length !== spatial || outputPadding.length !== spatial || pads.length !== 2 * spatial) {
    throw new ShapeProblem(`kernel_shape, strides, dilations, output_padding need ${spatial} entries and pads ${2 * spatial}`);
  }
  const [n, m] = input as [number, number];
  const [weightIn, cPerGroup] = weight as [number, number];
  if (!Number.isInteger(group) || group < 1 || weightIn !== m || m % group !== 0) {
    throw new ShapeProblem(`channels: input ${m}, weight ${weightIn} × ${cPerGroup} per group, group ${group}`);
  }
  const out = [n, cPerGroup * group];
  for (let i = 0; i < spatial; i++) {
    const k = kernelShape[i] as number;
    if (weight[i + 2] !== k) throw new ShapeProblem(`kernel_shape [${kernelShape.join(', ')}] differs from the weight's ${formatShape(weight.slice(2))}`);
    const extra = outputPadding[i] as number;
    if (!Number.isInteger(extra) || extra < 0 || extra >= Math.max(strides[i] as number, dilations[i] as number)) throw new ShapeProblem(`output_padding ${extra} must be in [0, max(stride, dilation))`);
    const size = (strides[i] as number) * ((input[i + 2] as number) - 1) + extra + (dilations[i] as number) * (k - 1) + 1 - (pads[i] as number) - (pads[i + spatial] as number);
    if (size < 1) throw new ShapeProblem(`spatial dim ${i} would be ${size}`);
    out.push(size);
  }
  return out;
}
