/**
 * The vector-Jacobian rule of the fused com.microsoft MultiHeadAttention node. Per head, with
 * Q [S, d], K [L, d], V [L, dv] and the attention bias A:
 *   T = s·Q·Kᵀ + A,  P = softmax_rows(T),  O = P·V.
 * Backward (P recomputed, since the fused kernel keeps it to itself):
 *   dV = Pᵀ·dO,  dP = dO·Vᵀ,  dT = P ∘ (dP − rowsum(dP ∘ P)),  dQ = s·dT·K,  dK = s·dTᵀ·Q,  dA = dT
 * (dA summed over the axes the bias was broadcast over). Heads split the hidden width into contiguous
 * chunks, as the contrib op does. Training graphs use the primitive attention (layers.ts), whose
 * MatMul/Softmax nodes the walker differentiates directly; this rule keeps every op differentiable.
 */
import type { GraphBuilder, Value } from './builder';
import { operand, transposeLastTwo, unbroadcast, type NodeOf } from './vjp-helpers';

export function multiHeadAttentionVjp(b: GraphBuilder, node: NodeOf<'MultiHeadAttention'>, dy: Value, wants: readonly boolean[]): (Value | null)[] {
  const query = operand(node, 0);
  const key = operand(node, 1);
  const value = operand(node, 2);
  const bias = node.inputs[3] ?? null;
  const { numHeads, scale } = node.attributes;
  const [batch, queryLength, width] = query.shape as [number, number, number];
  const keyLength = key.shape[1] as number;
  const valueWidth = value.shape[2] as number;

  // [B, N, H·d] → [B, H, N, d] and back.
  const heads = (x: Value, length: number, w: number) => b.transpose(b.reshape(x, [batch, length, numHeads, w / numHeads]), [0, 2, 1, 3]);
  const merge = (x: Value, length: number, w: number) => b.reshape(b.transpose(x, [0, 2, 1, 3]), [batch, length, w]);
  const q = heads(query, queryLength, width);
  const k = heads(key, keyLength, width);
  const v = heads(value, keyLength, valueWidth);
  const s = b.constant([scale], [], query.type);

  const scores = b.mul(b.matMul(q, transposeLastTwo(b, k)), s);
  const p = b.softmax(bias === null ? scores : b.add(scores, bias), -1);
  const dOut = heads(dy, queryLength, valueWidth);
  const dP = b.matMul(dOut, transposeLastTwo(b, v));
  const dT = b.mul(p, b.sub(dP, b.reduceSum(b.mul(dP, p), [-1], true)));
  const dScores = b.mul(dT, s);
  return [
    wants[0] ? merge(b.matMul(dScores, k), queryLength, width) : null,
    wants[1] ? merge(b.matMul(transposeLastTwo(b, dScores), q), keyLength, width) : null,
    wants[2] ? merge(b.matMul(transposeLastTwo(b, p), dOut), keyLength, valueWidth) : null,
    wants[3] && bias !== null ? unbroadcast(b, dT, bias.shape) : null,
  ];
}
