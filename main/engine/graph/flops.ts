/**
 * Floating-point operations of a built graph, counted from its nodes' static shapes: the multiply-adds
 * of MatMul, Gemm, Conv and attention (2 FLOPs each). Elementwise ops are left out: they are memory-
 * bound and small next to these. Used by the benchmark to report achieved GFLOP/s.
 */
import type { GraphNode } from './builder';
import { elementCount } from './shapes';

export function countFlops(nodes: readonly GraphNode[]): number {
  let flops = 0;
  for (const node of nodes) {
    const out = node.outputs[0];
    if (!out) continue;
    switch (node.op) {
      case 'MatMul': {
        const a = node.inputs[0];
        const k = a ? a.shape[a.shape.length - 1]! : 0;
        flops += 2 * elementCount(out.shape) * k;
        break;
      }
      case 'Gemm': {
        const a = node.inputs[0];
        const k = a ? (node.attributes.transA ? a.shape[0]! : a.shape[1]!) : 0;
        flops += 2 * elementCount(out.shape) * k;
        break;
      }
      case 'Conv': {
        const weight = node.inputs[1];
        const perOutput = weight ? elementCount(weight.shape.slice(1)) : 0;
        flops += 2 * elementCount(out.shape) * perOutput;
        break;
      }
      case 'ConvTranspose': {
        // Every input element meets (C/group)·K… weights.
        const [input, weight] = node.inputs;
        if (input && weight) flops += 2 * elementCount(input.shape) * elementCount(weight.shape.slice(1));
        break;
      }
      case 'MultiHeadAttention': {
        // Q·Kᵀ and P·V: 2 · B · S · L · D each.
        const [query, key] = node.inputs;
        if (!query || !key) break;
        const [batch, queryLength, width] = query.shape as [number, number, number];
        const keyLength = key.shape[1]!;
        flops += 2 * 2 * batch * queryLength * keyLength * width;
        break;
      }
      default:
        break;
    }
  }
  return flops;
}
