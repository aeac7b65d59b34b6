/**
 * Self-test graphs for the runtime: a tiny model whose answer is computed independently here in
 * plain JS (so a check compares ONNX Runtime against arithmetic, not against itself), and a chain of
 * large MatMuls that keeps an execution provider busy for a measurable time.
 */
import { TensorDataType, float32Bytes, type OnnxModel } from './onnx-writer';

export const SMOKE_OPSET = 21;
const PRODUCER = 'blip-studio';

/** A named float32 tensor in row-major order. */
export interface Float32TensorValue {
  name: string;
  dims: readonly number[];
  data: Float32Array;
}

/** The reference result of one output, computed in float64. */
export interface ExpectedOutput {
  name: string;
  dims: readonly number[];
  data: Float64Array;
}

export interface SmokeCase {
  model: OnnxModel;
  inputs: readonly Float32TensorValue[];
  expected: readonly ExpectedOutput[];
}

// Small values that float32 holds exactly, so the reference sees the same numbers as ORT.
const BATCH = 2;
const IN = 3;
const OUT = 4;
const X_VALUES = [1, -2, 0.5, 0.25, 3, -1];
const W_VALUES = [0.5, -1, 2, 0, 1.5, 0.25, -0.5, 1, -2, 1, 0.75, -0.25];
const B_VALUES = [0.5, -0.25, 0, 1];

/**
 * logits = X·W + b and probabilities = Softmax(logits, axis −1), for X [batch, 3].
 * W is an initializer (raw_data) and b comes from a Constant node (a tensor attribute), the batch dim
 * is symbolic and the axis is negative, so the run also proves those encodings of the writer.
 */
export function buildSmokeModel(): OnnxModel {
  return {
    producerName: PRODUCER,
    opsetImports: [{ domain: '', version: SMOKE_OPSET }],
    graph: {
      name: 'smoke',
      inputs: [{ name: 'X', elemType: TensorDataType.FLOAT, shape: ['batch', IN] }],
      outputs: [
        { name: 'logits', elemType: TensorDataType.FLOAT, shape: ['batch', OUT] },
        { name: 'probabilities', elemType: TensorDataType.FLOAT, shape: ['batch', OUT] },
      ],
      initializers: [
        { name: 'W', dataType: TensorDataType.FLOAT, dims: [IN, OUT], data: { location: 'inline', bytes: float32Bytes(W_VALUES) } },
      ],
      nodes: [
        {
          opType: 'Constant',
          name: 'bias',
          inputs: [],
          outputs: ['b'],
          attributes: [
            {
              name: 'value',
              kind: 'tensor',
              value: { name: 'b', dataType: TensorDataType.FLOAT, dims: [OUT], data: { location: 'inline', bytes: float32Bytes(B_VALUES) } },
            },
          ],
        },
        { opType: 'MatMul', name: 'matmul', inputs: ['X', 'W'], outputs: ['XW'] },
        { opType: 'Add', name: 'add', inputs: ['XW', 'b'], outputs: ['logits'] },
        { opType: 'Softmax', name: 'softmax', inputs: ['logits'], outputs: ['probabilities'], attributes: [{ name: 'axis', kind: 'int', value: -1 }] },
      ],
    },
  };
}

export function buildSmokeCase(): SmokeCase {
  const x = Float32Array.from(X_VALUES);
  const { logits, probabilities } = smokeReference(x, BATCH);
  return {
    model: buildSmokeModel(),
    inputs: [{ name: 'X', dims: [BATCH, IN], data: x }],
    expected: [
      { name: 'logits', dims: [BATCH, OUT], data: logits },
      { name: 'probabilities', dims: [BATCH, OUT], data: probabilities },
    ],
  };
}

/** The smoke model's arithmetic, written out in float64. */
export function smokeReference(x: ArrayLike<number>, batch: number): { logits: Float64Array; probabilities: Float64Array } {
  const logits = new Float64Array(batch * OUT);
  const probabilities = new Float64Array(batch * OUT);
  for (let r = 0; r < batch; r++) {
    for (let c = 0; c < OUT; c++) {
      let sum = B_VALUES[c] ?? 0;
      for (let k = 0; k < IN; k++) sum += (x[r * IN + k] ?? 0) * (W_VALUES[k * OUT + c] ?? 0);
      logits[r * OUT + c] = sum;
    }
    // Softmax over the row, shifted by its max for stability.
    const row = logits.subarray(r * OUT, (r + 1) * OUT);
    const max = Math.max(...row);
    let total = 0;
    for (let c = 0; c < OUT; c++) total += Math.exp((row[c] ?? 0) - max);
    for (let c = 0; c < OUT; c++) probabilities[r * OUT + c] = Math.exp((row[c] ?? 0) - max) / total;
  }
  return { logits, probabilities };
}

/** Largest |a[i] − b[i]|; Infinity when the lengths differ or a value is NaN. */
export function maxAbsDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs((a[i] ?? NaN) - (b[i] ?? NaN));
    if (!(d <= max)) max = Number.isNaN(d) ? Infinity : d;
  }
  return max;
}

/**
 * Y = X·W·W·…·W (`layers` MatMuls of [size, size]): about 2·size³·layers FLOPs per run.
 * W = 1/size everywhere keeps every value bounded (each row becomes its mean) with no denormals.
 */
export function buildMatMulChainModel(size: number, layers: number): OnnxModel {
  const w = new Float32Array(size * size).fill(1 / size);
  const nodes = Array.from({ length: layers }, (_, i) => ({
    opType: 'MatMul',
    name: `matmul_${i}`,
    inputs: [i === 0 ? 'X' : `h${i}`, 'W'],
    outputs: [i === layers - 1 ? 'Y' : `h${i + 1}`],
  }));
  return {
    producerName: PRODUCER,
    opsetImports: [{ domain: '', version: SMOKE_OPSET }],
    graph: {
      name: 'matmul_chain',
      inputs: [{ name: 'X', elemType: TensorDataType.FLOAT, shape: [size, size] }],
      outputs: [{ name: 'Y', elemType: TensorDataType.FLOAT, shape: [size, size] }],
      initializers: [{ name: 'W', dataType: TensorDataType.FLOAT, dims: [size, size], data: { location: 'inline', bytes: float32Bytes(w) } }],
      nodes,
    },
  };
}

/** A deterministic input for the MatMul chain, values in [−1, 1). */
export function matMulChainInput(size: number): Float32TensorValue {
  const data = new Float32Array(size * size);
  for (let i = 0; i < data.length; i++) data[i] = ((i * 7919) % 2048) / 1024 - 1;
  return { name: 'X', dims: [size, size], data };
}
