import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { dirname, join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { ProtoWriter, TensorDataType, encodeModel, encodeTensor, float32Bytes, utf8Encode } from '../../main/engine/graph/onnx-writer';
import { buildSmokeCase } from '../../main/engine/graph/smoke-graph';
import { RuntimeClient, locateWorkerFile } from '../../main/engine/runtime/runtime-client';
import { bundleWorkerForTest } from '../helpers/worker-bundle';

let workerBundle: Awaited<ReturnType<typeof bundleWorkerForTest>> | null = null;
let workerFile = '';

beforeAll(async () => {
  workerBundle = await bundleWorkerForTest();
  workerFile = workerBundle.file;
});

afterAll(() => workerBundle?.remove());

const bytes = (...values: number[]) => Uint8Array.from(values);
const ascii = (text: string) => [...text].map((c) => c.charCodeAt(0));

describe('onnx-writer bytes (expected values derived by hand from the protobuf encoding spec)', () => {
  it('writes varints, negative int64 and fixed32 floats', () => {
    const w = new ProtoWriter();
    w.int64(1, 300); // tag (1<<3|0)=0x08, 300 = 0b10_0101100 → 0xAC 0x02
    w.int64(3, -1); // tag 0x18, −1 as 64-bit two's complement: nine 0xFF then 0x01
    w.float(2, 1); // tag (2<<3|5)=0x15, 1.0f little-endian = 00 00 80 3F
    expect(w.finish()).toEqual(bytes(0x08, 0xac, 0x02, 0x18, ...Array<number>(9).fill(0xff), 0x01, 0x15, 0x00, 0x00, 0x80, 0x3f));
  });

  it('encodes UTF-8 without TextEncoder', () => {
    expect(utf8Encode('aé€😀')).toEqual(bytes(0x61, 0xc3, 0xa9, 0xe2, 0x82, 0xac, 0xf0, 0x9f, 0x98, 0x80));
    expect(utf8Encode('\ud800')).toEqual(bytes(0xef, 0xbf, 0xbd)); // lone surrogate → U+FFFD
  });

  it('encodes an inline TensorProto', () => {
    const tensor = encodeTensor({ name: 't', dataType: TensorDataType.FLOAT, dims: [2], data: { location: 'inline', bytes: float32Bytes([1, 2]) } });
    expect(tensor).toEqual(
      bytes(
        ...[0x0a, 0x01, 0x02], // dims (1), packed: length 1, [2]
        ...[0x10, 0x01], // data_type (2) = FLOAT
        ...[0x42, 0x01, 0x74], // name (8) = 't'
        ...[0x4a, 0x08, 0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0x40], // raw_data (9) = 1.0f, 2.0f
      ),
    );
  });

  it('encodes an external-data TensorProto', () => {
    const tensor = encodeTensor({ name: 'w', dataType: TensorDataType.FLOAT, dims: [4], data: { location: 'external', file: 'a.bin', offset: 16 } });
    expect(tensor).toEqual(
      bytes(
        ...[0x0a, 0x01, 0x04], // dims [4]
        ...[0x10, 0x01], // FLOAT
        ...[0x42, 0x01, 0x77], // name 'w'
        ...[0x6a, 0x11, 0x0a, 0x08, ...ascii('location'), 0x12, 0x05, ...ascii('a.bin')], // external_data (13)
        ...[0x6a, 0x0c, 0x0a, 0x06, ...ascii('offset'), 0x12, 0x02, ...ascii('16')],
        ...[0x70, 0x01], // data_location (14) = EXTERNAL
      ),
    );
  });

  it('encodes a ModelProto with a node, an int attribute and a symbolic input shape', () => {
    const model = encodeModel({
      irVersion: 10,
      producerName: 'p',
      opsetImports: [{ domain: '', version: 21 }],
      graph: {
        name: 'g',
        nodes: [{ opType: 'Softmax', inputs: ['x'], outputs: ['y'], attributes: [{ name: 'axis', kind: 'int', value: -1 }] }],
        inputs: [{ name: 'x', elemType: TensorDataType.FLOAT, shape: ['N', 3] }],
        outputs: [],
      },
    });
    const attribute = [0x0a, 0x04, ...ascii('axis'), 0x18, ...Array<number>(9).fill(0xff), 0x01, 0xa0, 0x01, 0x02]; // name, i (3), type (20) = INT
    const node = [0x0a, 0x01, 0x78, 0x12, 0x01, 0x79, 0x22, 0x07, ...ascii('Softmax'), 0x2a, attribute.length, ...attribute];
    const shape = [0x0a, 0x03, 0x12, 0x01, 0x4e, 0x0a, 0x02, 0x08, 0x03]; // dim {dim_param 'N'}, dim {dim_value 3}
    const tensorType = [0x08, 0x01, 0x12, shape.length, ...shape];
    const type = [0x0a, tensorType.length, ...tensorType];
    const valueInfo = [0x0a, 0x01, 0x78, 0x12, type.length, ...type];
    const graph = [0x0a, node.length, ...node, 0x12, 0x01, 0x67, 0x5a, valueInfo.length, ...valueInfo]; // node (1), name (2), input (11)
    expect([attribute.length, node.length, valueInfo.length, graph.length]).toEqual([20, 37, 20, 64]);
    expect(model).toEqual(
      bytes(
        ...[0x08, 0x0a], // ir_version (1) = 10
        ...[0x12, 0x01, 0x70], // producer_name (2) = 'p'
        ...[0x3a, graph.length, ...graph], // graph (7)
        ...[0x42, 0x04, 0x0a, 0x00, 0x10, 0x15], // opset_import (8): domain '', version 21
      ),
    );
  });
});

describe('locateWorkerFile', () => {
  const only = (...paths: string[]) => (path: string) => paths.includes(path);

  it('prefers the bundle next to the running module', () => {
    expect(locateWorkerFile('file:///app/out/main/electron.js', only('/app/out/main/ort-worker.js'))).toBe('/app/out/main/ort-worker.js');
  });

  it('loads the worker from app.asar.unpacked in a packaged app', () => {
    const packaged = 'file:///opt/BLIP%20Studio/resources/app.asar/out/main/electron.js';
    const exists = only('/opt/BLIP Studio/resources/app.asar/out/main/ort-worker.js', '/opt/BLIP Studio/resources/app.asar.unpacked/out/main/ort-worker.js');
    expect(locateWorkerFile(packaged, exists)).toBe('/opt/BLIP Studio/resources/app.asar.unpacked/out/main/ort-worker.js');
  });

  it('falls back to <package root>/out/main when running from sources', () => {
    const exists = only('/repo/package.json', '/repo/out/main/ort-worker.js');
    expect(locateWorkerFile('file:///repo/main/engine/runtime/runtime-client.ts', exists)).toBe('/repo/out/main/ort-worker.js');
  });

  it('says to build when the bundle is missing', () => {
    expect(() => locateWorkerFile('file:///repo/main/engine/runtime/runtime-client.ts', only('/repo/package.json'))).toThrow(/npm run build/);
  });
});

describe('ORT worker', () => {
  let client: RuntimeClient;
  beforeAll(() => {
    client = RuntimeClient.start({ workerFile });
  });
  afterAll(async () => {
    await client.close();
  });

  it('answers ping and reports the ORT version', async () => {
    await client.ping();
    expect(await client.onnxruntimeVersion()).toMatch(/^1\.30\./);
  });

  it('runs the smoke graph on CPU and matches the JS reference', async () => {
    const result = await client.checkBackend('cpu');
    expect(result.ok, result.message).toBe(true);
    expect(result.backend).toBe('cpu');
    expect(result.maxAbsError).not.toBeNull();
    expect(result.maxAbsError).toBeLessThanOrEqual(1e-5);
    expect(result.millis).toBeGreaterThan(0);
    // The host checks each output's shape against the reference's before comparing values.
    const shapes = buildSmokeCase().expected.map((e) => `${e.name} [${e.dims.join(', ')}]`);
    expect(shapes).toEqual(['logits [2, 4]', 'probabilities [2, 4]']);
    for (const shape of shapes) expect(result.message).toContain(shape);
  });

  it('keeps the main thread responsive while the worker runs a heavy graph', async () => {
    const intervalMs = 10;
    let ticks = 0;
    let maxGap = 0;
    let last = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      maxGap = Math.max(maxGap, now - last);
      last = now;
      ticks += 1;
    }, intervalMs);
    try {
      const result = await client.benchmark({ backend: 'cpu', size: 1024, layers: 32, minMillis: 1000 });
      const maxLag = maxGap - intervalMs;
      // Each run alone blocks its thread far longer than the lag we allow on the main thread.
      expect(result.meanRunMillis).toBeGreaterThan(100);
      expect(result.totalMillis).toBeGreaterThanOrEqual(1000);
      expect(maxLag).toBeLessThan(200);
      expect(ticks).toBeGreaterThan(40);
    } finally {
      clearInterval(timer);
    }
  });

  it('lists the backends with cpu available and bundled, and webgpu', async () => {
    const backends = await client.listBackends();
    const cpu = backends.find((b) => b.name === 'cpu');
    expect(cpu).toMatchObject({ available: true, bundled: true, label: 'CPU' });
    const webgpu = backends.find((b) => b.name === 'webgpu');
    expect(webgpu?.bundled).toBe(true);
    for (const backend of backends) {
      expect(backend.label.length).toBeGreaterThan(0);
      expect(backend.note.length).toBeGreaterThan(0);
    }
    const cuda = backends.find((b) => b.name === 'cuda');
    if (cuda && !cuda.available) expect(cuda.note).toContain('npm run setup:cuda');
  });

  it('names an unknown backend in a failed check and in a rejected benchmark', async () => {
    const result = await client.checkBackend('quantum-gpu');
    expect(result).toMatchObject({ backend: 'quantum-gpu', ok: false, maxAbsError: null });
    expect(result.message).toMatch(/Unknown backend 'quantum-gpu'.*cpu/);
    await expect(client.benchmark({ backend: 'quantum-gpu', size: 8, layers: 1, minMillis: 0 })).rejects.toThrow(/quantum-gpu/);
  });
});

describe('ORT worker lifecycle', () => {
  it('answers malformed messages with errors and keeps serving', async () => {
    const worker = new Worker(workerFile, { workerData: { threads: 1 } });
    const replies: unknown[] = [];
    const received = (count: number) =>
      new Promise<void>((resolve) => {
        const check = () => (replies.length >= count ? resolve() : setTimeout(check, 5));
        check();
      });
    worker.on('message', (message: unknown) => replies.push(message));
    try {
      worker.postMessage('garbage');
      worker.postMessage({ id: 7, method: 'fly' });
      worker.postMessage({ id: 8, method: 'benchmark', params: { backend: 'cpu', size: -1, layers: 1, minMillis: 0 } });
      worker.postMessage({ id: 9, method: 'ping' });
      await received(4);
      expect(replies).toEqual([
        { id: null, ok: false, error: { message: expect.stringMatching(/object/) } },
        { id: 7, ok: false, error: { message: expect.stringMatching(/Unknown runtime method: 'fly'/) } },
        { id: 8, ok: false, error: { message: expect.stringMatching(/size/) } },
        { id: 9, ok: true, method: 'ping', result: { pong: true } },
      ]);
    } finally {
      await worker.terminate();
    }
  });

  it('close() ends the worker, rejects the call in flight and every later call', async () => {
    const client = RuntimeClient.start({ workerFile, threads: 1 });
    await client.ping();
    const inFlight = client.benchmark({ backend: 'cpu', size: 512, layers: 8, minMillis: 3000 });
    const closed = client.close();
    await expect(inFlight).rejects.toThrow(/closed/);
    await closed; // resolves only once the worker thread has exited
    await expect(client.ping()).rejects.toThrow(/closed.*ping/);
    await expect(client.listBackends()).rejects.toThrow(/closed/);
    await client.close(); // idempotent
  });

  it('rejects pending calls when the worker dies', async () => {
    const client = RuntimeClient.start({ workerFile: join(dirname(workerFile), 'missing-worker.js') });
    await expect(client.ping()).rejects.toThrow(/ORT worker (failed|exited)/);
    await client.close();
  });
});
