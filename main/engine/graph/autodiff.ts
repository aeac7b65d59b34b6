/**
 * Reverse-mode differentiation over the builder's node list, in tinygrad's shape: ONE generic walk
 * (this file) over ONE table of vector-Jacobian rules (vjp-rules.ts). `appendBackward` takes a forward
 * graph, the loss and the values to differentiate with respect to, and appends the backward nodes to
 * the same builder, so forward and backward lower to one ONNX graph (activations never cross into JS).
 *
 * Only nodes on a path from a trainable value to the loss get backward work: a frozen branch (the base
 * weights, the text encoder's token lookup) costs nothing. Where a value fans out, the gradients of its
 * uses are summed.
 */
import { GraphBuildError, isFloatType, type GraphBuilder, type GraphNode, type OpType, type Value } from './builder';
import { elementCount, formatShape, sameShape } from './shapes';
import { zerosLike, type VjpRule } from './vjp-helpers';
import { VJP_RULES } from './vjp-rules';

export interface BackwardOptions {
  /**
   * d(objective)/d(loss), of the loss's shape. Default: ones, which needs a single-element loss. Tests
   * pass a random cotangent to check a whole Jacobian-vector product.
   */
  seed?: Value;
}

/**
 * Appends the backward pass of `loss` to `b` and returns d(loss)/d(value) for each of `wrt`, in order
 * (zeros for a value the loss does not depend on).
 */
export function appendBackward(b: GraphBuilder, loss: Value, wrt: readonly Value[], options: BackwardOptions = {}): Value[] {
  if (!isFloatType(loss.type)) throw new GraphBuildError(`the loss '${loss.name}' must be a float tensor, not ${loss.type}`);
  for (const value of wrt) if (!isFloatType(value.type)) throw new GraphBuildError(`cannot differentiate with respect to '${value.name}': it is ${value.type}`);
  const seed = options.seed ?? defaultSeed(b, loss);
  if (!sameShape(seed.shape, loss.shape) || seed.type !== loss.type) throw new GraphBuildError(`the seed gradient ${seed.type}${formatShape(seed.shape)} must match the loss ${loss.type}${formatShape(loss.shape)}`);

  const forward = b.nodes.slice();
  const varying = valuesDependingOn(forward, wrt);
  const contributions = new Map<number, Value[]>([[loss.id, [seed]]]);
  const add = (value: Value, gradient: Value) => {
    const list = contributions.get(value.id);
    if (list) list.push(gradient);
    else contributions.set(value.id, [gradient]);
  };

  for (let i = forward.length - 1; i >= 0; i--) {
    const node = forward[i] as GraphNode;
    const output = node.outputs[0] as Value;
    const pending = contributions.get(output.id);
    if (!pending || !varying.has(output.id)) continue;
    const wants = node.inputs.map((input) => input !== null && varying.has(input.id));
    if (!wants.some(Boolean)) continue;
    const dy = b.scope(`grad`, () => sum(b, pending));
    const gradients = b.scope(`grad/${node.name}`, () => ruleFor(node.op)(b, node as never, dy, wants));
    node.inputs.forEach((input, index) => {
      if (!input || !wants[index]) return;
      const gradient = gradients[index];
      if (!gradient) throw new GraphBuildError(`${node.name} (${node.op}): its rule gave no gradient for input ${index} ('${input.name}')`);
      if (!sameShape(gradient.shape, input.shape) || gradient.type !== input.type) {
        throw new GraphBuildError(`${node.name} (${node.op}): the gradient of '${input.name}' is ${gradient.type}${formatShape(gradient.shape)}, not ${input.type}${formatShape(input.shape)}`);
      }
      add(input, gradient);
    });
  }
  return wrt.map((value) => {
    const pending = contributions.get(value.id);
    return pending ? b.scope('grad', () => sum(b, pending)) : zerosLike(b, value, value.shape);
  });
}

function ruleFor(op: OpType): VjpRule<OpType> {
  return VJP_RULES[op] as VjpRule<OpType>;
}

function defaultSeed(b: GraphBuilder, loss: Value): Value {
  if (elementCount(loss.shape) !== 1) throw new GraphBuildError(`the loss '${loss.name}' has shape ${formatShape(loss.shape)}: reduce it to one element, or pass a seed gradient`);
  return b.constant([1], loss.shape, loss.type);
}

/** Float values computed from any of `wrt` (the only ones a gradient can flow through). */
function valuesDependingOn(nodes: readonly GraphNode[], wrt: readonly Value[]): Set<number> {
  const varying = new Set(wrt.map((v) => v.id));
  for (const node of nodes) {
    if (!node.inputs.some((input) => input !== null && varying.has(input.id))) continue;
    for (const output of node.outputs) if (isFloatType(output.type)) varying.add(output.id);
  }
  return varying;
}

/** Sum of the gradient contributions of a value's uses, as a balanced tree of Adds. */
function sum(b: GraphBuilder, values: readonly Value[]): Value {
  let level = [...values];
  while (level.length > 1) {
    const next: Value[] = [];
    for (let i = 0; i < level.length; i += 2) next.push(i + 1 < level.length ? b.add(level[i] as Value, level[i + 1] as Value) : (level[i] as Value));
    level = next;
  }
  return level[0] as Value;
}
