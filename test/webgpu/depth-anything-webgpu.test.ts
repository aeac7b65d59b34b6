/**
 * Depth Anything on the WebGPU execution provider against transformers 4.57.6 (test/fixtures/depth/):
 * every stage of both tiny models on every case, with the graphs the pipeline builds for WebGPU
 * (kernelChoices('webgpu'): primitive attention), then the whole photo → depth map flow through
 * `estimateDepthMap` on an engine context asking for webgpu. Same tolerances as the CPU test
 * (test/helpers/depth-fixtures.ts). Runs through SwiftShader where there is no GPU
 * (test/helpers/vulkan-driver.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { encodeModel } from '../../main/engine/graph/onnx-writer';
import { readNpyFile } from '../../main/engine/io/npy-file';
import { buildDepthAnythingGraph } from '../../main/engine/nets/depth-anything';
import type { NetGraph } from '../../main/engine/nets/net-graph';
import { estimateDepthMap } from '../../main/engine/pipelines/depth-map';
import type { EngineContext } from '../../main/engine/pipelines/engine-context';
import { kernelChoices } from '../../main/engine/providers/kernel-routing';
import type { RuntimeClient } from '../../main/engine/runtime/runtime-client';
import type { TensorMap } from '../../main/engine/runtime/runtime-protocol';
import { depthCaseImage, depthCasePath, depthManifest, depthMapOf, depthModelDir, depthStage, expectMapWithinBound, graphStages, readJson, stageBound } from '../helpers/depth-fixtures';
import { maxAbsDiff, readSafetensorsCatalog } from '../helpers/net-fixtures';
import { makeTempDir } from '../helpers/temp-dir';
import { useVulkanDriver } from '../helpers/vulkan-driver';
import { startTestRuntime } from '../helpers/worker-bundle';

const DEVICE = 'webgpu';
const vulkan = useVulkanDriver();
const temp = makeTempDir('blip-depth-webgpu-');

let testRuntime: Awaited<ReturnType<typeof startTestRuntime>> | undefined;
let runtime: RuntimeClient;

beforeAll(async () => {
  if (vulkan.skipReason !== null) return;
  testRuntime = await startTestRuntime();
  runtime = testRuntime.runtime;
  const webgpu = (await runtime.listBackends()).find((backend) => backend.name === DEVICE);
  if (!webgpu?.available) throw new Error(`WebGPU does not start on the Vulkan driver ${vulkan.driver?.icd}: ${webgpu?.note ?? 'this ONNX Runtime build has no WebGPU provider'}`);
});
afterAll(async () => {
  await testRuntime?.stop();
  temp.remove();
});

async function runOnWebGpu(graph: NetGraph, externalDataFolder: string, feeds: TensorMap): Promise<TensorMap> {
  const session = await runtime.createSession({ model: encodeModel(graph.model), externalDataFolder, device: DEVICE });
  expect(session.device, 'the session runs on WebGPU, not a fallback').toBe(DEVICE);
  try {
    return await runtime.run(session.id, feeds);
  } finally {
    await runtime.releaseSession(session.id);
  }
}

describe.skipIf(vulkan.skipReason !== null)(`Depth Anything on WebGPU (${vulkan.driver?.kind ?? 'skipped'}: ${vulkan.skipReason ?? vulkan.driver?.icd})`, () => {
  const kernels = kernelChoices(DEVICE);

  for (const [id, entry] of Object.entries(depthManifest.cases)) {
    it(`${id}: every stage of the graph within the CPU test's bounds`, async ({ annotate }) => {
      const dir = depthModelDir(entry.model);
      const pixels = readNpyFile(depthCasePath(id, 'pixel_values.npy'));
      const [, , height, width] = pixels.shape as [number, number, number, number];
      const graph = buildDepthAnythingGraph(readJson(join(dir, 'config.json')), readSafetensorsCatalog(join(dir, 'model.safetensors')), { height, width, intermediates: true, ...kernels });
      const outputs = await runOnWebGpu(graph, dir, { pixel_values: { type: 'float32', dims: pixels.shape, data: pixels.data as Float32Array } });
      const report: string[] = [];
      for (const stage of graphStages(entry)) {
        const file = entry.files[`${stage}.npy`]!;
        expect(outputs[stage]?.dims, `${stage} dims`).toEqual(file.shape);
        const error = maxAbsDiff(outputs[stage]!.data as Float32Array, depthStage(id, stage));
        const bound = stageBound(file.float64_gap!);
        report.push(`${stage} ${error.toExponential(1)} ≤ ${bound.toExponential(1)}`);
        expect(error, `${id} ${stage} on WebGPU: max |ours − ref32| = ${error}, bound ${bound}`).toBeLessThanOrEqual(bound);
      }
      await annotate(report.join('; '));
    });
  }

  // The whole flow once per model (SwiftShader compiles every shader again for each new graph).
  const flowCases = Object.entries(depthManifest.cases).filter(([, entry], i, all) => all.findIndex(([, other]) => other.model === entry.model) === i);
  for (const [id, entry] of flowCases) {
    it(`${id}: photo → depth map through the engine on webgpu, within the map bound`, async ({ annotate }) => {
      const notes: string[] = [];
      const context: EngineContext = { runtime, device: DEVICE, cacheDir: join(temp.path, 'engine'), onDeviceNote: (note) => notes.push(note) };
      const map = await estimateDepthMap(context, { dir: depthModelDir(entry.model) }, await depthCaseImage(id));
      expect(notes, 'no fallback away from WebGPU').toEqual([]);
      expect([map.height, map.width]).toEqual(entry.image_size);
      await annotate(expectMapWithinBound(map.data, depthMapOf(id), entry.files['depth_map.npy']!, id));
    });
  }
});
