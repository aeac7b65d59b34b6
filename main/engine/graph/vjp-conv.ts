/**
 * The vector-Jacobian rule of Conv (any spatial rank, strides, asymmetric pads, dilations, groups),
 * written with Conv itself so that it runs on every execution provider (the training kernels
 * ConvGrad etc. are absent from onnxruntime-node, ort-probe.md).
 *
 * Along one spatial axis, with stride s, dilation d, begin pad p and kernel size K:
 *   y[o] = Σ_k w[k] · x[o·s + k·d − p].
 * Input gradient: dx[i] = Σ_{o,k : o·s + k·d − p = i} dy[o] · w[k]. Spreading dy with s − 1 zeros between
 * its elements (z[o·s] = dy[o]) turns that into dx[i] = Σ_k z[i + p − k·d] · w[k], a stride-1 correlation
 * of z with the spatially flipped kernel (k' = K − 1 − k), dilation d, begin pad (K − 1)·d − p, and an end
 * pad chosen so that dx has x's length (negative pads crop z). Channels swap roles: the kernel is
 * transposed to [C, M/g, K…] within each group.
 * Weight gradient: dw[k] = Σ_{n,o} dy[n, o] · x[n, o·s + k·d − p]: a correlation of x with dy over the
 * batch, i.e. Conv(xᵀ [C, N, …], dyᵀ [M, N, …]) with the roles of stride and dilation exchanged, cut to K.
 * Bias gradient: dy summed over the batch and spatial axes.
 */
import type { GraphBuilder, Value } from './builder';
import { flipAxis, operand, padAxis, spreadAxis, type NodeOf } from './vjp-helpers';

export function convVjp(b: GraphBuilder, node: NodeOf<'Conv'>, dy: Value, wants: readonly boolean[]): (Value | null)[] {
  const x = operand(node, 0);
  const w = operand(node, 1);
  return [wants[0] ? convInputGradient(b, node, x, w, dy) : null, wants[1] ? convWeightGradient(b, node, x, w, dy) : null, wants[2] ? convBiasGradient(b, dy) : null];
}

function convInputGradient(b: GraphBuilder, node: NodeOf<'Conv'>, x: Value, w: Value, dy: Value): Value {
  const { strides, pads, dilations, group, kernelShape } = node.attributes;
  const spatial = kernelShape.length;
  const [outChannels, groupInChannels] = w.shape as [number, number];
  // Kernel [M, C/g, K…] → [C, M/g, K…] within each group, then flipped along every spatial axis.
  const grouped = b.reshape(w, [group, outChannels / group, groupInChannels, ...kernelShape]);
  const swapped = b.transpose(grouped, [0, 2, 1, ...kernelShape.map((_, i) => 3 + i)]);
  let kernel = b.reshape(swapped, [group * groupInChannels, outChannels / group, ...kernelShape]);
  for (let i = 0; i < spatial; i++) kernel = flipAxis(b, kernel, 2 + i);

  let z = dy;
  const convPads: number[] = new Array<number>(2 * spatial).fill(0);
  for (let i = 0; i < spatial; i++) {
    const axis = 2 + i;
    z = spreadAxis(b, z, axis, strides[i] as number);
    const reach = ((kernelShape[i] as number) - 1) * (dilations[i] as number);
    const before = reach - (pads[i] as number);
    const after = (x.shape[axis] as number) - (z.shape[axis] as number) - before + reach;
    // Conv takes only non-negative pads: crop z where a pad would be negative.
    z = padAxis(b, z, axis, Math.min(0, before), Math.min(0, after));
    convPads[i] = Math.max(0, before);
    convPads[spatial + i] = Math.max(0, after);
  }
  return b.conv(z, kernel, null, { strides: kernelShape.map(() => 1), pads: convPads, dilations: [...dilations], group });
}

function convWeightGradient(b: GraphBuilder, node: NodeOf<'Conv'>, x: Value, w: Value, dy: Value): Value {
  const { strides, pads, dilations, group, kernelShape } = node.attributes;
  const rest = kernelShape.map((_, i) => 2 + i);
  const [outChannels, groupInChannels] = w.shape as [number, number];
  const groupOutChannels = outChannels / group;
  const perGroup: Value[] = [];
  for (let g = 0; g < group; g++) {
    const xg = group === 1 ? x : b.slice(x, { starts: [g * groupInChannels], ends: [(g + 1) * groupInChannels], axes: [1] });
    const dyg = group === 1 ? dy : b.slice(dy, { starts: [g * groupOutChannels], ends: [(g + 1) * groupOutChannels], axes: [1] });
    const xT = b.transpose(xg, [1, 0, ...rest]);
    const dyT = b.transpose(dyg, [1, 0, ...rest]);
    const spec = { strides: [...dilations], pads: [...pads], dilations: [...strides] };
    const full = b.conv(xT, dyT, null, spec);
    // The correlation may reach past the kernel (when the input's tail was never read): keep K.
    const cut = full.shape.slice(2).some((d, i) => d !== kernelShape[i]) ? b.slice(full, { starts: rest.map(() => 0), ends: [...kernelShape], axes: rest }) : full;
    perGroup.push(b.transpose(cut, [1, 0, ...rest]));
  }
  return perGroup.length === 1 ? (perGroup[0] as Value) : b.concat(perGroup, 0);
}

function convBiasGradient(b: GraphBuilder, dy: Value): Value {
  const axes = dy.shape.map((_, i) => i).filter((i) => i !== 1);
  return b.reduceSum(dy, axes, false);
}
