/**
 * The vector-Jacobian rules of Conv and ConvTranspose (any spatial rank, strides, asymmetric pads,
 * dilations, groups), written with Conv and ConvTranspose themselves so that they run on every
 * execution provider (the training kernels ConvGrad etc. are absent from onnxruntime-node, ort-probe.md).
 *
 * Along one spatial axis, with stride s, dilation d, begin pad p and kernel size K:
 *   y[o] = Σ_k w[k] · x[o·s + k·d − p].
 * Input gradient: dx[i] = Σ_{o,k : o·s + k·d − p = i} dy[o] · w[k]: by definition the transposed
 * convolution of dy with the same weight and attributes, ONNX's ConvTranspose, whose output_padding
 * (the part of x no output reads, always < s) restores x's length. ConvTranspose reads the weight as it
 * is: the equivalent Conv with a flipped, channel-swapped kernel made ORT constant-fold a transformed
 * copy of every frozen conv weight (3.4 GB and 110 s of session creation at SD-1.5 shapes).
 * Weight gradient: dw[k] = Σ_{n,o} dy[n, o] · x[n, o·s + k·d − p]: a correlation of x with dy over the
 * batch, i.e. Conv(xᵀ [C, N, …], dyᵀ [M, N, …]) with the roles of stride and dilation exchanged, cut to K.
 * Bias gradient: dy summed over the batch and spatial axes.
 * ConvTranspose y = Wᵀx is the adjoint of Conv, so its rule is Conv's read backwards: dx = Conv(dy, W)
 * and dW is Conv's weight gradient with the roles of input and output gradient exchanged.
 */
import type { GraphBuilder, Value } from './builder';
import type { ConvSpec } from './shapes';
import { operand, type NodeOf } from './vjp-helpers';

export function convVjp(b: GraphBuilder, node: NodeOf<'Conv'>, dy: Value, wants: readonly boolean[]): (Value | null)[] {
  const x = operand(node, 0);
  const w = operand(node, 1);
  const spec = node.attributes;
  return [wants[0] ? convInputGradient(b, spec, x, w, dy) : null, wants[1] ? convWeightGradient(b, spec, x, w, dy) : null, wants[2] ? convBiasGradient(b, dy) : null];
}

export function convTransposeVjp(b: GraphBuilder, node: NodeOf<'ConvTranspose'>, dy: Value, wants: readonly boolean[]): (Value | null)[] {
  const x = operand(node, 0);
  const w = operand(node, 1);
  const { outputPadding: _unread, ...spec } = node.attributes;
  const dx = wants[0] ? b.conv(dy, w, null, { strides: spec.strides, pads: spec.pads, dilations: spec.dilations, group: spec.group }) : null;
  // As a Conv, this node maps y (its output) to x (its input): the weight gradient pairs them the other way round.
  return [dx, wants[1] ? convWeightGradient(b, spec, dy, w, x) : null, wants[2] ? convBiasGradient(b, dy) : null];
}

function convInputGradient(b: GraphBuilder, spec: Readonly<ConvSpec>, x: Value, w: Value, dy: Value): Value {
  const { strides, pads, dilations, group, kernelShape } = spec;
  const spatial = kernelShape.length;
  const outputPadding = kernelShape.map((k, i) => {
    const reach = (strides[i] as number) * ((dy.shape[2 + i] as number) - 1) + (dilations[i] as number) * (k - 1) + 1 - (pads[i] as number) - (pads[spatial + i] as number);
    return (x.shape[2 + i] as number) - reach;
  });
  return b.convTranspose(dy, w, null, { strides, pads, dilations, group, outputPadding });
}

function convWeightGradient(b: GraphBuilder, spec: Readonly<ConvSpec>, x: Value, w: Value, dy: Value): Value {
  const { strides, pads, dilations, group, kernelShape } = spec;
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
