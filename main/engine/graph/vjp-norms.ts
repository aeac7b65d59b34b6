/**
 * Vector-Jacobian rules of the normalisations and of softmax.
 *
 * Normalisation over a set of n elements: x̂ = (x − μ)·r with r = 1/√(σ² + ε) (biased σ²), y = γ·x̂ + β.
 * With g = dy·γ, differentiating μ and σ² as functions of x gives
 *   dx = r · (g − mean(g) − x̂ · mean(g · x̂)),
 * the projection of g onto the zero-mean, unit-variance constraint surface, scaled by r. dγ and dβ sum
 * dy·x̂ and dy over every axis that γ is broadcast across. LayerNormalization normalises over the trailing
 * axes from `axis` on; GroupNormalization over each group of C/G channels and all spatial positions, with
 * γ, β per channel. Statistics are recomputed here from x (cheap next to keeping them from the forward).
 *
 * Softmax along an axis: y = eᵡ / Σ eᵡ, so ∂yᵢ/∂xⱼ = yᵢ(δᵢⱼ − yⱼ) and dx = y · (dy − Σ dy·y).
 */
import type { GraphBuilder, Value } from './builder';
import { normalizeAxis } from './shapes';
import { operand, outputOf, scalarLike, type NodeOf } from './vjp-helpers';

/** x̂ and r over `axes` (keepDims), recomputed with primitive ops. */
function standardise(b: GraphBuilder, x: Value, axes: readonly number[], epsilon: number): { normalized: Value; inverseStd: Value } {
  const centred = b.sub(x, b.reduceMean(x, axes, true));
  const variance = b.reduceMean(b.mul(centred, centred), axes, true);
  const inverseStd = b.reciprocal(b.sqrt(b.add(variance, scalarLike(b, x, epsilon))));
  return { normalized: b.mul(centred, inverseStd), inverseStd };
}

/** r · (g − mean(g) − x̂ · mean(g·x̂)) over `axes`. */
function normalizedInputGradient(b: GraphBuilder, g: Value, normalized: Value, inverseStd: Value, axes: readonly number[]): Value {
  const meanG = b.reduceMean(g, axes, true);
  const meanGx = b.reduceMean(b.mul(g, normalized), axes, true);
  return b.mul(inverseStd, b.sub(b.sub(g, meanG), b.mul(normalized, meanGx)));
}

export function layerNormalizationVjp(b: GraphBuilder, node: NodeOf<'LayerNormalization'>, dy: Value, wants: readonly boolean[]): (Value | null)[] {
  const x = operand(node, 0);
  const scale = operand(node, 1);
  const axis = normalizeAxis(node.attributes.axis, x.shape.length);
  const normAxes = x.shape.map((_, i) => i).filter((i) => i >= axis);
  const batchAxes = x.shape.map((_, i) => i).filter((i) => i < axis);
  const { normalized, inverseStd } = standardise(b, x, normAxes, node.attributes.epsilon);
  const sumBatch = (v: Value) => (batchAxes.length > 0 ? b.reduceSum(v, batchAxes, false) : v);
  return [
    wants[0] ? normalizedInputGradient(b, b.mul(dy, scale), normalized, inverseStd, normAxes) : null,
    wants[1] ? sumBatch(b.mul(dy, normalized)) : null,
    wants[2] ? sumBatch(dy) : null,
  ];
}

export function groupNormalizationVjp(b: GraphBuilder, node: NodeOf<'GroupNormalization'>, dy: Value, wants: readonly boolean[]): (Value | null)[] {
  const x = operand(node, 0);
  const scale = operand(node, 1);
  const [batch, channels] = x.shape as [number, number];
  const groups = node.attributes.numGroups;
  const grouped = [batch, groups, x.shape.slice(1).reduce((p, d) => p * d, 1) / groups];
  const channelShape = x.shape.map((d, i) => (i === 1 ? channels : 1));
  const { normalized, inverseStd } = standardise(b, b.reshape(x, grouped), [2], node.attributes.epsilon);
  const perChannelAxes = x.shape.map((_, i) => i).filter((i) => i !== 1);
  const normalizedFull = b.reshape(normalized, x.shape);
  let dx: Value | null = null;
  if (wants[0]) {
    const g = b.reshape(b.mul(dy, b.reshape(scale, channelShape)), grouped);
    dx = b.reshape(normalizedInputGradient(b, g, normalized, inverseStd, [2]), x.shape);
  }
  return [dx, wants[1] ? b.reduceSum(b.mul(dy, normalizedFull), perChannelAxes, false) : null, wants[2] ? b.reduceSum(dy, perChannelAxes, false) : null];
}

export function softmaxVjp(b: GraphBuilder, node: NodeOf<'Softmax'>, dy: Value): Value {
  const y = outputOf(node);
  const axis = normalizeAxis(node.attributes.axis, y.shape.length);
  return b.mul(y, b.sub(dy, b.reduceSum(b.mul(dy, y), [axis], true)));
}
