import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { GraphBuilder, GraphBuildError, type GraphNode } from '../../main/engine/graph/builder';
import { graphCacheKey } from '../../main/engine/graph/cache-key';
import { canonicalJson, sha256Hex } from '../../main/engine/graph/hash';
import { activation, layerNorm, linear, multiHeadAttention, QUICK_GELU_ALPHA, type Activation } from '../../main/engine/graph/layers';
import { encodeModel, TensorDataType } from '../../main/engine/graph/onnx-writer';
import { MICROSOFT_DOMAIN, ONNX_OPSET } from '../../main/engine/graph/to-onnx';
import { RuntimeClient } from '../../main/engine/runtime/runtime-client';
import type { TensorMap } from '../../main/engine/runtime/runtime-protocol';
import { maxAbs, maxAbsDiff, randomNormalish, seededRandom } from '../helpers/net-fixtures';

describe('GraphBuilder shape inference', () => {
  it('computes static output shapes', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [2, 3, 4]);
    expect(b.matMul(x, b.input('w', 'float32', [4, 5])).shape).toEqual([2, 3, 5]);
    expect(b.matMul(b.input('bx', 'float32', [7, 1, 3, 4]), b.input('by', 'float32', [6, 4, 2])).shape).toEqual([7, 6, 3, 2]);
    expect(b.add(x, b.input('row', 'float32', [4])).shape).toEqual([2, 3, 4]);
    expect(b.reshape(x, [-1, 4]).shape).toEqual([6, 4]);
    expect(b.transpose(x, [2, 0, 1]).shape).toEqual([4, 2, 3]);
    expect(b.concat([x, b.input('y', 'float32', [2, 5, 4])], 1).shape).toEqual([2, 8, 4]);
    expect(b.slice(x, { starts: [1], ends: [100], axes: [-2] }).shape).toEqual([2, 2, 4]);
    expect(b.slice(x, { starts: [-1], ends: [-1000], axes: [2], steps: [-2] }).shape).toEqual([2, 3, 2]);
    expect(b.gather(b.input('table', 'float32', [10, 8]), b.input('ids', 'int64', [2, 3])).shape).toEqual([2, 3, 8]);
    expect(b.unsqueeze(x, [0, -1]).shape).toEqual([1, 2, 3, 4, 1]);
    expect(b.squeeze(b.input('s', 'float32', [1, 3, 1]), [0, 2]).shape).toEqual([3]);
    expect(b.expand(b.input('e', 'float32', [1, 1, 4]), [2, 3, 1]).shape).toEqual([2, 3, 4]);
    expect(b.reduceMean(x, [-1]).shape).toEqual([2, 3, 1]);
    expect(b.reduceSum(x, [0, 2], false).shape).toEqual([3]);
    expect(b.gemm(b.input('ga', 'float32', [6, 4]), b.input('gb', 'float32', [5, 4]), b.input('gc', 'float32', [5]), { transB: true }).shape).toEqual([6, 5]);
    const image = b.input('image', 'float32', [1, 3, 224, 224]);
    expect(b.conv(image, b.input('patch', 'float32', [32, 3, 14, 14]), null, { strides: [14, 14] }).shape).toEqual([1, 32, 16, 16]);
    expect(b.conv(image, b.input('k3', 'float32', [8, 3, 3, 3]), null, { strides: [2, 2], pads: [1, 1, 1, 1] }).shape).toEqual([1, 8, 112, 112]);
    expect(b.cast(b.input('m', 'int64', [2, 3]), 'float32')).toMatchObject({ type: 'float32', shape: [2, 3] });
    const q = b.input('q', 'float32', [2, 5, 8]);
    const kv = b.input('kv', 'float32', [2, 7, 8]);
    expect(b.multiHeadAttention(q, kv, kv, b.input('bias', 'float32', [1, 1, 5, 7]), { numHeads: 2, scale: 0.5 }).shape).toEqual([2, 5, 8]);
  });

  it('throws on a mismatch, naming the node (with its scope) and its inputs', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [2, 3]);
    const w = b.input('w', 'float32', [4, 5]);
    expect(() => b.scope('block', () => b.matMul(x, w))).toThrow(GraphBuildError);
    expect(() => b.scope('block', () => b.matMul(x, w))).toThrow(/^block\/MatMul_\d+ \(MatMul\): inner dims differ: \[2, 3\] · \[4, 5\] \(3 ≠ 4\); inputs: x: float32\[2, 3\], w: float32\[4, 5\]$/);
    expect(() => b.add(x, b.input('y', 'float32', [4]))).toThrow(/Add_\d+ \(Add\): shapes \[2, 3\] and \[4\] do not broadcast/);
    expect(() => b.add(x, b.input('i', 'int64', [2, 3]))).toThrow(/operand types differ \(float32, int64\)/);
    expect(() => b.reshape(x, [4, 2])).toThrow(/Reshape_\d+ \(Reshape\): \[2, 3\] \(6 elements\) cannot become \[4, 2\]/);
    expect(() => b.transpose(x, [0, 0])).toThrow(/not a permutation/);
    expect(() => b.concat([x, w], 0)).toThrow(/differ outside axis 0/);
    expect(() => b.softmax(x, 2)).toThrow(/axis 2 is out of range for rank 2/);
    expect(() => b.gather(x, b.input('f', 'float32', [1]))).toThrow(/indices must be int64 or int32/);
    expect(() => b.squeeze(x, [0])).toThrow(/cannot squeeze axis 0 of size 2/);
    expect(() => b.where(x, x, x)).toThrow(/condition must be bool/);
    expect(() => b.sqrt(b.input('n', 'int64', [1]))).toThrow(/must be a float tensor/);
    expect(() => b.layerNormalization(x, b.input('ln', 'float32', [2]), null, { axis: -1, epsilon: 1e-5 })).toThrow(/scale\/bias \[2\] must be \[3\]/);
    const q = b.input('q', 'float32', [1, 4, 6]);
    expect(() => b.multiHeadAttention(q, q, q, null, { numHeads: 4, scale: 1 })).toThrow(/do not split into 4 heads/);
    expect(() => b.multiHeadAttention(q, q, q, b.input('bad', 'float32', [1, 1, 1, 4]), { numHeads: 2, scale: 1 })).toThrow(/attention bias \[1, 1, 1, 4\] must be/);
    expect(() => b.conv(b.input('img', 'float32', [1, 3, 8, 8]), b.input('k', 'float32', [4, 2, 3, 3]), null, { strides: [1, 1] })).toThrow(/channels/);
    expect(() => b.input('x', 'float32', [1])).toThrow(/already has a value named 'x'/);
  });

  it('keeps a typed node list in creation order that a reverse pass can walk', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [2, 4]);
    const y = b.softmax(b.reshape(b.mul(x, b.scalar(2)), [4, 2]), -1);
    const ops = b.nodes.map((n) => n.op);
    expect(ops).toEqual(['Mul', 'Reshape', 'Softmax']);
    const reshape = b.nodes[1] as Extract<GraphNode, { op: 'Reshape' }>;
    expect(reshape.attributes.shape).toEqual([4, 2]);
    const produced = new Set([...b.inputs, ...b.initializers.map((i) => i.value)].map((v) => v.id));
    for (const node of b.nodes) {
      for (const input of node.inputs) if (input) expect(produced.has(input.id), `${node.name} reads a value made later`).toBe(true);
      for (const output of node.outputs) produced.add(output.id);
    }
    expect(b.nodes.at(-1)?.outputs[0]).toBe(y);
  });
});

describe('lowering to ONNX', () => {
  it('keeps only what the outputs need, renames outputs, emits static operands as int64 constants, opset 21', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [2, 3]);
    b.exp(x); // dead: not needed by the output
    const y = b.reshape(b.add(x, b.scalar(1)), [3, 2]);
    const model = b.toModel({ name: 'g', outputs: [{ name: 'y', value: y }] });
    expect(model.opsetImports).toEqual([{ domain: '', version: ONNX_OPSET }]);
    expect(model.graph.nodes.map((n) => n.opType)).toEqual(['Add', 'Reshape', 'Identity']);
    expect(model.graph.outputs).toEqual([{ name: 'y', elemType: TensorDataType.FLOAT, shape: [3, 2] }]);
    const shape = model.graph.initializers?.find((t) => t.name.endsWith('/shape'));
    expect(shape).toMatchObject({ dataType: TensorDataType.INT64, dims: [2] });
    expect(encodeModel(model).length).toBeGreaterThan(0);
  });

  it('declares com.microsoft only when a contrib op is used, and refuses values with no data', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [1, 2, 4]);
    const q = b.quickGelu(x, QUICK_GELU_ALPHA);
    expect(b.toModel({ name: 'g', outputs: [{ name: 'q', value: q }] }).opsetImports).toEqual([
      { domain: '', version: ONNX_OPSET },
      { domain: MICROSOFT_DOMAIN, version: 1 },
    ]);
    const missing = b.unbound('weights.missing', 'float32', [4]);
    expect(() => b.toModel({ name: 'g', outputs: [{ name: 'z', value: b.add(x, missing) }] })).toThrow(/uses values with no data: weights.missing/);
  });

  it('points external initializers into their files', () => {
    const b = new GraphBuilder();
    const w = b.external('layer.weight', 'float16', [4, 2], { file: 'unet/model.safetensors', offset: 136, byteLength: 16 });
    const y = b.matMul(b.input('x', 'float32', [1, 4]), b.cast(w, 'float32'));
    const model = b.toModel({ name: 'g', outputs: [{ name: 'y', value: y }] });
    expect(model.graph.initializers).toContainEqual({
      name: 'layer.weight',
      dataType: TensorDataType.FLOAT16,
      dims: [4, 2],
      data: { location: 'external', file: 'unet/model.safetensors', offset: 136, length: 16 },
    });
  });
});

describe('cache keys', () => {
  it('SHA-256 matches the FIPS 180-4 test vectors', () => {
    expect(sha256Hex('')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(sha256Hex('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(sha256Hex('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq')).toBe('248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1');
    expect(sha256Hex('a'.repeat(1000))).toBe('41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3');
  });

  it('canonical JSON ignores key order and refuses values JSON cannot hold', () => {
    expect(canonicalJson({ b: 1, a: [{ d: null, c: 'x' }] })).toBe('{"a":[{"c":"x","d":null}],"b":1}');
    expect(() => canonicalJson({ a: Number.NaN })).toThrow(/NaN/);
    expect(() => canonicalJson({ a: undefined })).toThrow(/undefined/);
  });

  it('graph keys are stable and follow every part', () => {
    const parts = { net: 'n', config: { hidden_size: 8, layers: 2 }, options: { fused: true }, weights: [['w', 'a.safetensors', 'F32', 8, [2]]] };
    const key = graphCacheKey(parts);
    expect(graphCacheKey({ ...parts, config: { layers: 2, hidden_size: 8 } })).toBe(key);
    for (const changed of [{ net: 'm' }, { config: { hidden_size: 8, layers: 3 } }, { options: { fused: false } }, { weights: [['w', 'a.safetensors', 'F16', 8, [2]]] }]) {
      expect(graphCacheKey({ ...parts, ...changed })).not.toBe(key);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Fused and primitive forms: same numbers, both checked against float64 JS references.
// ---------------------------------------------------------------------------------------------

const BATCH = 2;
const SEQUENCE = 5;
const KEYS = 6;
const HIDDEN = 8;
const HEADS = 2;
const EPSILON = 1e-5;
const random = seededRandom(3);
const xData = randomNormalish(random, BATCH * SEQUENCE * HIDDEN, 2);
const kvData = randomNormalish(random, BATCH * KEYS * HIDDEN, 1);
const scaleData = randomNormalish(random, HIDDEN, 1);
const biasData = randomNormalish(random, HIDDEN, 1);
const weightData = randomNormalish(random, HIDDEN * HIDDEN, 0.5);
/** Additive mask per batch row: the second row's last two keys are masked. */
const maskData = Float32Array.from({ length: BATCH * KEYS }, (_, i) => (i >= 2 * KEYS - 2 ? -10000 : 0));
const ACTIVATIONS: Activation[] = ['gelu', 'gelu_tanh', 'quick_gelu'];

function smallGraph(fused: boolean) {
  const b = new GraphBuilder();
  const x = b.input('x', 'float32', [BATCH, SEQUENCE, HIDDEN]);
  const kv = b.input('kv', 'float32', [BATCH, KEYS, HIDDEN]);
  const scale = b.constant(scaleData, [HIDDEN]);
  const bias = b.constant(biasData, [HIDDEN]);
  const mask = b.constant(maskData, [BATCH, 1, 1, KEYS]);
  const outputs = [
    { name: 'layer_norm', value: layerNorm(b, x, scale, bias, EPSILON, fused) },
    ...ACTIVATIONS.map((kind) => ({ name: kind, value: activation(b, x, kind, fused) })),
    { name: 'attention', value: multiHeadAttention(b, { query: x, key: kv, value: kv, numHeads: HEADS, bias: mask, fused }) },
    { name: 'linear', value: linear(b, x, b.constant(weightData, [HIDDEN, HIDDEN]), bias) },
  ];
  return b.toModel({ name: fused ? 'fused' : 'primitive', outputs });
}

function erf(x: number): number {
  // Series for small |x|, continued fraction tail beyond: both far below float32 precision here.
  if (Math.abs(x) < 3) {
    let sum = x;
    let term = x;
    for (let n = 1; n < 60; n++) {
      term *= (-x * x) / n;
      sum += term / (2 * n + 1);
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  }
  return Math.sign(x) * (1 - Math.exp(-x * x) / (Math.abs(x) * Math.sqrt(Math.PI)));
}

const REFERENCE_ACTIVATIONS: Record<Activation, (v: number) => number> = {
  gelu: (v) => 0.5 * v * (1 + erf(v / Math.SQRT2)),
  gelu_tanh: (v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3))),
  quick_gelu: (v) => v / (1 + Math.exp(-QUICK_GELU_ALPHA * v)),
};

function referenceLayerNorm(): Float64Array {
  const out = new Float64Array(xData.length);
  for (let row = 0; row < BATCH * SEQUENCE; row++) {
    const values = Array.from(xData.subarray(row * HIDDEN, (row + 1) * HIDDEN));
    const mean = values.reduce((a, v) => a + v, 0) / HIDDEN;
    const variance = values.reduce((a, v) => a + (v - mean) ** 2, 0) / HIDDEN;
    values.forEach((v, i) => (out[row * HIDDEN + i] = ((v - mean) / Math.sqrt(variance + EPSILON)) * scaleData[i]! + biasData[i]!));
  }
  return out;
}

function referenceAttention(): Float64Array {
  const headSize = HIDDEN / HEADS;
  const out = new Float64Array(BATCH * SEQUENCE * HIDDEN);
  for (let n = 0; n < BATCH; n++) {
    for (let h = 0; h < HEADS; h++) {
      for (let s = 0; s < SEQUENCE; s++) {
        const scores = Array.from({ length: KEYS }, (_, l) => {
          let dot = 0;
          for (let d = 0; d < headSize; d++) dot += xData[(n * SEQUENCE + s) * HIDDEN + h * headSize + d]! * kvData[(n * KEYS + l) * HIDDEN + h * headSize + d]!;
          return dot / Math.sqrt(headSize) + maskData[n * KEYS + l]!;
        });
        const max = Math.max(...scores);
        const weights = scores.map((v) => Math.exp(v - max));
        const total = weights.reduce((a, v) => a + v, 0);
        for (let d = 0; d < headSize; d++) {
          let sum = 0;
          for (let l = 0; l < KEYS; l++) sum += (weights[l]! / total) * kvData[(n * KEYS + l) * HIDDEN + h * headSize + d]!;
          out[(n * SEQUENCE + s) * HIDDEN + h * headSize + d] = sum;
        }
      }
    }
  }
  return out;
}

function referenceLinear(): Float64Array {
  const out = new Float64Array(BATCH * SEQUENCE * HIDDEN);
  for (let row = 0; row < BATCH * SEQUENCE; row++) {
    for (let o = 0; o < HIDDEN; o++) {
      let sum = biasData[o]!;
      for (let i = 0; i < HIDDEN; i++) sum += xData[row * HIDDEN + i]! * weightData[o * HIDDEN + i]!;
      out[row * HIDDEN + o] = sum;
    }
  }
  return out;
}

describe('fused and primitive forms give the same numbers (ORT CPU)', () => {
  let runtime: RuntimeClient;
  let fused: TensorMap;
  let primitive: TensorMap;
  const feeds: TensorMap = {
    x: { type: 'float32', dims: [BATCH, SEQUENCE, HIDDEN], data: xData },
    kv: { type: 'float32', dims: [BATCH, KEYS, HIDDEN], data: kvData },
  };

  beforeAll(async () => {
    runtime = RuntimeClient.start();
    const run = async (fusedForm: boolean) => {
      const session = await runtime.createSession({ model: encodeModel(smallGraph(fusedForm)), device: 'cpu' });
      try {
        return await runtime.run(session.id, feeds);
      } finally {
        await runtime.releaseSession(session.id);
      }
    };
    fused = await run(true);
    primitive = await run(false);
  });
  afterAll(async () => {
    await runtime.close();
  });

  const references: [string, () => ArrayLike<number>][] = [
    ['layer_norm', referenceLayerNorm],
    ...ACTIVATIONS.map((kind): [string, () => ArrayLike<number>] => [kind, () => Array.from(xData, REFERENCE_ACTIVATIONS[kind])]),
    ['attention', referenceAttention],
    ['linear', referenceLinear],
  ];
  for (const [name, reference] of references) {
    it(`${name}: fused ≈ primitive ≈ float64 reference`, () => {
      const expected = reference();
      const tolerance = 1e-5 * Math.max(1, maxAbs(expected));
      const a = fused[name]?.data as Float32Array;
      const p = primitive[name]?.data as Float32Array;
      expect(fused[name]?.dims).toEqual([BATCH, SEQUENCE, HIDDEN]);
      expect(maxAbsDiff(a, p), 'fused vs primitive').toBeLessThanOrEqual(tolerance);
      expect(maxAbsDiff(a, expected), 'fused vs reference').toBeLessThanOrEqual(tolerance);
      expect(maxAbsDiff(p, expected), 'primitive vs reference').toBeLessThanOrEqual(tolerance);
    });
  }

  it('the fused graph uses the fused kernels and the primitive graph only the primitive op set', () => {
    const opTypes = (fusedForm: boolean) => new Set(smallGraph(fusedForm).graph.nodes.map((n) => n.opType));
    const fusedOps = opTypes(true);
    for (const op of ['LayerNormalization', 'Gelu', 'QuickGelu', 'MultiHeadAttention']) expect(fusedOps.has(op), op).toBe(true);
    const primitiveOps = opTypes(false);
    for (const op of ['LayerNormalization', 'Gelu', 'QuickGelu', 'MultiHeadAttention']) expect(primitiveOps.has(op), op).toBe(false);
    expect([...primitiveOps].every((op) => ['ReduceMean', 'Sub', 'Pow', 'Add', 'Sqrt', 'Reciprocal', 'Mul', 'Erf', 'Tanh', 'Sigmoid', 'Reshape', 'Transpose', 'MatMul', 'Softmax', 'Gemm', 'Identity'].includes(op))).toBe(true);
  });
});
