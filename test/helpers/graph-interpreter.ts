/**
 * A float64 reference interpreter of the builder's node list, for finite-difference gradient checks:
 * ONNX Runtime's CPU provider has no float64 Conv, Erf, Resize, Gelu, QuickGelu or attention kernels.
 * Every op of `OpAttributes` with its ONNX (opset 21) semantics, in plain loops; the switch is exhaustive,
 * so a new builder op is a compile error here. Its agreement with ORT is checked op by op
 * (test/unit/graph-interpreter.test.ts).
 */
import type { GraphBuilder, GraphNode, Value } from '../../main/engine/graph/builder';
import { broadcastShapes, elementCount, matMulShape, normalizeAxis, sliceRange } from '../../main/engine/graph/shapes';

export interface Float64Tensor {
  shape: number[];
  data: Float64Array;
}

export function evaluateGraph(builder: GraphBuilder, feeds: Record<string, Float64Tensor>, outputs: readonly Value[]): Float64Tensor[] {
  const values = new Map<number, Float64Tensor>();
  for (const input of builder.inputs) {
    const feed = feeds[input.name];
    if (feed) values.set(input.id, feed);
  }
  for (const { value, data } of builder.initializers) {
    if (data.kind !== 'inline') continue;
    values.set(value.id, { shape: [...value.shape], data: Float64Array.from(data.values as ArrayLike<number | bigint>, Number) });
  }
  const needed = new Set(outputs.map((v) => v.id));
  const nodes = builder.nodes;
  for (let i = nodes.length - 1; i >= 0; i--) {
    const node = nodes[i] as GraphNode;
    if (node.outputs.some((o) => needed.has(o.id))) for (const input of node.inputs) if (input) needed.add(input.id);
  }
  for (const node of nodes) {
    const output = node.outputs[0] as Value;
    if (!needed.has(output.id) || values.has(output.id)) continue;
    const inputs = node.inputs.map((input) => {
      if (!input) return null;
      const tensor = values.get(input.id);
      if (!tensor) throw new Error(`evaluateGraph: no value for '${input.name}' (a graph input without a feed?)`);
      return tensor;
    });
    const result = evaluateNode(node, inputs);
    if (result.data.length !== elementCount(output.shape)) throw new Error(`evaluateGraph: ${node.name} gave ${result.data.length} values for ${output.shape}`);
    values.set(output.id, { shape: [...output.shape], data: result.data });
  }
  return outputs.map((v) => {
    const tensor = values.get(v.id);
    if (!tensor) throw new Error(`evaluateGraph: '${v.name}' was not computed`);
    return tensor;
  });
}

type T = Float64Tensor;
const t = (shape: readonly number[], data: Float64Array): T => ({ shape: [...shape], data });

function evaluateNode(node: GraphNode, inputs: readonly (T | null)[]): T {
  const x = inputs[0] as T;
  const out = node.outputs[0] as Value;
  switch (node.op) {
    case 'Identity':
    case 'Reshape':
    case 'Unsqueeze':
    case 'Squeeze':
      return t(out.shape, x.data);
    case 'Add':
      return binary(x, inputs[1] as T, (a, b) => a + b);
    case 'Sub':
      return binary(x, inputs[1] as T, (a, b) => a - b);
    case 'Mul':
      return binary(x, inputs[1] as T, (a, b) => a * b);
    case 'Div':
      return binary(x, inputs[1] as T, (a, b) => a / b);
    case 'Pow':
      return binary(x, inputs[1] as T, (a, b) => a ** b);
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
      return unary(x, node.attributes.approximate === 'tanh' ? (v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3))) : (v) => 0.5 * v * (1 + erf(v / Math.SQRT2)));
    case 'QuickGelu': {
      const alpha = node.attributes.alpha;
      return unary(x, (v) => v * sigmoid(alpha * v));
    }
    case 'MatMul':
      return matMul(x, inputs[1] as T);
    case 'Gemm':
      return gemm(x, inputs[1] as T, inputs[2] ?? null, node.attributes);
    case 'Softmax':
      return softmax(x, normalizeAxis(node.attributes.axis, x.shape.length));
    case 'ReduceMean':
    case 'ReduceSum':
      return reduce(x, node.attributes.axes, node.op === 'ReduceMean', out.shape);
    case 'Transpose':
      return transpose(x, node.attributes.perm);
    case 'Concat':
      return concat(inputs as T[], normalizeAxis(node.attributes.axis, x.shape.length));
    case 'Slice':
      return slice(x, node.attributes);
    case 'Gather':
      return gather(x, inputs[1] as T, normalizeAxis(node.attributes.axis, x.shape.length));
    case 'Expand':
      return broadcastTo(x, out.shape);
    case 'Where': {
      const [c, a, b] = inputs as [T, T, T];
      const shape = broadcastShapes(c.shape, a.shape, b.shape);
      const [cc, aa, bb] = [broadcastTo(c, shape), broadcastTo(a, shape), broadcastTo(b, shape)];
      return t(shape, cc.data.map((v, i) => (v !== 0 ? (aa.data[i] as number) : (bb.data[i] as number))));
    }
    case 'Cast': {
      const to = node.attributes.to;
      if (to === 'float32') return unary(x, Math.fround);
      if (to === 'int64' || to === 'int32') return unary(x, Math.trunc);
      if (to === 'bool') return unary(x, (v) => (v !== 0 ? 1 : 0));
      return t(x.shape, x.data);
    }
    case 'Conv':
      return conv(x, inputs[1] as T, inputs[2] ?? null, node.attributes, out.shape);
    case 'LayerNormalization': {
      const axis = normalizeAxis(node.attributes.axis, x.shape.length);
      const inner = elementCount(x.shape.slice(axis));
      return normalize(x, x.data.length / inner, inner, node.attributes.epsilon, (i) => (inputs[1] as T).data[i % inner] as number, (i) => (inputs[2] ? ((inputs[2] as T).data[i % inner] as number) : 0));
    }
    case 'GroupNormalization': {
      const [n, c] = x.shape as [number, number];
      const spatial = x.data.length / (n * c);
      const groups = node.attributes.numGroups;
      const channel = (i: number) => Math.floor(i / spatial) % c;
      return normalize(x, n * groups, x.data.length / (n * groups), node.attributes.epsilon, (i) => (inputs[1] as T).data[channel(i)] as number, (i) => (inputs[2] as T).data[channel(i)] as number);
    }
    case 'Resize':
      return resizeNearest(x, node.attributes.sizes);
    case 'MultiHeadAttention':
      return attention(inputs[0] as T, inputs[1] as T, inputs[2] as T, inputs[3] ?? null, node.attributes.numHeads, node.attributes.scale);
  }
}

const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));

function unary(x: T, f: (v: number) => number): T {
  return t(x.shape, x.data.map(f));
}

function strides(shape: readonly number[]): number[] {
  const result = new Array<number>(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) result[i] = (result[i + 1] as number) * (shape[i + 1] as number);
  return result;
}

/** x broadcast (numpy rules) to `shape`. */
function broadcastTo(x: T, shape: readonly number[]): T {
  const rank = shape.length;
  const padded = [...new Array<number>(rank - x.shape.length).fill(1), ...x.shape];
  const source = strides(padded).map((s, i) => (padded[i] === 1 ? 0 : s));
  const size = elementCount(shape);
  const data = new Float64Array(size);
  const index = new Array<number>(rank).fill(0);
  for (let flat = 0; flat < size; flat++) {
    let offset = 0;
    for (let d = 0; d < rank; d++) offset += (index[d] as number) * (source[d] as number);
    data[flat] = x.data[offset] as number;
    for (let d = rank - 1; d >= 0; d--) {
      if (++(index[d] as number) < (shape[d] as number)) break;
      index[d] = 0;
    }
  }
  return t(shape, data);
}

function binary(a: T, b: T, f: (x: number, y: number) => number): T {
  const shape = broadcastShapes(a.shape, b.shape);
  const [aa, bb] = [broadcastTo(a, shape), broadcastTo(b, shape)];
  return t(shape, aa.data.map((v, i) => f(v, bb.data[i] as number)));
}

function matMul(a: T, b: T): T {
  const a2 = a.shape.length === 1 ? t([1, a.shape[0] as number], a.data) : a;
  const b2 = b.shape.length === 1 ? t([b.shape[0] as number, 1], b.data) : b;
  const full = matMulShape(a2.shape, b2.shape);
  const [m, k] = a2.shape.slice(-2) as [number, number];
  const n = b2.shape.at(-1) as number;
  const batch = full.slice(0, -2);
  const aa = broadcastTo(a2, [...batch, m, k]);
  const bb = broadcastTo(b2, [...batch, k, n]);
  const count = elementCount(batch);
  const data = new Float64Array(count * m * n);
  for (let p = 0; p < count; p++) {
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let sum = 0;
        for (let q = 0; q < k; q++) sum += (aa.data[p * m * k + i * k + q] as number) * (bb.data[p * k * n + q * n + j] as number);
        data[p * m * n + i * n + j] = sum;
      }
    }
  }
  const shape = [...batch, ...(a.shape.length === 1 ? [] : [m]), ...(b.shape.length === 1 ? [] : [n])];
  return t(shape, data);
}

function gemm(a: T, b: T, c: T | null, attributes: { transA: boolean; transB: boolean; alpha: number; beta: number }): T {
  const aa = attributes.transA ? transpose(a, [1, 0]) : a;
  const bb = attributes.transB ? transpose(b, [1, 0]) : b;
  const product = matMul(aa, bb);
  const scaled = unary(product, (v) => v * attributes.alpha);
  return c ? binary(scaled, unary(c, (v) => v * attributes.beta), (x, y) => x + y) : scaled;
}

/** Iterates (outer, axis, inner) decompositions of `shape` around `axis`. */
function around(shape: readonly number[], axis: number): { outer: number; size: number; inner: number } {
  return { outer: elementCount(shape.slice(0, axis)), size: shape[axis] as number, inner: elementCount(shape.slice(axis + 1)) };
}

function softmax(x: T, axis: number): T {
  const { outer, size, inner } = around(x.shape, axis);
  const data = new Float64Array(x.data.length);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const at = (j: number) => o * size * inner + j * inner + i;
      let max = -Infinity;
      for (let j = 0; j < size; j++) max = Math.max(max, x.data[at(j)] as number);
      let total = 0;
      for (let j = 0; j < size; j++) total += data[at(j)] = Math.exp((x.data[at(j)] as number) - max);
      for (let j = 0; j < size; j++) data[at(j)] = (data[at(j)] as number) / total;
    }
  }
  return t(x.shape, data);
}

function reduce(x: T, axes: readonly number[], mean: boolean, outShape: readonly number[]): T {
  const rank = x.shape.length;
  const reduced = new Set(axes.map((a) => normalizeAxis(a, rank)));
  const keptShape = x.shape.map((d, i) => (reduced.has(i) ? 1 : d));
  const keptStrides = strides(keptShape);
  const data = new Float64Array(elementCount(keptShape));
  const index = new Array<number>(rank).fill(0);
  for (let flat = 0; flat < x.data.length; flat++) {
    let offset = 0;
    for (let d = 0; d < rank; d++) if (!reduced.has(d)) offset += (index[d] as number) * (keptStrides[d] as number);
    data[offset] = (data[offset] as number) + (x.data[flat] as number);
    for (let d = rank - 1; d >= 0; d--) {
      if (++(index[d] as number) < (x.shape[d] as number)) break;
      index[d] = 0;
    }
  }
  const count = x.data.length / data.length;
  return t(outShape, mean ? data.map((v) => v / count) : data);
}

function transpose(x: T, perm: readonly number[]): T {
  const shape = perm.map((p) => x.shape[p] as number);
  const source = strides(x.shape);
  const data = new Float64Array(x.data.length);
  const index = new Array<number>(shape.length).fill(0);
  for (let flat = 0; flat < data.length; flat++) {
    let offset = 0;
    for (let d = 0; d < shape.length; d++) offset += (index[d] as number) * (source[perm[d] as number] as number);
    data[flat] = x.data[offset] as number;
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++(index[d] as number) < (shape[d] as number)) break;
      index[d] = 0;
    }
  }
  return t(shape, data);
}

function concat(parts: readonly T[], axis: number): T {
  const first = parts[0] as T;
  const outer = elementCount(first.shape.slice(0, axis));
  const inner = elementCount(first.shape.slice(axis + 1));
  const total = parts.reduce((s, p) => s + (p.shape[axis] as number), 0);
  const data = new Float64Array(outer * total * inner);
  let offset = 0;
  for (const part of parts) {
    const size = part.shape[axis] as number;
    for (let o = 0; o < outer; o++) data.set(part.data.subarray(o * size * inner, (o + 1) * size * inner), o * total * inner + offset * inner);
    offset += size;
  }
  return t(first.shape.map((d, i) => (i === axis ? total : d)), data);
}

function slice(x: T, spec: { starts: readonly number[]; ends: readonly number[]; axes: readonly number[]; steps: readonly number[] }): T {
  let result = x;
  spec.axes.forEach((rawAxis, k) => {
    const axis = normalizeAxis(rawAxis, x.shape.length);
    const step = spec.steps[k] as number;
    const { first, count } = sliceRange(result.shape[axis] as number, spec.starts[k] as number, spec.ends[k] as number, step);
    result = pick(result, axis, Array.from({ length: count }, (_, i) => first + i * step));
  });
  return result;
}

/** The entries `indices` of `axis`, in order. */
function pick(x: T, axis: number, indices: readonly number[]): T {
  const { outer, size, inner } = around(x.shape, axis);
  const data = new Float64Array(outer * indices.length * inner);
  for (let o = 0; o < outer; o++) {
    indices.forEach((index, j) => data.set(x.data.subarray(o * size * inner + index * inner, o * size * inner + (index + 1) * inner), (o * indices.length + j) * inner));
  }
  return t(x.shape.map((d, i) => (i === axis ? indices.length : d)), data);
}

function gather(x: T, indices: T, axis: number): T {
  const size = x.shape[axis] as number;
  const picked = pick(x, axis, Array.from(indices.data, (v) => (v < 0 ? v + size : v)));
  return t([...x.shape.slice(0, axis), ...indices.shape, ...x.shape.slice(axis + 1)], picked.data);
}

function conv(x: T, w: T, bias: T | null, spec: { strides: readonly number[]; pads: readonly number[]; dilations: readonly number[]; group: number }, outShape: readonly number[]): T {
  const [n, c] = x.shape as [number, number];
  const [m, cg] = w.shape as [number, number];
  const spatial = x.shape.slice(2);
  const kernel = w.shape.slice(2);
  const outSpatial = outShape.slice(2);
  const rank = spatial.length;
  const group = spec.group;
  const mg = m / group;
  const inStrides = strides(spatial);
  const kStrides = strides(kernel);
  const outSize = elementCount(outSpatial);
  const kSize = elementCount(kernel);
  const inSize = elementCount(spatial);
  const data = new Float64Array(n * m * outSize);
  const outIndex = new Array<number>(rank);
  const kIndex = new Array<number>(rank);
  for (let b = 0; b < n; b++) {
    for (let oc = 0; oc < m; oc++) {
      const g = Math.floor(oc / mg);
      for (let o = 0; o < outSize; o++) {
        let rest = o;
        for (let d = rank - 1; d >= 0; d--) {
          outIndex[d] = rest % (outSpatial[d] as number);
          rest = Math.floor(rest / (outSpatial[d] as number));
        }
        let sum = bias ? (bias.data[oc] as number) : 0;
        for (let ic = 0; ic < cg; ic++) {
          const channel = g * cg + ic;
          for (let q = 0; q < kSize; q++) {
            let kr = q;
            for (let d = rank - 1; d >= 0; d--) {
              kIndex[d] = kr % (kernel[d] as number);
              kr = Math.floor(kr / (kernel[d] as number));
            }
            let offset = 0;
            let inside = true;
            for (let d = 0; d < rank; d++) {
              const position = (outIndex[d] as number) * (spec.strides[d] as number) + (kIndex[d] as number) * (spec.dilations[d] as number) - (spec.pads[d] as number);
              if (position < 0 || position >= (spatial[d] as number)) {
                inside = false;
                break;
              }
              offset += position * (inStrides[d] as number);
            }
            if (!inside) continue;
            let kOffset = 0;
            for (let d = 0; d < rank; d++) kOffset += (kIndex[d] as number) * (kStrides[d] as number);
            sum += (x.data[(b * c + channel) * inSize + offset] as number) * (w.data[(oc * cg + ic) * kSize + kOffset] as number);
          }
        }
        data[(b * m + oc) * outSize + o] = sum;
      }
    }
  }
  return t(outShape, data);
}

/** Normalises `groups` contiguous runs of `size` values (biased variance), then y = x̂·scale(i) + shift(i). */
function normalize(x: T, groups: number, size: number, epsilon: number, scale: (i: number) => number, shift: (i: number) => number): T {
  const data = new Float64Array(x.data.length);
  for (let g = 0; g < groups; g++) {
    let mean = 0;
    for (let i = 0; i < size; i++) mean += x.data[g * size + i] as number;
    mean /= size;
    let variance = 0;
    for (let i = 0; i < size; i++) variance += ((x.data[g * size + i] as number) - mean) ** 2;
    variance /= size;
    const inverse = 1 / Math.sqrt(variance + epsilon);
    for (let i = 0; i < size; i++) {
      const at = g * size + i;
      data[at] = ((x.data[at] as number) - mean) * inverse * scale(at) + shift(at);
    }
  }
  return t(x.shape, data);
}

/** Nearest, asymmetric, floor: output index i reads ⌊i · in / out⌋ along every axis. */
function resizeNearest(x: T, sizes: readonly number[]): T {
  let result = x;
  sizes.forEach((outSize, axis) => {
    const inSize = result.shape[axis] as number;
    if (outSize === inSize) return;
    result = pick(result, axis, Array.from({ length: outSize }, (_, i) => Math.floor((i * inSize) / outSize)));
  });
  return result;
}

function attention(q: T, k: T, v: T, bias: T | null, heads: number, scale: number): T {
  const [b, s, d] = q.shape as [number, number, number];
  const l = k.shape[1] as number;
  const dv = v.shape[2] as number;
  const [dh, dvh] = [d / heads, dv / heads];
  const fullBias = bias ? broadcastTo(bias, [b, heads, s, l]) : null;
  const data = new Float64Array(b * s * dv);
  const scores = new Float64Array(l);
  for (let n = 0; n < b; n++) {
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < s; i++) {
        let max = -Infinity;
        for (let j = 0; j < l; j++) {
          let dot = 0;
          for (let e = 0; e < dh; e++) dot += (q.data[(n * s + i) * d + h * dh + e] as number) * (k.data[(n * l + j) * d + h * dh + e] as number);
          scores[j] = dot * scale + (fullBias ? (fullBias.data[((n * heads + h) * s + i) * l + j] as number) : 0);
          max = Math.max(max, scores[j] as number);
        }
        let total = 0;
        for (let j = 0; j < l; j++) total += scores[j] = Math.exp((scores[j] as number) - max);
        for (let e = 0; e < dvh; e++) {
          let sum = 0;
          for (let j = 0; j < l; j++) sum += ((scores[j] as number) / total) * (v.data[(n * l + j) * dv + h * dvh + e] as number);
          data[(n * s + i) * dv + h * dvh + e] = sum;
        }
      }
    }
  }
  return t([b, s, dv], data);
}

/**
 * erf in float64: the Maclaurin series below |x| = 3 (terms fall fast there; sums in float64 keep
 * ~1e-15 relative accuracy), and the continued fraction of erfc (Lentz) beyond.
 */
export function erf(x: number): number {
  if (Number.isNaN(x)) return Number.NaN;
  const a = Math.abs(x);
  if (a < 3) {
    let term = a;
    let sum = a;
    for (let n = 1; n < 200; n++) {
      term *= (-a * a) / n;
      const next = term / (2 * n + 1);
      sum += next;
      if (Math.abs(next) < 1e-17 * Math.abs(sum)) break;
    }
    return Math.sign(x) * ((2 / Math.sqrt(Math.PI)) * sum);
  }
  // erfc(a) = exp(−a²)/√π · 1/(a + 1/2/(a + 1/(a + 3/2/(a + …)))).
  let f = a;
  let c = a;
  let d = 0;
  for (let n = 1; n < 300; n++) {
    const an = n / 2;
    d = a + an * d;
    d = d === 0 ? 1e-300 : 1 / d;
    c = a + an / c;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  const erfc = Math.exp(-a * a) / Math.sqrt(Math.PI) / f;
  return Math.sign(x) * (1 - erfc);
}
