/**
 * A float64 reference interpreter of the builder's node list, for finite-difference gradient checks:
 * ONNX Runtime's CPU provider has no float64 Conv, Erf, Resize, Gelu, QuickGelu or attention kernels.
 *
 * Every op of `OpAttributes`, with the ONNX (opset 21) / com.microsoft semantics that ORT computes, in
 * plain typed-array loops; the switch is exhaustive, so a new builder op is a compile error here. Only
 * the nodes the requested outputs depend on run. Integer and bool tensors are held as float64 values
 * too (exact up to 2^53). Its agreement with ORT is checked op by op in test/unit/graph-interpreter.test.ts.
 */
import type { ConstantArray, ElementType, GraphBuilder, GraphNode, OpAttributes, Value } from '../../main/engine/graph/builder';
import { broadcastShapes, elementCount, formatShape, normalizeAxis, sameShape, type ConvSpec, type SliceSpec } from '../../main/engine/graph/shapes';

export interface Float64Tensor {
  shape: number[];
  data: Float64Array;
}

/** A tensor as the ops see it: its static shape and row-major data. */
interface Tensor {
  readonly shape: readonly number[];
  readonly data: Float64Array;
}

/** Inline initializers converted to float64 once (their arrays are constants of the graph). */
const initializerData = new WeakMap<ConstantArray, Float64Array>();

/** What the interpreter reads of a graph (a `GraphBuilder`, or a hand-made node list in tests). */
export type InterpretedGraph = Pick<GraphBuilder, 'nodes' | 'inputs' | 'initializers'>;

/**
 * Evaluates `outputs` of the builder's graph in float64. Graph inputs are read from `feeds` by name
 * (whatever their declared type: float32, int64 and bool values are given as numbers too), inline
 * initializers from the builder. Only the nodes the outputs depend on run. An output that is a feed or
 * a constant (through Identity/Reshape…) comes back as a copy, so callers may mutate feeds and results.
 */
export function evaluateGraph(builder: InterpretedGraph, feeds: Record<string, Float64Tensor>, outputs: readonly Value[]): Float64Tensor[] {
  // The nodes the outputs depend on: one backward sweep, as the node list is in creation order.
  const needed = new Set(outputs.map((v) => v.id));
  const plan: GraphNode[] = [];
  const nodes = builder.nodes;
  for (let i = nodes.length - 1; i >= 0; i--) {
    const node = nodes[i] as GraphNode;
    if (!node.outputs.some((o) => needed.has(o.id))) continue;
    plan.push(node);
    for (const input of node.inputs) if (input) needed.add(input.id);
  }
  plan.reverse();

  const values = new Map<number, Float64Array>();
  const borrowed = new Set<Float64Array>();
  for (const input of builder.inputs) {
    if (!needed.has(input.id)) continue;
    const feed = feeds[input.name];
    if (!feed) throw new Error(`evaluateGraph: no feed for graph input '${input.name}'`);
    if (!sameShape(feed.shape, input.shape) || feed.data.length !== elementCount(input.shape)) {
      throw new Error(`evaluateGraph: feed '${input.name}' is ${formatShape(feed.shape)} with ${feed.data.length} values, the input is ${formatShape(input.shape)}`);
    }
    values.set(input.id, feed.data);
    borrowed.add(feed.data);
  }
  for (const { value, data } of builder.initializers) {
    if (!needed.has(value.id)) continue;
    if (data.kind !== 'inline') throw new Error(`evaluateGraph: initializer '${value.name}' is external data (only inline constants are supported)`);
    let converted = initializerData.get(data.values);
    if (!converted) {
      converted = Float64Array.from(data.values as ArrayLike<number | bigint>, Number);
      initializerData.set(data.values, converted);
    }
    values.set(value.id, converted);
    borrowed.add(converted);
  }

  const read = (v: Value): Tensor => {
    const data = values.get(v.id);
    if (!data) throw new Error(`evaluateGraph: no data for '${v.name}' (an unbound value?)`);
    return { shape: v.shape, data };
  };
  for (const node of plan) {
    const output = node.outputs[0] as Value;
    const data = evaluateNode(
      node,
      node.inputs.map((v) => (v ? read(v) : null)),
      output,
    );
    if (data.length !== elementCount(output.shape)) throw new Error(`evaluateGraph: ${node.name} (${node.op}) computed ${data.length} values for ${formatShape(output.shape)}`);
    values.set(output.id, data);
  }
  return outputs.map((v) => {
    const { data } = read(v);
    return { shape: [...v.shape], data: borrowed.has(data) ? data.slice() : data };
  });
}

function evaluateNode(node: GraphNode, inputs: readonly (Tensor | null)[], out: Value): Float64Array {
  const x = inputs[0] as Tensor;
  const input = (i: number): Tensor => {
    const tensor = inputs[i];
    if (!tensor) throw new Error(`evaluateGraph: ${node.name} (${node.op}) lacks input ${i}`);
    return tensor;
  };
  const integer = out.type === 'int64' || out.type === 'int32';
  switch (node.op) {
    // Row-major data is unchanged by these.
    case 'Identity':
    case 'Reshape':
    case 'Unsqueeze':
    case 'Squeeze':
      return x.data;
    case 'Add':
      return binary(x, input(1), out.shape, (a, b) => a + b);
    case 'Sub':
      return binary(x, input(1), out.shape, (a, b) => a - b);
    case 'Mul':
      return binary(x, input(1), out.shape, (a, b) => a * b);
    case 'Div':
      // Integer division truncates toward zero (C++).
      return binary(x, input(1), out.shape, integer ? (a, b) => Math.trunc(a / b) : (a, b) => a / b);
    case 'Pow':
      return binary(x, input(1), out.shape, integer ? (a, b) => Math.trunc(cPow(a, b)) : cPow);
    case 'Sqrt':
      return unary(x, Math.sqrt);
    case 'Reciprocal':
      return unary(x, (v) => 1 / v);
    case 'Neg':
      return unary(x, (v) => -v);
    case 'Exp':
      return unary(x, Math.exp);
    case 'Log':
      return unary(x, Math.log);
    case 'Tanh':
      return unary(x, Math.tanh);
    case 'Erf':
      return unary(x, erf);
    case 'Sigmoid':
      return unary(x, sigmoid);
    case 'Sin':
      return unary(x, Math.sin);
    case 'Cos':
      return unary(x, Math.cos);
    case 'Gelu':
      return unary(x, node.attributes.approximate === 'tanh' ? geluTanh : (v) => 0.5 * v * (1 + erf(v * Math.SQRT1_2)));
    case 'QuickGelu': {
      const alpha = node.attributes.alpha;
      return unary(x, (v) => v * sigmoid(alpha * v));
    }
    case 'MatMul':
      return matMul(x, input(1));
    case 'Gemm':
      return gemm(x, input(1), inputs[2] ?? null, node.attributes, out.shape);
    case 'Softmax':
      return softmax(x, normalizeAxis(node.attributes.axis, x.shape.length));
    case 'ReduceMean':
      return reduce(x, node.attributes.axes, true);
    case 'ReduceSum':
      return reduce(x, node.attributes.axes, false);
    case 'Transpose': {
      const source = rowMajorStrides(x.shape);
      const perm = node.attributes.perm;
      return gatherFlat(x.data, stridedIndex(perm.map((p) => x.shape[p] as number), perm.map((p) => source[p] as number), 0));
    }
    case 'Concat':
      return concat(inputs.map((_, i) => input(i)), normalizeAxis(node.attributes.axis, x.shape.length));
    case 'Slice':
      return slice(x, node.attributes, out.shape);
    case 'Gather':
      return gather(x, input(1), normalizeAxis(node.attributes.axis, x.shape.length));
    case 'Expand':
      return gatherFlat(x.data, broadcastIndex(x.shape, out.shape));
    case 'Where': {
      const [condition, a, b] = [x, input(1), input(2)];
      const [ci, ai, bi] = [condition, a, b].map((t) => broadcastIndex(t.shape, out.shape)) as [Int32Array, Int32Array, Int32Array];
      const data = new Float64Array(elementCount(out.shape));
      for (let i = 0; i < data.length; i++) data[i] = condition.data[ci[i]!] !== 0 ? a.data[ai[i]!]! : b.data[bi[i]!]!;
      return data;
    }
    case 'Cast':
      return unary(x, castTo(node.attributes.to));
    case 'Conv':
      return conv(x, input(1), inputs[2] ?? null, node.attributes, out.shape);
    case 'ConvTranspose':
      return convTranspose(x, input(1), inputs[2] ?? null, node.attributes, out.shape);
    case 'LayerNormalization':
      return layerNormalization(x, input(1), inputs[2] ?? null, node.attributes);
    case 'GroupNormalization':
      return groupNormalization(x, input(1), input(2), node.attributes);
    case 'Resize':
      return resizeNearest(x, node.attributes.sizes);
    case 'MultiHeadAttention':
      return multiHeadAttention(x, input(1), input(2), inputs[3] ?? null, node.attributes);
    default: {
      // Exhaustive over OpType: a new builder op fails to compile here until it is implemented.
      const unknown: never = node;
      throw new Error(`evaluateGraph: no implementation of op '${(unknown as GraphNode).op}'`);
    }
  }
}

// ——— Elementwise ———

const sigmoid = (v: number): number => 1 / (1 + Math.exp(-v));
const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const geluTanh = (v: number): number => 0.5 * v * (1 + Math.tanh(SQRT_2_OVER_PI * (v + 0.044715 * v * v * v)));

/** C's pow (which ORT calls): unlike JS `**`, pow(1, y) = 1 for any y and pow(−1, ±∞) = 1. */
function cPow(a: number, b: number): number {
  if (a === 1 || (a === -1 && (b === Infinity || b === -Infinity))) return 1;
  return a ** b;
}

function unary(x: Tensor, f: (v: number) => number): Float64Array {
  const data = new Float64Array(x.data.length);
  for (let i = 0; i < data.length; i++) data[i] = f(x.data[i]!);
  return data;
}

/** NumPy-broadcast elementwise op; `shape` is the broadcast shape. */
function binary(a: Tensor, b: Tensor, shape: readonly number[], f: (x: number, y: number) => number): Float64Array {
  const size = elementCount(shape);
  const data = new Float64Array(size);
  // An operand with as many elements as the result is laid out like it; only the others need an index map.
  const ai = a.data.length === size ? null : broadcastIndex(a.shape, shape);
  const bi = b.data.length === size ? null : broadcastIndex(b.shape, shape);
  for (let i = 0; i < size; i++) data[i] = f(a.data[ai ? ai[i]! : i]!, b.data[bi ? bi[i]! : i]!);
  return data;
}

/** ORT's Cast: float → int truncates toward zero (static_cast), → bool is x ≠ 0 (NaN is true), float16/bfloat16 round to nearest even. */
function castTo(to: ElementType): (v: number) => number {
  switch (to) {
    case 'float64':
      return (v) => v;
    case 'float32':
      return Math.fround;
    case 'float16':
      return (v) => roundToFloat16(Math.fround(v));
    case 'bfloat16':
      return (v) => roundToBfloat16(Math.fround(v));
    case 'int64':
    case 'int32':
      return Math.trunc;
    case 'bool':
      return (v) => (v !== 0 ? 1 : 0);
  }
}

/** The nearest float16 (ties to even; beyond 65504 + half a step, ±∞). */
function roundToFloat16(v: number): number {
  if (!Number.isFinite(v) || v === 0) return v;
  const a = Math.abs(v);
  if (a >= 65520) return v > 0 ? Infinity : -Infinity;
  let exponent = Math.max(Math.floor(Math.log2(a)), -14); // subnormals share the spacing of 2^−14's binade
  if (exponent > -14 && 2 ** exponent > a) exponent--;
  const spacing = 2 ** (exponent - 10);
  return Math.sign(v) * roundHalfEven(a / spacing) * spacing;
}

const bits32 = new Float32Array(1);
const bitsU32 = new Uint32Array(bits32.buffer);

/** The nearest bfloat16 of a float32 (ties to even on the upper 16 bits, as ORT's BFloat16). */
function roundToBfloat16(v: number): number {
  if (Number.isNaN(v)) return v;
  bits32[0] = v;
  const bits = bitsU32[0]!;
  bitsU32[0] = ((bits + 0x7fff + ((bits >>> 16) & 1)) & 0xffff0000) >>> 0;
  return bits32[0];
}

function roundHalfEven(v: number): number {
  const floor = Math.floor(v);
  const rest = v - floor;
  return rest > 0.5 || (rest === 0.5 && floor % 2 !== 0) ? floor + 1 : floor;
}

// ——— Index maps ———

function rowMajorStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length).fill(1);
  for (let d = shape.length - 2; d >= 0; d--) strides[d] = strides[d + 1]! * shape[d + 1]!;
  return strides;
}

/** For every element of `shape` (row-major), the source offset `base + Σ index[d]·strides[d]`. */
function stridedIndex(shape: readonly number[], strides: readonly number[], base: number): Int32Array {
  const size = elementCount(shape);
  const rank = shape.length;
  const index = new Int32Array(size);
  const counter = new Array<number>(rank).fill(0);
  let offset = base;
  for (let flat = 0; flat < size; flat++) {
    index[flat] = offset;
    for (let d = rank - 1; d >= 0; d--) {
      offset += strides[d]!;
      if (++counter[d]! < shape[d]!) break;
      offset -= strides[d]! * shape[d]!;
      counter[d] = 0;
    }
  }
  return index;
}

/** For every element of `shape`, the element of a tensor of shape `from` that NumPy broadcasting reads. */
function broadcastIndex(from: readonly number[], shape: readonly number[]): Int32Array {
  const offset = shape.length - from.length;
  const source = rowMajorStrides(from);
  return stridedIndex(
    shape,
    shape.map((_, d) => (d < offset || from[d - offset] === 1 ? 0 : source[d - offset]!)),
    0,
  );
}

function gatherFlat(data: Float64Array, index: Int32Array): Float64Array {
  const out = new Float64Array(index.length);
  for (let i = 0; i < index.length; i++) out[i] = data[index[i]!]!;
  return out;
}

// ——— Linear algebra ———

/** NumPy matmul: batch dims broadcast; a 1-D `a` is a row vector, a 1-D `b` a column vector, and that added dim is dropped again. */
function matMul(a: Tensor, b: Tensor): Float64Array {
  const aShape = a.shape.length === 1 ? [1, a.shape[0]!] : a.shape;
  const bShape = b.shape.length === 1 ? [b.shape[0]!, 1] : b.shape;
  const [m, k] = aShape.slice(-2) as [number, number];
  const [k2, n] = bShape.slice(-2) as [number, number];
  if (k !== k2) throw new Error(`evaluateGraph: MatMul inner dims differ (${formatShape(a.shape)} · ${formatShape(b.shape)})`);
  const batch = broadcastShapes(aShape.slice(0, -2), bShape.slice(0, -2));
  const aBatch = broadcastIndex(aShape.slice(0, -2), batch);
  const bBatch = broadcastIndex(bShape.slice(0, -2), batch);
  const data = new Float64Array(aBatch.length * m * n);
  for (let p = 0; p < aBatch.length; p++) {
    const ao = aBatch[p]! * m * k;
    const bo = bBatch[p]! * k * n;
    const oo = p * m * n;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let sum = 0;
        for (let q = 0; q < k; q++) sum += a.data[ao + i * k + q]! * b.data[bo + q * n + j]!;
        data[oo + i * n + j] = sum;
      }
    }
  }
  return data;
}

/** alpha·A'·B' + beta·C. ORT adds C only when beta ≠ 0 (so beta = 0 ignores even a NaN in C). */
function gemm(a: Tensor, b: Tensor, c: Tensor | null, attributes: Readonly<OpAttributes['Gemm']>, shape: readonly number[]): Float64Array {
  const { transA, transB, alpha, beta } = attributes;
  const [m, n] = shape as [number, number];
  const k = a.shape[transA ? 0 : 1]!;
  // Strides of A' (i, q) and B' (q, j) over the stored A and B.
  const [ai, aq] = transA ? [1, m] : [k, 1];
  const [bq, bj] = transB ? [1, k] : [n, 1];
  const ci = c && beta !== 0 ? broadcastIndex(c.shape, shape) : null;
  const data = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let sum = 0;
      for (let q = 0; q < k; q++) sum += a.data[i * ai + q * aq]! * b.data[q * bq + j * bj]!;
      data[i * n + j] = alpha * sum + (c && ci ? beta * c.data[ci[i * n + j]!]! : 0);
    }
  }
  return data;
}

// ——— Softmax and reductions ———

/** Sizes before, along and after `axis`. */
function around(shape: readonly number[], axis: number): { outer: number; size: number; inner: number } {
  return { outer: elementCount(shape.slice(0, axis)), size: shape[axis]!, inner: elementCount(shape.slice(axis + 1)) };
}

/** Opset-13 Softmax: along the one axis. */
function softmax(x: Tensor, axis: number): Float64Array {
  const { outer, size, inner } = around(x.shape, axis);
  const data = new Float64Array(x.data.length);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const base = o * size * inner + i;
      let max = -Infinity;
      for (let j = 0; j < size; j++) max = Math.max(max, x.data[base + j * inner]!);
      let total = 0;
      for (let j = 0; j < size; j++) total += data[base + j * inner] = Math.exp(x.data[base + j * inner]! - max);
      for (let j = 0; j < size; j++) data[base + j * inner]! /= total;
    }
  }
  return data;
}

/** ReduceSum/ReduceMean (opset 18, keepdims only changes the shape). Empty axes reduce every axis, as ONNX does with noop_with_empty_axes = 0 (the builder refuses them). */
function reduce(x: Tensor, axes: readonly number[], mean: boolean): Float64Array {
  const rank = x.shape.length;
  const reduced = new Set(axes.length === 0 ? x.shape.map((_, d) => d) : axes.map((axis) => normalizeAxis(axis, rank)));
  const kept = x.shape.map((d, i) => (reduced.has(i) ? 1 : d));
  const target = broadcastIndex(kept, x.shape); // the output element each input element adds to
  const data = new Float64Array(elementCount(kept));
  for (let i = 0; i < x.data.length; i++) data[target[i]!]! += x.data[i]!;
  if (mean) {
    const count = x.data.length / data.length;
    for (let i = 0; i < data.length; i++) data[i]! /= count;
  }
  return data;
}

// ——— Data movement ———

function concat(parts: readonly Tensor[], axis: number): Float64Array {
  const { outer, inner } = around(parts[0]!.shape, axis);
  const total = parts.reduce((sum, p) => sum + p.shape[axis]!, 0);
  const data = new Float64Array(outer * total * inner);
  let start = 0;
  for (const part of parts) {
    const run = part.shape[axis]! * inner;
    for (let o = 0; o < outer; o++) {
      const from = o * run;
      const to = (o * total + start) * inner;
      for (let i = 0; i < run; i++) data[to + i] = part.data[from + i]!;
    }
    start += part.shape[axis]!;
  }
  return data;
}

/**
 * ONNX Slice on one axis of size `dim`: negative starts/ends count from the end, then starts clamp to
 * [0, dim] for positive steps and to [0, dim − 1] for negative ones, ends to [0, dim] and [−1, dim − 1].
 */
function onnxSliceRange(dim: number, start: number, end: number, step: number): { first: number; count: number } {
  const clamp = (v: number, low: number, high: number) => Math.min(Math.max(v, low), high);
  const s = start < 0 ? start + dim : start;
  const e = end < 0 ? end + dim : end;
  const first = step > 0 ? clamp(s, 0, dim) : clamp(s, 0, dim - 1);
  const last = step > 0 ? clamp(e, 0, dim) : clamp(e, -1, dim - 1);
  return { first, count: Math.max(0, Math.ceil((last - first) / step)) };
}

function slice(x: Tensor, spec: Readonly<SliceSpec>, declared: readonly number[]): Float64Array {
  const source = rowMajorStrides(x.shape);
  const shape = [...x.shape];
  const strides = [...source];
  let base = 0;
  spec.axes.forEach((rawAxis, i) => {
    const axis = normalizeAxis(rawAxis, x.shape.length);
    const step = spec.steps[i]!;
    const { first, count } = onnxSliceRange(x.shape[axis]!, spec.starts[i]!, spec.ends[i]!, step);
    shape[axis] = count;
    strides[axis] = source[axis]! * step;
    if (count > 0) base += first * source[axis]!;
  });
  if (!sameShape(shape, declared)) throw new Error(`evaluateGraph: Slice of ${formatShape(x.shape)} gives ${formatShape(shape)} under ONNX rules, but the builder declared ${formatShape(declared)}`);
  return gatherFlat(x.data, stridedIndex(shape, strides, base));
}

/** Gather along `axis`; negative indices count from the end, out-of-range ones throw (as ORT does). */
function gather(x: Tensor, indices: Tensor, axis: number): Float64Array {
  const { outer, size, inner } = around(x.shape, axis);
  const count = indices.data.length;
  const data = new Float64Array(outer * count * inner);
  for (let j = 0; j < count; j++) {
    const raw = indices.data[j]!;
    const index = raw < 0 ? raw + size : raw;
    if (!(index >= 0 && index < size)) throw new Error(`evaluateGraph: Gather index ${raw} is out of range for axis ${axis} of size ${size}`);
    for (let o = 0; o < outer; o++) {
      const from = (o * size + index) * inner;
      const to = (o * count + j) * inner;
      for (let i = 0; i < inner; i++) data[to + i] = x.data[from + i]!;
    }
  }
  return data;
}

/**
 * The builder's nearest Resize as to-onnx.ts lowers it (mode 'nearest', coordinate_transformation_mode
 * 'asymmetric', nearest_mode 'floor'; whole factors as float `scales`, other targets as `sizes`) and as
 * ORT computes it: output index i reads ⌊i / scale⌋ clamped to the input, in float32, with
 * scale = float32(out / in). That is ⌊i · in / out⌋ for whole factors, but not always otherwise
 * (14 → 2 reads [0, 6], not [0, 7]: float32(1 / (2/14)) = 6.9999995).
 */
function resizeNearest(x: Tensor, sizes: readonly number[]): Float64Array {
  const rank = x.shape.length;
  const source = rowMajorStrides(x.shape);
  // Per axis, the source offset of each output index.
  const offsets = sizes.map((outSize, d) => {
    const inSize = x.shape[d]!;
    const factor = outSize / inSize;
    const scale = Number.isInteger(factor) ? factor : Math.fround(factor);
    return Int32Array.from({ length: outSize }, (_, i) => Math.min(inSize - 1, Math.max(0, Math.floor(Math.fround(i / scale)))) * source[d]!);
  });
  const data = new Float64Array(elementCount(sizes));
  const counter = new Array<number>(rank).fill(0);
  for (let flat = 0; flat < data.length; flat++) {
    let offset = 0;
    for (let d = 0; d < rank; d++) offset += offsets[d]![counter[d]!]!;
    data[flat] = x.data[offset]!;
    for (let d = rank - 1; d >= 0; d--) {
      if (++counter[d]! < sizes[d]!) break;
      counter[d] = 0;
    }
  }
  return data;
}

// ——— Convolution ———

/**
 * ONNX Conv over N spatial dims: x (N, C, in…), w (M, C/group, k…), pads [begins…, ends…] (the ends
 * only shape the output), output position o reads input o·stride − padBegin + kernelIndex·dilation.
 */
function conv(x: Tensor, w: Tensor, bias: Tensor | null, spec: Readonly<ConvSpec>, outShape: readonly number[]): Float64Array {
  const [batch, channels] = x.shape as [number, number];
  const [filters, perGroup] = w.shape as [number, number];
  const rank = x.shape.length - 2;
  const inSpatial = x.shape.slice(2);
  const kernel = w.shape.slice(2);
  const outSpatial = outShape.slice(2);
  const [inSize, kSize, outSize] = [inSpatial, kernel, outSpatial].map(elementCount) as [number, number, number];
  // For every (output position, kernel position), the input offset read, or −1 in the padding.
  const taps = new Int32Array(outSize * kSize);
  const inStrides = rowMajorStrides(inSpatial);
  const outIndex = new Array<number>(rank).fill(0);
  const kIndex = new Array<number>(rank).fill(0); // back to zeros after each full pass
  for (let o = 0; o < outSize; o++) {
    for (let q = 0; q < kSize; q++) {
      let offset = 0;
      for (let d = 0; d < rank && offset >= 0; d++) {
        const position = outIndex[d]! * spec.strides[d]! - spec.pads[d]! + kIndex[d]! * spec.dilations[d]!;
        offset = position >= 0 && position < inSpatial[d]! ? offset + position * inStrides[d]! : -1;
      }
      taps[o * kSize + q] = offset;
      advance(kIndex, kernel);
    }
    advance(outIndex, outSpatial);
  }
  const filtersPerGroup = filters / spec.group;
  const data = new Float64Array(batch * filters * outSize);
  for (let b = 0; b < batch; b++) {
    for (let f = 0; f < filters; f++) {
      const firstChannel = Math.floor(f / filtersPerGroup) * perGroup;
      for (let o = 0; o < outSize; o++) {
        let sum = bias ? bias.data[f]! : 0;
        for (let c = 0; c < perGroup; c++) {
          const xo = (b * channels + firstChannel + c) * inSize;
          const wo = (f * perGroup + c) * kSize;
          for (let q = 0; q < kSize; q++) {
            const tap = taps[o * kSize + q]!;
            if (tap >= 0) sum += x.data[xo + tap]! * w.data[wo + q]!;
          }
        }
        data[(b * filters + f) * outSize + o] = sum;
      }
    }
  }
  return data;
}

/**
 * ONNX ConvTranspose, computed as the adjoint it is: the Conv with this weight maps y (N, C, out…) to
 * x (N, M, in…) reading y at i·stride − padBegin + kernelIndex·dilation; ConvTranspose scatters every
 * x element back along those same taps (output_padding only lengthens y).
 */
function convTranspose(x: Tensor, w: Tensor, bias: Tensor | null, spec: Readonly<ConvSpec>, outShape: readonly number[]): Float64Array {
  const [batch, inChannels] = x.shape as [number, number];
  const perGroup = w.shape[1] as number;
  const outChannels = outShape[1] as number;
  const rank = x.shape.length - 2;
  const inSpatial = x.shape.slice(2);
  const kernel = w.shape.slice(2);
  const outSpatial = outShape.slice(2);
  const [inSize, kSize, outSize] = [inSpatial, kernel, outSpatial].map(elementCount) as [number, number, number];
  const outStrides = rowMajorStrides(outSpatial);
  const taps = new Int32Array(inSize * kSize);
  const inIndex = new Array<number>(rank).fill(0);
  const kIndex = new Array<number>(rank).fill(0);
  for (let i = 0; i < inSize; i++) {
    for (let q = 0; q < kSize; q++) {
      let offset = 0;
      for (let d = 0; d < rank && offset >= 0; d++) {
        const position = inIndex[d]! * spec.strides[d]! - spec.pads[d]! + kIndex[d]! * spec.dilations[d]!;
        offset = position >= 0 && position < outSpatial[d]! ? offset + position * outStrides[d]! : -1;
      }
      taps[i * kSize + q] = offset;
      advance(kIndex, kernel);
    }
    advance(inIndex, inSpatial);
  }
  const inPerGroup = inChannels / spec.group;
  const data = new Float64Array(batch * outChannels * outSize);
  for (let b = 0; b < batch; b++) {
    if (bias) for (let c = 0; c < outChannels; c++) data.fill(bias.data[c]!, (b * outChannels + c) * outSize, (b * outChannels + c + 1) * outSize);
    for (let m = 0; m < inChannels; m++) {
      const firstChannel = Math.floor(m / inPerGroup) * perGroup;
      for (let i = 0; i < inSize; i++) {
        const value = x.data[(b * inChannels + m) * inSize + i]!;
        for (let c = 0; c < perGroup; c++) {
          const yo = (b * outChannels + firstChannel + c) * outSize;
          const wo = (m * perGroup + c) * kSize;
          for (let q = 0; q < kSize; q++) {
            const tap = taps[i * kSize + q]!;
            if (tap >= 0) data[yo + tap] = data[yo + tap]! + value * w.data[wo + q]!;
          }
        }
      }
    }
  }
  return data;
}

/** Steps a row-major multi-index over `shape` (wrapping to zeros at the end). */
function advance(index: number[], shape: readonly number[]): void {
  for (let d = shape.length - 1; d >= 0; d--) {
    if (++index[d]! < shape[d]!) return;
    index[d] = 0;
  }
}

// ——— Normalisation ———

/** (x − mean) / √(var + ε) over each of the `groups` contiguous runs of x (biased variance, two passes). */
function standardize(x: Float64Array, groups: number, epsilon: number): Float64Array {
  const size = x.length / groups;
  const data = new Float64Array(x.length);
  for (let g = 0; g < groups; g++) {
    const start = g * size;
    let mean = 0;
    for (let i = 0; i < size; i++) mean += x[start + i]!;
    mean /= size;
    let variance = 0;
    for (let i = 0; i < size; i++) variance += (x[start + i]! - mean) ** 2;
    const inverse = 1 / Math.sqrt(variance / size + epsilon);
    for (let i = 0; i < size; i++) data[start + i] = (x[start + i]! - mean) * inverse;
  }
  return data;
}

/** Opset 17: statistics over the axes from `axis` on; scale and bias have those axes' shape. */
function layerNormalization(x: Tensor, scale: Tensor, bias: Tensor | null, attributes: Readonly<OpAttributes['LayerNormalization']>): Float64Array {
  const inner = elementCount(x.shape.slice(normalizeAxis(attributes.axis, x.shape.length)));
  const data = standardize(x.data, x.data.length / inner, attributes.epsilon);
  for (let i = 0; i < data.length; i++) data[i] = data[i]! * scale.data[i % inner]! + (bias ? bias.data[i % inner]! : 0);
  return data;
}

/** Opset 21: statistics per (sample, group of C/numGroups channels); scale and bias per channel. */
function groupNormalization(x: Tensor, scale: Tensor, bias: Tensor, attributes: Readonly<OpAttributes['GroupNormalization']>): Float64Array {
  const [batch, channels] = x.shape as [number, number];
  const spatial = x.data.length / (batch * channels);
  const data = standardize(x.data, batch * attributes.numGroups, attributes.epsilon);
  for (let i = 0; i < data.length; i++) {
    const c = Math.floor(i / spatial) % channels;
    data[i] = data[i]! * scale.data[c]! + bias.data[c]!;
  }
  return data;
}

// ——— Attention ———

/**
 * com.microsoft MultiHeadAttention with separate query [B,S,D], key [B,L,D], value [B,L,Dv]: head h
 * uses the contiguous chunk h of the hidden dims; scores q·kᵀ·scale + bias[b|0, h|0, s, l], softmax over
 * l. ORT reads scale = 0 (the attribute's default) as 1/√(D/H).
 */
function multiHeadAttention(q: Tensor, k: Tensor, v: Tensor, bias: Tensor | null, attributes: Readonly<OpAttributes['MultiHeadAttention']>): Float64Array {
  const [batch, s, d] = q.shape as [number, number, number];
  const l = k.shape[1]!;
  const dv = v.shape[2]!;
  const heads = attributes.numHeads;
  const [dh, dvh] = [d / heads, dv / heads];
  const scale = attributes.scale === 0 ? 1 / Math.sqrt(dh) : attributes.scale;
  const biasBatchStride = bias && bias.shape[0] !== 1 ? bias.shape[1]! * s * l : 0;
  const biasHeadStride = bias && bias.shape[1] !== 1 ? s * l : 0;
  const data = new Float64Array(batch * s * dv);
  const weights = new Float64Array(l);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < s; i++) {
        const qo = (b * s + i) * d + h * dh;
        let max = -Infinity;
        for (let j = 0; j < l; j++) {
          const ko = (b * l + j) * d + h * dh;
          let dot = 0;
          for (let e = 0; e < dh; e++) dot += q.data[qo + e]! * k.data[ko + e]!;
          weights[j] = dot * scale + (bias ? bias.data[b * biasBatchStride + h * biasHeadStride + i * l + j]! : 0);
          max = Math.max(max, weights[j]!);
        }
        let total = 0;
        for (let j = 0; j < l; j++) total += weights[j] = Math.exp(weights[j]! - max);
        const oo = (b * s + i) * dv + h * dvh;
        for (let e = 0; e < dvh; e++) {
          let sum = 0;
          for (let j = 0; j < l; j++) sum += weights[j]! * v.data[(b * l + j) * dv + h * dvh + e]!;
          data[oo + e] = sum / total;
        }
      }
    }
  }
  return data;
}

// ——— erf ———

const TWO_OVER_SQRT_PI = 2 / Math.sqrt(Math.PI);

/**
 * erf in float64, relative error ~1e-16. Below |x| = 3, erf(x) = 2/√π · e^(−x²) · Σ 2ⁿx^(2n+1)/(1·3·…·(2n+1)),
 * a series of positive terms (no cancellation), with x² split exactly so that e^(−x²) keeps full precision;
 * beyond, 1 − erfc(x) with erfc's continued fraction (Lentz), which converges fast there.
 */
export function erf(x: number): number {
  if (Number.isNaN(x)) return Number.NaN;
  const a = Math.abs(x);
  if (a >= 6) return Math.sign(x); // erfc(6) ≈ 2e−17 is below half an ulp of 1
  // x² = hi + lo exactly (Dekker), so e^(−x²) = e^(−hi)·(1 − lo) to rounding.
  const split = a * 134217729; // 2^27 + 1
  const aHi = split - (split - a);
  const aLo = a - aHi;
  const hi = a * a;
  const lo = aHi * aHi - hi + 2 * aHi * aLo + aLo * aLo;
  const gaussian = Math.exp(-hi) * (1 - lo);
  if (a < 3) {
    const a2 = 2 * a * a;
    let term = a;
    let sum = a;
    for (let n = 1; term > 1e-17 * sum; n++) {
      term *= a2 / (2 * n + 1);
      sum += term;
    }
    return Math.sign(x) * TWO_OVER_SQRT_PI * gaussian * sum;
  }
  // erfc(a) = e^(−a²)/√π · 1/(a + (1/2)/(a + 1/(a + (3/2)/(a + 2/(a + …))))).
  let f = a;
  let c = a;
  let d = 0;
  for (let n = 1; n < 500; n++) {
    d = 1 / (a + (n / 2) * d);
    c = a + n / 2 / c;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) <= Number.EPSILON) break;
  }
  return Math.sign(x) * (1 - gaussian / Math.sqrt(Math.PI) / f);
}
