/**
 * THE table of vector-Jacobian rules: one entry per op the builder emits (the mapped type makes a
 * missing op a compile error). Each rule appends the backward nodes of one forward node with the same
 * builder; autodiff.ts walks the graph and calls them. The longer derivations live beside their rules
 * in vjp-conv.ts, vjp-norms.ts and vjp-attention.ts; the one-liners are here.
 */
import { GraphBuildError, type GraphBuilder, type OpType, type Value } from './builder';
import { elementCount, nearestSourceIndices, normalizeAxis, sliceRange } from './shapes';
import { multiHeadAttentionVjp } from './vjp-attention';
import { convTransposeVjp, convVjp } from './vjp-conv';
import { groupNormalizationVjp, layerNormalizationVjp, softmaxVjp } from './vjp-norms';
import {
  flipAxis,
  operand,
  outputOf,
  padAxis,
  reducedCount,
  scalarLike,
  sortedAxes,
  spreadAxis,
  transposeLastTwo,
  unbroadcast,
  zerosLike,
  type NodeOf,
  type VjpRule,
} from './vjp-helpers';

const TWO_OVER_SQRT_PI = 2 / Math.sqrt(Math.PI);
const INV_SQRT_TWO = 1 / Math.SQRT2;
const INV_SQRT_TWO_PI = 1 / Math.sqrt(2 * Math.PI);
const SQRT_TWO_OVER_PI = Math.sqrt(2 / Math.PI);
const GELU_TANH_CUBIC = 0.044715;

/** A rule for an op with one input whose gradient is dy times a local derivative. */
function elementwise<K extends OpType>(derivative: (b: GraphBuilder, x: Value, y: Value) => Value): VjpRule<K> {
  return (b, node, dy) => [b.mul(dy, derivative(b, operand(node, 0), outputOf(node)))];
}

export const VJP_RULES: { readonly [K in OpType]: VjpRule<K> } = {
  Identity: (_b, _node, dy) => [dy],
  Add: (b, node, dy, wants) => [wants[0] ? unbroadcast(b, dy, operand(node, 0).shape) : null, wants[1] ? unbroadcast(b, dy, operand(node, 1).shape) : null],
  Sub: (b, node, dy, wants) => [wants[0] ? unbroadcast(b, dy, operand(node, 0).shape) : null, wants[1] ? unbroadcast(b, b.neg(dy), operand(node, 1).shape) : null],
  Mul: (b, node, dy, wants) => {
    const [x, y] = [operand(node, 0), operand(node, 1)];
    return [wants[0] ? unbroadcast(b, b.mul(dy, y), x.shape) : null, wants[1] ? unbroadcast(b, b.mul(dy, x), y.shape) : null];
  },
  // y = a / b: da = dy / b, db = −dy · y / b.
  Div: (b, node, dy, wants) => {
    const [x, y] = [operand(node, 0), operand(node, 1)];
    return [wants[0] ? unbroadcast(b, b.div(dy, y), x.shape) : null, wants[1] ? unbroadcast(b, b.neg(b.div(b.mul(dy, outputOf(node)), y)), y.shape) : null];
  },
  // y = aᵉ: da = dy · e · aᵉ⁻¹, de = dy · y · ln a.
  Pow: (b, node, dy, wants) => {
    const [base, exponent] = [operand(node, 0), operand(node, 1)];
    const da = wants[0] ? unbroadcast(b, b.mul(dy, b.mul(exponent, b.pow(base, b.sub(exponent, scalarLike(b, exponent, 1))))), base.shape) : null;
    const de = wants[1] ? unbroadcast(b, b.mul(dy, b.mul(outputOf(node), b.log(base))), exponent.shape) : null;
    return [da, de];
  },
  Sqrt: (b, node, dy) => [b.div(b.mul(dy, scalarLike(b, dy, 0.5)), outputOf(node))],
  Reciprocal: elementwise((b, _x, y) => b.neg(b.mul(y, y))),
  Neg: (b, _node, dy) => [b.neg(dy)],
  Exp: elementwise((_b, _x, y) => y),
  Log: (b, node, dy) => [b.div(dy, operand(node, 0))],
  Tanh: elementwise((b, _x, y) => b.sub(scalarLike(b, y, 1), b.mul(y, y))),
  // erf′(x) = 2/√π · e^(−x²).
  Erf: elementwise((b, x) => b.mul(scalarLike(b, x, TWO_OVER_SQRT_PI), b.exp(b.neg(b.mul(x, x))))),
  Sigmoid: elementwise((b, _x, y) => b.mul(y, b.sub(scalarLike(b, y, 1), y))),
  Sin: elementwise((b, x) => b.cos(x)),
  Cos: elementwise((b, x) => b.neg(b.sin(x))),
  MatMul: matMulVjp,
  Gemm: gemmVjp,
  Softmax: (b, node, dy) => [softmaxVjp(b, node, dy)],
  ReduceMean: (b, node, dy) => {
    const x = operand(node, 0);
    const axes = sortedAxes(node.attributes.axes, x.shape.length);
    return [b.expand(b.mul(keptDims(b, dy, x, axes, node.attributes.keepDims), scalarLike(b, dy, 1 / reducedCount(x.shape, axes))), x.shape)];
  },
  ReduceSum: (b, node, dy) => {
    const x = operand(node, 0);
    return [b.expand(keptDims(b, dy, x, sortedAxes(node.attributes.axes, x.shape.length), node.attributes.keepDims), x.shape)];
  },
  Reshape: (b, node, dy) => [b.reshape(dy, operand(node, 0).shape)],
  Unsqueeze: (b, node, dy) => [b.reshape(dy, operand(node, 0).shape)],
  Squeeze: (b, node, dy) => [b.reshape(dy, operand(node, 0).shape)],
  Transpose: (b, node, dy) => {
    const inverse: number[] = [];
    node.attributes.perm.forEach((axis, i) => (inverse[axis] = i));
    return [b.transpose(dy, inverse)];
  },
  Concat: (b, node, dy, wants) => {
    const axis = normalizeAxis(node.attributes.axis, dy.shape.length);
    let offset = 0;
    return node.inputs.map((input, i) => {
      const size = (input as Value).shape[axis] as number;
      const start = offset;
      offset += size;
      return wants[i] ? b.slice(dy, { starts: [start], ends: [start + size], axes: [axis] }) : null;
    });
  },
  Slice: (b, node, dy) => [sliceVjp(b, node, dy)],
  Gather: (b, node, dy, wants) => [wants[0] ? gatherVjp(b, node, dy) : null, null],
  Expand: (b, node, dy) => [unbroadcast(b, dy, operand(node, 0).shape)],
  Where: (b, node, dy, wants) => {
    const [condition, x, y] = [operand(node, 0), operand(node, 1), operand(node, 2)];
    const zero = scalarLike(b, dy, 0);
    return [null, wants[1] ? unbroadcast(b, b.where(condition, dy, zero), x.shape) : null, wants[2] ? unbroadcast(b, b.where(condition, zero, dy), y.shape) : null];
  },
  // Only float → float casts carry a gradient (the walker never asks through integer values).
  Cast: (b, node, dy) => [b.cast(dy, operand(node, 0).type)],
  Conv: convVjp,
  ConvTranspose: convTransposeVjp,
  LayerNormalization: layerNormalizationVjp,
  GroupNormalization: groupNormalizationVjp,
  Resize: (b, node, dy) => [resizeNearestVjp(b, operand(node, 0), dy)],
  // GELU: y = x·Φ(x), y′ = Φ(x) + x·φ(x). Tanh form: y = ½x(1 + t), t = tanh(u), u = √(2/π)(x + c·x³),
  // y′ = ½(1 + t) + ½x(1 − t²)·√(2/π)(1 + 3c·x²).
  Gelu: (b, node, dy) => {
    const x = operand(node, 0);
    return [b.mul(dy, node.attributes.approximate === 'tanh' ? geluTanhDerivative(b, x) : geluDerivative(b, x))];
  },
  // QuickGELU: y = x·σ(αx), y′ = σ + αx·σ(1 − σ).
  QuickGelu: (b, node, dy) => {
    const x = operand(node, 0);
    const sigma = b.sigmoid(b.mul(x, scalarLike(b, x, node.attributes.alpha)));
    const slope = b.mul(b.mul(scalarLike(b, x, node.attributes.alpha), x), b.mul(sigma, b.sub(scalarLike(b, x, 1), sigma)));
    return [b.mul(dy, b.add(sigma, slope))];
  },
  MultiHeadAttention: multiHeadAttentionVjp,
};

function geluDerivative(b: GraphBuilder, x: Value): Value {
  const cdf = b.mul(scalarLike(b, x, 0.5), b.add(scalarLike(b, x, 1), b.erf(b.mul(x, scalarLike(b, x, INV_SQRT_TWO)))));
  const pdf = b.mul(scalarLike(b, x, INV_SQRT_TWO_PI), b.exp(b.mul(b.mul(x, x), scalarLike(b, x, -0.5))));
  return b.add(cdf, b.mul(x, pdf));
}

function geluTanhDerivative(b: GraphBuilder, x: Value): Value {
  const s = (v: number) => scalarLike(b, x, v);
  const squared = b.mul(x, x);
  const t = b.tanh(b.mul(s(SQRT_TWO_OVER_PI), b.add(x, b.mul(s(GELU_TANH_CUBIC), b.mul(squared, x)))));
  const du = b.mul(s(SQRT_TWO_OVER_PI), b.add(s(1), b.mul(s(3 * GELU_TANH_CUBIC), squared)));
  const left = b.mul(s(0.5), b.add(s(1), t));
  const right = b.mul(b.mul(s(0.5), x), b.mul(b.sub(s(1), b.mul(t, t)), du));
  return b.add(left, right);
}

/** dy with the reduced axes restored as size 1 (a no-op when the reduction kept them). */
function keptDims(b: GraphBuilder, dy: Value, x: Value, axes: readonly number[], keepDims: boolean): Value {
  return keepDims ? dy : b.reshape(dy, x.shape.map((d, i) => (axes.includes(i) ? 1 : d)));
}

/**
 * y = A·B over batched matrices (the builder takes rank ≥ 2; batch axes broadcast): dA = dy·Bᵀ and
 * dB = Aᵀ·dy, each summed over the batch axes its operand was broadcast across.
 */
function matMulVjp(b: GraphBuilder, node: NodeOf<'MatMul'>, dy: Value, wants: readonly boolean[]): (Value | null)[] {
  const [x, y] = [operand(node, 0), operand(node, 1)];
  const dx = wants[0] ? unbroadcast(b, b.matMul(dy, transposeLastTwo(b, y)), x.shape) : null;
  const dyw = wants[1] ? unbroadcast(b, b.matMul(transposeLastTwo(b, x), dy), y.shape) : null;
  return [dx, dyw];
}

/**
 * Y = α·A′·B′ + β·C with A′ = Aᵀ when transA (B likewise): dA′ = α·dY·B′ᵀ and dB′ = α·A′ᵀ·dY, written as
 * Gemms with the transposes folded into their flags; dC = β·dY summed over C's broadcast axes.
 */
function gemmVjp(b: GraphBuilder, node: NodeOf<'Gemm'>, dy: Value, wants: readonly boolean[]): (Value | null)[] {
  const [x, y] = [operand(node, 0), operand(node, 1)];
  const c = node.inputs[2] ?? null;
  const { transA, transB, alpha, beta } = node.attributes;
  const dx = !wants[0] ? null : transA ? b.gemm(y, dy, null, { transA: transB, transB: true, alpha, beta: 0 }) : b.gemm(dy, y, null, { transB: !transB, alpha, beta: 0 });
  const dyw = !wants[1] ? null : transB ? b.gemm(dy, x, null, { transA: true, transB: transA, alpha, beta: 0 }) : b.gemm(x, dy, null, { transA: !transA, alpha, beta: 0 });
  let dc: Value | null = null;
  if (wants[2] && c !== null) dc = unbroadcast(b, beta === 1 ? dy : b.mul(dy, scalarLike(b, dy, beta)), c.shape);
  return [dx, dyw, dc];
}

/**
 * The adjoint of a slice: dy written back where it was read and zeros elsewhere, one sliced axis at a
 * time (reversed for negative steps, spread with zeros for steps beyond 1, then padded to full size).
 */
function sliceVjp(b: GraphBuilder, node: NodeOf<'Slice'>, dy: Value): Value {
  const x = operand(node, 0);
  const { starts, ends, axes, steps } = node.attributes;
  if (elementCount(dy.shape) === 0) return zerosLike(b, dy, x.shape);
  let grad = dy;
  axes.forEach((rawAxis, i) => {
    const axis = normalizeAxis(rawAxis, x.shape.length);
    const dim = x.shape[axis] as number;
    const step = steps[i] as number;
    const { first, count } = sliceRange(dim, starts[i] as number, ends[i] as number, step);
    if (step === 1 && count === dim) return;
    const last = first + (count - 1) * step;
    const ascending = step < 0 ? flipAxis(b, grad, axis) : grad;
    const spread = spreadAxis(b, ascending, axis, Math.abs(step));
    const low = Math.min(first, last);
    const high = Math.max(first, last);
    grad = padAxis(b, spread, axis, low, dim - 1 - high);
  });
  return grad;
}

/**
 * Gather's data gradient: a scatter-add of dy into the gathered rows. With constant indices it is a
 * MatMul with the one-hot matrix Mᵀ [dim, n] (Mᵢⱼ = 1 where index i reads row j), built at build time;
 * indices that arrive at run time would need a scatter, which no rule emits yet.
 */
function gatherVjp(b: GraphBuilder, node: NodeOf<'Gather'>, dy: Value): Value {
  const [data, indices] = [operand(node, 0), operand(node, 1)];
  const axis = normalizeAxis(node.attributes.axis, data.shape.length);
  const constant = b.initializers.find((i) => i.value.id === indices.id)?.data;
  if (constant?.kind !== 'inline') throw new GraphBuildError(`${node.name} (Gather): the gradient of its data needs constant indices; '${indices.name}' is computed at run time`);
  const dim = data.shape[axis] as number;
  const reads = Array.from(constant.values as ArrayLike<number | bigint>, (v) => {
    const index = Number(v);
    return index < 0 ? index + dim : index;
  });
  const before = elementCount(data.shape.slice(0, axis));
  const after = elementCount(data.shape.slice(axis + 1));
  const oneHot = new Float64Array(dim * reads.length);
  reads.forEach((row, i) => (oneHot[row * reads.length + i] = 1));
  const scatter = b.constant(oneHot, [dim, reads.length], dy.type);
  const grouped = b.reshape(dy, [before, reads.length, after]);
  return b.reshape(b.matMul(scatter, grouped), data.shape);
}

/**
 * Nearest-neighbour resize reads input index ⌊i·in/out⌋ for output index i (per axis), so its adjoint
 * sums the output gradient over the outputs that read each input: a ReduceSum over whole upscaling
 * factors, otherwise a MatMul with the build-time one-hot read matrix of that axis.
 */
function resizeNearestVjp(b: GraphBuilder, x: Value, dy: Value): Value {
  let grad = dy;
  x.shape.forEach((inSize, axis) => {
    const outSize = grad.shape[axis] as number;
    if (outSize === inSize) return;
    const before = grad.shape.slice(0, axis);
    const after = grad.shape.slice(axis + 1);
    if (outSize % inSize === 0) {
      const split = b.reshape(grad, [...before, inSize, outSize / inSize, ...after]);
      grad = b.reduceSum(split, [axis + 1], false);
      return;
    }
    const reads = new Float64Array(inSize * outSize);
    nearestSourceIndices(inSize, outSize).forEach((source, i) => (reads[source * outSize + i] = 1));
    const grouped = b.reshape(grad, [elementCount(before), outSize, elementCount(after)]);
    grad = b.reshape(b.matMul(b.constant(reads, [inSize, outSize], dy.type), grouped), [...before, inSize, ...after]);
  });
  return grad;
}
