/**
 * Small graph pieces that the vector-Jacobian rules share: reducing a gradient back over broadcast
 * axes, zeros and scalars of the gradient's element type, and the rule signature itself.
 */
import { GraphBuildError, type GraphBuilder, type GraphNode, type OpType, type Value } from './builder';
import { elementCount, normalizeAxis, sameShape, type Shape } from './shapes';

export type NodeOf<K extends OpType> = Extract<GraphNode, { op: K }>;

/**
 * A vector-Jacobian rule: given the node and the gradient `dy` of the loss with respect to its output,
 * append the nodes that compute the gradient with respect to each input whose `wants` flag is set
 * (null for the others: no gradient work for frozen inputs).
 */
export type VjpRule<K extends OpType> = (b: GraphBuilder, node: NodeOf<K>, dy: Value, wants: readonly boolean[]) => readonly (Value | null)[];

/** The node's i-th input, which the builder guarantees for every non-optional operand. */
export function operand(node: GraphNode, index: number): Value {
  const value = node.inputs[index];
  if (!value) throw new GraphBuildError(`${node.name} (${node.op}) has no input ${index}`);
  return value;
}

export function outputOf(node: GraphNode): Value {
  return node.outputs[0] as Value;
}

/** A scalar constant of `like`'s element type (float64 graphs stay float64 through their backward pass). */
export function scalarLike(b: GraphBuilder, like: Value, x: number): Value {
  return b.constant([x], [], like.type);
}

/** Zeros of `shape` in `like`'s element type: a broadcast scalar, so nothing large is stored in the model. */
export function zerosLike(b: GraphBuilder, like: Value, shape: Shape): Value {
  return b.expand(scalarLike(b, like, 0), shape);
}

/**
 * Sums `grad` back to `shape` where the forward pass broadcast an operand: leading axes that the
 * operand lacked, and axes where it had size 1.
 */
export function unbroadcast(b: GraphBuilder, grad: Value, shape: Shape): Value {
  if (sameShape(grad.shape, shape)) return grad;
  const lead = grad.shape.length - shape.length;
  if (lead < 0) throw new GraphBuildError(`gradient ${grad.name} has rank ${grad.shape.length}, below its operand's ${shape.length}`);
  const axes: number[] = [];
  for (let i = 0; i < grad.shape.length; i++) {
    if (i < lead || (shape[i - lead] === 1 && grad.shape[i] !== 1)) axes.push(i);
  }
  const summed = axes.length > 0 ? b.reduceSum(grad, axes, true) : grad;
  return sameShape(summed.shape, shape) ? summed : b.reshape(summed, shape);
}

/** Normalised, sorted axes. */
export function sortedAxes(axes: readonly number[], rank: number): number[] {
  return [...new Set(axes.map((a) => normalizeAxis(a, rank)))].sort((x, y) => x - y);
}

/** Elements reduced over `axes` of `shape`. */
export function reducedCount(shape: Shape, axes: readonly number[]): number {
  return elementCount(axes.map((a) => shape[a] as number));
}

/** Swaps the last two axes (a matrix transpose over batched operands). */
export function transposeLastTwo(b: GraphBuilder, x: Value): Value {
  const rank = x.shape.length;
  const perm = x.shape.map((_, i) => i);
  perm[rank - 2] = rank - 1;
  perm[rank - 1] = rank - 2;
  return b.transpose(x, perm);
}

/** Reverses `x` along `axis` (Slice with step −1 over the whole axis). */
export function flipAxis(b: GraphBuilder, x: Value, axis: number): Value {
  const size = x.shape[axis] as number;
  return b.slice(x, { starts: [size - 1], ends: [-size - 1], axes: [axis], steps: [-1] });
}

/**
 * Inserts `factor − 1` zeros between consecutive elements along `axis` ([…, n, …] → […, (n−1)·factor + 1, …]):
 * the adjoint of a strided read.
 */
export function spreadAxis(b: GraphBuilder, x: Value, axis: number, factor: number): Value {
  if (factor === 1) return x;
  const n = x.shape[axis] as number;
  const unsqueezed = b.unsqueeze(x, [axis + 1]);
  const gapShape = unsqueezed.shape.map((d, i) => (i === axis + 1 ? factor - 1 : d));
  const interleaved = b.concat([unsqueezed, zerosLike(b, x, gapShape)], axis + 1);
  const merged = b.reshape(interleaved, x.shape.map((d, i) => (i === axis ? n * factor : d)));
  return b.slice(merged, { starts: [0], ends: [(n - 1) * factor + 1], axes: [axis] });
}

/** Pads `x` with `before`/`after` zeros along `axis` (negative amounts crop instead). */
export function padAxis(b: GraphBuilder, x: Value, axis: number, before: number, after: number): Value {
  let result = x;
  if (before < 0 || after < 0) {
    const size = x.shape[axis] as number;
    result = b.slice(result, { starts: [Math.max(0, -before)], ends: [size - Math.max(0, -after)], axes: [axis] });
  }
  const parts: Value[] = [];
  const zeros = (count: number) => zerosLike(b, x, result.shape.map((d, i) => (i === axis ? count : d)));
  if (before > 0) parts.push(zeros(before));
  parts.push(result);
  if (after > 0) parts.push(zeros(after));
  return parts.length === 1 ? result : b.concat(parts, axis);
}
