/**
 * Test-side helpers for the UNet and ControlNet nets: the kit's tensors as feeds, one-session graph
 * runs, and random weights for a generated configuration (the key list taken from what the builders
 * request, for shape-and-determinism tests; no reference numbers come from it).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { encodeModel } from '../../main/engine/graph/onnx-writer';
import type { NetGraph } from '../../main/engine/nets/net-graph';
import { impliedParameters } from '../../main/engine/nets/implied-parameters';
import type { WeightCatalog } from '../../main/engine/nets/weight-catalog';
import type { RuntimeClient } from '../../main/engine/runtime/runtime-client';
import type { TensorMap, TensorValue } from '../../main/engine/runtime/runtime-protocol';
import { writeSafetensorsFile } from '../../main/engine/weights/safetensors-writer';
import { readNpyFile } from '../../main/engine/io/npy-file';
import { randomNormalish, seededRandom } from './net-fixtures';

export const WEIGHTS_FILE = 'diffusion_pytorch_model.safetensors';

/** One session: create, run, release. */
export async function runNetGraph(runtime: RuntimeClient, graph: NetGraph, externalDataFolder: string, feeds: TensorMap): Promise<TensorMap> {
  const session = await runtime.createSession({ model: encodeModel(graph.model), externalDataFolder, device: 'cpu' });
  try {
    return await runtime.run(session.id, feeds);
  } finally {
    await runtime.releaseSession(session.id);
  }
}

export function float32Tensor(dims: readonly number[], data: Float32Array): TensorValue {
  return { type: 'float32', dims: [...dims], data };
}

export function scalarTensor(value: number): TensorValue {
  return float32Tensor([1], new Float32Array([value]));
}

export function float32Of(outputs: TensorMap, name: string): Float32Array {
  const tensor = outputs[name];
  if (!tensor || !(tensor.data instanceof Float32Array)) throw new Error(`output '${name}' is missing or not float32`);
  return tensor.data;
}

/** A kit .npy as a float32 feed. */
export function npyFeed(path: string): TensorValue {
  const array = readNpyFile(path);
  if (!(array.data instanceof Float32Array)) throw new Error(`${path} is not float32`);
  return float32Tensor(array.shape, array.data);
}

/** Rows [from, to) of a float32 tensor along axis 0. */
export function rows(tensor: TensorValue, from: number, to: number): TensorValue {
  const size = (tensor.data as Float32Array).length / (tensor.dims[0] as number);
  return float32Tensor([to - from, ...tensor.dims.slice(1)], (tensor.data as Float32Array).slice(from * size, to * size));
}

/** Tensors stacked along axis 0. */
export function stackRows(tensors: readonly TensorValue[]): TensorValue {
  const first = tensors[0] as TensorValue;
  const data = new Float32Array(tensors.reduce((n, t) => n + (t.data as Float32Array).length, 0));
  let offset = 0;
  for (const t of tensors) {
    data.set(t.data as Float32Array, offset);
    offset += (t.data as Float32Array).length;
  }
  return float32Tensor([tensors.reduce((n, t) => n + (t.dims[0] as number), 0), ...first.dims.slice(1)], data);
}

export function randomTensor(seed: number, dims: readonly number[], scale = 1): TensorValue {
  return float32Tensor(dims, randomNormalish(seededRandom(seed), dims.reduce((a, b) => a * b, 1), scale));
}

/**
 * Writes `folder/diffusion_pytorch_model.safetensors` with random F32 weights for every tensor `build`
 * requests: GroupNorm/LayerNorm scales near 1, biases small, other weights ~ 1/√fan-in, so activations
 * stay O(1) through the net.
 */
export function writeRandomWeights(folder: string, build: (catalog: WeightCatalog) => unknown, seed: number): void {
  mkdirSync(folder, { recursive: true });
  const random = seededRandom(seed);
  const tensors = impliedParameters(build).map((request) => {
    const count = request.shape.reduce((a, b) => a * b, 1);
    const isNormScale = /(norm\d?|norm_out)\.weight$/.test(request.name);
    const fanIn = request.shape.length > 1 ? request.shape.slice(1).reduce((a, b) => a * b, 1) : 1;
    const scale = isNormScale ? 0.1 : request.name.endsWith('.bias') ? 0.05 : 1 / Math.sqrt(fanIn);
    const values = randomNormalish(random, count, scale);
    if (isNormScale) for (let i = 0; i < count; i++) values[i] = 1 + (values[i] as number);
    return { name: request.name, dtype: 'F32' as const, shape: request.shape, data: new Uint8Array(values.buffer) };
  });
  writeSafetensorsFile(join(folder, WEIGHTS_FILE), tensors);
}
