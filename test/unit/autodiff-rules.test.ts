/**
 * Every vector-Jacobian rule against float64 central finite differences, on seeded random shapes
 * (broadcasting included), and the same backward graphs run in ONNX Runtime (float32) against the
 * float64 result. The float64 evaluation uses the test interpreter (ORT's CPU provider has no float64
 * Conv, Erf, Resize or attention kernels); the interpreter itself is checked against ORT op by op.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendBackward } from '../../main/engine/graph/autodiff';
import { GraphBuilder, type ElementType, type OpType, type Value } from '../../main/engine/graph/builder';
import { encodeModel } from '../../main/engine/graph/onnx-writer';
import { elementCount } from '../../main/engine/graph/shapes';
import { VJP_RULES } from '../../main/engine/graph/vjp-rules';
import { RuntimeClient } from '../../main/engine/runtime/runtime-client';
import { erf, evaluateGraph, type Float64Tensor } from '../helpers/graph-interpreter';
import { seededRandom } from '../helpers/net-fixtures';

type FloatType = Extract<ElementType, 'float32' | 'float64'>;

interface InputSpec {
  shape: number[];
  /** Values in [0.5, 1.5] (logarithms, square roots, divisors, Pow bases). */
  positive?: boolean;
}

interface RuleCase {
  name: string;
  /** The ops whose rules this case exercises (coverage is checked against the table). */
  ops: OpType[];
  inputs: InputSpec[];
  build: (b: GraphBuilder, inputs: Value[], type: FloatType) => Value;
  /** Relative tolerance of the float64 check (default 1e-6). */
  tolerance?: number;
}

const random = seededRandom(20261207);
/** A random size in [low, high]. */
const dim = (low = 1, high = 4): number => low + Math.floor(random() * (high - low + 1));
const s = (b: GraphBuilder, type: FloatType, x: number) => b.constant([x], [], type);

const m = dim(2, 4);
const n = dim(2, 4);
const k = dim(2, 5);
const batch = dim(2, 3);

const CASES: RuleCase[] = [
  { name: 'Identity', ops: ['Identity'], inputs: [{ shape: [m, n] }], build: (b, [x]) => b.identity(x!) },
  { name: 'Add, both broadcast', ops: ['Add'], inputs: [{ shape: [batch, 1, n] }, { shape: [m, 1] }], build: (b, [x, y]) => b.add(x!, y!) },
  { name: 'Sub, right broadcast', ops: ['Sub'], inputs: [{ shape: [m, n] }, { shape: [n] }], build: (b, [x, y]) => b.sub(x!, y!) },
  { name: 'Mul, scalar operand', ops: ['Mul'], inputs: [{ shape: [m, n] }, { shape: [] }], build: (b, [x, y]) => b.mul(x!, y!) },
  { name: 'Div', ops: ['Div'], inputs: [{ shape: [batch, m, n] }, { shape: [m, 1], positive: true }], build: (b, [x, y]) => b.div(x!, y!) },
  { name: 'Pow, tensor exponent', ops: ['Pow'], inputs: [{ shape: [m, n], positive: true }, { shape: [n] }], build: (b, [x, y]) => b.pow(x!, y!) },
  { name: 'Pow, constant square', ops: ['Pow'], inputs: [{ shape: [m, n] }], build: (b, [x], t) => b.pow(x!, s(b, t, 2)) },
  { name: 'Sqrt', ops: ['Sqrt'], inputs: [{ shape: [m, n], positive: true }], build: (b, [x]) => b.sqrt(x!) },
  { name: 'Reciprocal', ops: ['Reciprocal'], inputs: [{ shape: [m, n], positive: true }], build: (b, [x]) => b.reciprocal(x!) },
  { name: 'Neg', ops: ['Neg'], inputs: [{ shape: [m] }], build: (b, [x]) => b.neg(x!) },
  { name: 'Exp', ops: ['Exp'], inputs: [{ shape: [m, n] }], build: (b, [x]) => b.exp(x!) },
  { name: 'Log', ops: ['Log'], inputs: [{ shape: [m, n], positive: true }], build: (b, [x]) => b.log(x!) },
  { name: 'Tanh', ops: ['Tanh'], inputs: [{ shape: [m, n] }], build: (b, [x]) => b.tanh(x!) },
  { name: 'Erf', ops: ['Erf'], inputs: [{ shape: [m, n] }], build: (b, [x]) => b.erf(x!) },
  { name: 'Sigmoid', ops: ['Sigmoid'], inputs: [{ shape: [m, n] }], build: (b, [x]) => b.sigmoid(x!) },
  { name: 'Sin and Cos', ops: ['Sin', 'Cos'], inputs: [{ shape: [m, n] }], build: (b, [x]) => b.mul(b.sin(x!), b.cos(x!)) },
  { name: 'MatMul 2-D', ops: ['MatMul'], inputs: [{ shape: [m, k] }, { shape: [k, n] }], build: (b, [x, y]) => b.matMul(x!, y!) },
  { name: 'MatMul, broadcast batches', ops: ['MatMul'], inputs: [{ shape: [batch, 1, m, k] }, { shape: [2, k, n] }], build: (b, [x, y]) => b.matMul(x!, y!) },
  ...[false, true].flatMap((transA) =>
    [false, true].map(
      (transB): RuleCase => ({
        name: `Gemm transA=${transA} transB=${transB}, C broadcast`,
        ops: ['Gemm'],
        inputs: [{ shape: transA ? [k, m] : [m, k] }, { shape: transB ? [n, k] : [k, n] }, { shape: transA ? [m, 1] : [n] }],
        build: (b, [x, y, c]) => b.gemm(x!, y!, c!, { transA, transB, alpha: 0.7, beta: 1.3 }),
      }),
    ),
  ),
  { name: 'Gemm without C', ops: ['Gemm'], inputs: [{ shape: [m, k] }, { shape: [n, k] }], build: (b, [x, y]) => b.gemm(x!, y!, null, { transB: true }) },
  { name: 'Softmax, last axis', ops: ['Softmax'], inputs: [{ shape: [batch, m, n + 1] }], build: (b, [x]) => b.softmax(x!, -1) },
  { name: 'Softmax, first axis', ops: ['Softmax'], inputs: [{ shape: [m + 1, n] }], build: (b, [x]) => b.softmax(x!, 0) },
  { name: 'ReduceMean, two axes kept', ops: ['ReduceMean'], inputs: [{ shape: [batch, m, n] }], build: (b, [x]) => b.reduceMean(x!, [0, -1], true) },
  { name: 'ReduceMean, dropped axis', ops: ['ReduceMean'], inputs: [{ shape: [batch, m, n] }], build: (b, [x]) => b.reduceMean(x!, [1], false) },
  { name: 'ReduceSum, dropped axes', ops: ['ReduceSum'], inputs: [{ shape: [batch, m, n] }], build: (b, [x]) => b.reduceSum(x!, [2, 0], false) },
  { name: 'Reshape', ops: ['Reshape'], inputs: [{ shape: [batch, m, n] }], build: (b, [x]) => b.reshape(x!, [-1, n]) },
  { name: 'Transpose', ops: ['Transpose'], inputs: [{ shape: [batch, m, n] }], build: (b, [x]) => b.transpose(x!, [2, 0, 1]) },
  { name: 'Concat, a value used twice (fan-out)', ops: ['Concat'], inputs: [{ shape: [m, n] }, { shape: [m, n + 1] }], build: (b, [x, y]) => b.concat([x!, y!, x!], 1) },
  { name: 'Slice, negative start, one axis', ops: ['Slice'], inputs: [{ shape: [m + 3, n] }], build: (b, [x]) => b.slice(x!, { starts: [-3], ends: [-1], axes: [0] }) },
  { name: 'Slice, step 2 and a reversed axis', ops: ['Slice'], inputs: [{ shape: [7, n + 2] }], build: (b, [x]) => b.slice(x!, { starts: [1, -1], ends: [7, 0], axes: [0, 1], steps: [2, -1] }) },
  { name: 'Slice, step −2, clamped ends', ops: ['Slice'], inputs: [{ shape: [m, 6] }], build: (b, [x]) => b.slice(x!, { starts: [100], ends: [-100], axes: [-1], steps: [-2] }) },
  { name: 'Gather, constant repeated and negative indices', ops: ['Gather'], inputs: [{ shape: [5, n] }], build: (b, [x]) => b.gather(x!, b.constant([4, -1, 0, 2, 0], [5], 'int64'), 0) },
  { name: 'Gather along axis 1, 2-D indices', ops: ['Gather'], inputs: [{ shape: [m, 4, 2] }], build: (b, [x]) => b.gather(x!, b.constant([3, 1, 1, 0], [2, 2], 'int64'), 1) },
  { name: 'Unsqueeze and Squeeze', ops: ['Unsqueeze', 'Squeeze'], inputs: [{ shape: [m, 1, n] }], build: (b, [x]) => b.unsqueeze(b.squeeze(x!, [1]), [0, -1]) },
  { name: 'Expand', ops: ['Expand'], inputs: [{ shape: [m, 1] }], build: (b, [x]) => b.expand(x!, [batch, m, n]) },
  {
    name: 'Where, both branches broadcast',
    ops: ['Where'],
    inputs: [{ shape: [m, n] }, { shape: [n] }],
    build: (b, [x, y]) => b.where(b.constant(Array.from({ length: m * n }, (_, i) => (i % 3 === 0 ? 1 : 0)), [m, n], 'bool'), x!, y!),
  },
  { name: 'Cast float → float round trip', ops: ['Cast'], inputs: [{ shape: [m, n] }], build: (b, [x], t) => b.mul(b.cast(b.cast(x!, t), t), x!) },
  {
    name: 'Conv 2-D, stride 1, pads 1, bias',
    ops: ['Conv'],
    inputs: [{ shape: [batch, 3, 5, 4] }, { shape: [2, 3, 3, 3] }, { shape: [2] }],
    build: (b, [x, w, c]) => b.conv(x!, w!, c!, { strides: [1, 1], pads: [1, 1, 1, 1] }),
  },
  {
    name: 'Conv 2-D, stride 2, asymmetric pads (Downsample2D)',
    ops: ['Conv'],
    inputs: [{ shape: [1, 2, 6, 5] }, { shape: [3, 2, 3, 3] }],
    build: (b, [x, w]) => b.conv(x!, w!, null, { strides: [2, 2], pads: [0, 0, 1, 1] }),
  },
  {
    name: 'Conv 2-D, groups 2, dilation 2, stride (2, 1), an unread tail',
    ops: ['Conv'],
    inputs: [{ shape: [2, 4, 8, 6] }, { shape: [6, 2, 2, 3] }, { shape: [6] }],
    build: (b, [x, w, c]) => b.conv(x!, w!, c!, { strides: [2, 1], pads: [0, 1, 0, 2], dilations: [2, 1], group: 2 }),
  },
  {
    name: 'Conv 1-D, stride 3, kernel wider than stride, begin pad beyond the kernel',
    ops: ['Conv'],
    inputs: [{ shape: [2, 2, 9] }, { shape: [3, 2, 2] }],
    build: (b, [x, w]) => b.conv(x!, w!, null, { strides: [3], pads: [3, 0] }),
  },
  {
    name: 'ConvTranspose 2-D, stride 2, asymmetric pads, output_padding 1, bias',
    ops: ['ConvTranspose'],
    inputs: [{ shape: [batch, 3, 3, 2] }, { shape: [3, 2, 3, 3] }, { shape: [2] }],
    build: (b, [x, w, c]) => b.convTranspose(x!, w!, c!, { strides: [2, 2], pads: [0, 0, 1, 1], outputPadding: [1, 1] }),
  },
  {
    name: 'ConvTranspose 2-D, groups 2, dilation (2, 1), stride (2, 1)',
    ops: ['ConvTranspose'],
    inputs: [{ shape: [1, 4, 3, 4] }, { shape: [4, 2, 2, 3] }],
    build: (b, [x, w]) => b.convTranspose(x!, w!, null, { strides: [2, 1], pads: [0, 1, 0, 2], dilations: [2, 1], group: 2, outputPadding: [1, 0] }),
  },
  {
    name: 'Conv 2-D 1×1 (projection)',
    ops: ['Conv'],
    inputs: [{ shape: [batch, 3, 2, 3] }, { shape: [4, 3, 1, 1] }, { shape: [4] }],
    build: (b, [x, w, c]) => b.conv(x!, w!, c!, { strides: [1, 1] }),
  },
  {
    name: 'LayerNormalization, last axis, with bias',
    ops: ['LayerNormalization'],
    inputs: [{ shape: [batch, m, n + 2] }, { shape: [n + 2] }, { shape: [n + 2] }],
    build: (b, [x, g, c]) => b.layerNormalization(x!, g!, c!, { axis: -1, epsilon: 1e-5 }),
  },
  {
    name: 'LayerNormalization over two axes, no bias',
    ops: ['LayerNormalization'],
    inputs: [{ shape: [batch, m, n + 1] }, { shape: [m, n + 1] }],
    build: (b, [x, g]) => b.layerNormalization(x!, g!, null, { axis: 1, epsilon: 1e-3 }),
  },
  {
    name: 'GroupNormalization, 2 groups, 4-D',
    ops: ['GroupNormalization'],
    inputs: [{ shape: [batch, 4, 3, 2] }, { shape: [4] }, { shape: [4] }],
    build: (b, [x, g, c]) => b.groupNormalization(x!, g!, c!, { numGroups: 2, epsilon: 1e-6 }),
  },
  {
    name: 'GroupNormalization, 1 group, 3-D',
    ops: ['GroupNormalization'],
    inputs: [{ shape: [2, 3, 5] }, { shape: [3] }, { shape: [3] }],
    build: (b, [x, g, c]) => b.groupNormalization(x!, g!, c!, { numGroups: 1, epsilon: 1e-5 }),
  },
  { name: 'Resize ×2', ops: ['Resize'], inputs: [{ shape: [1, 2, 3, 2] }], build: (b, [x]) => b.resizeNearest(x!, [1, 2, 6, 4]) },
  { name: 'Resize to non-whole sizes (up and down)', ops: ['Resize'], inputs: [{ shape: [2, 1, 3, 5] }], build: (b, [x]) => b.resizeNearest(x!, [2, 1, 5, 3]) },
  // 14 → 2 reads rows [0, 6] in ORT's float32 arithmetic, not floor(i·in/out) = [0, 7].
  { name: 'Resize 14 → 2 (float32 source indices)', ops: ['Resize'], inputs: [{ shape: [1, 1, 14, 3] }], build: (b, [x]) => b.resizeNearest(x!, [1, 1, 2, 3]) },
  { name: 'Gelu (erf)', ops: ['Gelu'], inputs: [{ shape: [m, n + 3] }], build: (b, [x]) => b.gelu(x!, 'none') },
  { name: 'Gelu (tanh)', ops: ['Gelu'], inputs: [{ shape: [m, n + 3] }], build: (b, [x]) => b.gelu(x!, 'tanh') },
  { name: 'QuickGelu', ops: ['QuickGelu'], inputs: [{ shape: [m, n + 3] }], build: (b, [x]) => b.quickGelu(x!, 1.702) },
  {
    name: 'MultiHeadAttention, 2 heads, cross (L ≠ S), value width ≠ key width',
    ops: ['MultiHeadAttention'],
    inputs: [{ shape: [2, 3, 4] }, { shape: [2, 5, 4] }, { shape: [2, 5, 6] }],
    build: (b, [q, kk, v]) => b.multiHeadAttention(q!, kk!, v!, null, { numHeads: 2, scale: 0.5 }),
  },
  {
    name: 'MultiHeadAttention with a broadcast attention bias',
    ops: ['MultiHeadAttention'],
    inputs: [{ shape: [2, 3, 6] }, { shape: [2, 3, 6] }, { shape: [2, 3, 6] }, { shape: [1, 3, 3, 3] }],
    build: (b, [q, kk, v, bias]) => b.multiHeadAttention(q!, kk!, v!, bias!, { numHeads: 3, scale: 1 / Math.sqrt(2) }),
  },
];

/** Seeded values for an input: N(0, 1)-ish, or in [0.5, 1.5] for positive inputs. */
function valuesFor(spec: InputSpec, seed: number): Float64Array {
  const draw = seededRandom(seed);
  return Float64Array.from({ length: elementCount(spec.shape) }, () => (spec.positive ? 0.5 + draw() : (draw() + draw() + draw() - 1.5) * 1.4));
}

interface BuiltCase {
  b: GraphBuilder;
  inputs: Value[];
  output: Value;
  cotangent: Value;
  gradients: Value[];
}

function buildCase(rule: RuleCase, type: FloatType): BuiltCase {
  const b = new GraphBuilder();
  const inputs = rule.inputs.map((spec, i) => b.input(`x${i}`, type, spec.shape));
  const output = rule.build(b, inputs, type);
  const cotangent = b.input('cotangent', type, output.shape);
  const gradients = appendBackward(b, output, inputs, { seed: cotangent });
  return { b, inputs, output, cotangent, gradients };
}

function feedsFor(rule: RuleCase, built: BuiltCase): Record<string, Float64Tensor> {
  const feeds: Record<string, Float64Tensor> = {};
  rule.inputs.forEach((spec, i) => (feeds[`x${i}`] = { shape: spec.shape, data: valuesFor(spec, 1000 + i) }));
  feeds['cotangent'] = { shape: [...built.output.shape], data: valuesFor({ shape: [...built.output.shape] }, 999) };
  return feeds;
}

/** ⟨y(x), r⟩ — the scalar whose gradient the backward pass computes. */
function objective(built: BuiltCase, feeds: Record<string, Float64Tensor>): number {
  const [y] = evaluateGraph(built.b, feeds, [built.output]);
  const r = feeds['cotangent']!.data;
  let total = 0;
  y!.data.forEach((v, i) => (total += v * (r[i] as number)));
  return total;
}

/** Central differences of the objective with respect to every element of every input. */
function finiteDifferences(built: BuiltCase, feeds: Record<string, Float64Tensor>, step = 1e-5): Float64Array[] {
  return built.inputs.map((input) => {
    const data = feeds[input.name]!.data;
    return Float64Array.from(data, (original, j) => {
      data[j] = original + step;
      const up = objective(built, feeds);
      data[j] = original - step;
      const down = objective(built, feeds);
      data[j] = original;
      return (up - down) / (2 * step);
    });
  });
}

function maxAbs(values: ArrayLike<number>): number {
  let max = 0;
  for (let i = 0; i < values.length; i++) max = Math.max(max, Math.abs(values[i] as number));
  return max;
}

function maxAbsDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs((a[i] as number) - (b[i] as number)));
  return max;
}

describe('every op the builder emits has a rule and a finite-difference case', () => {
  it('covers the whole table', () => {
    const covered = new Set(CASES.flatMap((c) => c.ops));
    expect(Object.keys(VJP_RULES).filter((op) => !covered.has(op as OpType))).toEqual([]);
  });
});

describe('vector-Jacobian rules against float64 central finite differences', () => {
  it.each(CASES.map((c) => [c.name, c] as const))('%s', (_name, rule) => {
    const built = buildCase(rule, 'float64');
    const feeds = feedsFor(rule, built);
    const analytic = evaluateGraph(built.b, feeds, built.gradients);
    const numeric = finiteDifferences(built, feeds);
    analytic.forEach((gradient, i) => {
      expect(gradient.shape, `shape of d/dx${i}`).toEqual(rule.inputs[i]!.shape);
      const scale = Math.max(1, maxAbs(numeric[i]!));
      expect(maxAbsDifference(gradient.data, numeric[i]!) / scale, `d/dx${i} (max |grad| ${maxAbs(numeric[i]!).toPrecision(3)})`).toBeLessThan(rule.tolerance ?? 1e-6);
      expect(maxAbs(numeric[i]!), `d/dx${i} must not be trivially zero`).toBeGreaterThan(0);
    });
  });
});

describe('the forward and backward graphs run in ONNX Runtime (float32) and agree with the float64 interpreter', () => {
  let runtime: RuntimeClient;
  beforeAll(() => {
    runtime = RuntimeClient.start();
  });
  afterAll(async () => {
    await runtime.close();
  });

  it.each(CASES.map((c) => [c.name, c] as const))('%s', async (_name, rule) => {
    const reference = buildCase(rule, 'float64');
    const feeds = feedsFor(rule, reference);
    // Inputs rounded to float32 first, so both sides differentiate at the same point.
    for (const tensor of Object.values(feeds)) tensor.data = Float64Array.from(Float32Array.from(tensor.data));
    const expected = evaluateGraph(reference.b, feeds, reference.gradients);
    const [forward] = evaluateGraph(reference.b, feeds, [reference.output]);

    const built = buildCase(rule, 'float32');
    const outputs = [{ name: 'y', value: built.output }, ...built.gradients.map((value, i) => ({ name: `grad_${i}`, value }))];
    const session = await runtime.createSession({ model: encodeModel(built.b.toModel({ name: rule.name, outputs })), device: 'cpu' });
    try {
      const ortFeeds = Object.fromEntries(Object.entries(feeds).map(([name, t]) => [name, { type: 'float32' as const, dims: t.shape, data: Float32Array.from(t.data) }]));
      const result = await runtime.run(session.id, ortFeeds);
      // The interpreter computes the forward op as ORT does (so the finite differences differentiate ORT's function).
      expect(maxAbsDifference(result['y']!.data as Float32Array, forward!.data) / Math.max(1, maxAbs(forward!.data)), 'forward').toBeLessThan(1e-5);
      expected.forEach((gradient, i) => {
        const actual = result[`grad_${i}`]!;
        expect(actual.dims).toEqual(gradient.shape);
        const scale = Math.max(1, maxAbs(gradient.data));
        expect(maxAbsDifference(actual.data as Float32Array, gradient.data) / scale, `d/dx${i}`).toBeLessThan(1e-5);
      });
    } finally {
      await runtime.releaseSession(session.id);
    }
  });
});

describe('the float64 interpreter', () => {
  it('has an erf accurate to float64', () => {
    const known: [number, number][] = [[0.5, 0.5204998778130465], [1, 0.8427007929497149], [2, 0.9953222650189527], [-3, -0.9999779095030014], [4.5, 0.9999999998033839], [1e-3, 0.0011283787909692363]];
    for (const [x, value] of known) expect(Math.abs(erf(x) - value), `erf(${x})`).toBeLessThan(2e-15);
  });
});

describe('the reverse walk', () => {
  it('does no gradient work on frozen branches, sums a value’s uses, and gives zeros where the loss does not depend on a value', () => {
    const b = new GraphBuilder();
    const w = b.input('w', 'float64', [3, 3]);
    const frozen = b.input('frozen', 'float64', [3, 3]);
    const unused = b.input('unused', 'float64', [2]);
    const frozenBranch = b.exp(b.tanh(frozen));
    // w is used three times: through the MatMul, the Add and the Mul.
    const loss = b.reduceSum(b.mul(b.add(b.matMul(w, frozenBranch), w), w), [0, 1], false);
    const before = b.nodes.length;
    const [dw, dUnused] = appendBackward(b, loss, [w, unused]);
    const backward = b.nodes.slice(before);
    expect(backward.filter((node) => /^grad\/(Exp|Tanh)_/.test(node.name))).toEqual([]);
    expect(backward.some((node) => node.name.startsWith('grad/MatMul_'))).toBe(true);

    const random = seededRandom(7);
    const tensor = (shape: number[]): Float64Tensor => ({ shape, data: Float64Array.from({ length: elementCount(shape) }, () => random() - 0.5) });
    const feeds = { w: tensor([3, 3]), frozen: tensor([3, 3]), unused: tensor([2]) };
    const [gradient, zeros] = evaluateGraph(b, feeds, [dw!, dUnused!]);
    // Checked against central differences of the loss itself.
    const loss64 = (values: Float64Array) => evaluateGraph(b, { ...feeds, w: { shape: [3, 3], data: values } }, [loss])[0]!.data[0]!;
    const numeric = Float64Array.from(feeds.w.data, (v, i) => {
      const up = Float64Array.from(feeds.w.data);
      const down = Float64Array.from(feeds.w.data);
      up[i] = v + 1e-6;
      down[i] = v - 1e-6;
      return (loss64(up) - loss64(down)) / 2e-6;
    });
    expect(maxAbsDifference(gradient!.data, numeric)).toBeLessThan(1e-7);
    expect(Array.from(zeros!.data)).toEqual([0, 0]);
  });

  it('refuses what it cannot differentiate, saying why', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [2, 3]);
    const ids = b.input('ids', 'int64', [2]);
    expect(() => appendBackward(b, b.exp(x), [x])).toThrow(/has shape \[2, 3\]: reduce it to one element, or pass a seed gradient/);
    expect(() => appendBackward(b, b.reduceSum(x, [0, 1], false), [ids])).toThrow(/cannot differentiate with respect to 'ids': it is int64/);
    const table = b.input('table', 'float32', [5, 3]);
    const looked = b.reduceSum(b.gather(table, ids, 0), [0, 1], false);
    expect(() => appendBackward(b, looked, [table])).toThrow(/Gather\): the gradient of its data needs constant indices; 'ids' is computed at run time/);
  });
});
