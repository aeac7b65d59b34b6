/**
 * The float64 graph interpreter (test/helpers/graph-interpreter.ts) against ONNX Runtime, op by op:
 * each case builds one float32 graph, runs it in ORT (CPU) and in the interpreter on the same
 * float32-rounded inputs, and compares (exactly for data movement, casts and Resize; within 1e-5
 * relative otherwise). Also: erf against high-precision values, and the interpreter's own behaviour
 * (only the needed nodes run, refusals, copies of aliased feeds).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GraphBuilder, type ElementType, type GraphNode, type OpType, type Value } from '../../main/engine/graph/builder';
import { encodeModel } from '../../main/engine/graph/onnx-writer';
import { elementCount, sliceRange } from '../../main/engine/graph/shapes';
import { lowerToOnnx } from '../../main/engine/graph/to-onnx';
import { RuntimeClient } from '../../main/engine/runtime/runtime-client';
import type { TensorMap, TensorValue } from '../../main/engine/runtime/runtime-protocol';
import { erf, evaluateGraph, type Float64Tensor, type InterpretedGraph } from '../helpers/graph-interpreter';
import { randomNormalish, seededRandom } from '../helpers/net-fixtures';

type InputType = Extract<ElementType, 'float32' | 'int64' | 'int32' | 'bool'>;

interface InputSpec {
  shape: number[];
  type?: InputType;
  /** Given values (else seeded N(0, scale)-ish floats). */
  values?: readonly number[];
  /** Values in [0.5, 1.5]. */
  positive?: boolean;
  scale?: number;
}

interface OpCase {
  name: string;
  ops: OpType[];
  inputs: InputSpec[];
  build: (b: GraphBuilder, inputs: Value[]) => Value | Value[];
  /** Bit-exact agreement expected (data movement, casts, Resize). */
  exact?: boolean;
}

/** Every op of `OpAttributes` (a compile error when the builder gains one): the cases must cover them all. */
const ALL_OPS: Record<OpType, true> = {
  Identity: true, Add: true, Sub: true, Mul: true, Div: true, Pow: true, Sqrt: true, Reciprocal: true, Neg: true, Exp: true, Log: true,
  Tanh: true, Erf: true, Sigmoid: true, Sin: true, Cos: true, MatMul: true, Gemm: true, Softmax: true, ReduceMean: true, ReduceSum: true,
  Reshape: true, Transpose: true, Concat: true, Slice: true, Gather: true, Unsqueeze: true, Squeeze: true, Expand: true, Where: true,
  Cast: true, Conv: true, ConvTranspose: true, LayerNormalization: true, GroupNormalization: true, Resize: true, Gelu: true, QuickGelu: true, MultiHeadAttention: true,
};

const f = (shape: number[], extra: Omit<InputSpec, 'shape'> = {}): InputSpec => ({ shape, ...extra });
const ints = (shape: number[], values: readonly number[], type: InputType = 'int64'): InputSpec => ({ shape, type, values });
const unaryCase = (op: OpType, apply: (b: GraphBuilder, x: Value) => Value, spec: InputSpec = f([3, 5], { scale: 1.5 })): OpCase => ({ name: op, ops: [op], inputs: [spec], build: (b, [x]) => apply(b, x!) });

const CASES: OpCase[] = [
  { name: 'Identity', ops: ['Identity'], inputs: [f([2, 3])], build: (b, [x]) => b.identity(x!), exact: true },
  { name: 'Add, both operands broadcast', ops: ['Add'], inputs: [f([2, 1, 4]), f([3, 1])], build: (b, [x, y]) => b.add(x!, y!) },
  { name: 'Sub, scalar operand', ops: ['Sub'], inputs: [f([3, 4]), f([])], build: (b, [x, y]) => b.sub(y!, x!) },
  { name: 'Mul, middle axis broadcast', ops: ['Mul'], inputs: [f([2, 3, 4]), f([1, 3, 1])], build: (b, [x, y]) => b.mul(x!, y!) },
  { name: 'Div, row broadcast', ops: ['Div'], inputs: [f([3, 4]), f([4], { positive: true })], build: (b, [x, y]) => b.div(x!, y!) },
  { name: 'Div of int64 truncates toward zero', ops: ['Div'], inputs: [ints([6], [-7, 7, -7, 9, 0, -1]), ints([6], [2, -2, -2, 4, 3, 5])], build: (b, [x, y]) => b.div(x!, y!), exact: true },
  { name: 'Pow, tensor exponent', ops: ['Pow'], inputs: [f([3, 4], { positive: true }), f([4])], build: (b, [x, y]) => b.pow(x!, y!) },
  { name: 'Pow, constant exponents 2, 3, 0.5 on negative bases', ops: ['Pow'], inputs: [f([5])], build: (b, [x]) => [2, 3, 0.5].map((e) => b.pow(x!, b.scalar(e))) },
  {
    name: 'Pow, C edge cases (1^NaN, (−1)^±∞, 0^0)',
    ops: ['Pow'],
    inputs: [f([6], { values: [1, -1, -1, 0, 2, -2] }), f([6], { values: [Number.NaN, Infinity, -Infinity, 0, -0.5, 0.5] })],
    build: (b, [x, y]) => b.pow(x!, y!),
  },
  { name: 'Pow of int64', ops: ['Pow'], inputs: [ints([4], [2, -3, 5, 7]), ints([4], [3, 3, 0, 1])], build: (b, [x, y]) => b.pow(x!, y!), exact: true },
  unaryCase('Sqrt', (b, x) => b.sqrt(x), f([3, 5], { positive: true })),
  unaryCase('Reciprocal', (b, x) => b.reciprocal(x), f([3, 5], { positive: true })),
  unaryCase('Neg', (b, x) => b.neg(x)),
  unaryCase('Exp', (b, x) => b.exp(x)),
  unaryCase('Log', (b, x) => b.log(x), f([3, 5], { positive: true })),
  unaryCase('Tanh', (b, x) => b.tanh(x)),
  unaryCase('Erf', (b, x) => b.erf(x), f([4, 16], { scale: 2 })),
  unaryCase('Sigmoid', (b, x) => b.sigmoid(x), f([4, 16], { scale: 4 })),
  { name: 'Sin and Cos', ops: ['Sin', 'Cos'], inputs: [f([3, 5], { scale: 3 })], build: (b, [x]) => [b.sin(x!), b.cos(x!)] },
  { name: 'Gelu (erf)', ops: ['Gelu'], inputs: [f([4, 16], { scale: 2 })], build: (b, [x]) => b.gelu(x!, 'none') },
  { name: 'Gelu (tanh)', ops: ['Gelu'], inputs: [f([4, 16], { scale: 2 })], build: (b, [x]) => b.gelu(x!, 'tanh') },
  { name: 'QuickGelu, alphas 1.702 and 1', ops: ['QuickGelu'], inputs: [f([4, 16], { scale: 2 })], build: (b, [x]) => [b.quickGelu(x!, 1.702), b.quickGelu(x!, 1)] },

  { name: 'MatMul 2-D', ops: ['MatMul'], inputs: [f([3, 5]), f([5, 4])], build: (b, [x, y]) => b.matMul(x!, y!) },
  { name: 'MatMul, batches broadcast both ways', ops: ['MatMul'], inputs: [f([2, 1, 3, 4]), f([3, 4, 5])], build: (b, [x, y]) => b.matMul(x!, y!) },
  { name: 'MatMul, 3-D · 2-D', ops: ['MatMul'], inputs: [f([2, 3, 4]), f([4, 2])], build: (b, [x, y]) => b.matMul(x!, y!) },
  ...[false, true].flatMap((transA) =>
    [false, true].map(
      (transB): OpCase => ({
        name: `Gemm transA=${transA} transB=${transB}`,
        ops: ['Gemm'],
        inputs: [f(transA ? [4, 3] : [3, 4]), f(transB ? [5, 4] : [4, 5]), f([5]), f([3, 1]), f([3, 5])],
        build: (b, [x, y, row, column, full]) => [
          b.gemm(x!, y!, row!, { transA, transB, alpha: 0.7, beta: 1.3 }),
          b.gemm(x!, y!, column!, { transA, transB, alpha: -1.5, beta: 0.25 }),
          b.gemm(x!, y!, full!, { transA, transB }),
          b.gemm(x!, y!, null, { transA, transB, alpha: 2 }),
        ],
      }),
    ),
  ),
  { name: 'Gemm, scalar C; beta 0 ignores a NaN C', ops: ['Gemm'], inputs: [f([3, 4]), f([4, 2]), f([], { values: [Number.NaN] }), f([])], build: (b, [x, y, nan, c]) => [b.gemm(x!, y!, nan!, { beta: 0 }), b.gemm(x!, y!, c!, { beta: -2 })] },

  { name: 'Softmax, last, first and a negative middle axis', ops: ['Softmax'], inputs: [f([2, 3, 5], { scale: 3 })], build: (b, [x]) => [b.softmax(x!, -1), b.softmax(x!, 0), b.softmax(x!, -2)] },
  { name: 'ReduceMean, kept and dropped axes', ops: ['ReduceMean'], inputs: [f([2, 3, 4])], build: (b, [x]) => [b.reduceMean(x!, [0, -1], true), b.reduceMean(x!, [1], false), b.reduceMean(x!, [0, 1, 2], false)] },
  { name: 'ReduceSum, kept and dropped axes', ops: ['ReduceSum'], inputs: [f([2, 3, 4])], build: (b, [x]) => [b.reduceSum(x!, [2, 0], false), b.reduceSum(x!, [-1], true), b.reduceSum(x!, [1, 2], true)] },
  { name: 'Reshape, Unsqueeze, Squeeze', ops: ['Reshape', 'Unsqueeze', 'Squeeze'], inputs: [f([2, 1, 6])], build: (b, [x]) => [b.reshape(x!, [-1, 4]), b.unsqueeze(x!, [0, -1]), b.squeeze(x!, [1])], exact: true },
  { name: 'Transpose 3-D and 4-D', ops: ['Transpose'], inputs: [f([2, 3, 4]), f([2, 3, 1, 5])], build: (b, [x, y]) => [b.transpose(x!, [2, 0, 1]), b.transpose(y!, [3, 1, 0, 2])], exact: true },
  {
    name: 'Concat on axes 0, 1 (a value twice) and −1',
    ops: ['Concat'],
    inputs: [f([2, 3, 2]), f([2, 1, 2]), f([1, 3, 2]), f([2, 3, 3])],
    build: (b, [x, y, z, w]) => [b.concat([x!, y!, x!], 1), b.concat([x!, z!], 0), b.concat([x!, w!], -1)],
    exact: true,
  },
  {
    name: 'Slice: negative starts, steps 2 and −1, clamped ends, several axes',
    ops: ['Slice'],
    inputs: [f([7, 6, 4])],
    build: (b, [x]) => [
      b.slice(x!, { starts: [-3], ends: [-1], axes: [0] }),
      b.slice(x!, { starts: [1, -1], ends: [7, 0], axes: [0, 1], steps: [2, -1] }),
      b.slice(x!, { starts: [100], ends: [-100], axes: [-1], steps: [-2] }),
      b.slice(x!, { starts: [-100, 5], ends: [100, -100], axes: [2, 1], steps: [3, -3] }),
      b.slice(x!, { starts: [4], ends: [2], axes: [0] }),
    ],
    exact: true,
  },
  {
    name: 'Gather: negative and repeated indices, 2-D indices on axis 1, int32 indices on axis −1',
    ops: ['Gather'],
    inputs: [f([5, 4, 3]), ints([5], [4, -1, 0, 2, 0]), ints([2, 2], [3, -4, 1, 0]), ints([2], [-1, 1], 'int32')],
    build: (b, [x, i0, i1, i2]) => [b.gather(x!, i0!, 0), b.gather(x!, i1!, 1), b.gather(x!, i2!, -1)],
    exact: true,
  },
  { name: 'Expand, bidirectional', ops: ['Expand'], inputs: [f([3, 1]), f([2, 3, 1])], build: (b, [x, y]) => [b.expand(x!, [2, 1, 4]), b.expand(y!, [4])], exact: true },
  {
    name: 'Where, all three broadcast',
    ops: ['Where'],
    inputs: [{ shape: [3, 1], type: 'bool', values: [1, 0, 1] }, f([4]), f([])],
    build: (b, [c, x, y]) => [b.where(c!, x!, y!), b.where(b.constant([0, 1, 1, 0], [4], 'bool'), y!, x!)],
    exact: true,
  },
  {
    name: 'Cast: float → int64 / int32 (truncation) / bool (NaN is true), int → float and bool',
    ops: ['Cast'],
    inputs: [f([7], { values: [-2.7, -0.5, -0, 0.4, 1.5, 2.9, 1e6 + 0.5] }), f([3], { values: [Number.NaN, 0, -1e-30] }), ints([3], [-3, 0, 7])],
    build: (b, [x, z, n]) => [b.cast(x!, 'int64'), b.cast(x!, 'int32'), b.cast(x!, 'bool'), b.cast(z!, 'bool'), b.cast(n!, 'float32'), b.cast(b.cast(n!, 'bool'), 'int64')],
    exact: true,
  },
  {
    name: 'Cast through float16 and bfloat16 (ties to even, subnormals, overflow)',
    ops: ['Cast'],
    inputs: [
      f([12], {
        values: [1 + 2 ** -11, 1 + 3 * 2 ** -11, 1 + 2 ** -8, 1 + 3 * 2 ** -8, 65519, 65520, 3e-8, 1e-8, -1234.567, 1e-40, 3.4e38, 0.1],
      }),
      f([64], { scale: 100 }),
    ],
    build: (b, [x, y]) => [x!, y!].flatMap((v) => [b.cast(b.cast(v, 'float16'), 'float32'), b.cast(b.cast(v, 'bfloat16'), 'float32')]),
    exact: true,
  },

  { name: 'Conv 2-D, pads 1, bias', ops: ['Conv'], inputs: [f([2, 3, 5, 4]), f([2, 3, 3, 3]), f([2])], build: (b, [x, w, c]) => b.conv(x!, w!, c!, { strides: [1, 1], pads: [1, 1, 1, 1] }) },
  { name: 'Conv 2-D, stride 2, asymmetric pads', ops: ['Conv'], inputs: [f([1, 2, 6, 5]), f([3, 2, 3, 3])], build: (b, [x, w]) => b.conv(x!, w!, null, { strides: [2, 2], pads: [0, 0, 1, 1] }) },
  {
    name: 'Conv 2-D, 2 groups, dilation (2, 1), stride (2, 1), pads',
    ops: ['Conv'],
    inputs: [f([2, 4, 8, 6]), f([6, 2, 2, 3]), f([6])],
    build: (b, [x, w, c]) => b.conv(x!, w!, c!, { strides: [2, 1], pads: [0, 1, 0, 2], dilations: [2, 1], group: 2 }),
  },
  { name: 'Conv 2-D depthwise, 3×3 dilation 2', ops: ['Conv'], inputs: [f([1, 3, 7, 7]), f([3, 1, 3, 3]), f([3])], build: (b, [x, w, c]) => b.conv(x!, w!, c!, { strides: [1, 1], pads: [2, 2, 2, 2], dilations: [2, 2], group: 3 }) },
  { name: 'Conv 1-D, stride 3, begin pad beyond the kernel', ops: ['Conv'], inputs: [f([2, 2, 9]), f([3, 2, 2])], build: (b, [x, w]) => b.conv(x!, w!, null, { strides: [3], pads: [3, 0] }) },
  { name: 'Conv 1-D, dilation 3, groups 2', ops: ['Conv'], inputs: [f([1, 4, 11]), f([2, 2, 3]), f([2])], build: (b, [x, w, c]) => b.conv(x!, w!, c!, { strides: [1], pads: [1, 2], dilations: [3], group: 2 }) },
  {
    name: 'ConvTranspose 2-D, stride 2, asymmetric pads, output_padding 1, bias',
    ops: ['ConvTranspose'],
    inputs: [f([2, 3, 3, 4]), f([3, 2, 3, 3]), f([2])],
    build: (b, [x, w, c]) => b.convTranspose(x!, w!, c!, { strides: [2, 2], pads: [0, 0, 1, 1], outputPadding: [1, 1] }),
  },
  {
    name: 'ConvTranspose 2-D, 2 groups, dilation (2, 1), stride (2, 1), pads',
    ops: ['ConvTranspose'],
    inputs: [f([1, 4, 3, 5]), f([4, 3, 2, 3]), f([6])],
    build: (b, [x, w, c]) => b.convTranspose(x!, w!, c!, { strides: [2, 1], pads: [0, 1, 0, 2], dilations: [2, 1], group: 2, outputPadding: [1, 0] }),
  },
  { name: 'ConvTranspose 1-D, stride 3, begin pad beyond the kernel, output_padding 2', ops: ['ConvTranspose'], inputs: [f([2, 3, 4]), f([3, 2, 2])], build: (b, [x, w]) => b.convTranspose(x!, w!, null, { strides: [3], pads: [3, 0], outputPadding: [2] }) },
  { name: 'ConvTranspose 3-D, stride (1, 2, 1)', ops: ['ConvTranspose'], inputs: [f([1, 2, 3, 3, 4]), f([2, 3, 2, 3, 2]), f([3])], build: (b, [x, w, c]) => b.convTranspose(x!, w!, c!, { strides: [1, 2, 1], pads: [0, 1, 1, 1, 0, 0] }) },
  { name: 'Conv 3-D, stride (1, 2, 1)', ops: ['Conv'], inputs: [f([1, 2, 3, 5, 4]), f([2, 2, 2, 3, 2]), f([2])], build: (b, [x, w, c]) => b.conv(x!, w!, c!, { strides: [1, 2, 1], pads: [0, 1, 1, 1, 0, 0] }) },
  { name: 'Conv 2-D 1×1', ops: ['Conv'], inputs: [f([2, 3, 2, 3]), f([4, 3, 1, 1]), f([4])], build: (b, [x, w, c]) => b.conv(x!, w!, c!, { strides: [1, 1] }) },

  {
    name: 'LayerNormalization: last axis with bias, two axes without, all axes',
    ops: ['LayerNormalization'],
    inputs: [f([2, 3, 5], { scale: 2 }), f([5]), f([5]), f([3, 5]), f([2, 3, 5])],
    build: (b, [x, g, c, g2, g3]) => [
      b.layerNormalization(x!, g!, c!, { axis: -1, epsilon: 1e-5 }),
      b.layerNormalization(x!, g2!, null, { axis: 1, epsilon: 1e-3 }),
      b.layerNormalization(x!, g3!, null, { axis: 0, epsilon: 0.1 }),
    ],
  },
  {
    name: 'GroupNormalization: 2 groups 4-D, 1 group 3-D, one group per channel',
    ops: ['GroupNormalization'],
    inputs: [f([2, 4, 3, 2], { scale: 2 }), f([4]), f([4]), f([2, 3, 5]), f([3]), f([3])],
    build: (b, [x, g, c, y, g2, c2]) => [
      b.groupNormalization(x!, g!, c!, { numGroups: 2, epsilon: 1e-6 }),
      b.groupNormalization(y!, g2!, c2!, { numGroups: 1, epsilon: 1e-5 }),
      b.groupNormalization(y!, g2!, c2!, { numGroups: 3, epsilon: 1e-2 }),
    ],
  },
  { name: 'Resize ×2 (scales)', ops: ['Resize'], inputs: [f([1, 2, 3, 2])], build: (b, [x]) => [b.resizeNearest(x!, [1, 2, 6, 4]), b.resizeNearest(x!, [2, 2, 9, 2])], exact: true },
  { name: 'Resize to non-whole sizes, up and down', ops: ['Resize'], inputs: [f([2, 1, 3, 5])], build: (b, [x]) => [b.resizeNearest(x!, [2, 1, 5, 3]), b.resizeNearest(x!, [3, 1, 7, 8])], exact: true },
  {
    // Sizes where float32's ⌊i / (out/in)⌋ differs from ⌊i · in / out⌋ (14 → 2, 20 → 12, 18 → 78…), and all others to 50.
    name: 'Resize sweep: in 3, 7, 14, 18, 20 to every size 1…50',
    ops: ['Resize'],
    inputs: [3, 7, 14, 18, 20].map((n) => f([2, n])),
    build: (b, xs) => xs.flatMap((x) => Array.from({ length: 50 }, (_, i) => b.resizeNearest(x, [2, i + 1]))),
    exact: true,
  },
  {
    name: 'MultiHeadAttention, 2 heads, cross (L ≠ S), Dv ≠ D, no bias',
    ops: ['MultiHeadAttention'],
    inputs: [f([2, 3, 4]), f([2, 5, 4]), f([2, 5, 6])],
    build: (b, [q, k, v]) => [b.multiHeadAttention(q!, k!, v!, null, { numHeads: 2, scale: 0.5 }), b.multiHeadAttention(q!, k!, v!, null, { numHeads: 1, scale: 0 })],
  },
  {
    name: 'MultiHeadAttention with attention biases [1,1,S,L], [B,H,S,L], [1,H,S,L], [B,1,S,L]; scale 0 means 1/√head',
    ops: ['MultiHeadAttention'],
    inputs: [f([2, 3, 6]), f([2, 4, 6]), f([2, 4, 6]), f([1, 1, 3, 4], { scale: 2 }), f([2, 3, 3, 4], { scale: 2 }), f([1, 3, 3, 4], { scale: 2 }), f([2, 1, 3, 4], { scale: 2 })],
    build: (b, [q, k, v, ...biases]) => biases.map((bias, i) => b.multiHeadAttention(q!, k!, v!, bias, { numHeads: 3, scale: i === 3 ? 0 : 1 / Math.sqrt(2) })),
  },
];

/** ONNX Slice's count along one axis (the spec's clamping), for the hand-made sweep below. */
function onnxSliceCount(dim: number, start: number, end: number, step: number): number {
  const clamp = (v: number, low: number, high: number) => Math.min(Math.max(v, low), high);
  const s = clamp(start < 0 ? start + dim : start, 0, step > 0 ? dim : dim - 1);
  const e = clamp(end < 0 ? end + dim : end, step > 0 ? 0 : -1, step > 0 ? dim : dim - 1);
  return Math.max(0, Math.ceil((e - s) / step));
}

/** A graph made of nodes by hand (for what the builder's shape inference does not allow), its values and its lowering. */
function handGraph(inputs: Value[], makeNodes: (value: (shape: number[]) => Value) => GraphNode[]): { graph: InterpretedGraph; outputs: Value[] } {
  let nextId = inputs.length;
  const value = (shape: number[]): Value => ({ id: nextId, name: `v${nextId++}`, type: 'float32', shape });
  const nodes = makeNodes(value);
  return { graph: { nodes, inputs, initializers: [] }, outputs: nodes.map((n) => n.outputs[0]!) };
}

const handInput = (id: number, shape: number[]): Value => ({ id, name: `x${id}`, type: 'float32', shape });
const node = (id: number, op: 'MatMul' | 'Slice', inputs: Value[], output: Value, attributes: object): GraphNode => ({ id, name: `${op}_${output.name}`, op, inputs, outputs: [output], attributes }) as unknown as GraphNode;

/** NumPy matmul with 1-D operands (the builder requires rank ≥ 2). */
const HAND_MATMUL = (() => {
  const shapes: [number[], number[], number[]][] = [
    [[4], [4, 3], [3]],
    [[2, 4], [4], [2]],
    [[4], [4], []],
    [[4], [2, 4, 3], [2, 3]],
    [[2, 3, 4], [4], [2, 3]],
  ];
  const inputs = shapes.flatMap(([a, b], i) => [handInput(2 * i, a), handInput(2 * i + 1, b)]);
  return { inputs, ...handGraph(inputs, (value) => shapes.map(([, , out], i) => node(i, 'MatMul', [inputs[2 * i]!, inputs[2 * i + 1]!], value(out), {}))) };
})();

/** Every (start, end, step) of a grid on an axis of 5, including starts below −dim with negative steps (ONNX clamps them to 0). */
const HAND_SLICES = (() => {
  const points = [-1e9, -9, -5, -4, -1, 0, 1, 3, 4, 5, 9, 1e9];
  const inputs = [handInput(0, [5, 2])];
  return {
    inputs,
    ...handGraph(inputs, (value) =>
      points.flatMap((start) =>
        points.flatMap((end) => [-2, -1, 1, 3].map((step) => node(0, 'Slice', inputs, value([onnxSliceCount(5, start, end, step), 2]), { starts: [start], ends: [end], axes: [0], steps: [step] }))),
      ),
    ),
  };
})();

function inputValues(spec: InputSpec, seed: number): Float64Array {
  if (spec.values) return Float64Array.from(spec.type && spec.type !== 'float32' ? spec.values : Float32Array.from(spec.values));
  const random = seededRandom(seed);
  const count = elementCount(spec.shape);
  if (spec.positive) return Float64Array.from(Float32Array.from({ length: count }, () => 0.5 + random()));
  return Float64Array.from(randomNormalish(random, count, spec.scale ?? 1));
}

function ortTensor(type: InputType, shape: number[], data: Float64Array): TensorValue {
  const dims = [...shape];
  if (type === 'int64') return { type, dims, data: BigInt64Array.from(data, (v) => BigInt(v)) };
  if (type === 'int32') return { type, dims, data: Int32Array.from(data) };
  if (type === 'bool') return { type, dims, data: Uint8Array.from(data) };
  return { type, dims, data: Float32Array.from(data) };
}

/** How far ORT's float32 result is off the float64 one: the worst |a − b| / max(|b|, 0.1·max|b|), NaN-aware. */
function relativeError(actual: ArrayLike<number>, expected: Float64Array): number {
  let peak = 0;
  for (const v of expected) if (Number.isFinite(v)) peak = Math.max(peak, Math.abs(v));
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    const [a, b] = [Number(actual[i]), expected[i]!];
    if (Number.isNaN(a) || Number.isNaN(b) || !Number.isFinite(b)) {
      if (!Object.is(a, b) && !(Number.isNaN(a) && Number.isNaN(b))) return Infinity;
      continue;
    }
    worst = Math.max(worst, Math.abs(a - b) / Math.max(Math.abs(b), 0.1 * peak, 1e-30));
  }
  return worst;
}

/** Mismatches of a bit-exact comparison (after rounding the float64 result to float32). */
function exactMismatches(actual: ArrayLike<number | bigint>, expected: Float64Array): string[] {
  const wrong: string[] = [];
  for (let i = 0; i < expected.length; i++) {
    const [a, b] = [Number(actual[i]), Math.fround(expected[i]!)];
    if (!Object.is(a, b) && !(Number.isNaN(a) && Number.isNaN(b)) && !(a === 0 && b === 0)) wrong.push(`[${i}] ORT ${a}, interpreter ${expected[i]}`);
  }
  return wrong;
}

describe('the float64 interpreter agrees with ONNX Runtime (CPU, float32), op by op', () => {
  let runtime: RuntimeClient;
  beforeAll(() => {
    runtime = RuntimeClient.start();
  });
  afterAll(async () => {
    await runtime.close();
  });

  async function runOrt(model: Uint8Array, feeds: TensorMap): Promise<TensorMap> {
    const session = await runtime.createSession({ model, device: 'cpu' });
    try {
      return await runtime.run(session.id, feeds);
    } finally {
      await runtime.releaseSession(session.id);
    }
  }

  it('has a case for every op of the builder', () => {
    const covered = new Set(CASES.flatMap((c) => c.ops));
    expect(Object.keys(ALL_OPS).filter((op) => !covered.has(op as OpType))).toEqual([]);
  });

  it.each(CASES.map((c) => [c.name, c] as const))('%s', async (_name, testCase) => {
    const b = new GraphBuilder();
    const inputs = testCase.inputs.map((spec, i) => b.input(`x${i}`, spec.type ?? 'float32', spec.shape));
    const built = testCase.build(b, inputs);
    const outputs = Array.isArray(built) ? built : [built];
    const values = testCase.inputs.map((spec, i) => inputValues(spec, 1000 * (CASES.indexOf(testCase) + 1) + i));
    const feeds: Record<string, Float64Tensor> = Object.fromEntries(values.map((data, i) => [`x${i}`, { shape: testCase.inputs[i]!.shape, data }]));
    const expected = evaluateGraph(b, feeds, outputs);

    const model = encodeModel(b.toModel({ name: testCase.name, outputs: outputs.map((value, i) => ({ name: `y${i}`, value })) }));
    const ortFeeds = Object.fromEntries(values.map((data, i) => [`x${i}`, ortTensor(testCase.inputs[i]!.type ?? 'float32', testCase.inputs[i]!.shape, data)]));
    const result = await runOrt(model, ortFeeds);
    expected.forEach((tensor, i) => {
      const actual = result[`y${i}`]!;
      expect(actual.dims, `y${i} shape`).toEqual(tensor.shape);
      const data = actual.data as ArrayLike<number | bigint>;
      if (testCase.exact) expect(exactMismatches(data, tensor.data).slice(0, 5), `y${i}`).toEqual([]);
      else expect(relativeError(data as ArrayLike<number>, tensor.data), `y${i}`).toBeLessThanOrEqual(1e-5);
    });
  });

  it.each([
    ['MatMul with 1-D operands (NumPy semantics)', HAND_MATMUL, false],
    ['Slice, a grid of starts, ends and steps with ONNX clamping', HAND_SLICES, true],
  ] as const)('%s (hand-made nodes)', async (_name, hand, exact) => {
    const random = seededRandom(77);
    const feeds: Record<string, Float64Tensor> = Object.fromEntries(hand.inputs.map((v) => [v.name, { shape: [...v.shape], data: Float64Array.from(randomNormalish(random, elementCount(v.shape), 1)) }]));
    const expected = evaluateGraph(hand.graph, feeds, hand.outputs);
    const model = lowerToOnnx({ ...hand.graph, unbound: [] }, { name: 'hand', outputs: hand.outputs.map((value) => ({ name: value.name, value })) });
    const result = await runOrt(encodeModel(model), Object.fromEntries(Object.entries(feeds).map(([name, t]) => [name, ortTensor('float32', t.shape, t.data)])));
    expected.forEach((tensor, i) => {
      const actual = result[hand.outputs[i]!.name]!;
      expect(actual.dims).toEqual(tensor.shape);
      if (exact) expect(exactMismatches(actual.data as Float32Array, tensor.data)).toEqual([]);
      else expect(relativeError(actual.data as Float32Array, tensor.data)).toBeLessThanOrEqual(1e-5);
    });
  });
});

describe('the interpreter itself', () => {
  it('has an erf accurate to 1e-14 relative (mpmath at 40 digits of the same float64 x, rounded to float64)', () => {
    const known: [number, number][] = [
      [1e-300, 1.1283791670955126e-300],
      [1e-8, 1.1283791670955126e-08],
      [0.001, 0.0011283787909692365],
      [0.1, 0.1124629160182849],
      [-0.3, -0.3286267594591274],
      [0.5, 0.5204998778130465],
      [0.75, 0.7111556336535151],
      [1, 0.8427007929497149],
      [1.5, 0.9661051464753108],
      [2, 0.9953222650189527],
      [-2.2, -0.9981371537020182],
      [2.9, 0.9999589021219005],
      [3, 0.9999779095030014],
      [3.5, 0.9999992569016276],
      [-4.2, -0.9999999971445058],
      [5, 0.9999999999984626],
      [6, 1.0],
      [40, 1.0],
    ];
    for (const [x, value] of known) expect(Math.abs(erf(x) - value) / Math.abs(value), `erf(${x})`).toBeLessThanOrEqual(1e-14);
    expect(erf(0)).toBe(0);
    expect(erf(-Infinity)).toBe(-1);
    expect(erf(Number.NaN)).toBeNaN();
  });

  it('runs only the nodes the outputs need, refuses what it cannot evaluate, and copies outputs that alias feeds', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float64', [2, 2]);
    const unfed = b.input('unfed', 'float64', [2, 2]);
    const weights = b.external('weights', 'float32', [2, 2], { file: 'w.bin', offset: 0, byteLength: 16 });
    const unused = b.add(b.matMul(unfed, b.cast(weights, 'float64')), x);
    const y = b.reshape(b.identity(x), [4]);
    const feed = { shape: [2, 2], data: Float64Array.from([1, 2, 3, 4]) };
    const [result] = evaluateGraph(b, { x: feed }, [y]);
    expect(result).toEqual({ shape: [4], data: Float64Array.from([1, 2, 3, 4]) });
    expect(result!.data).not.toBe(feed.data);
    expect(() => evaluateGraph(b, { x: feed }, [unused])).toThrow(/no feed for graph input 'unfed'/);
    expect(() => evaluateGraph(b, { x: feed, unfed: feed }, [unused])).toThrow(/initializer 'weights' is external data/);
    expect(() => evaluateGraph(b, { x: { shape: [4], data: feed.data } }, [y])).toThrow(/feed 'x' is \[4\]/);

    const v = handInput(0, [1]);
    const strange = { id: 0, name: 'odd', op: 'Frobnicate', inputs: [v], outputs: [{ ...v, id: 1, name: 'out' }], attributes: {} } as unknown as GraphNode;
    expect(() => evaluateGraph({ nodes: [strange], inputs: [v], initializers: [] }, { x0: { shape: [1], data: new Float64Array(1) } }, [strange.outputs[0]!])).toThrow(/no implementation of op 'Frobnicate'/);
  });

  it("declares ONNX's shape for every Slice of the grid, a start below −dim with a negative step included (clamped to 0)", () => {
    const points = [-1e9, -9, -5, -4, -1, 0, 1, 3, 4, 5, 9, 1e9];
    const wrong = points.flatMap((start) =>
      points.flatMap((end) => [-2, -1, 1, 3].flatMap((step) => (sliceRange(5, start, end, step).count === onnxSliceCount(5, start, end, step) ? [] : [`${start}:${end}:${step}`]))),
    );
    expect(wrong).toEqual([]);
    const b = new GraphBuilder();
    const x = b.input('x', 'float64', [5]);
    const y = b.slice(x, { starts: [-9], ends: [-9], axes: [0], steps: [-1] });
    expect(y.shape).toEqual([1]);
    const [result] = evaluateGraph(b, { x: { shape: [5], data: Float64Array.of(10, 11, 12, 13, 14) } }, [y]);
    expect(Array.from(result!.data)).toEqual([10]);
  });

  it('is quick on small graphs', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float64', [1, 4, 8, 8]);
    const w = b.input('w', 'float64', [4, 4, 3, 3]);
    const h = b.groupNormalization(b.conv(x, w, null, { strides: [1, 1], pads: [1, 1, 1, 1] }), b.constant([1, 1, 1, 1], [4], 'float64'), b.constant([0, 0, 0, 0], [4], 'float64'), { numGroups: 2, epsilon: 1e-5 });
    const y = b.reduceSum(b.gelu(b.resizeNearest(h, [1, 4, 16, 16])), [0, 1, 2, 3], false);
    const random = seededRandom(3);
    const feeds = { x: { shape: [1, 4, 8, 8], data: Float64Array.from({ length: 256 }, random) }, w: { shape: [4, 4, 3, 3], data: Float64Array.from({ length: 144 }, random) } };
    const start = performance.now();
    for (let i = 0; i < 200; i++) evaluateGraph(b, feeds, [y]);
    expect((performance.now() - start) / 200, 'milliseconds per evaluation').toBeLessThan(20);
  });
});
