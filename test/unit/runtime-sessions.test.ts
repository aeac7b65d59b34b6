import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TensorDataType, encodeModel, type OnnxModel } from '../../main/engine/graph/onnx-writer';
import { RuntimeClient } from '../../main/engine/runtime/runtime-client';
import type { TensorValue } from '../../main/engine/runtime/runtime-protocol';
import { startTestRuntime } from '../helpers/worker-bundle';
import { makeTempDir } from '../helpers/temp-dir';

let testRuntime: Awaited<ReturnType<typeof startTestRuntime>>;
let runtime: RuntimeClient;
let weights: ReturnType<typeof makeTempDir>;
let outside: ReturnType<typeof makeTempDir>;

/** y = x · W with W read from `file` at byte `offset` (external data), x [1, 2], W [2, 3]. */
function matMulModel(file: string, offset: number): OnnxModel {
  return {
    producerName: 'blip-studio-test',
    opsetImports: [{ domain: '', version: 21 }],
    graph: {
      name: 'external-matmul',
      nodes: [{ opType: 'MatMul', inputs: ['x', 'W'], outputs: ['y'] }],
      inputs: [{ name: 'x', elemType: TensorDataType.FLOAT, shape: [1, 2] }],
      outputs: [{ name: 'y', elemType: TensorDataType.FLOAT, shape: [1, 3] }],
      initializers: [{ name: 'W', dataType: TensorDataType.FLOAT, dims: [2, 3], data: { location: 'external', file, offset, length: 24 } }],
    },
  };
}

const x = (values: number[] = [1, 10]): TensorValue => ({ type: 'float32', dims: [1, 2], data: new Float32Array(values) });

beforeAll(async () => {
  testRuntime = await startTestRuntime();
  runtime = testRuntime.runtime;
  weights = makeTempDir('blip-weights-');
  outside = makeTempDir('blip-outside-');
  mkdirSync(join(weights.path, 'unet'));
  // 3 bytes of header-like padding, then W = [[1,2,3],[4,5,6]] at an unaligned offset, as in safetensors.
  const file = new Uint8Array(3 + 24).fill(7);
  const w = new Float32Array([1, 2, 3, 4, 5, 6]);
  file.set(new Uint8Array(w.buffer), 3);
  writeFileSync(join(weights.path, 'unet/weights.safetensors'), file);
  writeFileSync(join(outside.path, 'secret.safetensors'), file);
  symlinkSync(join(outside.path, 'secret.safetensors'), join(weights.path, 'unet/link.safetensors'));
});

afterAll(async () => {
  await testRuntime?.stop();
  weights?.remove();
  outside?.remove();
});

describe('runtime sessions', () => {
  it('runs a model whose weights are external data inside the given folder, at an unaligned offset', async () => {
    const session = await runtime.createSession({ model: encodeModel(matMulModel('unet/weights.safetensors', 3)), externalDataFolder: weights.path, device: 'cpu' });
    expect(session).toMatchObject({ device: 'cpu', deviceNote: '' });
    expect(session.inputs).toEqual([{ name: 'x', type: 'float32', dims: [1, 2] }]);
    expect(session.outputs).toEqual([{ name: 'y', type: 'float32', dims: [1, 3] }]);
    const { y } = await runtime.run(session.id, { x: x() });
    // [1, 10] · [[1,2,3],[4,5,6]] = [41, 52, 63]
    expect(y).toEqual({ type: 'float32', dims: [1, 3], data: new Float32Array([41, 52, 63]) });
    await runtime.releaseSession(session.id);
    await expect(runtime.run(session.id, { x: x() })).rejects.toThrow(/No session/);
  });

  it('runs with the memory pattern off (the fine-tune step) as with it on, and refuses a non-boolean setting', async () => {
    const model = encodeModel(matMulModel('unet/weights.safetensors', 3));
    const session = await runtime.createSession({ model, externalDataFolder: weights.path, device: 'cpu', memoryPattern: false });
    for (let i = 0; i < 2; i++) expect((await runtime.run(session.id, { x: x() })).y?.data).toEqual(new Float32Array([41, 52, 63]));
    await runtime.releaseSession(session.id);
    const forged = { model, externalDataFolder: weights.path, device: 'cpu', memoryPattern: 'no' } as unknown as Parameters<RuntimeClient['createSession']>[0];
    await expect(runtime.createSession(forged)).rejects.toThrow(/memoryPattern must be true or false/);
  });

  it('refuses external data that leaves the folder: `..`, absolute paths, symlinks out', async () => {
    for (const file of ['../outside.safetensors', join(outside.path, 'secret.safetensors'), 'unet/link.safetensors']) {
      await expect(runtime.createSession({ model: encodeModel(matMulModel(file, 3)), externalDataFolder: weights.path, device: 'cpu' })).rejects.toThrow(
        /external data/i,
      );
    }
  });

  it('lists every mismatch of the feeds in one error', async () => {
    const session = await runtime.createSession({ model: encodeModel(matMulModel('unet/weights.safetensors', 3)), externalDataFolder: weights.path, device: 'cpu' });
    const wrongShape: TensorValue = { type: 'float32', dims: [2, 2], data: new Float32Array(4) };
    const wrongType: TensorValue = { type: 'int32', dims: [1, 2], data: new Int32Array(2) };
    await expect(runtime.run(session.id, { x: wrongShape, extra: x() })).rejects.toThrow(
      /input 'x' has shape \[2, 2\], the model expects \[1, 2\][\s\S]*unexpected input 'extra'/,
    );
    await expect(runtime.run(session.id, { x: wrongType })).rejects.toThrow(/input 'x' is int32, the model expects float32/);
    await expect(runtime.run(session.id, {})).rejects.toThrow(/missing input 'x' \(float32 \[1, 2\]\)/);
    await expect(runtime.run(session.id, { x: { type: 'float32', dims: [1, 2], data: new Float32Array(3) } })).rejects.toThrow(/need 2 elements, data has 3/);
    await expect(runtime.run(session.id, { x: x() }, { outputs: ['nope'] })).rejects.toThrow(/no output 'nope'/);
    await runtime.releaseSession(session.id);
  });

  it('moves big inputs to the worker without a copy when asked, and outputs back', async () => {
    const session = await runtime.createSession({ model: encodeModel(matMulModel('unet/weights.safetensors', 3)), externalDataFolder: weights.path, device: 'cpu' });
    const input = x([2, 0]);
    const { y } = await runtime.run(session.id, { x: input }, { transferInputs: true });
    expect(input.data.byteLength).toBe(0); // detached: it now belongs to the worker
    expect(y?.data).toEqual(new Float32Array([2, 4, 6]));
    const kept = x([0, 1]);
    await runtime.run(session.id, { x: kept });
    expect(kept.data).toEqual(new Float32Array([0, 1]));
    await runtime.releaseSession(session.id);
  });

  it('chooses a device for auto, and falls back to the CPU with a note when a GPU provider is unavailable', async () => {
    const model = encodeModel(matMulModel('unet/weights.safetensors', 3));
    const auto = await runtime.createSession({ model, externalDataFolder: weights.path, device: 'auto' });
    expect(['cuda', 'dml', 'coreml', 'webgpu', 'cpu']).toContain(auto.device);
    const { y } = await runtime.run(auto.id, { x: x() });
    expect(y?.data).toEqual(new Float32Array([41, 52, 63]));
    await runtime.releaseSession(auto.id);

    const webgpu = await runtime.createSession({ model, externalDataFolder: weights.path, device: 'webgpu' });
    if (webgpu.device === 'cpu') expect(webgpu.deviceNote).toMatch(/WebGPU is not available .*running on the CPU instead/);
    else expect(webgpu).toMatchObject({ device: 'webgpu', deviceNote: '' });
    await runtime.releaseSession(webgpu.id);

    await expect(runtime.createSession({ model, externalDataFolder: weights.path, device: 'quantum' })).rejects.toThrow(/Unknown backend 'quantum'/);
  });
});
